"""Which event loops the client runs on, and what it does at their edges.

Supported: asyncio's own loop (every platform) and uvloop; the whole suite runs on both
(``CREWSHIP_TEST_LOOP=uvloop``). A client is bound to the loop of its first call.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import TEST_LOOP


async def test_the_suite_runs_on_the_loop_it_was_asked_for() -> None:
    loop = asyncio.get_running_loop()
    if TEST_LOOP == "uvloop":
        import uvloop

        assert isinstance(loop, uvloop.Loop)
    else:
        assert type(loop).__module__.startswith("asyncio")


LEFT_OPEN = textwrap.dedent(
    """
    import asyncio, sys
    from crewship_async.testing import CrewshipEmulator

    async def main():
        emulator = CrewshipEmulator()
        await emulator.start()
        client = emulator.client()
        created = await client.runs.create("dep_a")
        if "stream" in sys.argv:
            # A stream still being read when asyncio.run() ends (its task is cancelled).
            async def read():
                async with client.runs.stream(created.run_id) as events:
                    async for _ in events:
                        await asyncio.sleep(10)
            asyncio.get_running_loop().create_task(read())
            await asyncio.sleep(0.2)
        await emulator.stop()

    if "uvloop" in sys.argv:
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
    print("exited")
    """
)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("case", ["call", "stream"])
def test_a_client_left_open_warns_once_and_nothing_else(loop: str, case: str) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", LEFT_OPEN, loop, case],
        env={**os.environ, "PYTHONDEVMODE": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "exited\n"
    assert done.stderr.count("ResourceWarning: an AsyncCrewship client was left open") == 1
    for noise in ("Event loop is closed", "Task exception was never retrieved", "Unclosed"):
        assert noise not in done.stderr
