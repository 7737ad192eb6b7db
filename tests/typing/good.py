# pyright: strict
"""Correct uses of the typed choices and ids: mypy --strict and pyright (strict) must
accept every line. Type-checked by tests/test_typing.py, never run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Optional

from crewship_async import (
    AsyncCrewship,
    Checkpoint,
    Column,
    ColumnType,
    ColumnTypeName,
    Environment,
    EnvironmentName,
    OnBusy,
    RateLimit,
    RawResponse,
    RequestItem,
    Row,
    Run,
    RunCreated,
    RunOutcome,
    RunRequest,
    RunStatus,
    RunStatusName,
    Table,
    Thread,
    ThreadStatus,
    ThreadStatusName,
)


async def choices(client: AsyncCrewship) -> None:
    await client.runs.create("dep_a", input={"topic": "AI"}, environment="staging")
    await client.runs.create("dep_a", environment=Environment.PRODUCTION)
    client.runs.list(status="running")
    client.runs.list(deployment_id="dep_a", status=RunStatus.FAILED)
    client.runs.list(status=None)
    client.threads.list("dep_a", status="idle")
    client.threads.list("dep_a", status=ThreadStatus.BUSY)
    await client.threads.runs.create("thr_1", input={"message": "hi"}, on_busy="wait")
    await client.threads.runs.create("thr_1", environment=Environment.STAGING)
    await client.threads.runs.create_and_wait("thr_1", on_busy="raise", environment="production")
    columns = [
        Column("company", "text", required=True),
        Column("score", ColumnType.NUMBER),
        Column("seen", "datetime"),
        Column("flags", "json"),
        Column("ok", "boolean"),
    ]
    await client.tables.create("leads", columns=[*columns, {"name": "n", "type": "number"}])


def aliases(
    environment: EnvironmentName,
    run_status: RunStatusName,
    thread_status: ThreadStatusName,
    column_type: ColumnTypeName,
    on_busy: OnBusy,
) -> list[str]:
    return [environment, run_status, thread_status, column_type, on_busy]


async def requests() -> AsyncIterator[RunRequest]:
    yield RunRequest("dep_a", {"n": 1}, "staging")


async def fan_out(client: AsyncCrewship) -> Optional[RunCreated]:
    mixed: list[RequestItem] = [
        RunRequest("dep_a"),
        RunRequest("dep_a", environment=Environment.STAGING),
        {"deployment_id": "dep_a", "input": {"n": 2}},
    ]
    dicts: list[dict[str, Any]] = [{"deployment_id": "dep_a"}]
    await client.runs.create_all(dicts)
    await client.runs.create_all(RunRequest("dep_a", {"n": n}) for n in range(3))
    await client.runs.create_all(requests())
    outcomes: list[RunOutcome] = await client.runs.create_all(mixed)
    async with client.runs.create_many(mixed, concurrency=8) as stream:
        async for outcome in stream:
            given: RunRequest | Mapping[str, Any] = outcome.request
            if isinstance(given, RunRequest):
                return outcome.run
    return outcomes[0].run


def ids(
    run: Run, created: RunCreated, thread: Thread, table: Table, row: Row, checkpoint: Checkpoint
) -> list[Optional[str]]:
    return [
        run.id,
        run.run_id,
        created.id,
        created.run_id,
        thread.id,
        thread.thread_id,
        table.id,
        table.table_id,
        row.id,
        row.row_id,
        checkpoint.id,
        checkpoint.checkpoint_id,
    ]


async def raw_responses(client: AsyncCrewship) -> Optional[RateLimit]:
    raw: RawResponse[Run] = await client.with_raw_response.runs.get("run_1", timeout=5)
    run: Run = await raw.parse()
    request_id: Optional[str] = run.request_id or raw.request_id
    print(request_id, raw.status, raw.headers.get("x-request-id"))
    thread_raw: RawResponse[Thread] = await client.with_raw_response.threads.copy("thr_1")
    print(await thread_raw.parse())
    deleted: RawResponse[None] = await client.with_raw_response.tables.delete("tbl_1")
    print(deleted.status)
    await client.runs.create("dep_a", extra_headers={"X-Tenant": "a"}, extra_query={"n": 1})
    return raw.rate_limit
