"""The public API of DESIGN.md, called exactly as written there, end to end on the emulator."""

from __future__ import annotations

import inspect

import pytest

import crewship_async
from crewship_async import (
    AsyncCrewship,
    AsyncPager,
    Column,
    EventStream,
    RetryPolicy,
    RunEvent,
    RunOutcome,
    RunRequest,
    ThreadBusyError,
)
from crewship_async.testing import CrewshipEmulator


def test_constructor_and_tuning_knobs_have_the_documented_names() -> None:
    parameters = inspect.signature(AsyncCrewship).parameters
    for name in (
        "api_key",
        "base_url",
        "timeout",
        "max_retries",
        "max_connections",
        "default_headers",
        "session",
        "retry_policy",
        "idle_timeout",
        "allow_insecure_http",
    ):
        assert name in parameters
    assert RetryPolicy() == RetryPolicy(
        max_retries=2, initial_delay=0.5, max_delay=8.0, max_retry_after=60.0
    )
    for name in ("CrewshipError", "APIError", "StreamError", "ResponseError", "__version__"):
        assert hasattr(crewship_async, name)


async def test_the_documented_calls(crewship_emulator: CrewshipEmulator) -> None:
    emulator = crewship_emulator
    token = emulator.add_webhook("dep_abc")
    async with AsyncCrewship(
        api_key=emulator.api_key,
        base_url=emulator.url,
        timeout=30,
        max_retries=2,
        max_connections=100,
        default_headers={"X-Team": "qa"},
        idle_timeout=30.0,
    ) as client:
        created = await client.runs.create(
            "dep_abc", input={"topic": "AI"}, environment="production"
        )
        run = await client.runs.get(created.run_id)
        assert run.id == created.run_id
        listed = client.runs.list(deployment_id="dep_abc", status=None)
        assert isinstance(listed, AsyncPager)
        assert [r.id async for r in listed] == [created.run_id]
        stream = client.runs.stream(run.id, last_event_id=None, idle_timeout=None, max_reconnects=5)
        assert isinstance(stream, EventStream)
        async with stream as events:
            seen = [event async for event in events]
        assert all(isinstance(event, RunEvent) for event in seen)
        assert seen[-1].type in ("run.completed", "run.failed", "complete")
        final = await client.runs.wait(run.id, timeout=30, poll_interval=2.0)
        assert final.is_terminal
        requests = [RunRequest("dep_abc", input={"n": n}) for n in range(3)]
        outcomes = [o async for o in client.runs.create_many(requests, concurrency=64)]
        assert sorted(o.index for o in outcomes) == [0, 1, 2]
        assert all(isinstance(o, RunOutcome) and o.request is requests[o.index] for o in outcomes)
        busy = await client.runs.create("dep_abc")
        assert (await client.runs.cancel(busy.run_id)).success

        thread = await client.threads.create("dep_abc", metadata={"user": "u1"}, values=None)
        await client.threads.get(thread.thread_id)
        assert [t.thread_id async for t in client.threads.list("dep_abc", status="idle")] == [
            thread.thread_id
        ]
        emulator.script_runs("forever", count=1)
        first = await client.threads.runs.create(thread.thread_id, input={"m": 1}, on_busy="raise")
        with pytest.raises(ThreadBusyError) as busy_error:
            await client.threads.runs.create(thread.thread_id, input={"m": 2}, on_busy="raise")
        assert busy_error.value.thread_id == thread.thread_id
        await client.runs.cancel(first.run_id)
        second = await client.threads.runs.create(thread.thread_id, input={"m": 2}, on_busy="wait")
        await client.runs.wait(second.run_id, timeout=30)
        copy = await client.threads.copy(thread.thread_id)
        async for page in client.threads.history(thread.thread_id).pages():
            assert isinstance(page, list)
        await client.threads.delete(copy.thread_id)

        table = await client.tables.create(
            "leads", columns=[Column("company", "text", required=True)]
        )
        assert [t.id async for t in client.tables.list()] == [table.id]
        await client.tables.get(table.id)
        assert (await client.tables.update(table.id, description=None)).description is None
        rows = await client.tables.rows.insert(table.id, [{"company": f"c{n}"} for n in range(250)])
        assert [row.values["company"] for row in rows] == [f"c{n}" for n in range(250)]
        assert len([row async for row in client.tables.rows.list(table.id)]) == 250
        await client.tables.rows.update(table.id, rows[0].id, {"company": "Acme"})
        await client.tables.rows.delete(table.id, rows[0].id)
        await client.tables.delete(table.id)

        webhook_run = await client.webhooks.trigger(token, {"topic": "AI"})
        assert webhook_run.run_id
