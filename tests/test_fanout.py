"""client.runs.create_many / create_all: bounded, lazy, rate-limit aware fan-out.

Real concurrency is measured with a small ``aiohttp.web`` server on 127.0.0.1 that counts
the requests it is handling; HTTP-level corner cases use aioresponses.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Callable, Optional

import aiohttp
import anyio
import pytest
from aiohttp import web
from aioresponses import CallbackResult, aioresponses
from clocks import CLOCK_GRAIN
from yarl import URL

from crewship_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncCrewship,
    BadRequestError,
    ClientClosedError,
    RateLimitError,
    RetryPolicy,
    RunOutcome,
    RunRequest,
)
from crewship_async._fanout import FanOut, FanOutStats, sending
from crewship_async._fanout.tasks import cancel_and_join, cancel_soon
from crewship_async._ratelimit import AIMD, RateGate

FAST = RetryPolicy(initial_delay=0.001, max_delay=0.01)
KEY = "sk_test_fanout"
MOCK_BASE = "https://api.test"
RUNS_URL = re.compile(r"^https://api\.test/v1/runs$")
RUNS = URL(MOCK_BASE + "/v1/runs")

Hook = Callable[[web.Request, dict[str, Any]], Awaitable[Optional[web.StreamResponse]]]


def item(n: int, deployment: str = "dep_a") -> dict[str, Any]:
    return {"deployment_id": deployment, "input": {"n": n}}


class RunServer:
    """``POST /v1/runs``: counts concurrent handlers, records bodies, answers 202.

    ``hook(request, body)`` may answer instead (return a response) or just delay; it
    runs inside the counted section. Handlers are cancelled when the client drops the
    connection, so ``in_flight`` returning to 0 shows the client closed it.
    """

    def __init__(self) -> None:
        self.url = ""
        self.in_flight = 0
        self.peak = 0
        self.received: list[int] = []
        self.completed = 0
        self.created: Counter[int] = Counter()
        self.hook: Optional[Hook] = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            body = await request.json()
            n = body["input"]["n"]
            self.received.append(n)
            if self.hook is not None:
                answer = await self.hook(request, body)
                if answer is not None:
                    return answer
            self.created[n] += 1
            return web.json_response({"run_id": f"run_{n}", "status": "pending"}, status=202)
        finally:
            self.in_flight -= 1
            self.completed += 1


@pytest.fixture
async def server() -> AsyncIterator[RunServer]:
    srv = RunServer()
    app = web.Application()
    app.router.add_post("/v1/runs", srv.handle)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    srv.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield srv
    await runner.cleanup()


@pytest.fixture
async def client(
    server: RunServer, made_sessions: list[aiohttp.ClientSession]
) -> AsyncIterator[AsyncCrewship]:
    """A client of the run server; its session is recorded in ``made_sessions``."""
    async with AsyncCrewship(api_key=KEY, base_url=server.url, retry_policy=FAST) as c:
        yield c


@pytest.fixture
async def mock_client() -> AsyncIterator[AsyncCrewship]:
    async with AsyncCrewship(api_key=KEY, base_url=MOCK_BASE, retry_policy=FAST) as c:
        yield c


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as mock:
        yield mock


def fanout_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the fan-out machinery still alive (the runner and its workers)."""
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and ("create_many" in t.get_name() or "_fanout" in t.get_name())
    ]


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check`` until it holds (the state lives in another task or the server)."""
    with anyio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.005)


async def drain(fan: FanOut, into: list[RunOutcome]) -> None:
    """Iterate ``fan`` without ``async with``, keeping what it yielded."""
    async for outcome in fan:
        into.append(outcome)


async def assert_clean(server: RunServer, sessions: list[aiohttp.ClientSession]) -> None:
    """No fan-out task left, no request being handled, no connection of the client's
    ``sessions`` (the ``made_sessions`` fixture) checked out."""
    assert fanout_tasks() == []
    await eventually(lambda: server.in_flight == 0)
    assert sessions
    for session in sessions:
        connector = session.connector
        assert connector is not None
        assert len(connector._acquired) == 0


def blocked_hook(release: asyncio.Event, unless: Callable[[int], bool] = lambda n: False) -> Hook:
    async def hook(request: web.Request, body: dict[str, Any]) -> Optional[web.StreamResponse]:
        if not unless(body["input"]["n"]):
            await release.wait()
        return None

    return hook


def mock_created(url: Any, **kwargs: Any) -> CallbackResult:
    n = json.loads(kwargs["data"])["input"]["n"]
    return CallbackResult(status=202, payload={"run_id": f"run_{n}", "status": "pending"})


# -- scale, bounds and laziness ------------------------------------------------------------


async def test_5000_requests_at_concurrency_50(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    concurrency = 50
    pulled = 0
    max_lead = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled, max_lead
        for n in range(5000):
            pulled += 1
            max_lead = max(max_lead, pulled - server.completed)
            yield item(n)

    async def jitter(request: web.Request, body: dict[str, Any]) -> None:
        await asyncio.sleep(random.choice((0, 0, 0.001)))

    server.hook = jitter
    seen: list[int] = []
    async with client.runs.create_many(source(), concurrency=concurrency) as outcomes:
        async for outcome in outcomes:
            assert outcome.ok, outcome.error
            assert outcome.run is not None
            assert outcome.run.run_id == f"run_{outcome.index}"
            assert outcome.request == item(outcome.index)
            seen.append(outcome.index)
    assert sorted(seen) == list(range(5000))
    assert server.created == Counter(range(5000))
    assert 1 < server.peak <= concurrency
    assert max_lead <= concurrency + 2
    await assert_clean(server, made_sessions)


async def test_lazy_source_and_bounded_read_ahead_with_slow_consumer(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    concurrency, max_pending = 8, 16
    pulled = yielded = 0
    max_ahead = 0

    def endless() -> Iterator[dict[str, Any]]:
        nonlocal pulled, max_ahead
        n = 0
        while True:
            pulled += 1
            max_ahead = max(max_ahead, pulled - yielded)
            yield item(n)
            n += 1

    async with client.runs.create_many(
        endless(), concurrency=concurrency, max_pending=max_pending
    ) as outcomes:
        async for _ in outcomes:
            yielded += 1
            if yielded % 10 == 0:
                await asyncio.sleep(0.01)  # a slow consumer: the pump must wait for it
            if yielded == 200:
                break
    assert max_ahead <= concurrency + max_pending + 1
    assert pulled <= 200 + concurrency + max_pending + 1
    await assert_clean(server, made_sessions)


async def test_pool_caps_concurrency(server: RunServer) -> None:
    async with AsyncCrewship(
        api_key=KEY, base_url=server.url, retry_policy=FAST, max_connections=4
    ) as client:
        fan = client.runs.create_many((item(n) for n in range(100)), concurrency=50)
        assert fan.concurrency == 50
        async with fan as outcomes:
            assert outcomes.concurrency == 4
            results = [o async for o in outcomes]
    assert len(results) == 100
    assert server.peak <= 4


async def test_borrowed_unlimited_pool_is_not_capped(server: RunServer) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        client = AsyncCrewship(api_key=KEY, base_url=server.url, session=session)
        outcomes = await client.runs.create_all([item(n) for n in range(300)], concurrency=150)
        assert [o.index for o in outcomes] == list(range(300))
        assert server.peak <= 150
        fan = client.runs.create_many([item(0)], concurrency=150)
        async with fan:
            assert fan.concurrency == 150
        await client.aclose()
    finally:
        await session.close()


# -- errors -----------------------------------------------------------------------------


async def test_bad_items_and_400_are_error_outcomes(
    server: RunServer, client: AsyncCrewship
) -> None:
    async def reject_seven(request: web.Request, body: dict[str, Any]) -> Optional[web.Response]:
        if body["input"]["n"] == 7:
            return web.json_response(
                {"error": {"message": "No running version", "code": "bad"}}, status=400
            )
        return None

    server.hook = reject_seven
    items: list[Any] = [item(n) for n in range(20)]
    items[3] = {"deployment_id": ""}
    items[5] = 42
    items[9] = {"deployment_id": "dep_a", "colour": "red"}
    items[11] = RunRequest("dep_a", input={"n": 11}, environment="staging")
    items[13] = {"deployment_id": "dep_a", "input": {"n": 13, "bad": object()}}
    outcomes = await client.runs.create_all(items, concurrency=5)
    assert [o.index for o in outcomes] == list(range(20))
    errors = {o.index: o.error for o in outcomes if not o.ok}
    assert set(errors) == {3, 5, 7, 9, 13}
    assert isinstance(errors[3], ValueError)
    assert isinstance(errors[5], TypeError)
    assert isinstance(errors[7], BadRequestError)
    assert errors[7].status_code == 400
    assert isinstance(errors[9], TypeError)
    assert isinstance(errors[13], TypeError)  # not JSON-serialisable: never sent
    assert outcomes[5].request == 42
    assert outcomes[11].ok
    assert outcomes[11].request is items[11]
    assert sorted(server.received) == [n for n in range(20) if n not in (3, 5, 9, 13)]


async def test_no_post_is_sent_twice_when_the_connection_drops(
    server: RunServer, client: AsyncCrewship
) -> None:
    async def drop_five(request: web.Request, body: dict[str, Any]) -> None:
        if body["input"]["n"] == 5:
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(5)

    server.hook = drop_five
    outcomes = await client.runs.create_all([item(n) for n in range(10)], concurrency=3)
    failed = [o for o in outcomes if not o.ok]
    assert [o.index for o in failed] == [5]
    assert isinstance(failed[0].error, APIConnectionError)
    assert "may or may not" in str(failed[0].error)
    assert Counter(server.received)[5] == 1
    assert all(o.ok for o in outcomes if o.index != 5)


async def test_server_disconnect_is_not_replayed_mocked(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    mocked.post(RUNS_URL, exception=aiohttp.ServerDisconnectedError())
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)
    outcomes = await mock_client.runs.create_all([item(0)], concurrency=1)
    assert isinstance(outcomes[0].error, APIConnectionError)
    assert len(mocked.requests[("POST", RUNS)]) == 1


async def test_source_error_is_raised_after_pulled_items(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)

    def broken() -> Iterator[dict[str, Any]]:
        yield item(0)
        yield item(1)
        yield item(2)
        raise RuntimeError("source broke")

    got: list[RunOutcome] = []
    with pytest.raises(RuntimeError, match="source broke"):
        await drain(mock_client.runs.create_many(broken(), concurrency=2), got)
    assert sorted(o.index for o in got) == [0, 1, 2]


async def test_source_error_with_fail_fast(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    release = asyncio.Event()

    async def hang(url: Any, **kwargs: Any) -> CallbackResult:
        await release.wait()
        return mock_created(url, **kwargs)

    mocked.post(RUNS_URL, callback=hang, repeat=True)

    async def broken() -> AsyncIterator[dict[str, Any]]:
        yield item(0)
        await asyncio.sleep(0.01)
        raise LookupError("no more")

    baseline = len(asyncio.all_tasks())
    with pytest.raises(LookupError):
        await mock_client.runs.create_all(broken(), fail_fast=True)
    assert len(asyncio.all_tasks()) == baseline


async def test_fail_fast_cancels_in_flight_and_raises(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()

    async def hook(request: web.Request, body: dict[str, Any]) -> Optional[web.Response]:
        if body["input"]["n"] == 3:
            await eventually(lambda: server.in_flight >= 10)
            return web.json_response({"error": {"message": "nope"}}, status=400)
        await release.wait()
        return None

    server.hook = hook
    got: list[RunOutcome] = []
    fan = client.runs.create_many((item(n) for n in range(100)), concurrency=10, fail_fast=True)
    with pytest.raises(BadRequestError, match="nope"):
        await drain(fan, got)
    assert got == []
    assert len(server.received) == 10
    await assert_clean(server, made_sessions)


async def test_fail_fast_on_a_bad_item(mocked: aioresponses, mock_client: AsyncCrewship) -> None:
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)
    with pytest.raises(ValueError, match="deployment_id"):
        await mock_client.runs.create_all([item(0), {"deployment_id": ""}], fail_fast=True)
    # Two failures at once: the first one is raised.
    with pytest.raises(ValueError, match="deployment_id"):
        await mock_client.runs.create_all([{"deployment_id": ""}, 42], fail_fast=True)


async def test_create_all_returns_input_order(server: RunServer, client: AsyncCrewship) -> None:
    async def shuffle(request: web.Request, body: dict[str, Any]) -> None:
        await asyncio.sleep(random.random() * 0.01)

    server.hook = shuffle
    outcomes = await client.runs.create_all([item(n) for n in range(200)], concurrency=20)
    assert [o.index for o in outcomes] == list(range(200))
    assert all(o.run is not None and o.run.run_id == f"run_{o.index}" for o in outcomes)


async def test_async_iterable_input(server: RunServer, client: AsyncCrewship) -> None:
    async def source() -> AsyncIterator[RunRequest]:
        for n in range(50):
            await asyncio.sleep(0)
            yield RunRequest("dep_a", input={"n": n})

    got = [o.index async for o in client.runs.create_many(source(), concurrency=7)]
    assert sorted(got) == list(range(50))
    assert server.peak <= 7


# -- rate limits ------------------------------------------------------------------------


async def test_429_pauses_every_worker_and_halves_concurrency(
    server: RunServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    concurrency, total = 20, 300
    arrivals = 0

    async def limited(request: web.Request, body: dict[str, Any]) -> Optional[web.Response]:
        nonlocal arrivals
        arrivals += 1
        if 30 <= arrivals < 40:
            return web.json_response(
                {"error": {"message": "slow down"}},
                status=429,
                headers={"Retry-After-Ms": "150"},
            )
        await asyncio.sleep(0.001)
        return None

    server.hook = limited
    closes: list[tuple[float, float]] = []
    original_close = RateGate.close

    def spy_close(self: Any, delay: float) -> None:
        closes.append((anyio.current_time(), delay))
        original_close(self, delay)

    monkeypatch.setattr(RateGate, "close", spy_close)
    # Every request as the client sends it, each attempt included (aiohttp's tracing).
    sent: list[float] = []

    async def on_request_start(*_: object) -> None:
        sent.append(anyio.current_time())

    tracing = aiohttp.TraceConfig()
    tracing.on_request_start.append(on_request_start)
    limits: list[int] = []
    async with AsyncCrewship(
        api_key=KEY, base_url=server.url, retry_policy=FAST, trace_configs=[tracing]
    ) as client:
        fan: FanOut = client.runs.create_many(
            (item(n) for n in range(total)),
            concurrency=concurrency,
            on_progress=lambda done, failed, in_flight: limits.append(fan.concurrency),
        )
        async with fan as outcomes:
            results = [o async for o in outcomes]

    assert sorted(o.index for o in results) == list(range(total))
    assert all(o.ok for o in results)
    assert server.created == Counter(range(total))  # every run created exactly once
    assert len(server.received) == total + 10  # the ten 429s were sent again
    assert len(sent) == total + 10
    assert closes
    assert all(delay == pytest.approx(0.15) for _, delay in closes)
    for closed_at, delay in closes:
        during = [t for t in sent if closed_at < t < closed_at + delay - 1e-3]
        assert during == [], "a request was sent while the rate-limit gate was closed"
    assert min(limits) < concurrency
    stats = fan.stats
    assert stats.lowest_concurrency <= concurrency // 2
    assert stats.rate_limited == 10


async def test_429_retries_follow_the_policy(mocked: aioresponses) -> None:
    policy = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.01)
    async with AsyncCrewship(api_key=KEY, base_url=MOCK_BASE, retry_policy=policy) as client:
        mocked.post(RUNS_URL, status=429, headers={"Retry-After": "0"}, repeat=True)
        outcomes = await client.runs.create_all([item(0)], concurrency=4)
        assert isinstance(outcomes[0].error, RateLimitError)
        calls = mocked.requests[("POST", RUNS)]
        assert len(calls) == 3


async def test_429_with_too_long_retry_after_fails_at_once(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    mocked.post(RUNS_URL, status=429, headers={"Retry-After": "3600"})
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)
    outcomes = await mock_client.runs.create_all([item(0), item(1)], concurrency=1)
    assert isinstance(outcomes[0].error, RateLimitError)
    assert outcomes[0].error.retry_after == 3600
    assert outcomes[1].ok


async def test_429_past_the_item_deadline_fails(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    mocked.post(RUNS_URL, status=429, headers={"Retry-After-Ms": "500"})
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)
    outcomes = await mock_client.runs.create_all([item(0)], timeout=0.2)
    assert isinstance(outcomes[0].error, RateLimitError)


async def test_deadline_passing_at_the_gate_gives_a_timeout(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    # Item 0's 429 asks for 300 ms; item 1's, answered while item 0 waits, keeps the gate
    # closed past item 0's 600 ms deadline, so item 0 is never sent again. (The margins
    # leave room for a loaded machine: item 1 must be answered within item 0's wait.)
    attempts: Counter[int] = Counter()

    async def answer(url: Any, **kwargs: Any) -> CallbackResult:
        n = json.loads(kwargs["data"])["input"]["n"]
        attempts[n] += 1
        if n == 0 and attempts[0] == 1:
            await asyncio.sleep(0.02)
            return CallbackResult(status=429, headers={"Retry-After-Ms": "300"})
        if n == 1:
            await asyncio.sleep(0.05)
            return CallbackResult(status=429, headers={"Retry-After-Ms": "1000"})
        return mock_created(url, **kwargs)

    mocked.post(RUNS_URL, callback=answer, repeat=True)
    outcomes = await mock_client.runs.create_all([item(0), item(1)], concurrency=2, timeout=0.6)
    assert isinstance(outcomes[0].error, APITimeoutError)
    assert isinstance(outcomes[1].error, RateLimitError)  # 1 s would pass its deadline
    assert attempts == Counter({0: 1, 1: 1})


async def test_429_without_retry_after_uses_backoff(
    mocked: aioresponses, mock_client: AsyncCrewship, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(RUNS_URL, status=429)
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    fan = mock_client.runs.create_many([item(n) for n in range(3)], concurrency=8)
    async with fan as outcomes:
        results = [o async for o in outcomes]
        assert outcomes.concurrency < 8
    assert all(o.ok for o in results)
    assert "all requests paused" in caplog.text
    assert KEY not in caplog.text


async def test_aimd_halves_once_per_window_and_recovers() -> None:
    limiter = anyio.CapacityLimiter(8)
    rate = AIMD(limiter, 8)
    rate.on_rate_limit(0)
    assert (rate.limit, limiter.total_tokens, rate.epoch) == (4, 4, 1)
    rate.on_rate_limit(0)  # sent before the decrease: same congestion event
    assert rate.limit == 4
    rate.on_rate_limit(1)
    rate.on_rate_limit(2)
    rate.on_rate_limit(3)
    assert (rate.limit, rate.lowest) == (1, 1)
    rate.on_success()
    assert rate.limit == 2
    for _ in range(2 + 3 + 4 + 5 + 6 + 7):
        rate.on_success()
    assert rate.limit == 8
    rate.on_success()
    assert limiter.total_tokens == 8


async def test_gate_waits_until_its_latest_reopening() -> None:
    gate = RateGate()
    assert gate.remaining() == 0
    await gate.wait()
    gate.close(0.02)
    gate.close(0.01)  # never shortens
    assert gate.remaining() > 0.01
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(gate.wait)
        await anyio.sleep(0.01)
        gate.close(0.04)
    assert anyio.current_time() - start >= 0.045 - CLOCK_GRAIN
    assert gate.remaining() == 0


# -- ordering ---------------------------------------------------------------------------


async def test_ordered_yields_in_order_with_a_bounded_buffer(
    server: RunServer, client: AsyncCrewship
) -> None:
    concurrency, max_pending, total = 4, 8, 40
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n != 0)
    fan = client.runs.create_many(
        (item(n) for n in range(total)),
        concurrency=concurrency,
        ordered=True,
        max_pending=max_pending,
    )
    async with fan as outcomes:
        await eventually(lambda: len(server.received) >= max_pending)
        await asyncio.sleep(0.1)  # give it every chance to run further ahead
        assert len(server.received) <= max_pending + concurrency
        release.set()
        got = [o.index async for o in outcomes]
    assert got == list(range(total))


async def test_ordered_create_all_and_progress(server: RunServer, client: AsyncCrewship) -> None:
    calls: list[tuple[int, int, int]] = []
    items: list[Any] = [item(n) for n in range(30)]
    items[4] = "nope"
    outcomes = await client.runs.create_all(
        items,
        concurrency=5,
        ordered=True,
        on_progress=lambda *args: calls.append(args),
    )
    assert [o.index for o in outcomes] == list(range(30))
    assert [c[0] for c in calls] == list(range(1, 31))
    assert calls[-1] == (30, 1, 0)
    assert [c[1] for c in calls] == [0] * 4 + [1] * 26
    assert all(0 <= c[2] <= 5 for c in calls)


async def test_on_progress_exception_propagates_and_cleans_up(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n == 0)

    def boom(done: int, failed: int, in_flight: int) -> None:
        raise KeyError("progress")

    with pytest.raises(KeyError):
        async for _ in client.runs.create_many([item(n) for n in range(10)], on_progress=boom):
            pass
    await assert_clean(server, made_sessions)


async def test_progress_bar_with_rich(
    server: RunServer, client: AsyncCrewship, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = await client.runs.create_all([item(n) for n in range(25)], progress=True)
    assert len(outcomes) == 25
    assert "25/25" in capsys.readouterr().err

    async def source() -> AsyncIterator[dict[str, Any]]:
        yield item(0)

    assert len(await client.runs.create_all(source(), progress=True)) == 1


class RecordingReporter:
    """A progress reporter that keeps what it is told."""

    def __init__(self) -> None:
        self.seen: list[FanOutStats] = []
        self.closed = 0

    def update(self, stats: FanOutStats) -> None:
        self.seen.append(stats)

    def close(self) -> None:
        self.closed += 1


async def test_a_progress_reporter_gets_the_stats_after_each_outcome(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    reporter = RecordingReporter()
    requests = [item(n) for n in range(5)] + [{"deployment_id": ""}]
    outcomes = await client.runs.create_all(requests, concurrency=2, progress=reporter)
    assert len(outcomes) == 6
    assert [stats.done for stats in reporter.seen] == [1, 2, 3, 4, 5, 6]
    assert reporter.seen[-1].failed == 1
    assert {stats.total for stats in reporter.seen} == {6}
    assert {stats.concurrency for stats in reporter.seen} == {2}
    assert reporter.closed == 1
    await assert_clean(server, made_sessions)


async def test_stats_describe_the_fan_out_before_and_after(
    server: RunServer, client: AsyncCrewship
) -> None:
    fan = client.runs.create_many((item(n) for n in range(3)), concurrency=4)
    assert fan.stats == FanOutStats(concurrency=4, lowest_concurrency=4)
    async with fan as outcomes:
        results = [o async for o in outcomes]
    stats = fan.stats
    assert (stats.done, stats.failed, stats.in_flight, stats.pending) == (3, 0, 0, 0)
    assert (stats.concurrency, stats.lowest_concurrency, stats.rate_limited) == (4, 4, 0)
    assert stats.paused_for == 0
    assert stats.total is None  # a generator has no length
    assert len(results) == 3


@pytest.mark.parametrize("progress", [3, "yes", object()])
def test_progress_must_be_a_bool_or_a_reporter(progress: object) -> None:
    client = AsyncCrewship(api_key=KEY, base_url=MOCK_BASE)
    with pytest.raises(TypeError, match="progress must be a bool or an object"):
        client.runs.create_many([item(0)], progress=progress)  # type: ignore[arg-type]


async def test_progress_without_rich_says_what_to_install(
    client: AsyncCrewship, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    with pytest.raises(ImportError, match=r"crewship-async\[cli\]"):
        client.runs.create_many([item(0)], progress=True)


# -- cleanup ----------------------------------------------------------------------------


async def test_break_inside_async_with_cleans_up(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n < 3)
    async with client.runs.create_many((item(n) for n in range(1000)), concurrency=10) as out:
        async for _ in out:
            break
    await assert_clean(server, made_sessions)
    assert len(server.received) <= 13


async def test_break_then_aclose_cleans_up(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n == 0)
    fan = client.runs.create_many((item(n) for n in range(1000)), concurrency=10)
    async for _ in fan:
        break
    assert fanout_tasks() != []  # still running after the break
    await fan.aclose()
    await fan.aclose()  # idempotent
    await assert_clean(server, made_sessions)
    assert [o async for o in fan] == []
    with pytest.raises(RuntimeError, match="closed"):
        async with fan:
            pass
    assert "closed" in repr(fan)


async def test_abandoned_iterator_is_cancelled_when_collected(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n == 0)
    async for _ in client.runs.create_many((item(n) for n in range(1000)), concurrency=10):
        break
    gc.collect()
    await eventually(lambda: not fanout_tasks())
    await assert_clean(server, made_sessions)


async def test_cancelling_the_consumer_cleans_up(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release)

    async def consume() -> None:
        async for _ in client.runs.create_many((item(n) for n in range(100)), concurrency=10):
            pass

    task = asyncio.create_task(consume())
    await eventually(lambda: server.in_flight == 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_clean(server, made_sessions)


async def test_cancel_scope_around_create_all_cleans_up(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    async def hang(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    mocked.post(RUNS_URL, callback=hang, repeat=True)
    baseline = len(asyncio.all_tasks())
    with anyio.move_on_after(0.05) as scope:
        await mock_client.runs.create_all([item(n) for n in range(50)], concurrency=5)
    assert scope.cancelled_caught
    assert len(asyncio.all_tasks()) == baseline


async def test_aclose_from_another_task_ends_the_iteration(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    async def hang(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    mocked.post(RUNS_URL, callback=hang, repeat=True)
    baseline = len(asyncio.all_tasks())
    fan = mock_client.runs.create_many([item(n) for n in range(5)])
    assert "not started" in repr(fan)
    assert fan.in_flight == 0

    async def close_soon() -> None:
        await eventually(lambda: fan.in_flight == 5)
        assert "running" in repr(fan)
        await fan.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(close_soon)
        assert [o async for o in fan] == []
    assert len(asyncio.all_tasks()) == baseline


async def test_join_survives_a_native_cancel_of_the_closer() -> None:
    finished = asyncio.Event()

    async def slow_to_cancel() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)  # cleanup that takes a while
            finished.set()

    worker = asyncio.create_task(slow_to_cancel())
    await asyncio.sleep(0)
    closer = asyncio.create_task(cancel_and_join(worker))
    await asyncio.sleep(0.01)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert finished.is_set()  # the join finished before the cancellation propagated


async def test_finalizer_ignores_a_finished_task() -> None:
    async def nothing() -> None:
        return None

    task = asyncio.create_task(nothing())
    await task
    cancel_soon(asyncio.get_running_loop(), task)
    assert not task.cancelled()


async def test_internal_failure_reaches_the_consumer(
    mocked: aioresponses, mock_client: AsyncCrewship, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)

    def broken_outcome(*args: Any, **kwargs: Any) -> RunOutcome:
        raise RuntimeError("bug")

    monkeypatch.setattr(sending, "RunOutcome", broken_outcome)
    with pytest.raises(Exception) as info:  # noqa: PT011 - an exception group from anyio
        await mock_client.runs.create_all([item(0)])
    assert "bug" in repr(info.value.exceptions)  # type: ignore[attr-defined]


# -- arguments and lifecycle ------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "kwargs", "error"),
    [
        ({"deployment_id": "dep_a"}, {}, TypeError),
        ("dep_a", {}, TypeError),
        (RunRequest("dep_a"), {}, TypeError),
        (5, {}, TypeError),
        ([], {"concurrency": 0}, ValueError),
        ([], {"concurrency": True}, TypeError),
        ([], {"concurrency": "4"}, TypeError),
        ([], {"max_pending": 0}, ValueError),
        ([], {"timeout": 0}, ValueError),
        ([], {"timeout": float("inf")}, ValueError),
        ([], {"timeout": "1"}, ValueError),
        ([], {"timeout": True}, ValueError),
        ([], {"on_progress": 3}, TypeError),
    ],
)
def test_invalid_arguments_raise_at_the_call(
    requests: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    client = AsyncCrewship(api_key=KEY, base_url=MOCK_BASE)
    with pytest.raises(error):
        client.runs.create_many(requests, **kwargs)


async def test_closed_client_raises(mock_client: AsyncCrewship) -> None:
    await mock_client.aclose()
    with pytest.raises(ClientClosedError):
        async for _ in mock_client.runs.create_many([item(0)]):
            pass
    with pytest.raises(ClientClosedError):
        await mock_client.runs.create_all([item(0)])


async def test_closing_the_client_mid_batch_ends_an_endless_one(server: RunServer) -> None:
    client = AsyncCrewship(api_key=KEY, base_url=server.url, retry_policy=FAST)

    def endless() -> Iterator[dict[str, Any]]:
        n = 0
        while True:
            yield item(n)
            n += 1

    got = 0

    async def consume() -> None:
        nonlocal got
        async with client.runs.create_many(endless(), concurrency=4) as outcomes:
            async for _ in outcomes:
                got += 1
                if got == 10:
                    await client.aclose()

    with pytest.raises(ClientClosedError):
        await consume()
    assert got >= 10


async def test_empty_input(mock_client: AsyncCrewship) -> None:
    assert await mock_client.runs.create_all([]) == []
    fan = mock_client.runs.create_many(iter(()))
    assert [o async for o in fan] == []
    assert [o async for o in fan] == []
    unstarted = mock_client.runs.create_many([item(0)])
    await unstarted.aclose()
    assert [o async for o in unstarted] == []


# -- against the emulator ---------------------------------------------------------------


async def test_emulator_concurrency_and_rate_limit_burst() -> None:
    testing = pytest.importorskip("crewship_async.testing")
    async with testing.CrewshipEmulator(step_delay=0.001) as emu:
        emu.faults.latency(0.002, route="POST /v1/runs")
        emu.faults.fail_next(5, status=429, headers={"Retry-After": "1"}, route="POST /v1/runs")
        async with emu.client(retry_policy=FAST) as client:
            fan = client.runs.create_many(
                ({"deployment_id": "dep_emu", "input": {"n": n}} for n in range(400)),
                concurrency=16,
            )
            started = anyio.current_time()
            async with fan as outcomes:
                results = [o async for o in outcomes]
            elapsed = anyio.current_time() - started
        assert sorted(o.index for o in results) == list(range(400))
        assert all(o.ok for o in results)
        assert len(emu.runs) == 400  # every run created exactly once
        assert len({o.run.run_id for o in results if o.run is not None}) == 400
        assert emu.stats.peak_in_flight <= 16
        assert fan.stats.lowest_concurrency <= 8
        assert elapsed >= 1.0 - CLOCK_GRAIN  # the Retry-After: 1 held the batch back
