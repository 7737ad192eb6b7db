# pyright: strict
"""Mistakes the types must catch: mypy --strict and pyright (strict) must each report an
error on every line marked ``# error``, and on no other line. Type-checked by
tests/test_typing.py, never run."""

from __future__ import annotations

from crewship_async import AsyncCrewship, Column, RunOutcome, RunRequest


async def mistakes(client: AsyncCrewship, outcome: RunOutcome) -> None:
    await client.threads.runs.create("thr_1", input={}, on_busy="wiat")  # error
    await client.threads.runs.create_and_wait("thr_1", on_busy="retry")  # error
    await client.runs.create("dep_a", environment="prod")  # error
    await client.threads.runs.create("thr_1", environment="dev")  # error
    client.runs.list(status="runing")  # error
    client.threads.list("dep_a", status="bussy")  # error
    Column("company", "txt")  # error
    RunRequest("dep_a", None, "prod")  # error
    await client.runs.create_all([1, 2])  # error
    await client.runs.create_all("dep_a")  # error
    count: int = outcome.request  # error
    await client.with_raw_response.runs.get(run_id=1)  # error
    await client.with_raw_response.runs.get("run_1", extra_headers={"X-A": 1})  # error
    print((await client.with_raw_response.runs.get("run_1")).status_code)  # error
    print(count)
