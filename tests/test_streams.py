"""EventStream over real sockets: delivery, terminal events, resume, idle timeout, release.

Every test scripts the scripted server of conftest.py, one script per connection.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import socket
import warnings
from collections.abc import Callable, Iterator

import aiohttp
import anyio
import pytest
from aiohttp import web
from aioresponses import aioresponses
from conftest import (
    API_KEY,
    BASE,
    FAST,
    Script,
    ScriptedServer,
    frame,
    hang,
    heartbeats,
    respond,
    slow,
    stream,
)

from crewship_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncCrewship,
    AuthenticationError,
    ClientClosedError,
    EventStream,
    NotFoundError,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    RunEvent,
    ServiceUnavailableError,
    StreamError,
)
from crewship_async._stream_delivery import CONVERT_BATCH
from crewship_async._transport import Transport
from crewship_async._transport import _stream_open as transport_module

EVENTS_PATH = "/v1/runs/run_1/events"


def started(id: str | None = None) -> bytes:
    return frame("run.started", {"entrypoint": "default"}, id=id)


def log(message: str, id: str | None = None) -> bytes:
    return frame("log", {"message": message}, id=id)


def completed(id: str | None = None) -> bytes:
    return frame("run.completed", {"status": "succeeded"}, id=id)


async def collect(events: EventStream) -> list[RunEvent]:
    with anyio.fail_after(10):
        return [event async for event in events]


class Sleeps:
    """Records the reconnect delays the stream asks for, without sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    recorder = Sleeps()
    monkeypatch.setattr(anyio, "sleep", recorder)
    return recorder


@pytest.fixture
def no_resource_warnings() -> Iterator[None]:
    yield
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


# --- delivery ---------------------------------------------------------------------------


async def test_events_delivered_in_order_with_ids(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(
        stream(
            started(id="1"),
            frame("task.started", {"task": "Research", "agent": "R"}, id="2"),
            log("hello", id="3"),
            completed(id="4"),
            end="hang",
        )
    )
    async with live.runs.stream("run_1") as events:
        assert events.last_event_id is None
        received = await collect(events)
        assert events.last_event_id == "4"
    assert [(e.type, e.id) for e in received] == [
        ("run.started", "1"),
        ("task.started", "2"),
        ("log", "3"),
        ("run.completed", "4"),
    ]
    assert received[1].data == {"task": "Research", "agent": "R"}
    assert received[2].raw == '{"type": "log", "data": {"message": "hello"}}'
    assert received[3].is_terminal
    assert not received[0].is_terminal
    (request,) = server.requests
    assert request.path == EVENTS_PATH
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Last-Event-ID" not in request.headers
    # The terminal event closed the connection the server was still holding open.
    await server.wait_for(lambda: server.disconnects == 1)


@pytest.mark.parametrize(
    "terminal",
    [
        frame("run.completed", {"status": "succeeded"}),
        frame("run.failed", {"error": "boom"}),
        frame("complete", {"status": "canceled"}),
    ],
    ids=["run.completed", "run.failed", "complete"],
)
async def test_terminal_events_end_the_iteration(
    server: ScriptedServer, live: AsyncCrewship, terminal: bytes
) -> None:
    server.add(stream(started(), terminal, log("after the end"), end="hang"))
    async with live.runs.stream("run_1") as events:
        received = await collect(events)
        assert [event async for event in events] == []
    assert len(received) == 2
    assert received[-1].is_terminal
    assert len(server.requests) == 1


async def test_payload_accepted_where_data_is_expected(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(
        stream(
            frame("log", {"message": "via payload"}, key="payload"),
            frame("log"),
            frame(raw="not json at all", event="note"),
            frame(raw="line one\nline two"),
            frame(raw=json.dumps({"no_type": True}), event="custom"),
            frame(raw=json.dumps([1, 2])),
            frame("complete"),
        )
    )
    async with live.runs.stream("run_1") as events:
        received = await collect(events)
    assert received[0] == RunEvent(
        type="log", data={"message": "via payload"}, id=None, raw=received[0].raw
    )
    assert received[1].data == {}
    assert (received[2].type, received[2].data) == ("note", "not json at all")
    assert (received[3].type, received[3].data) == ("message", "line one\nline two")
    assert (received[4].type, received[4].data) == ("custom", {"no_type": True})
    assert (received[5].type, received[5].data) == ("message", [1, 2])
    assert received[6].type == "complete"


async def test_ten_megabyte_event_across_chunks(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    big = "x" * (10 * 1024 * 1024)
    server.add(stream(log(big, id="1"), completed(id="2"), chunk_size=64 * 1024))
    async with live.runs.stream("run_1") as events:
        received = await collect(events)
    assert len(received[0].data["message"]) == len(big)
    assert received[1].type == "run.completed"


async def test_event_past_the_size_cap_raises(
    server: ScriptedServer, live: AsyncCrewship, make_transport: Callable[..., Transport]
) -> None:
    server.add(stream(log("y" * 5000), end="hang"))
    events = EventStream(make_transport(server.url), EVENTS_PATH, max_event_size=1024)
    with pytest.raises(StreamError, match="maximum event size"):
        async with events:
            await collect(events)
    await server.wait_for(lambda: server.disconnects == 1)


async def test_events_before_an_oversized_one_are_delivered_first(
    server: ScriptedServer, live: AsyncCrewship, make_transport: Callable[..., Transport]
) -> None:
    # One chunk: two events, then one past the cap. Before the fix the two were dropped
    # (the decoder hands them over on its EventTooLargeError) and last_event_id stayed None.
    server.add(stream(started(id="1"), log("a", id="2"), log("y" * 5000), end="hang"))
    events = EventStream(make_transport(server.url), EVENTS_PATH, max_event_size=1024)
    received: list[RunEvent] = []

    async def consume() -> None:
        async with events:
            with anyio.fail_after(10):
                async for event in events:
                    received.append(event)

    with pytest.raises(StreamError, match="maximum event size"):
        await consume()
    assert [e.id for e in received] == ["1", "2"]
    assert events.last_event_id == "2"
    await server.wait_for(lambda: server.disconnects == 1)


async def test_every_event_of_a_long_chunk_comes_before_its_oversized_one(
    server: ScriptedServer, live: AsyncCrewship, make_transport: Callable[..., Transport]
) -> None:
    # More events than one conversion batch (CONVERT_BATCH) precede the oversized one.
    count = 3 * CONVERT_BATCH + 5
    logs = [log(str(n), id=str(n)) for n in range(1, count + 1)]
    server.add(stream(*logs, log("y" * 5000), end="hang"))
    events = EventStream(make_transport(server.url), EVENTS_PATH, max_event_size=1024)
    received: list[RunEvent] = []

    async def consume() -> None:
        async with events:
            with anyio.fail_after(10):
                async for event in events:
                    received.append(event)

    with pytest.raises(StreamError, match="maximum event size"):
        await consume()
    assert [e.id for e in received] == [str(n) for n in range(1, count + 1)]
    assert events.last_event_id == str(count)


async def test_events_after_the_terminal_one_of_a_long_chunk_are_dropped(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    before = [log(str(n), id=str(n)) for n in range(1, 2 * CONVERT_BATCH)]
    server.add(stream(*before, completed(id="end"), log("late", id="late"), end="hang"))
    received = await collect(live.runs.stream("run_1"))
    assert len(received) == 2 * CONVERT_BATCH
    assert received[-1].type == "run.completed"
    await server.wait_for(lambda: server.disconnects == 1)


async def test_error_event_raises_with_its_message(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(stream(started(), frame("error", {"message": "Run not found"}), end="hang"))
    received = []

    async def consume() -> None:
        async with live.runs.stream("run_1") as events:
            async for event in events:
                received.append(event)

    with pytest.raises(StreamError, match="the server reported an error: Run not found"):
        await consume()
    assert [e.type for e in received] == ["run.started"]
    await server.wait_for(lambda: server.disconnects == 1)


async def test_error_event_without_message(server: ScriptedServer, live: AsyncCrewship) -> None:
    server.add(stream(frame(raw="oops", event="error"), end="hang"))
    with pytest.raises(StreamError, match="reported an error: oops"):
        await collect(live.runs.stream("run_1"))


# --- reconnect and resume ---------------------------------------------------------------


async def test_dropped_connection_resumes_with_last_event_id(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(
        stream(started(id="1"), log("a", id="2"), end="abort"),
        # The server replays what was already delivered: it must be dropped.
        stream(log("a", id="2"), log("b", id="3"), completed(id="4")),
    )
    async with live.runs.stream("run_1") as events:
        received = await collect(events)
        assert events.reconnects == 1
    assert [e.id for e in received] == ["1", "2", "3", "4"]
    assert [e.data.get("message") for e in received[1:3]] == ["a", "b"]
    assert len(server.requests) == 2
    assert "Last-Event-ID" not in server.requests[0].headers
    assert server.requests[1].headers["Last-Event-ID"] == "2"


async def test_clean_end_without_terminal_event_reconnects(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(stream(started(id="e1")), stream(completed(id="e2")))
    received = await collect(live.runs.stream("run_1"))
    assert [e.id for e in received] == ["e1", "e2"]
    assert server.requests[1].headers["Last-Event-ID"] == "e1"


async def test_timeout_event_reconnects(server: ScriptedServer, live: AsyncCrewship) -> None:
    server.add(
        stream(started(id="1"), frame("timeout", id="2"), log("dropped after timeout"), end="hang"),
        stream(completed(id="3")),
    )
    received = await collect(live.runs.stream("run_1"))
    assert [e.type for e in received] == ["run.started", "run.completed"]
    assert server.requests[1].headers["Last-Event-ID"] == "2"
    await server.wait_for(lambda: server.disconnects == 1)


async def test_server_retry_is_honoured(
    server: ScriptedServer, live: AsyncCrewship, sleeps: Sleeps
) -> None:
    server.add(
        stream(frame("log", {"message": "a"}, id="1", retry=1500), end="abort"),
        stream(log("b", id="2")),
        stream(completed(id="3")),
    )
    received = await collect(live.runs.stream("run_1"))
    assert [e.id for e in received] == ["1", "2", "3"]
    # Each reconnect after a delivered event waits exactly the server's retry time.
    assert sleeps.delays == [1.5, 1.5]


async def test_server_retry_grows_for_repeated_failures(
    server: ScriptedServer, live: AsyncCrewship, sleeps: Sleeps
) -> None:
    server.add(stream(frame(raw="", retry=100) + started(id="1")), stream(), stream())
    server.add(stream(completed(id="2")))
    await collect(live.runs.stream("run_1"))
    first, second, third = sleeps.delays
    assert first == pytest.approx(0.1)
    assert 0.1 <= second <= 0.2
    assert 0.1 <= third <= 0.4


async def test_timeout_event_waits_the_server_retry(
    server: ScriptedServer, live: AsyncCrewship, sleeps: Sleeps
) -> None:
    server.add(stream(started(id="1"), frame("timeout", retry=250)), stream(completed()))
    await collect(live.runs.stream("run_1"))
    assert sleeps.delays == [0.25]


async def test_backoff_without_server_retry_follows_the_client_policy(
    server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.add(stream(), stream(), stream(completed()))
    policy = RetryPolicy(initial_delay=1.0, max_delay=1.5)
    async with AsyncCrewship(api_key=API_KEY, base_url=server.url, retry_policy=policy) as client:
        await collect(client.runs.stream("run_1"))
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 1.0
    assert 0 <= sleeps.delays[1] <= 1.5


@pytest.mark.parametrize("max_reconnects", [0, 2])
async def test_max_reconnects_consecutive_failures(
    server: ScriptedServer, live: AsyncCrewship, max_reconnects: int
) -> None:
    server.default(respond(503, {"error": {"message": "down"}}))
    with pytest.raises(StreamError, match=f"gave up after {max_reconnects} reconnect") as info:
        await collect(live.runs.stream("run_1", max_reconnects=max_reconnects))
    assert isinstance(info.value.__cause__, ServiceUnavailableError)
    assert len(server.requests) == max_reconnects + 1


async def test_delivered_events_reset_the_failure_count(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    # Five drops in a row would exhaust max_reconnects=1, but each connection delivers.
    server.add(*(stream(log(str(i), id=str(i)), end="abort") for i in range(5)))
    server.add(stream(completed(id="end")))
    received = await collect(live.runs.stream("run_1", max_reconnects=1))
    assert [e.id for e in received] == ["0", "1", "2", "3", "4", "end"]


async def test_replayed_duplicates_do_not_reset_the_failure_count(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(stream(started(id="1"), end="abort"))
    server.default(stream(started(id="1")))
    with pytest.raises(StreamError, match="gave up after 2"):
        await collect(live.runs.stream("run_1", max_reconnects=2))
    assert len(server.requests) == 3


async def test_streams_ending_without_events_give_up(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.default(stream(b": nothing to say\n\n"))
    with pytest.raises(StreamError, match="ended without a terminal event"):
        await collect(live.runs.stream("run_1", max_reconnects=3))
    assert len(server.requests) == 4


async def test_timeout_events_alone_give_up(server: ScriptedServer, live: AsyncCrewship) -> None:
    server.default(stream(frame("timeout"), end="hang"))
    with pytest.raises(StreamError, match=r"gave up after 3 .* timed out the stream"):
        await collect(live.runs.stream("run_1", max_reconnects=3, idle_timeout=math.inf))
    assert len(server.requests) == 4


async def test_refused_connections_count_as_failures() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AsyncCrewship(
        api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", retry_policy=FAST
    ) as client:
        with pytest.raises(StreamError, match="gave up after 1") as info:
            await collect(client.runs.stream("run_1", max_reconnects=1))
    assert isinstance(info.value.__cause__, APIConnectionError)


@pytest.mark.parametrize("status", [429, 503])
async def test_rate_limited_open_honours_retry_after(
    server: ScriptedServer, live: AsyncCrewship, sleeps: Sleeps, status: int
) -> None:
    server.add(respond(status, {"error": {"message": "slow"}}, headers={"Retry-After": "2"}))
    server.add(stream(completed()))
    assert len(await collect(live.runs.stream("run_1"))) == 1
    assert sleeps.delays == [2.0]


async def test_rate_limited_open_beyond_the_cap_raises(
    server: ScriptedServer, live: AsyncCrewship, sleeps: Sleeps
) -> None:
    server.add(respond(429, {"error": {"message": "slow"}}, headers={"Retry-After": "600"}))
    with pytest.raises(RateLimitError):
        await collect(live.runs.stream("run_1"))
    assert sleeps.delays == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(("status", "cls"), [(401, AuthenticationError), (404, NotFoundError)])
async def test_client_errors_on_open_raise_directly(
    server: ScriptedServer, live: AsyncCrewship, status: int, cls: type[Exception]
) -> None:
    server.default(respond(status, {"error": {"message": "nope"}}))
    with pytest.raises(cls, match=f"GET {EVENTS_PATH} -> {status}: nope"):
        async with live.runs.stream("run_1"):
            pass  # pragma: no cover
    assert len(server.requests) == 1


async def test_not_an_event_stream_is_a_response_error(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.default(respond(200, {"id": "run_1"}))
    with pytest.raises(ResponseError, match="expected text/event-stream, got application/json"):
        await collect(live.runs.stream("run_1"))
    assert len(server.requests) == 1


async def test_resume_from_a_given_last_event_id(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(stream(completed(id="9")))
    received = await collect(live.runs.stream("run_1", last_event_id="8"))
    assert received[0].id == "9"
    assert server.requests[0].headers["Last-Event-ID"] == "8"


async def test_empty_id_resets_last_event_id(server: ScriptedServer, live: AsyncCrewship) -> None:
    server.add(stream(log("a", id="5"), log("b", id=""), end="abort"), stream(completed()))
    events = live.runs.stream("run_1")
    received = await collect(events)
    assert [e.id for e in received] == ["5", "", None]
    assert "Last-Event-ID" not in server.requests[1].headers
    assert events.last_event_id is None


async def test_dedupe_window_is_bounded(server: ScriptedServer, live: AsyncCrewship) -> None:
    # The stream remembers the last 1,024 delivered ids: "1" fell out of the window after
    # 1,025 events and is delivered again; "1025" is still known and dropped.
    first = [log("x", id=str(n)) for n in range(1, 1026)]
    server.add(
        stream(*first, end="abort"),
        stream(log("a", id="1"), log("c", id="1025"), completed(id="1026")),
    )
    received = await collect(live.runs.stream("run_1"))
    assert [e.id for e in received[1025:]] == ["1", "1026"]
    assert len(received) == 1027


# --- idle timeout -----------------------------------------------------------------------


async def test_comments_do_not_extend_the_idle_timeout(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(heartbeats(0.05))
    with pytest.raises(StreamError, match=r"no event for 0.3s \(idle timeout\)"):
        await collect(live.runs.stream("run_1", idle_timeout=0.3))
    await server.wait_for(lambda: server.disconnects == 1)


async def test_heartbeat_events_do_not_extend_the_idle_timeout(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(heartbeats(0.05, frame("heartbeat", {"status": "running"})))
    received: list[RunEvent] = []

    async def consume() -> None:
        with anyio.fail_after(10):
            async for event in live.runs.stream("run_1", idle_timeout=0.3):
                received.append(event)

    with pytest.raises(StreamError, match="idle timeout"):
        await consume()
    assert received
    assert {e.type for e in received} == {"heartbeat"}
    await server.wait_for(lambda: server.disconnects == 1)


async def _timeout_from_below(*args: object, **kwargs: object) -> None:
    raise TimeoutError("from below")


# Only the idle clock's own expiry becomes the idle StreamError; any other TimeoutError
# from below is raised as it came, while opening and while reconnecting.


async def test_a_timeout_error_opening_not_from_the_idle_clock_passes_unchanged(
    live: AsyncCrewship, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = live.runs.stream("run_1", idle_timeout=30)
    monkeypatch.setattr(events._transport, "open_stream", _timeout_from_below)
    with pytest.raises(TimeoutError, match="from below"):
        await events.__aenter__()


async def test_a_timeout_error_reconnecting_not_from_the_idle_clock_passes_unchanged(
    server: ScriptedServer, live: AsyncCrewship, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add(stream(started(id="1")))  # ends without a terminal event: a reconnect
    async with live.runs.stream("run_1", idle_timeout=30) as events:
        assert (await events.__anext__()).id == "1"
        monkeypatch.setattr(events._transport, "open_stream", _timeout_from_below)
        with pytest.raises(TimeoutError, match="from below"):
            await events.__anext__()


async def test_idle_timeout_default_comes_from_the_client(server: ScriptedServer) -> None:
    server.add(heartbeats(0.05))
    async with AsyncCrewship(
        api_key=API_KEY, base_url=server.url, retry_policy=FAST, idle_timeout=0.2
    ) as client:
        events = client.runs.stream("run_1")
        assert events.idle_timeout == 0.2
        assert client.runs.stream("run_1", idle_timeout=math.inf).idle_timeout is None
        with pytest.raises(StreamError, match="idle timeout"):
            await collect(events)


async def test_events_keep_the_stream_alive(server: ScriptedServer, live: AsyncCrewship) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        # Eight events 0.1 s apart: longer than the idle timeout in all, never idle that long.
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(8):
            await asyncio.sleep(0.1)
            await response.write(log(str(i), id=str(i)))
        await response.write(completed())
        await response.write_eof()
        return response

    server.add(trickle)
    received = await collect(live.runs.stream("run_1", idle_timeout=0.6))
    assert len(received) == 9


# --- releasing the connection -----------------------------------------------------------


async def test_break_releases_the_connection(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(stream(started(id="1"), log("a", id="2"), end="hang"))
    async with live.runs.stream("run_1") as events:
        async for event in events:
            assert event.id == "1"
            break
    await server.wait_for(lambda: server.disconnects == 1)
    assert "finished" in repr(events)


async def test_cancelling_the_consumer_releases_the_connection(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(stream(started(id="1"), end="hang"))
    got_one = asyncio.Event()

    async def consume() -> None:
        async with live.runs.stream("run_1") as events:
            async for _ in events:
                got_one.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_one.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await server.wait_for(lambda: server.disconnects == 1)


async def test_cancelling_without_async_with_releases_the_connection(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(stream(started(id="1"), end="hang"))
    events = live.runs.stream("run_1")
    with anyio.move_on_after(0.2):
        async for _ in events:
            pass
    await server.wait_for(lambda: server.disconnects == 1)
    assert [e async for e in events] == []


async def test_aclose_releases_and_is_idempotent(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(stream(started(id="1"), end="hang"))
    events = live.runs.stream("run_1")
    assert "idle" in repr(events)
    first = await events.__anext__()
    assert first.id == "1"
    assert "open" in repr(events)
    await events.aclose()
    await events.aclose()
    await server.wait_for(lambda: server.disconnects == 1)
    with pytest.raises(StopAsyncIteration):
        await events.__anext__()


async def test_closing_the_client_mid_stream(server: ScriptedServer) -> None:
    server.add(stream(started(id="1"), end="hang"))
    client = AsyncCrewship(api_key=API_KEY, base_url=server.url, retry_policy=FAST)
    events = client.runs.stream("run_1")
    await events.__anext__()
    await client.aclose()
    await server.wait_for(lambda: server.disconnects == 1)
    with pytest.raises(ClientClosedError), anyio.fail_after(10):
        await events.__anext__()
    assert len(server.requests) == 1


# --- opening ----------------------------------------------------------------------------


async def test_open_stream_times_out_without_headers(
    server: ScriptedServer, live: AsyncCrewship, make_transport: Callable[..., Transport]
) -> None:
    server.default(hang())
    with pytest.raises(APITimeoutError, match=r"no response headers within 0\.3s"):
        await make_transport(server.url).open_stream(EVENTS_PATH, connect_timeout=0.1)
    await server.wait_for(lambda: server.disconnects == 1)


def test_stream_arguments_checked() -> None:
    client = AsyncCrewship(api_key=API_KEY)
    with pytest.raises(ValueError, match="idle_timeout"):
        client.runs.stream("run_1", idle_timeout=0)
    with pytest.raises(ValueError, match="max_reconnects"):
        client.runs.stream("run_1", max_reconnects=-1)
    with pytest.raises(ValueError, match="last_event_id"):
        client.runs.stream("run_1", last_event_id="")
    with pytest.raises(TypeError, match="last_event_id"):
        client.runs.stream("run_1", last_event_id=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1, True])
async def test_stream_event_size_checked_when_built(
    size: int, make_transport: Callable[..., Transport]
) -> None:
    # Checked at once: the decoder that would also check it is only built per connection.
    with pytest.raises(ValueError, match="max_event_size must be >= 1"):
        EventStream(make_transport("http://127.0.0.1:9"), EVENTS_PATH, max_event_size=size)


async def test_aclose_from_another_task_ends_the_iteration(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(stream(started(id="1"), end="hang"))
    server.default(stream(completed(id="2")))
    events = live.runs.stream("run_1")
    assert (await events.__anext__()).id == "1"

    async def close_soon() -> None:
        await server.wait_for(lambda: len(server.requests) == 1)
        await asyncio.sleep(0.05)
        await events.aclose()

    closer = asyncio.create_task(close_soon())
    with anyio.fail_after(10):
        rest = [event async for event in events]
    await closer
    assert rest == []
    assert len(server.requests) == 1
    await server.wait_for(lambda: server.disconnects == 1)


async def test_aclose_while_a_reconnect_is_opening(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(stream(started(id="1")), slow(0.3, stream(completed(id="2"), end="hang")))
    events = live.runs.stream("run_1")
    assert (await events.__anext__()).id == "1"

    async def close_soon() -> None:
        await server.wait_for(lambda: len(server.requests) == 2)
        await events.aclose()

    closer = asyncio.create_task(close_soon())
    with anyio.fail_after(10):
        rest = [event async for event in events]
    await closer
    assert rest == []
    await server.wait_for(lambda: server.disconnects == 1)


async def test_aclose_while_the_first_connection_is_opening(
    server: ScriptedServer, live: AsyncCrewship, no_resource_warnings: None
) -> None:
    server.add(slow(0.3, stream(started(id="1"), end="hang")))
    events = live.runs.stream("run_1")

    async def close_soon() -> None:
        await server.wait_for(lambda: len(server.requests) == 1)
        await events.aclose()

    closer = asyncio.create_task(close_soon())
    with anyio.fail_after(10):
        opened = await events.__aenter__()
    await closer
    # The connection that came after aclose() is closed at once, not kept for the
    # stream's next read (which might never come).
    await server.wait_for(lambda: server.disconnects == 1)
    assert opened is events
    assert [event async for event in events] == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("first", "ids"),
    [
        (stream(started(id="1")), ["1"]),
        (stream(started(id="1"), frame("timeout")), ["1"]),
        (respond(503, {"error": {"message": "down"}}), []),
    ],
    ids=["clean-end", "timeout-event", "open-failed"],
)
async def test_aclose_during_a_reconnect_delay_opens_nothing(
    server: ScriptedServer,
    live: AsyncCrewship,
    monkeypatch: pytest.MonkeyPatch,
    first: Script,
    ids: list[str],
) -> None:
    server.add(first)
    events = live.runs.stream("run_1")

    async def closing_sleep(delay: float) -> None:
        await events.aclose()

    monkeypatch.setattr(anyio, "sleep", closing_sleep)
    with anyio.fail_after(10):
        received = [event async for event in events]
    assert [e.id for e in received] == ids
    assert len(server.requests) == 1


async def test_zero_retry_reconnects_at_once(
    server: ScriptedServer, live: AsyncCrewship, sleeps: Sleeps
) -> None:
    server.add(stream(frame("log", id="1", retry=0), end="abort"), stream(completed(id="2")))
    received = await collect(live.runs.stream("run_1"))
    assert [e.id for e in received] == ["1", "2"]
    assert sleeps.delays == []


async def test_open_stream_connection(
    server: ScriptedServer, live: AsyncCrewship, make_transport: Callable[..., Transport]
) -> None:
    server.add(stream(completed(), end="hang"))
    connection = await make_transport(server.url).open_stream(EVENTS_PATH, last_event_id="7")
    try:
        assert connection.headers["Content-Type"].startswith("text/event-stream")
        assert b"run.completed" in await connection.read_chunk()
    finally:
        connection.close()
    assert server.requests[0].headers["Last-Event-ID"] == "7"
    await server.wait_for(lambda: server.disconnects == 1)


@pytest.mark.parametrize(
    ("exception", "match"),
    [
        (aiohttp.ConnectionTimeoutError("connect timed out"), "could not open the stream"),
        (aiohttp.ClientOSError(113, "No route to host"), "could not open the stream"),
    ],
)
async def test_open_stream_connection_errors(
    client: AsyncCrewship,
    mocked: aioresponses,
    exception: Exception,
    match: str,
    make_transport: Callable[..., Transport],
) -> None:
    mocked.get(f"{BASE}{EVENTS_PATH}", exception=exception)
    with pytest.raises(APIConnectionError, match=match) as info:
        await make_transport().open_stream(EVENTS_PATH)
    assert not isinstance(info.value, APITimeoutError)


async def test_closing_the_client_while_a_read_waits(
    server: ScriptedServer, no_resource_warnings: None
) -> None:
    server.add(stream(started(id="1"), end="hang"))
    client = AsyncCrewship(api_key=API_KEY, base_url=server.url, retry_policy=FAST)
    events = client.runs.stream("run_1")
    assert (await events.__anext__()).id == "1"

    async def close_soon() -> None:
        await asyncio.sleep(0.1)
        await client.aclose()

    closer = asyncio.create_task(close_soon())
    with pytest.raises(ClientClosedError, match="closed while reading the stream"):
        with anyio.fail_after(10):
            await events.__anext__()
    await closer
    assert len(server.requests) == 1
    await server.wait_for(lambda: server.disconnects == 1)


async def test_closing_the_client_while_a_stream_opens(server: ScriptedServer) -> None:
    server.default(hang())
    client = AsyncCrewship(api_key=API_KEY, base_url=server.url, retry_policy=FAST)
    task = asyncio.create_task(client.runs.stream("run_1").__anext__())
    await server.wait_for(lambda: len(server.requests) == 1)
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed while opening the stream"):
        with anyio.fail_after(10):
            await task
    await server.wait_for(lambda: server.disconnects == 1)


# --- an HTTP error whose body does not arrive whole ----------------------------------


def error_body(end: str) -> Script:
    """A 503 whose JSON body is cut short (``end="abort"``) or never finishes."""
    return stream(b'{"error": {"mess', status=503, end=end, content_type="application/json")


async def test_error_body_cut_short_is_a_connection_error(
    server: ScriptedServer,
    live: AsyncCrewship,
    sleeps: Sleeps,
    make_transport: Callable[..., Transport],
) -> None:
    # Before the fix aiohttp's ClientPayloadError escaped open_stream and the stream.
    server.add(error_body("abort"), stream(completed(id="1")))
    with pytest.raises(APIConnectionError, match="error response") as info:
        await make_transport(server.url).open_stream(EVENTS_PATH)
    # aiohttp's exception is described, not chained: it may quote server bytes.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert "ClientPayloadError" in str(info.value)
    server.add(error_body("abort"), stream(completed(id="1")))
    received = await collect(live.runs.stream("run_1"))
    assert [e.id for e in received] == ["1"]  # the stream reconnected


async def test_error_body_that_never_ends_times_out(
    server: ScriptedServer, live: AsyncCrewship, make_transport: Callable[..., Transport]
) -> None:
    server.add(error_body("hang"))
    with pytest.raises(APITimeoutError, match="error response"), anyio.fail_after(10):
        await make_transport(server.url).open_stream(EVENTS_PATH, connect_timeout=0.1)
    await server.wait_for(lambda: server.disconnects == 1)


async def test_closing_the_client_while_an_error_body_is_read(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, no_resource_warnings: None
) -> None:
    # Before the fix the read of the error body was not among the calls aclose() ends:
    # it waited forever on a connection the closed session no longer served.
    reading = asyncio.Event()
    original_read = transport_module.read_capped

    async def read(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
        reading.set()
        return await original_read(response, limit)

    monkeypatch.setattr(transport_module, "read_capped", read)
    server.add(error_body("hang"))
    client = AsyncCrewship(api_key=API_KEY, base_url=server.url, retry_policy=FAST)
    task = asyncio.create_task(client.runs.stream("run_1").__anext__())
    await reading.wait()
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed while reading"), anyio.fail_after(10):
        await task
    await server.wait_for(lambda: server.disconnects == 1)
