"""No response, however large, compressed or endless, grows memory without bound."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest

from crewship_async import AsyncCrewship, InternalServerError, ResponseError, StreamError
from crewship_async._responses import ERROR_BODY_LIMIT
from crewship_async._sse import EventTooLargeError

from .rawserver import KEY, RawRequest, RawServer, reply, response_bytes

T = TypeVar("T")
MiB = 1024 * 1024
CAP = 4 * MiB
SSE = {"Content-Type": "text/event-stream"}


@functools.cache
def gzip_bomb(inflated: int = 1024 * MiB) -> bytes:
    """About 1 MiB of gzip that inflates to ``inflated`` bytes of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    parts = [compressor.compress(block) for _ in range(inflated // MiB)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def peak_while(call: Awaitable[T]) -> tuple[T | BaseException, int]:
    """What ``call`` returned (or raised) and the peak of traced memory meanwhile."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            result: T | BaseException = await call
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
async def capped(raw: RawServer) -> AsyncIterator[AsyncCrewship]:
    async with AsyncCrewship(
        api_key=KEY, base_url=raw.url, max_retries=0, timeout=60, max_response_size=CAP
    ) as c:
        yield c


async def endless(request: RawRequest, writer: asyncio.StreamWriter, status: int = 200) -> None:
    """A chunked body that never ends, sent as fast as the client reads."""
    writer.write(response_bytes(status, b"", {"Transfer-Encoding": "chunked"}))
    chunk = b"%x\r\n%s\r\n" % (65536, b"[" * 65536)
    while True:
        writer.write(chunk)
        await writer.drain()


async def test_gzip_bomb_stops_at_the_cap(raw: RawServer, capped: AsyncCrewship) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 1.1 * MiB
    raw.behaviour = reply(200, bomb, {"Content-Encoding": "gzip"})
    error, peak = await peak_while(capped.runs.get("run_1"))
    assert isinstance(error, ResponseError)
    assert f"max_response_size ({CAP} bytes)" in str(error)
    assert "AsyncCrewship(max_response_size=...)" in str(error)
    assert peak < 4 * CAP


async def test_the_default_cap_fits_a_large_page_and_stops_a_bomb(
    raw: RawServer, client: AsyncCrewship
) -> None:
    rows = [{"id": f"row_{i}", "data": {"text": "x" * 10_000}} for i in range(1_000)]
    raw.behaviour = reply(200, json.dumps({"rows": rows}).encode())
    page = [row async for row in client.tables.rows.list("tbl_1", limit=1_000)]
    assert len(page) == 1_000
    raw.behaviour = reply(200, gzip_bomb(), {"Content-Encoding": "gzip"})
    error, peak = await peak_while(client.runs.get("run_1"))
    assert isinstance(error, ResponseError)
    assert "max_response_size (33554432 bytes)" in str(error)
    assert peak < 4 * 32 * MiB


async def test_endless_fast_body_ends_with_a_typed_error(
    raw: RawServer, capped: AsyncCrewship
) -> None:
    raw.behaviour = endless
    error, peak = await peak_while(capped.runs.get("run_1"))
    assert isinstance(error, ResponseError)
    assert peak < 4 * CAP


async def test_endless_error_body_is_read_only_for_its_message(
    raw: RawServer, capped: AsyncCrewship
) -> None:
    raw.behaviour = functools.partial(endless, status=500)
    error, peak = await peak_while(capped.runs.get("run_1"))
    assert isinstance(error, InternalServerError)
    assert isinstance(error.body, str)
    assert len(error.body) == ERROR_BODY_LIMIT
    assert peak < 2 * MiB


async def test_error_bomb_on_a_stream_open(raw: RawServer, client: AsyncCrewship) -> None:
    raw.behaviour = reply(401, gzip_bomb(), {"Content-Encoding": "gzip"})
    error, peak = await peak_while(consume(client, "run_1"))
    assert type(error).__name__ == "AuthenticationError"
    assert peak < 8 * MiB  # the 1 MiB of compressed input in flight, not 1 GiB


async def consume(client: AsyncCrewship, run_id: str, count: int | None = None) -> Any:
    async with client.runs.stream(run_id) as events:
        seen = 0
        async for _ in events:
            seen += 1
            if seen == count:
                return seen
    return seen


def events_behaviour(blocks: Any) -> Any:
    """A stream that sends each block of ``blocks`` (an iterable of bytes), then holds."""

    async def behaviour(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response_bytes(200, b"", SSE, content_length=False))
        for block in blocks():
            writer.write(block)
            await writer.drain()
        await asyncio.sleep(3600)

    return behaviour


async def test_dedupe_memory_is_bounded_whatever_the_ids(
    raw: RawServer, client: AsyncCrewship
) -> None:
    # 300 events with 256 KiB ids: before, the replay window kept all of them (75 MiB).
    def blocks() -> Any:
        for n in range(300):
            yield b"id: " + (b"%06d" % n) * (256 * 1024 // 6) + b"\ndata: {}\n\n"

    raw.behaviour = events_behaviour(blocks)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        async with client.runs.stream("run_1") as events:
            received = 0
            async for event in events:
                received += 1
                del event
                if received == 300:
                    break
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        assert received == 300
    finally:
        tracemalloc.stop()
    # The last id (to resume from) and one read buffer remain, not 300 ids.
    assert held < 3 * MiB


async def test_many_tiny_events_and_comments_stay_flat(
    raw: RawServer, client: AsyncCrewship
) -> None:
    def blocks() -> Any:
        for _ in range(25):
            yield b": keep-alive comment\n" * 2_000 + b"data: 1\n\n" * 2_000

    raw.behaviour = events_behaviour(blocks)
    received, peak = await peak_while(consume(client, "run_1", count=50_000))
    assert received == 50_000
    assert peak < 8 * MiB


@pytest.mark.parametrize(
    "prefix", [b"event: ", b": ", b"id: ", b"data: "], ids=["event", "comment", "id", "data"]
)
async def test_a_line_that_never_ends_is_cut_at_the_event_cap(
    raw: RawServer, client: AsyncCrewship, prefix: bytes
) -> None:
    def blocks() -> Any:
        yield b"data: first\n\n" + prefix
        for _ in range(17 * 16):
            yield b"x" * 65536

    raw.behaviour = events_behaviour(blocks)
    seen: list[str] = []

    async def read() -> None:
        async with client.runs.stream("run_1") as events:
            async for event in events:
                seen.append(event.raw)

    error, peak = await peak_while(read())
    assert isinstance(error, EventTooLargeError)
    assert isinstance(error, StreamError)
    assert seen == ["first"]
    assert peak < 48 * MiB
