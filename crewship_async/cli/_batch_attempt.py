"""One attempt of ``batch``: the input lines turned into run requests, every outcome
recorded as one JSON line, and the counts for the summary."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Iterator
from typing import IO, Any, Optional

from .. import AsyncCrewship, RunRequest
from ..errors import APIConnectionError, APIError
from ._args import open_input
from ._batch_signals import StopOnSignal
from ._progress import ProgressReporter
from ._text import dumps_line

__all__ = ["BatchAttempt", "count_inputs", "interrupted_line"]


def _refuse_constant(name: str) -> Any:
    """``parse_constant`` of input lines: NaN and the infinities are not JSON (Python's
    parser takes them, and echoing one back in a record would break the output file)."""
    raise ValueError(f"{name} is not a JSON value")


def count_inputs(path: str) -> Optional[int]:
    if path == "-":
        return None
    with open_input(path) as handle:
        return sum(1 for line in handle if line.strip())


def _error_text(error: BaseException) -> str:
    return " ".join((str(error) or type(error).__name__).splitlines())


def _never_sent(error: Optional[BaseException]) -> bool:
    """Whether ``error`` says the request never left this process."""
    return isinstance(error, APIConnectionError) and error.request_sent is False


class BatchAttempt:
    """One execution of ``batch``: reads inputs, records outcomes, counts."""

    def __init__(
        self,
        args: argparse.Namespace,
        sink: IO[str],
        progress: ProgressReporter,
        done: set[int],
        retry: frozenset[int] = frozenset(),
    ) -> None:
        self.args = args
        self.sink = sink
        self.progress = progress
        self.done = done
        # --retry-failed: the failed indices to send again; the inputs never recorded are
        # sent only with --resume too (or when nothing is recorded: a first attempt).
        self.retrying = bool(getattr(args, "retry_failed", False))
        self.retry = retry
        self.send_new = not self.retrying or bool(getattr(args, "resume", False))
        self.skipped = 0
        self.created = 0
        self.failed = 0
        self.written = 0
        self.pending: dict[int, tuple[int, Any]] = {}
        self.cut_short = 0
        # Inputs the grace period cut short before they were sent: left for --resume.
        self.unsent = 0
        self.signals: Optional[StopOnSignal] = None

    def write(self, record: dict[str, Any]) -> None:
        self.sink.write(dumps_line(record) + "\n")
        self.sink.flush()
        self.written += 1
        ok = "error" not in record
        if ok:
            self.created += 1
        else:
            self.failed += 1
        self.progress.advance(ok)

    def wanted(self, index: int) -> bool:
        """Whether the input of ``index`` is to be sent in this attempt."""
        if index in self.retry:
            return True
        return self.send_new and index not in self.done

    def requests(self, handle: IO[str]) -> Iterator[RunRequest]:
        """The run requests of the input lines to send (see :meth:`wanted`), in order."""
        sequence = 0
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            if not self.wanted(index):
                self.skipped += 1
                continue
            try:
                value = json.loads(line, parse_constant=_refuse_constant)
            except ValueError as exc:
                self.write({"index": index, "input": None, "error": f"not valid JSON: {exc}"})
                continue
            if not isinstance(value, dict):
                self.write(
                    {
                        "index": index,
                        "input": value,
                        "error": f"the input must be a JSON object, got {type(value).__name__}",
                    }
                )
                continue
            self.pending[sequence] = (index, value)
            sequence += 1
            yield RunRequest(self.args.deployment_id, value, self.args.environment)

    async def run(self, client: AsyncCrewship, handle: IO[str]) -> None:
        """Send the inputs and record every outcome; see :class:`StopOnSignal` for signals."""
        fanout = client.runs.create_many(
            self.requests(handle),
            concurrency=self.args.concurrency,
            ordered=self.args.ordered,
        )
        self.signals = StopOnSignal(fanout, self.args.grace, self._stopping)
        with self.signals:
            async with fanout as outcomes:
                async for outcome in outcomes:
                    index, value = self.pending.pop(outcome.index)
                    if self.signals.received and _never_sent(outcome.error):
                        # Cut short by the grace period before it was sent: no run
                        # exists, so it stays unrecorded and --resume sends it.
                        self.unsent += 1
                        continue
                    record: dict[str, Any] = {"index": index, "input": value}
                    if outcome.run is not None:
                        record["run_id"] = outcome.run.run_id
                        record["status"] = outcome.run.status
                    else:
                        error = outcome.error
                        assert error is not None
                        record["error"] = _error_text(error)
                        record["error_type"] = type(error).__name__
                        if isinstance(error, APIError):
                            record["status_code"] = error.status_code
                        if isinstance(error, APIConnectionError):
                            # Whether its run may exist: --retry-failed warns about these.
                            record["request_sent"] = error.request_sent
                        if self.args.fail_fast:
                            # No new input, but the requests already sent finish and are
                            # recorded (the fan-out's own fail_fast would drop finished
                            # outcomes, leaving runs that --resume would create again).
                            fanout.stop_feeding()
                    self.write(record)
        self.cut_short = fanout.cut_short

    def _stopping(self, signum: int, in_flight: int) -> None:
        self.progress.note(
            f"{signal.Signals(signum).name}: sending no new inputs; waiting up to "
            f"{self.args.grace:g}s for the {in_flight} requests in flight to be recorded "
            "(Ctrl-C again to stop at once, leaving them unrecorded)"
        )

    def summary(self, elapsed: float) -> dict[str, Any]:
        return {
            "summary": True,
            "created": self.created,
            "failed": self.failed,
            "skipped": self.skipped,
            "elapsed_seconds": round(elapsed, 3),
            "runs_per_second": round(self.written / elapsed, 1) if elapsed > 0 else 0.0,
            "output": self.args.output or "-",
        }


def interrupted_line(batch: BatchAttempt, signum: int, total: Optional[int]) -> str:
    """The one line printed after a batch stopped by a signal has recorded everything."""
    args = batch.args
    name = signal.Signals(signum).name
    if args.output in (None, "-"):
        line = f"{name}: stopped; {batch.written} outcomes written to stdout"
    else:
        line = f"{name}: stopped; {batch.written} outcomes recorded in {args.output}"
    recorded_cuts = batch.cut_short - batch.unsent
    if recorded_cuts:
        line += (
            f" ({recorded_cuts} of them cut short after the {args.grace:g}s grace period "
            "while waiting for their response, recorded as APITimeoutError errors: their "
            "runs may or may not exist; --resume does not send them again)"
        )
    if args.output in (None, "-"):
        return line + "; pass --output FILE to be able to --resume a batch"
    if batch.retrying and not batch.send_new:
        rest = "the failures not retried yet"
        if total is not None:
            rest = f"the {max(total - batch.written, 0)} failures not retried yet"
        return line + f"; run the same command again to retry {rest} (and those that failed again)"
    rest = "the inputs not recorded yet"
    if total is not None:
        rest = f"the {max(total - batch.written, 0)} inputs not recorded yet"
    return line + f"; run the same command with --resume to send {rest}"
