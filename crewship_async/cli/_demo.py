"""``demo``: the SDK's main job, end to end, against an in-process emulator (see ``HELP``)."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Awaitable
from typing import Any, Callable, Optional, TypeVar

import anyio

from .. import AsyncCrewship, Column, RunRequest, ThreadBusyError
from ..models import Run
from ._commands_runs import print_events
from ._commands_tables import row_cells
from ._output import Output
from ._progress import ProgressReporter, choose_mode

__all__ = ["register", "run_demo"]

DEPLOYMENT = "dep_demo"
STEP_DELAY = 0.05
FANOUT_CONCURRENCY = 32
WAIT_CONCURRENCY = 50
#: The error of the runs the emulator is scripted to fail.
SCRIPTED_ERROR = "Search API quota exceeded"
TOPICS = (
    "AI agents",
    "vector databases",
    "edge inference",
    "open-source LLMs",
    "robotics",
    "quantum error correction",
    "battery chemistry",
    "protein folding",
)
TURNS = (
    "Hi! Can you research AI agents for me?",
    "Focus on open-source frameworks, please.",
    "Now summarise it in one sentence.",
)

T = TypeVar("T")

HELP = """\
Show the SDK's main job end to end, against an in-process emulator.

1. Fan-out: trigger 200 runs (--quick: 20) with bounded concurrency behind a live
   progress bar, then wait for every one of them to finish.
2. Stream one run's events as they happen.
3. A three-turn thread conversation, including a run sent while the thread is busy:
   the 409 is caught as ThreadBusyError and the turn is sent again with
   on_busy="wait".
4. The run results written to a table in batches, and read back.
5. A summary with the time each step took.

A few runs fail on purpose: the emulator is scripted to fail 1 run in 50 (the
first ones after the middle of the batch), to show failures counted and kept
apart. The table lists rows in input order, then the failed ones on their own.

No key and no network are needed; the output stays readable when it is not a terminal.
"""


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``demo`` command."""
    demo = commands.add_parser(
        "demo",
        parents=[parent],
        help="see the SDK at work against a local emulator (no key, no network)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--quick", action="store_true", help="20 runs instead of 200 (a few seconds)")
    demo.set_defaults(standalone=run_demo)


class _Demo:
    """The demo's steps, sharing one client, one emulator and one output."""

    def __init__(
        self,
        client: AsyncCrewship,
        emulator: Any,
        out: Output,
        count: int,
        scripted_failures: int = 0,
    ) -> None:
        self.client = client
        self.emulator = emulator
        self.out = out
        self.count = count
        self.scripted_failures = scripted_failures
        self.timings: list[tuple[str, float]] = []
        self.finals: list[Run] = []
        self.mode = choose_mode(json_mode=out.json_mode, stream=out.stdout)

    # -- presentation ---------------------------------------------------------------------

    def heading(self, text: str) -> None:
        if self.out.json_mode:
            return
        from rich.text import Text

        self.out.console.print()
        self.out.console.rule(Text(text, style="bold"), align="left")

    def say(self, text: str) -> None:
        self.out.line(text)

    def record(self, step: str, **data: Any) -> None:
        if self.out.json_mode:
            self.out.write_json({"step": step, **data})

    async def timed(self, name: str, step: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        result = await step()
        self.timings.append((name, time.monotonic() - started))
        return result

    def progress(self, label: str, total: int) -> ProgressReporter:
        return ProgressReporter(label, total, mode=self.mode, stream=self.out.stdout, interval=1.0)

    # -- steps ----------------------------------------------------------------------------

    async def fan_out(self) -> list[tuple[int, str]]:
        self.heading(
            f"1. Fan-out: {self.count} runs of {DEPLOYMENT}, "
            f"at most {FANOUT_CONCURRENCY} requests in flight"
        )
        requests = (
            RunRequest(DEPLOYMENT, {"topic": TOPICS[i % len(TOPICS)], "n": i})
            for i in range(self.count)
        )
        created: list[tuple[int, str]] = []
        started = time.monotonic()
        with self.progress("triggering", self.count) as bar:
            fanout = self.client.runs.create_many(requests, concurrency=FANOUT_CONCURRENCY)
            async with fanout as outcomes:
                async for outcome in outcomes:
                    bar.advance(outcome.ok)
                    if outcome.run is not None:
                        created.append((outcome.index, outcome.run.run_id))
        elapsed = time.monotonic() - started
        failed = self.count - len(created)
        self.say(
            f"{len(created)} runs created in {elapsed:.2f}s "
            f"({len(created) / max(elapsed, 1e-9):.0f} runs/s), {failed} failed"
        )
        self.record("fan_out", created=len(created), failed=failed, seconds=round(elapsed, 3))
        return created

    async def wait_all(self, created: list[tuple[int, str]]) -> None:
        self.say(f"waiting for the {len(created)} runs to finish (event streams, polling fallback)")
        limiter = anyio.CapacityLimiter(WAIT_CONCURRENCY)
        finals: dict[int, Run] = {}
        with self.progress("finishing", len(created)) as bar:

            async def wait_one(index: int, run_id: str) -> None:
                async with limiter:
                    run = await self.client.runs.wait(run_id, timeout=60)
                finals[index] = run
                bar.advance(run.status == "succeeded")

            async with anyio.create_task_group() as group:
                for index, run_id in created:
                    group.start_soon(wait_one, index, run_id)
        self.finals = [finals[index] for index in sorted(finals)]
        counts: dict[str, int] = {}
        for run in self.finals:
            counts[str(run.status)] = counts.get(str(run.status), 0) + 1
        self.say("finished: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        if self.scripted_failures:
            self.say(
                f"  (the emulator was scripted to fail {self.scripted_failures} of the runs "
                f'with "{SCRIPTED_ERROR}", as some always fail: they are counted, and kept '
                "apart in step 4)"
            )
        self.record("wait", statuses=counts, scripted_failures=self.scripted_failures)

    async def stream_one(self) -> None:
        created = await self.client.runs.create(DEPLOYMENT, input={"topic": "AI agents"})
        self.heading(f"2. Live events of {created.run_id}")
        events = await print_events(self.client, created.run_id, self.out, resume=None)
        self.say(f"{events} events, delivered as they happened")
        self.record("stream", run_id=created.run_id, events=events)

    async def conversation(self) -> None:
        threads = self.client.threads
        thread = await threads.create(DEPLOYMENT, metadata={"user": "demo"})
        thread_id = thread.thread_id
        self.heading(f"3. A three-turn conversation in {thread_id}")
        self.say(f"turn 1: {TURNS[0]!r} (create_and_wait)")
        await threads.runs.create_and_wait(thread_id, input={"message": TURNS[0]})
        # Turn 2 is held by the emulator until turn 3 has met the busy thread, so the
        # demo shows the 409 however slow or fast the machine is.
        self.emulator.script_runs("held", count=1)
        second = await threads.runs.create(thread_id, input={"message": TURNS[1]})
        self.say(f"turn 2: {TURNS[1]!r} started as {second.run_id}; the thread is now busy")
        self.say("turn 3 sent at once, while turn 2 is still running:")
        busy: Optional[ThreadBusyError] = None
        try:
            third = await threads.runs.create(thread_id, input={"message": TURNS[2]})
        except ThreadBusyError as exc:
            busy = exc
        self.emulator.runs[second.run_id].release()
        if busy is not None:
            self.say(f"  409 -> ThreadBusyError caught: {busy.message}")
            self.say('  sent again with on_busy="wait": waits until the thread is idle, posts once')
            run, thread = await threads.runs.create_and_wait(
                thread_id, input={"message": TURNS[2]}, on_busy="wait", busy_timeout=30
            )
        else:  # pragma: no cover - the emulator held turn 2, so turn 3 met a busy thread
            run = await self.client.runs.wait(third.run_id, timeout=30)
            thread = await threads.get(thread_id)
        values = thread.values or {}
        messages = values.get("messages") if isinstance(values, dict) else None
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict):
                self.say(f"  {message.get('role', '?'):>9}: {message.get('content')}")
        history = [checkpoint async for checkpoint in threads.history(thread_id)]
        self.say(f"thread {thread.status}, last run {run.status}, {len(history)} checkpoints")
        self.record(
            "conversation",
            thread_id=thread_id,
            busy_error_handled=busy is not None,
            messages=len(messages) if isinstance(messages, list) else 0,
            checkpoints=len(history),
        )

    async def table(self) -> None:
        tables = self.client.tables
        table = await tables.create(
            "demo_run_results",
            columns=[
                Column("n", "number"),
                Column("run_id", "text", required=True),
                Column("topic", "text"),
                Column("status", "text"),
                Column("seconds", "number"),
            ],
            description="Results of the crewship-async demo fan-out",
        )
        self.heading(f"4. The {len(self.finals)} results written to table {table.id}")
        rows = [_result_row(run) for run in self.finals]
        inserted = await tables.rows.insert(table.id, rows)
        batches = math.ceil(len(rows) / 100)
        self.say(f"inserted {len(inserted)} rows in {batches} batched request(s)")
        read = [row async for row in tables.rows.list(table.id, limit=100)]
        stored = {row.values.get("run_id") for row in read}
        missing = sum(1 for row in rows if row["run_id"] not in stored)
        self.say(f"read back {len(read)} rows; {missing} missing")
        failed = [row for row in read if row.values.get("status") == "failed"]
        if not self.out.json_mode:
            # The rows come back in insert order, which is input order (``n``).
            self.out.table([row_cells(row) for row in read[:5]], title="first rows, in input order")
            if failed:
                self.out.table(
                    [row_cells(row) for row in failed[:5]],
                    title=f"failed runs ({len(failed)}, scripted by the emulator)",
                )
        self.record(
            "table", table_id=table.id, inserted=len(inserted), read=len(read), failed=len(failed)
        )

    def summary(self, total: float) -> None:
        stats = self.emulator.stats
        self.heading("5. Summary")
        if self.out.json_mode:
            self.out.write_json(
                {
                    "step": "summary",
                    "runs": self.count,
                    "seconds": round(total, 3),
                    "timings": {name: round(seconds, 3) for name, seconds in self.timings},
                    "http_requests": stats.requests_total,
                    "peak_in_flight": stats.peak_in_flight,
                }
            )
            return
        rows: list[dict[str, Any]] = [
            {"step": name, "seconds": f"{seconds:.2f}"} for name, seconds in self.timings
        ]
        rows.append({"step": "total", "seconds": f"{total:.2f}"})
        self.out.table(rows, columns=("step", "seconds"))
        self.say(
            f"{stats.requests_total} HTTP requests served by the emulator, "
            f"at most {stats.peak_in_flight} at once; every connection closed."
        )

    async def run(self) -> None:
        started = time.monotonic()
        created = await self.timed("trigger runs", self.fan_out)
        await self.timed("wait for runs", lambda: self.wait_all(created))
        await self.timed("stream events", self.stream_one)
        await self.timed("thread conversation", self.conversation)
        await self.timed("table write + read", self.table)
        self.summary(time.monotonic() - started)


def _result_row(run: Run) -> dict[str, Any]:
    topic = run.input.get("topic") if run.input else None
    row: dict[str, Any] = {"run_id": run.id, "status": str(run.status)}
    number = run.input.get("n") if run.input else None
    if isinstance(number, int):
        row["n"] = number
    if isinstance(topic, str):
        row["topic"] = topic
    if run.started_at is not None and run.completed_at is not None:
        row["seconds"] = round((run.completed_at - run.started_at).total_seconds(), 3)
    return row


async def run_demo(args: argparse.Namespace, out: Output) -> int:
    """``demo``: start an emulator, run the steps against it, stop it."""
    from ..testing import CrewshipEmulator

    count = 20 if args.quick else 200
    failures = max(1, count // 50)
    async with CrewshipEmulator(step_delay=STEP_DELAY) as emulator:
        # A few runs fail, as some always do. Counted scripts apply in turn to the runs as
        # they arrive: the first half succeed, then come the failures, so that the first
        # rows of step 4 show the common case and the failures are listed on their own.
        emulator.script_runs("succeeded", count=count // 2)
        emulator.script_runs("failed", count=failures, error_message=SCRIPTED_ERROR)
        if not out.json_mode:
            out.line(
                f"crewship-async demo: {count} runs against an in-process emulator at "
                f"{emulator.url} (no key, no network)"
            )
        async with emulator.client() as client:
            await _Demo(client, emulator, out, count, failures).run()
    return 0
