"""Fixtures of the hostile-server tests: a raw server and a client of it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from crewship_async import AsyncCrewship, RetryPolicy

from .rawserver import KEY, RawServer

FAST = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.01)


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    server = await RawServer().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client(raw: RawServer) -> AsyncIterator[AsyncCrewship]:
    async with AsyncCrewship(
        api_key=KEY, base_url=raw.url, retry_policy=FAST, timeout=10, idle_timeout=5
    ) as c:
        yield c


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of the SDK's logger, DEBUG included."""
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    return caplog
