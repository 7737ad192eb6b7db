"""``batch``: one run per input line, every outcome recorded, resumable (see ``HELP``).

The command's options and its course; the output file is read back by
:mod:`._batch_records`, an attempt runs in :mod:`._batch_attempt`, and signals are handled
by :mod:`._batch_signals`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .. import AsyncCrewship, RunRequest
from ..models.runs import ENVIRONMENTS
from ._args import open_input, positive_float, positive_int
from ._batch_attempt import BatchAttempt, count_inputs, interrupted_line
from ._batch_records import OK, UNSURE, load_done, load_outcomes, open_records
from ._batch_signals import uncancel
from ._errors import CLIError
from ._output import Output
from ._progress import ProgressReporter, choose_mode
from ._text import dumps_line

__all__ = ["DEFAULT_GRACE", "load_done", "load_outcomes", "register", "run_batch"]

#: Seconds the requests in flight get to finish after Ctrl-C or SIGTERM (``--grace``).
DEFAULT_GRACE = 10.0

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


async def run_batch(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``batch``: see :data:`HELP`."""
    RunRequest(args.deployment_id, None, args.environment)  # reject a bad id up front
    total = count_inputs(args.inputs)
    sink, outcomes, close_sink = open_records(args, out)
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
    batch = BatchAttempt(args, sink, progress, done, retry)
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
            uncancel(asyncio.current_task())
            return signals.exit_code()
        raise
    finally:
        if close_sink:
            sink.close()
    signals = batch.signals
    if signals is not None and signals.received:
        out.note(interrupted_line(batch, signals.received[0], total))
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
