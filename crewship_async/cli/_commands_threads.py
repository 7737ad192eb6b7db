"""``threads create|get|list|delete|copy|history|run``."""

from __future__ import annotations

import argparse
from typing import Any

from .. import AsyncCrewship, ThreadBusyError
from ..models.runs import ENVIRONMENTS
from ..models.threads import ON_BUSY_CHOICES, THREAD_STATUSES
from ._args import json_object, positive_float, positive_int
from ._commands_runs import print_events, resume_options
from ._errors import CLIError
from ._output import Output

__all__ = ["register"]

_THREAD_COLUMNS = ("thread_id", "status", "deployment_id", "updated_at", "metadata")


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``threads`` command group."""
    group = commands.add_parser(
        "threads",
        help="stateful conversations: create threads and run them",
        description="Stateful conversations bound to a deployment.",
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[parent], help="create a thread")
    create.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
    create.add_argument("--metadata", type=json_object, metavar="JSON", help="a JSON object")
    create.add_argument(
        "--values", type=json_object, metavar="JSON", help="initial state, a JSON object"
    )
    create.set_defaults(handler=create_thread)

    get = actions.add_parser("get", parents=[parent], help="show a thread and its state")
    get.add_argument("thread_id", metavar="THREAD_ID")
    get.set_defaults(handler=get_thread)

    listing = actions.add_parser("list", parents=[parent], help="list a deployment's threads")
    listing.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
    listing.add_argument("--status", choices=THREAD_STATUSES)
    listing.add_argument(
        "--limit", type=positive_int, default=20, help="show at most this many (20)"
    )
    listing.set_defaults(handler=list_threads)

    delete = actions.add_parser("delete", parents=[parent], help="delete a thread")
    delete.add_argument("thread_id", metavar="THREAD_ID")
    delete.set_defaults(handler=delete_thread)

    copy = actions.add_parser("copy", parents=[parent], help="duplicate a thread and its state")
    copy.add_argument("thread_id", metavar="THREAD_ID")
    copy.set_defaults(handler=copy_thread)

    history = actions.add_parser(
        "history", parents=[parent], help="list a thread's checkpoints, newest first"
    )
    history.add_argument("thread_id", metavar="THREAD_ID")
    history.add_argument(
        "--limit", type=positive_int, default=20, help="show at most this many (20)"
    )
    history.set_defaults(handler=thread_history)

    run = actions.add_parser(
        "run",
        parents=[parent],
        help="start a run on a thread",
        description=(
            "Start a run on THREAD_ID. A busy thread (409) is an error unless "
            "--on-busy wait, which waits until the thread is idle and then sends once more."
        ),
    )
    run.add_argument("thread_id", metavar="THREAD_ID")
    run.add_argument(
        "--input", type=json_object, metavar="JSON", help="the run's input, a JSON object"
    )
    run.add_argument("--environment", choices=ENVIRONMENTS, default="production")
    run.add_argument("--on-busy", choices=ON_BUSY_CHOICES, default="raise")
    run.add_argument(
        "--busy-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="with --on-busy wait: give up after this long",
    )
    run.add_argument(
        "--stream", action="store_true", help="then print the run's events as they arrive"
    )
    run.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run to finish, then print it and the thread's new state",
    )
    run.set_defaults(handler=run_thread)


async def create_thread(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``threads create``."""
    thread = await client.threads.create(
        args.deployment_id, metadata=args.metadata, values=args.values
    )
    out.record(thread, title=f"thread {thread.thread_id}")
    return 0


async def get_thread(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``threads get``."""
    thread = await client.threads.get(args.thread_id)
    out.record(thread, title=f"thread {thread.thread_id}")
    return 0


async def list_threads(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``threads list``: a table of the deployment's threads."""
    threads = []
    async for thread in client.threads.list(
        args.deployment_id, status=args.status, limit=min(args.limit, 100)
    ):
        threads.append(thread)
        if len(threads) >= args.limit:
            break
    out.table(threads, columns=_THREAD_COLUMNS, empty="no threads found")
    return 0


async def delete_thread(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``threads delete``."""
    await client.threads.delete(args.thread_id)
    if out.json_mode:
        out.write_json({"thread_id": args.thread_id, "deleted": True})
    else:
        out.line(f"deleted {args.thread_id}")
    return 0


async def copy_thread(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``threads copy``: a new thread with the same state."""
    thread = await client.threads.copy(args.thread_id)
    out.record(thread, title=f"thread {thread.thread_id} (copy of {args.thread_id})")
    return 0


async def thread_history(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``threads history``: the thread's checkpoints."""
    checkpoints = []
    async for checkpoint in client.threads.history(args.thread_id):
        checkpoints.append(checkpoint)
        if len(checkpoints) >= args.limit:
            break
    out.table(checkpoints, title=f"history of {args.thread_id}", empty="no checkpoints")
    return 0


async def run_thread(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``threads run``: start a run on the thread; optionally stream it and wait."""
    options: dict[str, Any] = {
        "input": args.input,
        "environment": args.environment,
        "on_busy": args.on_busy,
    }
    if args.busy_timeout is not None:
        options["busy_timeout"] = args.busy_timeout
    if args.wait and not args.stream:
        try:
            run, thread = await client.threads.runs.create_and_wait(args.thread_id, **options)
        except ThreadBusyError as exc:
            raise CLIError(f"{exc}; pass --on-busy wait to wait until the thread is idle") from exc
        out.record(run, title=f"run {run.id}")
        out.record(thread, title=f"thread {thread.thread_id}")
        return 0
    try:
        created = await client.threads.runs.create(args.thread_id, **options)
    except ThreadBusyError as exc:
        raise CLIError(f"{exc}; pass --on-busy wait to wait until the thread is idle") from exc
    if out.json_mode:
        out.write_json(created)
    else:
        out.line(f"created {created.run_id} ({created.status}) in thread {args.thread_id}")
    if args.stream:
        await print_events(client, created.run_id, out, resume=resume_options(args))
    if args.wait:
        final = await client.runs.wait(created.run_id)
        out.record(final, title=f"run {final.id}")
        thread = await client.threads.get(args.thread_id)
        out.record(thread, title=f"thread {thread.thread_id}")
    return 0
