"""Nothing waits past the caller's bounds, whatever the server says or fails to say.

Each test asserts the typed outcome and a generous upper bound on the time taken (many
times the bound under test, far below what the defect cost), so a loaded machine cannot
make it fail while a regression still does.
"""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest

from crewship_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncCrewship,
    RetryPolicy,
    StreamError,
)
from crewship_async._streams import EventStream
from crewship_async.models.events import RunEvent

from .rawserver import KEY, RawRequest, RawServer, reply, response_bytes, sequence, silence

SSE = {"Content-Type": "text/event-stream"}
RUNNING = json.dumps({"id": "run_1", "deployment_id": "dep_1", "status": "running"}).encode()


async def read_all(stream: EventStream) -> list[RunEvent]:
    async with stream as events:
        return [event async for event in events]


async def test_a_huge_retry_field_does_not_outlast_the_idle_timeout(raw: RawServer) -> None:
    # Before: the stream slept for the server's retry time, here about 31 years.
    raw.behaviour = reply(200, b"retry: 1000000000000\ndata: {}\n\n", SSE)
    async with AsyncCrewship(api_key=KEY, base_url=raw.url, idle_timeout=0.5) as client:
        stream = client.runs.stream("run_1")
        started = anyio.current_time()
        with pytest.raises(StreamError, match="idle timeout"), anyio.fail_after(30):
            await read_all(stream)
        assert anyio.current_time() - started < 10


async def test_server_retry_is_capped_at_max_retry_after(raw: RawServer) -> None:
    # Without an idle timeout, the wait before reconnecting is the server's retry time
    # capped at the policy's max_retry_after.
    answers = sequence(
        reply(200, b"retry: 1000000000000\nid: 1\ndata: {}\n\n", SSE),
        reply(200, b'id: 2\ndata: {"type": "run.completed"}\n\n', SSE),
    )
    connected: list[float] = []

    async def timed(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        connected.append(anyio.current_time())
        await answers(request, writer)

    raw.behaviour = timed
    policy = RetryPolicy(max_retry_after=0.2)
    async with AsyncCrewship(
        api_key=KEY, base_url=raw.url, retry_policy=policy, idle_timeout=None
    ) as client:

        async def read() -> list[str | None]:
            async with client.runs.stream("run_1") as events:
                return [event.id async for event in events]

        started = anyio.current_time()
        with anyio.fail_after(30):
            assert await read() == ["1", "2"]
        assert anyio.current_time() - started < 10
    first, second = connected
    assert second - first < 2  # a few times the 0.2 s cap, not the server's 31 years


async def test_a_server_that_never_answers_ends_the_stream_within_idle_timeout(
    raw: RawServer,
) -> None:
    # Before: each attempt waited a fixed 30 s for the response headers.
    raw.behaviour = silence
    async with AsyncCrewship(api_key=KEY, base_url=raw.url, idle_timeout=0.5) as client:
        started = anyio.current_time()
        with pytest.raises(StreamError, match="idle timeout"), anyio.fail_after(30):
            await read_all(client.runs.stream("run_1"))
        assert anyio.current_time() - started < 10
    assert len(raw.requests) == 1  # the request was read; the answer never came


async def test_reconnect_delays_count_against_idle_timeout(raw: RawServer) -> None:
    # Every connection is refused with a 503 asking for 50 s: the idle timeout ends it.
    raw.behaviour = reply(503, b"{}", {"Retry-After": "50"})
    async with AsyncCrewship(
        api_key=KEY, base_url=raw.url, idle_timeout=0.5, max_retries=0
    ) as client:
        started = anyio.current_time()
        with pytest.raises(StreamError, match=r"idle timeout.*last error") as info:
            await read_all(client.runs.stream("run_1"))
        assert anyio.current_time() - started < 10
        assert "503" in str(info.value)


async def test_a_silent_server_ends_a_call_at_its_deadline(
    raw: RawServer, client: AsyncCrewship
) -> None:
    raw.behaviour = silence
    started = anyio.current_time()
    with pytest.raises(APITimeoutError), anyio.fail_after(30):
        await client.runs.get("run_1", timeout=0.5)
    assert anyio.current_time() - started < 10


async def test_a_body_that_drips_ends_a_call_at_its_deadline(
    raw: RawServer, client: AsyncCrewship
) -> None:
    async def drip(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response_bytes(500, b"", {"Content-Length": "100000"}))
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)

    raw.behaviour = drip
    started = anyio.current_time()
    with pytest.raises(APITimeoutError), anyio.fail_after(30):
        await client.runs.get("run_1", timeout=0.5)
    assert anyio.current_time() - started < 10


async def test_a_long_retry_after_ends_the_call_instead_of_sleeping(
    raw: RawServer, client: AsyncCrewship
) -> None:
    raw.behaviour = reply(429, b"{}", {"Retry-After": "100000"})
    started = anyio.current_time()
    with pytest.raises(Exception, match="429") as info, anyio.fail_after(30):
        await client.runs.get("run_1")
    assert type(info.value).__name__ == "RateLimitError"
    assert anyio.current_time() - started < 10
    assert len(raw.requests) == 1


async def test_wait_polls_within_its_timeout(raw: RawServer, client: AsyncCrewship) -> None:
    raw.behaviour = reply(200, RUNNING, {"Content-Type": "application/json"})
    started = anyio.current_time()
    with pytest.raises(APITimeoutError), anyio.fail_after(30):
        await client.runs.wait("run_1", timeout=1, poll_interval=0.05)
    assert anyio.current_time() - started < 10


async def test_a_connection_dropped_after_the_request_says_it_may_have_arrived(
    raw: RawServer, client: AsyncCrewship
) -> None:
    async def hang_up(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.close()

    raw.behaviour = hang_up
    with pytest.raises(APIConnectionError, match="may or may not exist") as info:
        await client.runs.create("dep_1", input={"a": 1})
    assert info.value.request_sent is True
    assert len(raw.requests) == 1  # a POST that may have arrived is never sent again
