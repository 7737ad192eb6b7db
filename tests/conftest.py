"""Shared fixtures of the core suite: a fast client, aioresponses, and a scripted server.

:class:`ScriptedServer` is a real ``aiohttp.web`` server on 127.0.0.1 (port 0). Every
request it receives is recorded and answered by the next *script* queued with
:meth:`ScriptedServer.add`; a script is a coroutine function taking the request and
returning the response. The helpers below build the scripts the tests need: JSON answers,
SSE streams that end cleanly, abort the connection or hang, a server that never answers,
one that drops the connection after reading the request, and one that only heartbeats.
The server also notices when a client goes away while a handler is running
(``disconnects``), which is how the tests show that a stream released its connection.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import types
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Callable, Optional

import aiohttp
import aioresponses.core as aioresponses_core
import pytest
from aiohttp import web
from aioresponses import aioresponses
from multidict import CIMultiDict

from crewship_async import AsyncCrewship, RetryPolicy
from crewship_async._transport import Transport

# The package's pytest plugin (crewship_emulator, crewship_client fixtures), loaded here
# rather than through its entry point so that coverage sees the package imported.
pytest_plugins = ["crewship_async.testing.pytest_plugin"]

#: ``CREWSHIP_TEST_LOOP=uvloop`` runs every async test on uvloop instead of asyncio's loop.
TEST_LOOP = os.environ.get("CREWSHIP_TEST_LOOP", "asyncio")


if TEST_LOOP not in ("asyncio", "uvloop"):
    raise pytest.UsageError(f"CREWSHIP_TEST_LOOP must be asyncio or uvloop, not {TEST_LOOP!r}")

if TEST_LOOP == "uvloop":

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
        import uvloop

        return {"uvloop": uvloop.new_event_loop}


API_KEY = "sk_live_SECRET_7f3a9c0e5b2d4a61"
BASE = "https://api.test"
FAST = RetryPolicy(initial_delay=0.001, max_delay=0.01)

RUN = {
    "id": "run_1",
    "deployment_id": "dep_1",
    "status": "running",
    "input": {"topic": "AI"},
    "output": None,
    "error_message": None,
    "created_at": "2024-01-15T10:35:00Z",
    "started_at": "2024-01-15T10:35:02Z",
    "completed_at": None,
}

Script = Callable[[web.Request], Awaitable[web.StreamResponse]]


# aioresponses 0.7.9 builds its fake responses without the ``stream_writer`` argument that
# aiohttp 3.12+ requires; give it a response class that supplies a finished writer.
if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:

    class _MockedResponse(aiohttp.ClientResponse):
        def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
            super().__init__(method, url, **kwargs)

    aioresponses_core.ClientResponse = _MockedResponse  # type: ignore[misc]


def run_json(**changes: Any) -> dict[str, Any]:
    """The sample run with some fields changed."""
    return {**RUN, **changes}


@pytest.fixture(autouse=True)
def _no_crewship_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREWSHIP_API_KEY", raising=False)
    monkeypatch.delenv("CREWSHIP_BASE_URL", raising=False)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as mock:
        yield mock


@pytest.fixture
async def client() -> AsyncIterator[AsyncCrewship]:
    async with AsyncCrewship(api_key=API_KEY, base_url=BASE, retry_policy=FAST) as c:
        yield c


@pytest.fixture
async def make_transport() -> AsyncIterator[Callable[..., Transport]]:
    """Build bare transports, for the unit tests of the transport layer itself.

    ``make_transport(base_url=BASE, **options)`` returns a
    :class:`crewship_async._transport.Transport` set up as the ``client`` fixture's client
    would set up its own (``API_KEY``, the ``FAST`` retry policy, the client's default
    timeout and pool size, no extra headers); ``options`` override any of its keyword
    arguments. Every transport made is closed at the end of the test.

    Only tests of ``Transport.call`` and ``Transport.open_stream`` called with what no
    public method passes (an ``attempt`` number, ``authenticated=False``, any path) use it;
    every other test goes through a client's public API.
    """
    made: list[Transport] = []

    def make(base_url: str = BASE, **options: Any) -> Transport:
        settings: dict[str, Any] = {
            "api_key": API_KEY,
            "timeout": 60.0,
            "retry_policy": FAST,
            "max_connections": 100,
            "default_headers": {},
        }
        settings.update(options)
        transport = Transport(base_url=base_url, **settings)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.aclose()


@pytest.fixture
def made_sessions(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every ``aiohttp.ClientSession`` made while the test runs, in order.

    The client makes its own session on first use inside the loop, through
    ``aiohttp.ClientSession`` as an instrumentation that patches it would see; this fixture
    records those sessions (and any other the test makes), so that tests observe when a
    session is made, how its pool is sized and when it is closed without reaching into the
    client.
    """
    made: list[aiohttp.ClientSession] = []
    make = aiohttp.ClientSession

    def recording(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        session = make(*args, **kwargs)
        made.append(session)
        return session

    monkeypatch.setattr(aiohttp, "ClientSession", recording)
    return made


def calls(mock: aioresponses, method: str = "", url: str = "") -> list[Any]:
    """The requests aioresponses saw, optionally only those of one method and URL."""
    out = []
    for (m, u), made in mock.requests.items():
        if (not method or m == method) and (not url or str(u) == url):
            out.extend(made)
    return out


# --- SSE frames -------------------------------------------------------------------------


def frame(
    type: Optional[str] = None,
    data: Any = None,
    *,
    id: Optional[str] = None,
    event: Optional[str] = None,
    retry: Optional[int] = None,
    key: str = "data",
    raw: Optional[str] = None,
) -> bytes:
    """One SSE event block: a JSON envelope ``{"type", key: data}`` unless ``raw`` is given."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    if raw is not None:
        lines.extend(f"data: {line}" for line in raw.split("\n"))
    elif type is not None:
        envelope: dict[str, Any] = {"type": type}
        if data is not None:
            envelope[key] = data
        lines.append(f"data: {json.dumps(envelope)}")
    return ("\n".join(lines) + "\n\n").encode()


# --- the scripted server ----------------------------------------------------------------


class Recorded:
    """One request as the server saw it."""

    def __init__(self, request: web.Request, body: bytes) -> None:
        self.method = request.method
        self.path = request.path
        self.raw_path = request.raw_path
        self.query = dict(request.query)
        self.headers = CIMultiDict(request.headers)
        self.body = body


class ScriptedServer:
    """A real HTTP server whose answers the test scripts, one script per request."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.disconnects = 0
        self.completed = 0
        self._scripts: list[Script] = []
        self._default: Script = respond(599, {"error": {"message": "unscripted request"}})
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: Optional[web.AppRunner] = None
        self.url = ""

    def add(self, *scripts: Script) -> None:
        """Queue scripts for the next requests, in order."""
        self._scripts.extend(scripts)

    def default(self, script: Script) -> None:
        """The script for requests once the queue is empty."""
        self._default = script

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            self.requests.append(Recorded(request, await request.read()))
            script = self._scripts.pop(0) if self._scripts else self._default
            response = await script(request)
            self.completed += 1
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            raise
        finally:
            self._tasks.discard(task)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (generously) until ``predicate()`` holds; fail the test if it never does."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            if loop.time() > end:
                pytest.fail("the server never reached the expected state")
            await asyncio.sleep(0.01)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    await scripted.start()
    try:
        yield scripted
    finally:
        await scripted.stop()


@pytest.fixture
async def live(server: ScriptedServer) -> AsyncIterator[AsyncCrewship]:
    """A client talking to the scripted server."""
    async with AsyncCrewship(api_key=API_KEY, base_url=server.url, retry_policy=FAST) as c:
        yield c


# --- scripts ----------------------------------------------------------------------------


def respond(
    status: int = 200,
    body: Any = None,
    *,
    text: Optional[str] = None,
    headers: Optional[dict[str, str]] = None,
    content_type: str = "application/json",
) -> Script:
    """Answer with a JSON body (or ``text``)."""

    async def script(request: web.Request) -> web.StreamResponse:
        payload = text if text is not None else "" if body is None else json.dumps(body)
        return web.Response(status=status, text=payload, headers=headers, content_type=content_type)

    return script


def hang() -> Script:
    """Never answer (until the client goes away)."""

    async def script(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")  # pragma: no cover

    return script


def slow(delay: float, then: Script) -> Script:
    """Wait ``delay`` seconds, then answer as ``then`` does."""

    async def script(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay)
        return await then(request)

    return script


def drop() -> Script:
    """Read the request, then close the connection without answering."""

    async def script(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")  # pragma: no cover

    return script


def stream(
    *frames: bytes,
    end: str = "close",
    status: int = 200,
    chunk_size: Optional[int] = None,
    content_type: str = "text/event-stream",
) -> Script:
    """Send ``frames`` as an event stream, then ``end`` it: ``"close"`` cleanly, ``"abort"``
    the connection (no end of the chunked body), or ``"hang"`` until the client leaves.
    ``chunk_size`` splits the body into writes of that many bytes."""

    async def script(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        await response.prepare(request)
        body = b"".join(frames)
        step = chunk_size or max(len(body), 1)
        for start in range(0, len(body), step):
            await response.write(body[start : start + step])
        if end == "abort":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(3600)
        elif end == "hang":
            await asyncio.sleep(3600)
        else:
            await response.write_eof()
        return response

    return script


def heartbeats(interval: float, payload: bytes = b": keep-alive\n\n") -> Script:
    """An event stream that only ever sends ``payload`` every ``interval`` seconds."""

    async def script(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        while True:
            await response.write(payload)
            await asyncio.sleep(interval)

    return script
