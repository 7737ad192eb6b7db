"""``batch``: one run per input line, every outcome recorded, resumable (see ``HELP``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any, Callable, Optional, Union

from .. import AsyncCrewship, RunRequest
from ..errors import APIConnectionError, APIError
from ..models.runs import ENVIRONMENTS
from ._args import open_input, positive_float, positive_int
from ._errors import CLIError, UsageError
from ._output import Output
from ._progress import ProgressReporter, choose_mode
from ._text import dumps_line

if TYPE_CHECKING:
    from .._fanout import FanOut

__all__ = ["DEFAULT_GRACE", "load_done", "load_outcomes", "register"]

#: Seconds the requests in flight get to finish after Ctrl-C or SIGTERM (``--grace``).
DEFAULT_GRACE = 10.0

#: The signals that stop a batch, and its exit code after each: 128 + the signal number.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

HELP = """\
Trigger one run of DEPLOYMENT_ID per input line, with bounded concurrency and a live
progress bar.

Input: one JSON object per line, the run's input; blank lines are skipped. The index of
an input is its 0-based line number, so it stays the same from one attempt to the next.

Output: one JSON line per outcome, written and flushed as soon as its request finishes:

    {"index": 0, "input": {...}, "run_id": "run_...", "status": "running"}
    {"index": 1, "input": {...}, "error": "POST /v1/runs -> 400: ...", "error_type": ...}

--resume reads the output file, skips every index already recorded there (failed ones
included) and appends the rest. A last line cut short by a kill is removed and its input
sent again; an input with a complete line is never sent twice.

--retry-failed reads the output file and sends again exactly the inputs whose latest
record there is an error, under the same indices, appending their new outcomes (with
--resume too, the inputs not recorded yet are sent as well). An index may then have
several lines: the last one is its outcome, for --resume and --retry-failed alike. A
failure recorded as an APIConnectionError or APITimeoutError whose request may have
reached the server (its run may or may not exist) is sent again too, so it may create a
second run: a note on stderr says how many such inputs are being retried.

Ctrl-C (SIGINT) or SIGTERM (what a job scheduler sends) stops sending new inputs and
lets the requests in flight finish, for at most --grace seconds; every outcome is
recorded, one line on stderr says how many and how to resume, and the exit code is 130
after SIGINT, 143 after SIGTERM. A request still in flight when the grace period ends is
cancelled and recorded as an error (APITimeoutError) saying that its run may or may not
exist; --resume does not send it again. An input still waiting to be sent then (behind a
429) is not recorded, so --resume sends it. So an interrupted batch resumed with --resume
creates each run at most once.

A second Ctrl-C (or SIGTERM) during that wait stops at once, like a kill: a request
then in flight may have created its run without its line being written, and --resume
sends that input again (at most --concurrency inputs). The API has no idempotency key
that would close this gap.
"""


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``batch`` command."""
    batch = commands.add_parser(
        "batch",
        parents=[parent],
        help="trigger one run per line of a JSON lines file",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
    batch.add_argument("inputs", metavar="INPUTS", help="JSON lines file of run inputs, or -")
    batch.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write outcomes here (default: stdout); needed for --resume",
    )
    batch.add_argument(
        "--concurrency", type=positive_int, default=64, help="requests in flight at most (64)"
    )
    batch.add_argument("--environment", choices=ENVIRONMENTS, default="production")
    batch.add_argument(
        "--resume",
        action="store_true",
        help="skip the inputs already recorded in --output and append the rest",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again the inputs whose latest record in --output is an error (same "
        "indices; the new outcomes are appended)",
    )
    batch.add_argument(
        "--ordered",
        action="store_true",
        help="write outcomes in input order (malformed lines are recorded as they are read)",
    )
    batch.add_argument(
        "--fail-fast",
        action="store_true",
        help="send no new input after the first failed request; the requests already sent "
        "finish and are recorded, so --resume sends nothing twice",
    )
    batch.add_argument(
        "--grace",
        type=positive_float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="after Ctrl-C or SIGTERM, seconds the requests in flight get to finish and be "
        f"recorded ({DEFAULT_GRACE:g}); what is still in flight then is recorded as an "
        "error saying its run may or may not exist",
    )
    batch.add_argument(
        "--progress-interval",
        type=positive_float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between plain progress lines when stderr is not a terminal (2)",
    )
    # Plain lines when rich is missing: only the live bar on a terminal needs it.
    batch.set_defaults(handler=run_batch, need_rich=False)


#: What :func:`load_outcomes` says of an index: created, failed, or failed with a request
#: that may have reached the server (its run may or may not exist).
OK, FAILED, UNSURE = "ok", "failed", "unsure"

_MAY_HAVE_BEEN_SENT = frozenset({"APIConnectionError", "APITimeoutError"})


def load_done(path: str) -> tuple[set[int], bool]:
    """The indices recorded in the output file ``path``; repairs a cut-short last line.

    Returns ``(indices, repaired)``; see :func:`load_outcomes`.
    """
    outcomes, repaired = load_outcomes(path)
    return set(outcomes), repaired


def load_outcomes(path: str) -> tuple[dict[int, str], bool]:
    """The latest outcome of each index recorded in the output file ``path``: :data:`OK`,
    :data:`FAILED` or :data:`UNSURE`; repairs a cut-short last line.

    Returns ``(outcomes, repaired)``. A later line of an index replaces an earlier one
    (``--retry-failed`` appends new outcomes). Every line that ends with a newline must be
    a JSON object with an integer ``index`` (else :class:`UsageError`). A last line without
    a newline was cut short by a kill: it is removed (its index will be sent again),
    unless it is a complete record, which is kept and given its newline.
    """
    done: dict[int, str] = {}
    good_end = 0
    tail = b""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                tail = raw
                break
            good_end += len(raw)
            if not raw.strip():
                continue
            recorded = _record_outcome(raw)
            if recorded is None:
                raise UsageError(
                    f"{path} line {number} is not a batch outcome; fix it, or choose "
                    "another --output"
                )
            done[recorded[0]] = recorded[1]
    if not tail:
        return done, False
    recorded = _record_outcome(tail)
    with open(path, "r+b") as handle:
        if recorded is not None:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
            done[recorded[0]] = recorded[1]
        else:
            handle.truncate(good_end)
    return done, True


def _record_outcome(raw: bytes) -> Optional[tuple[int, str]]:
    """The index and outcome of one output line, or None if it is not an outcome."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    index = record.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        return None
    if "error" not in record:
        return index, OK
    if record.get("error_type") in _MAY_HAVE_BEEN_SENT and record.get("request_sent") is not False:
        return index, UNSURE
    return index, FAILED


def _refuse_constant(name: str) -> Any:
    """``parse_constant`` of input lines: NaN and the infinities are not JSON (Python's
    parser takes them, and echoing one back in a record would break the output file)."""
    raise ValueError(f"{name} is not a JSON value")


def _count_inputs(path: str) -> Optional[int]:
    if path == "-":
        return None
    with open_input(path) as handle:
        return sum(1 for line in handle if line.strip())


def _error_text(error: BaseException) -> str:
    return " ".join((str(error) or type(error).__name__).splitlines())


class _Batch:
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
        self.signals: Optional[_StopOnSignal] = None

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
        """Send the inputs and record every outcome; see :class:`_StopOnSignal` for signals."""
        fanout = client.runs.create_many(
            self.requests(handle),
            concurrency=self.args.concurrency,
            ordered=self.args.ordered,
        )
        self.signals = _StopOnSignal(fanout, self.args.grace, self._stopping)
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


SignalHandler = Union[Callable[[int, Optional[FrameType]], Any], int, None]


class _StopOnSignal:
    """While entered, SIGINT and SIGTERM stop the batch gracefully, then at once.

    The first of them calls ``fanout.stop_feeding(grace=grace)`` (no new input is sent,
    the requests in flight finish and their outcomes are still yielded) and then
    ``on_stop(signum, in_flight)``. A second one cancels the task that entered, which
    aborts the batch like a kill. ``received`` lists the signals in order.

    The handlers are installed with ``loop.add_signal_handler`` on entry, in the running
    loop, and removed on exit, when the handlers found on entry (such as the one of
    :func:`asyncio.run` for SIGINT) are put back. Where the loop cannot handle signals
    (not the main thread, or Windows) nothing is installed and Ctrl-C stops the batch at
    once, as a second one would.
    """

    def __init__(self, fanout: FanOut, grace: float, on_stop: Callable[[int, int], None]) -> None:
        self._fanout = fanout
        self._grace = grace
        self._on_stop = on_stop
        self.received: list[int] = []
        self._installed: list[tuple[int, SignalHandler]] = []
        self._task: Optional[asyncio.Task[Any]] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    @property
    def aborted(self) -> bool:
        """Whether a second signal cancelled the task."""
        return len(self.received) > 1

    def exit_code(self) -> int:
        """128 + the number of the last signal received (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.received[-1]

    def __enter__(self) -> _StopOnSignal:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            try:
                self._loop.add_signal_handler(signum, self._handle, int(signum))
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                continue  # Windows, or not the main thread
            self._installed.append((int(signum), previous))
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        assert self._loop is not None
        for signum, previous in reversed(self._installed):
            self._loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)
        self._installed.clear()

    def _handle(self, signum: int) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            self._fanout.stop_feeding(grace=self._grace)
            self._on_stop(signum, self._fanout.in_flight)
        elif len(self.received) == 2:
            assert self._task is not None
            self._task.cancel()


def _never_sent(error: Optional[BaseException]) -> bool:
    """Whether ``error`` says the request never left this process."""
    return isinstance(error, APIConnectionError) and error.request_sent is False


def _uncancel(task: Optional[asyncio.Task[Any]]) -> None:
    """Take back a cancellation that was handled (Python 3.11+ counts them)."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


def _interrupted_line(batch: _Batch, signum: int, total: Optional[int]) -> str:
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


def _open_sink(args: argparse.Namespace, out: Output) -> tuple[IO[str], dict[int, str], bool]:
    """The stream outcomes go to, the latest outcome of each index already recorded (see
    :func:`load_outcomes`), and whether to close the stream."""
    path = args.output
    if path is None or path == "-":
        for flag, wanted in (("--resume", args.resume), ("--retry-failed", args.retry_failed)):
            if wanted:
                raise UsageError(f"{flag} needs --output FILE (the results of the earlier attempt)")
        return out.stdout, {}, False
    done: dict[int, str] = {}
    exists = os.path.isfile(path) and os.path.getsize(path) > 0
    if exists and not (args.resume or args.retry_failed):
        raise UsageError(
            f"{path} already holds results: pass --resume to continue that batch "
            "(inputs already recorded are skipped) or --retry-failed to send its failures "
            "again, or choose another --output"
        )
    if args.retry_failed and not exists:
        raise UsageError(f"--retry-failed: {path} holds no results of an earlier attempt to retry")
    if exists:
        done, repaired = load_outcomes(path)
        if repaired:
            out.note(f"note: the last line of {path} was cut short; that input is retried")
    try:
        sink = open(path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    return sink, done, True


async def run_batch(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``batch``: see :data:`HELP`."""
    RunRequest(args.deployment_id, None, args.environment)  # reject a bad id up front
    total = _count_inputs(args.inputs)
    sink, outcomes, close_sink = _open_sink(args, out)
    done = set(outcomes)
    retry: frozenset[int] = frozenset()
    if args.retry_failed:
        retry = frozenset(index for index, outcome in outcomes.items() if outcome != OK)
        unsure = sum(1 for index in retry if outcomes[index] == UNSURE)
        if unsure:
            out.note(
                f"note: {unsure} of the {len(retry)} failures to retry were cut short after "
                "their request may have reached the server: their runs may exist, and "
                "sending them again may create a second run"
            )
    to_stdout = not close_sink
    summary_stream = out.stderr if to_stdout else out.stdout
    if total is not None:
        if args.retry_failed and not args.resume:
            total = len(retry)
        else:
            total = max(total - len(done), 0) + len(retry)
    mode = choose_mode(json_mode=out.json_mode, stream=out.stderr)
    progress = ProgressReporter(
        "runs", total, mode=mode, stream=out.stderr, interval=args.progress_interval
    )
    batch = _Batch(args, sink, progress, done, retry)
    try:
        with open_input(args.inputs) as handle, progress:
            await batch.run(client, handle)
    except (Exception, asyncio.CancelledError):
        if args.output not in (None, "-"):
            out.note(
                f"stopped after {batch.written} outcomes; run the same command with --resume "
                "to send the inputs not recorded yet (a request in flight when it stopped "
                "may have created a run that is not recorded)"
            )
        signals = batch.signals
        if signals is not None and signals.aborted:
            _uncancel(asyncio.current_task())
            return signals.exit_code()
        raise
    finally:
        if close_sink:
            sink.close()
    signals = batch.signals
    if signals is not None and signals.received:
        out.note(_interrupted_line(batch, signals.received[0], total))
        return signals.exit_code()
    summary = batch.summary(progress.elapsed)
    if out.json_mode:
        summary_stream.write(dumps_line(summary) + "\n")
    else:
        where = "" if to_stdout else f" -> {args.output}"
        skip_reason = "already recorded"
        if batch.retrying and not batch.send_new:
            skip_reason = "not recorded as failed"
        summary_stream.write(
            f"batch done in {summary['elapsed_seconds']:.1f}s: {batch.created} created, "
            f"{batch.failed} failed, {batch.skipped} skipped ({skip_reason}), "
            f"{summary['runs_per_second']}/s{where}\n"
        )
    summary_stream.flush()
    if batch.failed:
        raise CLIError(f"{batch.failed} of {batch.written} inputs failed; see the error lines")
    return 0
