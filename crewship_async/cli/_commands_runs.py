"""``runs create|get|list|cancel|wait|events`` and ``webhook trigger``."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import time
from collections.abc import Sequence
from typing import Any, Optional

from .. import AsyncCrewship
from ..models import RunEvent
from ..models.runs import ENVIRONMENTS, RUN_STATUSES
from ._args import json_object, positive_float, positive_int
from ._output import Output
from ._text import short, to_jsonable

__all__ = [
    "event_line",
    "print_events",
    "register",
    "register_webhook",
    "resume_command",
    "resume_options",
]

_RUN_COLUMNS = ("id", "status", "deployment_id", "created_at", "completed_at")


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``runs`` command group."""
    group = commands.add_parser(
        "runs",
        help="create, inspect, cancel, wait for and stream runs",
        description="Create, inspect, cancel, wait for and stream runs.",
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        parents=[parent],
        help="start a run of a deployment",
        description="Start a run of DEPLOYMENT_ID and print its id.",
    )
    create.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
    create.add_argument(
        "--input",
        type=json_object,
        metavar="JSON",
        help="the run's input, a JSON object (or @file.json)",
    )
    create.add_argument("--environment", choices=ENVIRONMENTS, default="production")
    create.add_argument(
        "--stream",
        action="store_true",
        help="then print the run's events as they arrive (Ctrl-C prints how to resume)",
    )
    create.add_argument(
        "--wait", action="store_true", help="then wait for the run to finish and print it"
    )
    create.set_defaults(handler=create_run)

    get = actions.add_parser("get", parents=[parent], help="show a run")
    get.add_argument("run_id", metavar="RUN_ID")
    get.set_defaults(handler=get_run)

    listing = actions.add_parser("list", parents=[parent], help="list runs, newest first")
    listing.add_argument("--deployment", metavar="DEPLOYMENT_ID", help="only this deployment")
    listing.add_argument("--status", choices=RUN_STATUSES, help="only runs in this status")
    listing.add_argument(
        "--limit", type=positive_int, default=20, help="show at most this many (20)"
    )
    listing.set_defaults(handler=list_runs)

    cancel = actions.add_parser("cancel", parents=[parent], help="cancel a pending or running run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.set_defaults(handler=cancel_run)

    wait = actions.add_parser(
        "wait",
        parents=[parent],
        help="wait until a run finishes and print it",
        description="Wait until RUN_ID is succeeded, failed or canceled, then print it.",
    )
    wait.add_argument("run_id", metavar="RUN_ID")
    wait.add_argument(
        "--timeout", type=positive_float, metavar="SECONDS", help="give up after this long"
    )
    wait.add_argument(
        "--poll-interval",
        type=positive_float,
        default=2.0,
        metavar="SECONDS",
        help="polling interval when the event stream is unavailable (2)",
    )
    wait.set_defaults(handler=wait_run)

    events = actions.add_parser(
        "events",
        parents=[parent],
        help="print a run's events live",
        description=(
            "Print RUN_ID's events as they arrive until the run ends: the events so far "
            "first, then the live ones. For a run that has already finished the stream "
            "holds only one `complete` event with the final status (and no id): pass "
            "--last-event-id 0 to replay its whole log, or --last-event-id ID for the "
            "events after that id (an id at or past the last one gets the `complete` event "
            "again). A dropped connection is resumed where it stopped. Ctrl-C prints the "
            "last event id and the command that resumes after it (exit 130). Under "
            "--emulator no run exists yet (each command gets a fresh emulator): use "
            "`runs create --stream` there, or serve one with `crewship-async emulator`."
        ),
    )
    events.add_argument("run_id", metavar="RUN_ID")
    events.add_argument(
        "--last-event-id",
        metavar="ID",
        help="replay (or resume) the events after this event id, even of a finished run "
        "(0: from the first)",
    )
    events.add_argument(
        "--idle-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="fail after this long without an event (default: 120)",
    )
    events.set_defaults(handler=stream_events)


def register_webhook(commands: Any, parent: argparse.ArgumentParser) -> Any:
    """Add the ``webhook`` command group (also spelled ``webhooks``); returns its actions."""
    group = commands.add_parser(
        "webhook",
        aliases=["webhooks"],
        help="trigger a run through an incoming webhook; receive outgoing webhooks",
        description=(
            "Trigger a run through an incoming webhook (the token is the credential), or "
            "receive Crewship's outgoing webhooks locally."
        ),
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    trigger = actions.add_parser(
        "trigger",
        parents=[parent],
        help="POST an input to an incoming webhook",
        description=(
            "Start a run through an incoming webhook, given its token or the whole webhook "
            "URL (whose origin must be the --base-url); no API key is needed."
        ),
    )
    trigger.add_argument("token", metavar="TOKEN_OR_URL")
    trigger.add_argument(
        "--input", type=json_object, default={}, metavar="JSON", help="the run's input ({})"
    )
    trigger.set_defaults(handler=trigger_webhook, needs_key=False)
    return actions


# -- output helpers ------------------------------------------------------------------------


def _created_line(created: Any) -> str:
    text = f"created {created.run_id} ({created.status})"
    if created.version_id:
        text += f" on version {created.version_id}"
        if created.version_number is not None:
            text += f" #{created.version_number}"
    if getattr(created, "thread_id", None):
        text += f" in thread {created.thread_id}"
    return text


def event_line(event: RunEvent, started: float) -> str:
    """One event as a line for people: elapsed time, type, id and a short payload."""
    data = event.data
    if isinstance(data, dict) and set(data) == {"message"}:
        detail = short(data["message"], 200)
    elif data in ({}, None, ""):
        detail = ""
    else:
        detail = short(data, 200)
    ident = f" #{event.id}" if event.id else ""
    return f"{time.monotonic() - started:7.2f}s  {event.type:<15}{ident}  {detail}".rstrip()


def resume_options(args: argparse.Namespace) -> list[str]:
    """The options of this invocation that a resume command needs again: ``--base-url``
    when given on the command line, and ``--json``. Never the API key."""
    options: list[str] = []
    if getattr(args, "base_url", None):
        options += ["--base-url", args.base_url]
    if getattr(args, "json", False):
        options.append("--json")
    return options


def resume_command(run_id: str, last_event_id: Optional[str], options: Sequence[str] = ()) -> str:
    """The shell command that prints ``run_id``'s events after ``last_event_id`` (from the
    start when it is ``None``), each part quoted for a POSIX shell."""
    argv = ["crewship-async", "runs", "events", run_id]
    if last_event_id is not None:
        argv += ["--last-event-id", last_event_id]
    return shlex.join([*argv, *options])


def _resume_hint(run_id: str, last_event_id: Optional[str], options: Sequence[str]) -> str:
    command = resume_command(run_id, last_event_id, options)
    if last_event_id is None:
        return f"no event id received yet; follow the run from the start with: {command}"
    return f"last event id: {last_event_id}; resume after it with: {command}"


async def print_events(
    client: AsyncCrewship,
    run_id: str,
    out: Output,
    *,
    last_event_id: Optional[str] = None,
    idle_timeout: Optional[float] = None,
    resume: Optional[Sequence[str]] = (),
) -> int:
    """Print ``run_id``'s events as each arrives; return how many were printed.

    When interrupted (Ctrl-C cancels the command), one line on stderr gives the id of the
    last event received and the command that resumes after it (:func:`resume_command`,
    with the options ``resume``; ``None`` prints no such line); then the interruption
    propagates (the command exits 130).
    """
    started = time.monotonic()
    count = 0
    stream = client.runs.stream(run_id, last_event_id=last_event_id, idle_timeout=idle_timeout)
    try:
        async with stream as events:
            async for event in events:
                count += 1
                if out.json_mode:
                    out.write_json(event)
                else:
                    out.line(event_line(event, started))
    except (asyncio.CancelledError, KeyboardInterrupt):
        if resume is not None:
            out.note(_resume_hint(run_id, stream.last_event_id, resume))
        raise
    return count


def _print_run(out: Output, run: Any) -> None:
    out.record(run, title=f"run {run.id}")


# -- handlers ------------------------------------------------------------------------------


async def create_run(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``runs create``: start a run; optionally stream its events and wait for the end."""
    created = await client.runs.create(
        args.deployment_id, input=args.input, environment=args.environment
    )
    if out.json_mode:
        out.write_json(created)
    else:
        out.line(_created_line(created))
    if args.stream:
        await print_events(client, created.run_id, out, resume=resume_options(args))
    if args.wait:
        _print_run(out, await client.runs.wait(created.run_id))
    return 0


async def get_run(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``runs get``: show one run."""
    _print_run(out, await client.runs.get(args.run_id))
    return 0


async def list_runs(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``runs list``: a table of runs, newest first."""
    pager = client.runs.list(
        deployment_id=args.deployment,
        status=args.status,
        limit=min(args.limit, 100),
        max_items=args.limit,
    )
    runs = await pager.to_list()
    out.table(runs, columns=_RUN_COLUMNS, empty="no runs found")
    return 0


async def cancel_run(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``runs cancel``: cancel a pending or running run."""
    result = await client.runs.cancel(args.run_id)
    if out.json_mode:
        out.write_json({"run_id": args.run_id, **out_dict(result)})
    else:
        out.line(f"canceled {args.run_id} (status {result.status})")
    return 0


async def wait_run(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``runs wait``: block until the run is terminal and print it."""
    run = await client.runs.wait(
        args.run_id, timeout=args.timeout, poll_interval=args.poll_interval
    )
    _print_run(out, run)
    return 0


async def stream_events(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``runs events``: print the run's events live until it ends."""
    await print_events(
        client,
        args.run_id,
        out,
        last_event_id=args.last_event_id,
        idle_timeout=args.idle_timeout,
        resume=resume_options(args),
    )
    return 0


async def trigger_webhook(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``webhook trigger``: start a run through an incoming webhook token."""
    created = await client.webhooks.trigger(args.token, args.input)
    if out.json_mode:
        out.write_json(created)
    else:
        out.line(_created_line(created))
    return 0


def out_dict(value: Any) -> dict[str, Any]:
    """``value`` converted for JSON output, as a dict."""
    data = to_jsonable(value)
    return data if isinstance(data, dict) else {"value": data}
