"""The README's example test, kept true: it runs here through the package's pytest plugin."""

from __future__ import annotations

from crewship_async import AsyncCrewship
from crewship_async.testing import CrewshipEmulator


async def test_my_service(
    crewship_client: AsyncCrewship, crewship_emulator: CrewshipEmulator
) -> None:
    crewship_emulator.faults.fail_next(2, status=503, route="POST /v1/runs")
    created = await crewship_client.runs.create("dep_test", input={"topic": "AI"})
    run = await crewship_client.runs.wait(created.run_id, timeout=10)
    assert run.status == "succeeded"
    assert [r.method for r in crewship_emulator.requests].count("POST") == 3
