"""Relaying a run's events to a browser: the SSE frames, the aiohttp.web and Starlette
helpers over real sockets, resume with Last-Event-ID, and a browser that goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Optional

import aiohttp
import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from web_servers import serve_aiohttp, serve_asgi

from crewship_async import AsyncCrewship, RunEvent
from crewship_async._sse import SSEDecoder
from crewship_async.integrations import aiohttp as aiohttp_relay
from crewship_async.integrations import starlette as starlette_relay
from crewship_async.relay import SSE_HEADERS, event_frame, resume_id, sse_frames
from crewship_async.testing import CrewshipEmulator


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_event_frames_carry_the_upstream_id_and_one_json_line() -> None:
    frame = event_frame(RunEvent(type="log", data={"text": "a\nb"}, id="7"))
    assert frame.startswith(b"id: 7\ndata: ")
    assert frame.endswith(b"\n\n")
    assert frame.count(b"\n") == 3
    (decoded,) = SSEDecoder().feed(frame)
    assert decoded.id == "7"
    assert json.loads(decoded.data) == {"type": "log", "data": {"text": "a\nb"}, "id": "7"}
    assert not event_frame(RunEvent(type="log")).startswith(b"id:")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Last-Event-ID": ""}, None),
        ({"Last-Event-ID": "12"}, "12"),
        ({"last-event-id": "ab"}, "ab"),
        ({"Last-Event-ID": "1\r\nX-Evil: 1"}, None),
        ({"Last-Event-ID": "x" * 1025}, None),
    ],
)
def test_resume_id(headers: dict[str, str], expected: Optional[str]) -> None:
    assert resume_id(headers) == expected


async def collect(frames: AsyncIterator[bytes]) -> list[bytes]:
    return [frame async for frame in frames]


async def test_frames_of_a_whole_run_end_after_the_terminal_event() -> None:
    async with CrewshipEmulator(step_delay=0.05) as emu, emu.client() as client:
        run = await client.runs.create("dep_relay", input={})
        frames = await collect(sse_frames(client.runs.stream(run.run_id), heartbeat=0.01))
    events = [e for f in frames for e in SSEDecoder().feed(f)]
    assert [json.loads(e.data)["type"] for e in events][-1] == "run.completed"
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    assert b": heartbeat\n\n" in frames  # between events 50 ms apart
    assert emu.stats.in_flight == 0


async def test_an_upstream_error_becomes_one_final_error_frame() -> None:
    async with CrewshipEmulator() as emu, emu.client() as client:
        frames = await collect(sse_frames(client.runs.stream("run_missing")))
    (frame,) = frames
    (decoded,) = SSEDecoder().feed(frame)
    assert decoded.event == "crewship.error"
    error = json.loads(decoded.data)
    assert error["error"] == "NotFoundError"
    assert "run_missing" in error["message"]
    assert emu.api_key not in frame.decode()


async def test_closing_the_frames_closes_the_upstream_stream_at_once() -> None:
    async with CrewshipEmulator(step_delay=0.05) as emu, emu.client() as client:
        emu.script_runs("forever")
        run = await client.runs.create("dep_relay", input={})
        frames = sse_frames(client.runs.stream(run.run_id), heartbeat=None)
        assert (await anext(frames)).startswith(b"id: 1\n")
        await wait_until(lambda: emu.stats.in_flight == 1)
        await frames.aclose()
        await wait_until(lambda: emu.stats.in_flight == 0, timeout=2)
        await client.runs.cancel(run.run_id)


async def test_a_bad_heartbeat_is_refused(client: AsyncCrewship) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        await anext(sse_frames(client.runs.stream("run_1"), heartbeat=0))


# -- the framework helpers, over real sockets -----------------------------------------------


@asynccontextmanager
async def aiohttp_app(client: AsyncCrewship) -> AsyncIterator[str]:
    async def events(request: web.Request) -> web.StreamResponse:
        return await aiohttp_relay.relay_run(
            request, client, request.match_info["run_id"], heartbeat=0.05
        )

    app = web.Application()
    app.router.add_get("/runs/{run_id}/events", events)
    async with serve_aiohttp(app, shutdown_timeout=0.5) as base:
        yield base


@asynccontextmanager
async def starlette_app(client: AsyncCrewship) -> AsyncIterator[str]:
    async def events(request: Request) -> Response:
        return starlette_relay.relay_run(
            request, client, request.path_params["run_id"], heartbeat=0.05
        )

    app = Starlette()
    app.add_route("/runs/{run_id}/events", events)
    async with serve_asgi(app) as base:
        yield base


APPS = [pytest.param(aiohttp_app, id="aiohttp"), pytest.param(starlette_app, id="starlette")]


async def read_events(response: aiohttp.ClientResponse, limit: int = 10_000) -> list[Any]:
    decoder = SSEDecoder()
    found: list[Any] = []
    async for chunk in response.content.iter_any():
        found.extend(decoder.feed(chunk))
        if len(found) >= limit:
            break
    return found


@pytest.mark.parametrize("serve", APPS)
async def test_relay_and_resume_with_last_event_id(serve: Any) -> None:
    async with CrewshipEmulator(step_delay=0.01) as emu, emu.client() as client:
        run = await client.runs.create("dep_relay", input={})
        async with serve(client) as base, aiohttp.ClientSession() as session:
            url = f"{base}/runs/{run.run_id}/events"
            async with session.get(url) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/event-stream")
                assert response.headers["Cache-Control"] == SSE_HEADERS["Cache-Control"]
                everything = await read_events(response)
            assert json.loads(everything[-1].data)["type"] == "run.completed"
            async with session.get(url, headers={"Last-Event-ID": "3"}) as response:
                resumed = await read_events(response)
    assert [e.id for e in resumed] == [e.id for e in everything[3:]]


@pytest.mark.parametrize("serve", APPS)
async def test_a_browser_that_goes_away_closes_the_upstream_stream(serve: Any) -> None:
    async with CrewshipEmulator(step_delay=0.05) as emu, emu.client() as client:
        emu.script_runs("forever")
        run = await client.runs.create("dep_relay", input={})
        async with serve(client) as base:
            session = aiohttp.ClientSession()
            try:
                response = await session.get(f"{base}/runs/{run.run_id}/events")
                assert len(await read_events(response, limit=2)) == 2
                await wait_until(lambda: emu.stats.in_flight == 1)
                response.close()
            finally:
                await session.close()
            await wait_until(lambda: emu.stats.in_flight == 0, timeout=3)
        await client.runs.cancel(run.run_id)
