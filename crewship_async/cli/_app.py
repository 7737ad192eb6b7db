"""The ``crewship-async`` command: the argparse tree, the client, and error handling.

Every command is an ``async`` function run by :func:`asyncio.run` inside :func:`main`.
Commands that talk to the API receive an open :class:`~crewship_async.AsyncCrewship`
(or, with ``--emulator``, a client of an in-process emulator started for the command);
leaving the command closes it, on success, error and Ctrl-C alike.

Exit codes: 0 success; 1 an API, network or I/O error, such as a file named on the
command line that cannot be read or written (one ``error: ...`` line on stderr, no
traceback); 2 a usage error (a bad option or argument value, malformed JSON); 130
interrupted by Ctrl-C; 141 stdout closed by its reader (``| head``: nothing is printed, as a
shell reports a command ended by SIGPIPE); 143 a ``batch`` stopped by SIGTERM (which it
handles like Ctrl-C: see ``batch --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Callable, Optional

from .. import AsyncCrewship, __version__
from ..errors import CrewshipError, NotFoundError
from . import (
    _batch,
    _commands_runs,
    _commands_tables,
    _commands_threads,
    _demo,
    _emulator,
    _webhook_listen,
)
from ._errors import CLIError, InputFileError, UsageError, is_broken_pipe
from ._global_options import add_global_options, check_narrowed, options_parent
from ._output import Output

__all__ = ["build_parser", "main", "open_client"]

ClientHandler = Callable[[AsyncCrewship, argparse.Namespace, Output], Awaitable[int]]
StandaloneHandler = Callable[[argparse.Namespace, Output], Awaitable[int]]

#: Seconds between the events of an emulated run under ``--emulator``.
EMULATOR_STEP_DELAY = 0.05

#: The exit code when the reader of stdout goes away: 128 + SIGPIPE, as a shell reports.
BROKEN_PIPE_EXIT = 141

_DESCRIPTION = """\
Trigger and follow Crewship runs, hold thread conversations and manage tables.

Every command runs against the API (--api-key / CREWSHIP_API_KEY, --base-url /
CREWSHIP_BASE_URL) or, with --emulator, against an in-process emulator that needs no key
and no network; each command gets a fresh, empty emulator, so nothing it creates is there
for the next command (serve one with `crewship-async emulator` for state that lasts).
--json prints one JSON object per line.
"""

_EPILOG = """\
examples:
  crewship-async demo --quick
  crewship-async --emulator runs create dep_demo --input '{"topic": "AI"}' --stream
  crewship-async runs list --deployment dep_abc --status running --json
  crewship-async batch dep_abc inputs.jsonl --output results.jsonl --resume
  crewship-async emulator --port 8080

exit codes: 0 ok, 1 API/network/I-O error (a file that cannot be read or written),
  2 usage error, 130 interrupted, 141 stdout closed early (`| head`: stops silently,
  as after SIGPIPE), 143 batch stopped by SIGTERM
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argparse tree of ``crewship-async``."""
    parser = argparse.ArgumentParser(
        prog="crewship-async",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_global_options(parser, leaf=False)
    parent = options_parent()
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _commands_runs.register(commands, parent)
    _commands_threads.register(commands, parent)
    _commands_tables.register(commands, parent)
    webhook_actions = _commands_runs.register_webhook(commands, options_parent("webhook trigger"))
    _webhook_listen.register(webhook_actions, options_parent("webhook listen"))
    _batch.register(commands, parent)
    _emulator.register(commands, options_parent("emulator"))
    _demo.register(commands, options_parent("demo"))
    return parser


@asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[AsyncCrewship]:
    """The client a command uses; closed (and the emulator stopped) on the way out."""
    options: dict[str, Any] = {}
    if args.request_timeout is not None:
        options["timeout"] = args.request_timeout
    concurrency = getattr(args, "concurrency", None)
    if concurrency is not None and concurrency > 100:
        # create_many never queues inside the pool: give it room for every request.
        options["max_connections"] = concurrency
    if args.emulator:
        from ..testing import CrewshipEmulator

        emulator = CrewshipEmulator(step_delay=EMULATOR_STEP_DELAY)
        async with emulator, emulator.client(**options) as client:
            yield client
        return
    key = args.api_key or os.environ.get("CREWSHIP_API_KEY")
    if not key:
        if getattr(args, "needs_key", True):
            raise UsageError(
                "no API key: pass --api-key, set CREWSHIP_API_KEY, "
                "or add --emulator to run against a local emulator"
            )
        # Incoming webhooks authenticate with their token; the key is never sent there.
        key = "unused-webhook-only"
    try:
        client = AsyncCrewship(
            api_key=key,
            base_url=args.base_url,
            allow_insecure_http=args.allow_insecure_http,
            **options,
        )
    except ValueError as exc:
        # The SDK names its keyword argument; here the way out is the CLI's own flag.
        raise UsageError(
            str(exc).replace("allow_insecure_http=True", "--allow-insecure-http")
        ) from None
    async with client:
        yield client


async def _run(args: argparse.Namespace, out: Output) -> int:
    standalone: Optional[StandaloneHandler] = getattr(args, "standalone", None)
    if standalone is not None:
        return await standalone(args, out)
    handler: ClientHandler = args.handler
    async with open_client(args) as client:
        try:
            return await handler(client, args, out)
        except NotFoundError as exc:
            if not args.emulator:
                raise
            raise CLIError(f"{_error_message(exc)}; {_FRESH_EMULATOR}") from None


#: Why an id is not found under ``--emulator``, and the way to state that lasts.
_FRESH_EMULATOR = (
    "--emulator starts a fresh, empty emulator for each command, so nothing an earlier "
    "command created is there: serve one with `crewship-async emulator` and point "
    "--base-url/--api-key at it for state that lasts"
)


def _leaf_error(exc: BaseException) -> tuple[BaseException, int]:
    """The first error inside (nested) exception groups, and how many there were."""
    count = 1
    while True:
        inner = getattr(exc, "exceptions", None)
        if not (isinstance(inner, tuple) and inner and isinstance(inner[0], BaseException)):
            return exc, count
        count += len(inner) - 1
        exc = inner[0]


def _error_message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.splitlines())


def report_error(exc: BaseException, stderr: Any) -> int:
    """Print ``exc`` as one ``error:`` line and return its exit code; re-raise bugs."""
    leaf, count = _leaf_error(exc)
    if isinstance(leaf, CLIError):
        code = leaf.exit_code
    elif isinstance(leaf, (CrewshipError, OSError)):
        code = 1
    elif isinstance(leaf, (ValueError, TypeError)):
        # The SDK refuses bad arguments (an id like "..", a malformed base URL) before
        # sending anything: a usage error.
        code = 2
    else:
        raise exc
    message = _error_message(leaf)
    if count > 1:
        message += f" (and {count - 1} more errors)"
    stderr.write(f"error: {message}\n")
    stderr.flush()
    return code


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``crewship-async`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        check_narrowed(parser, args)
    except SystemExit as exc:  # --help, --version, usage errors (exit 2)
        return _exit_status(exc.code)
    except InputFileError as exc:  # --input @file that cannot be read (exit 1)
        return report_error(exc, sys.stderr)
    try:
        out = Output(json_mode=args.json, need_rich=getattr(args, "need_rich", True))
        code = asyncio.run(_run(args, out))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        return 130
    except Exception as exc:
        if is_broken_pipe(exc):
            return _broken_pipe()
        return report_error(exc, sys.stderr)


def _broken_pipe() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as after SIGPIPE.

    Whatever is still buffered for stdout goes to /dev/null, so that the flush at exit does
    not print "Exception ignored ... BrokenPipeError".
    """
    _silence_stdout()
    return BROKEN_PIPE_EXIT


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout has no file descriptor
        pass
