"""create_many: stopping the feed and draining what is in flight; bounded waits and buffers.

The servers and helpers are those of ``test_fanout``: a real ``aiohttp.web`` server that
counts what it handles, aioresponses for HTTP corner cases, and the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, Optional

import aiohttp
import anyio
import pytest
from aiohttp import web
from aioresponses import CallbackResult, aioresponses
from test_fanout import (
    FAST,
    KEY,
    MOCK_BASE,
    RUNS,
    RUNS_URL,
    RunServer,
    assert_clean,
    blocked_hook,
    eventually,
    item,
    mock_created,
)

from crewship_async import APITimeoutError, AsyncCrewship, RateLimitError, RunOutcome
from crewship_async._ratelimit import RateGate
from crewship_async.testing import CrewshipEmulator


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


class Counted:
    """A sync source of ``item(n)`` that counts what was pulled from it."""

    def __init__(self, total: Optional[int] = None) -> None:
        self.total = total
        self.pulled = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        n = 0
        while self.total is None or n < self.total:
            self.pulled += 1
            yield item(n)
            n += 1


def number(request: dict[str, Any]) -> int:
    """The ``n`` of the item an aioresponses callback was called with."""
    n: int = json.loads(request["data"])["input"]["n"]
    return n


def runs_of(outcomes: list[RunOutcome]) -> list[int]:
    return sorted(o.index for o in outcomes if o.ok)


# -- stop_feeding: finish what is in flight, then end --------------------------------------


async def test_stop_feeding_finishes_in_flight_and_ends(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release)
    source = Counted(10_000)
    fan = client.runs.create_many(source, concurrency=8)
    got: list[RunOutcome] = []
    async with fan as outcomes:
        await eventually(lambda: server.in_flight == 8)
        fan.stop_feeding()
        assert "draining" in repr(fan)
        pulled = source.pulled
        assert pulled == 8  # the pump pulls only what it can send at once
        release.set()
        got = [o async for o in outcomes]  # ends normally, no exception
    assert source.pulled == pulled  # nothing more pulled after the call
    assert len(server.received) == pulled  # and nothing more sent
    assert runs_of(got) == list(range(pulled))  # every run it created is reported
    assert server.created == Counter(range(pulled))
    assert fan.cut_short == 0
    await assert_clean(server, made_sessions)


async def test_stop_feeding_before_the_start_pulls_nothing(
    server: RunServer, client: AsyncCrewship
) -> None:
    source = Counted(10)
    fan = client.runs.create_many(source)
    fan.stop_feeding()
    assert [o async for o in fan] == []
    assert source.pulled == 0
    assert await fan.drain() == 0
    fan.stop_feeding(grace=0)  # after the end: nothing to do
    assert server.received == []


async def test_stop_feeding_after_the_end_does_nothing(
    server: RunServer, client: AsyncCrewship
) -> None:
    fan = client.runs.create_many([item(n) for n in range(3)])
    async with fan as outcomes:
        got = [o async for o in outcomes]
        # Every item yielded, nothing running or waiting: the fan-out has finished.
        assert fan.stats.done == fan.stats.total == 3
        assert fan.in_flight == fan.stats.pending == 0
        fan.stop_feeding(grace=0)
        assert await fan.drain(grace=1) == 0
    assert runs_of(got) == [0, 1, 2]
    assert fan.cut_short == 0


@pytest.mark.parametrize("grace", [-1, math.nan, math.inf, True, "1"])
def test_stop_feeding_refuses_a_bad_grace(grace: Any) -> None:
    client = AsyncCrewship(api_key=KEY, base_url=MOCK_BASE)
    fan = client.runs.create_many([item(0)])
    with pytest.raises(ValueError, match="grace"):
        fan.stop_feeding(grace=grace)
    assert "<FanOut not started " in repr(fan)  # a refused call changes nothing


async def test_stop_feeding_from_a_loop_callback(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    # What a handler installed with loop.add_signal_handler does: a plain callback.
    release = asyncio.Event()
    server.hook = blocked_hook(release)
    source = Counted()
    fan = client.runs.create_many(source, concurrency=4)
    loop = asyncio.get_running_loop()
    async with fan as outcomes:
        await eventually(lambda: server.in_flight == 4)
        loop.call_soon(fan.stop_feeding)
        loop.call_soon(release.set)
        got = [o async for o in outcomes]
    assert runs_of(got) == list(range(source.pulled))
    assert source.pulled == 4
    await assert_clean(server, made_sessions)


# -- grace: what is still in flight when it ends is cut short and reported -----------------


async def test_grace_cuts_short_and_reports_may_or_may_not(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n < 20)  # the rest hang
    fan = client.runs.create_many(Counted(), concurrency=6)
    got: list[RunOutcome] = []
    async with fan as outcomes:
        async for outcome in outcomes:
            got.append(outcome)
            if len(got) == 20:
                await eventually(lambda: server.in_flight == 6)
                start = anyio.current_time()
                fan.stop_feeding(grace=0.2)
        elapsed = anyio.current_time() - start
    assert elapsed == pytest.approx(0.2, abs=0.15)
    cut = [o for o in got if not o.ok]
    assert fan.cut_short == len(cut) == 6
    for outcome in cut:
        assert isinstance(outcome.error, APITimeoutError)
        assert "may or may not exist" in str(outcome.error)
        assert "0.2s after create_many stopped feeding" in str(outcome.error)
        assert outcome.request == item(outcome.index)
    assert sorted(o.index for o in got) == list(range(len(got)))  # one outcome per pull
    assert server.created == Counter(runs_of(got))  # every run created is an ok outcome
    release.set()
    await assert_clean(server, made_sessions)


async def test_grace_zero_cuts_at_once_and_a_shorter_grace_wins(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release)
    fan = client.runs.create_many(Counted(), concurrency=3)
    async with fan as outcomes:
        await eventually(lambda: server.in_flight == 3)
        fan.stop_feeding(grace=60)
        fan.stop_feeding(grace=120)  # never lengthens
        fan.stop_feeding()  # nor does an unlimited one
        with anyio.fail_after(5):
            assert await fan.drain(grace=0) == 3
        assert fan.in_flight == 0
        got = [o async for o in outcomes]  # the drained outcomes wait to be yielded
    assert [o.index for o in got] == [0, 1, 2]
    assert all(isinstance(o.error, APITimeoutError) for o in got)
    release.set()
    await assert_clean(server, made_sessions)


async def test_drain_from_another_task_while_one_iterates(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n < 30)
    fan = client.runs.create_many(Counted(), concurrency=5)
    got: list[RunOutcome] = []

    async def consume() -> None:
        async with fan as outcomes:
            async for outcome in outcomes:
                got.append(outcome)

    async def shut_down() -> None:
        await eventually(lambda: len(got) >= 30 and server.in_flight == 5)
        async with anyio.create_task_group() as inner:
            inner.start_soon(fan.drain)
            await eventually(lambda: "<FanOut draining " in repr(fan))
            release.set()
        assert fan.in_flight == 0

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        tg.start_soon(shut_down)
    assert all(o.ok for o in got)
    assert sorted(o.index for o in got) == list(range(len(got)))
    assert server.created == Counter(range(len(got)))
    await assert_clean(server, made_sessions)


async def test_cut_short_items_not_sent_say_no_run_was_created(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    # Item 0's 429 closes the gate for 30 s: at the cut it waits to be sent again. The
    # second 429 is for item 2, of the second fan-out below.
    mocked.post(RUNS_URL, status=429, headers={"Retry-After": "30"})
    mocked.post(RUNS_URL, status=429, headers={"Retry-After": "30"})
    mocked.post(RUNS_URL, callback=mock_created, repeat=True)
    fan = mock_client.runs.create_many([item(0), item(1)], concurrency=1, timeout=60)
    async with fan as outcomes:
        await eventually(lambda: fan.stats.paused_for > 1)
        fan.stop_feeding(grace=0.05)
        got = [o async for o in outcomes]

    # Item 2's 429 asks for 30 s (and halves the concurrency of 4 to 2); item 3, pulled
    # while the gate is closed, waits to be sent at all.
    async def after_the_429() -> AsyncIterator[Any]:
        yield item(2)
        await eventually(lambda: fan.stats.rate_limited == 1)
        yield item(3)
        yield item(4)

    fan = mock_client.runs.create_many(after_the_429(), concurrency=4)
    async with fan as outcomes:
        await eventually(lambda: fan.in_flight == 2)
        fan.stop_feeding(grace=0.05)
        got += [o async for o in outcomes]
    assert [o.index for o in got] == [0, 0, 1]  # items 1 and 4 were never pulled
    assert [o.request for o in got] == [item(0), item(2), item(3)]
    assert fan.cut_short == 2
    for outcome in got:
        assert isinstance(outcome.error, APITimeoutError)
        assert "no run was created" in str(outcome.error)
        assert "may or may not" not in str(outcome.error)
    # Only the first attempts of items 0 and 2.
    assert len(mocked.requests[("POST", RUNS)]) == 2


async def test_cut_short_in_order_releases_what_was_held(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n != 0)  # only the first hangs
    fan = client.runs.create_many(Counted(), concurrency=4, ordered=True, max_pending=8)
    async with fan as outcomes:
        # The first item hangs: every later outcome is held back behind it.
        await eventually(lambda: fan.stats.pending >= 8 and fan.in_flight == 1)
        fan.stop_feeding(grace=0)
        got = [o async for o in outcomes]
    assert [o.index for o in got] == list(range(len(got)))
    assert isinstance(got[0].error, APITimeoutError)
    assert all(o.ok for o in got[1:])
    release.set()
    await assert_clean(server, made_sessions)


async def test_a_pull_of_an_async_source_is_cancelled_not_lost(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    waiting = asyncio.Event()
    cancelled = asyncio.Event()

    async def source() -> AsyncIterator[dict[str, Any]]:
        for n in range(3):
            yield item(n)
        waiting.set()
        try:
            await asyncio.sleep(60)  # a queue that stays empty
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield item(3)  # pragma: no cover - never reached

    fan = client.runs.create_many(source(), concurrency=4)
    async with fan as outcomes:
        await waiting.wait()
        fan.stop_feeding()
        got = [o async for o in outcomes]
    assert cancelled.is_set()
    assert runs_of(got) == [0, 1, 2]
    await assert_clean(server, made_sessions)


async def test_an_item_handed_over_despite_the_cancel_is_still_sent(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    waiting = asyncio.Event()

    async def stubborn() -> AsyncIterator[dict[str, Any]]:
        yield item(0)
        waiting.set()
        # Swallowing the cancellation (bad manners): the item it hands over must not vanish.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        yield item(1)

    fan = client.runs.create_many(stubborn(), concurrency=4)
    async with fan as outcomes:
        await waiting.wait()
        fan.stop_feeding()
        got = [o async for o in outcomes]
    assert runs_of(got) == [0, 1]
    assert server.created == Counter({0: 1, 1: 1})
    await assert_clean(server, made_sessions)


# -- bounded waits: the item's deadline ends the waits after a 429 --------------------------


async def test_gate_wait_is_bounded_by_a_deadline() -> None:
    gate = RateGate()
    now = anyio.current_time()
    assert await gate.wait(now + 0.001)  # never closed
    gate.close(30)
    with anyio.fail_after(1):
        assert not await gate.wait(now + 0.05)  # it reopens after the deadline: no sleep
    gate = RateGate()
    gate.close(0.02)
    assert await gate.wait(anyio.current_time() + 5)
    gate.close(0.02)

    async def extend() -> None:
        await anyio.sleep(0.01)
        gate.close(30)

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(extend)
            assert not await gate.wait(anyio.current_time() + 1)


async def test_a_gate_held_shut_past_the_deadline_fails_at_once(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    # Item 0 waits 100 ms at the gate; item 1's 429 then closes it for 30 s, far past
    # item 0's 300 ms deadline: item 0 fails when it sees that, not 30 s later.
    async def answer(url: Any, **kwargs: Any) -> CallbackResult:
        if number(kwargs) == 1:
            await asyncio.sleep(0.05)
            return CallbackResult(status=429, headers={"Retry-After": "30"})
        return CallbackResult(status=429, headers={"Retry-After-Ms": "100"})

    mocked.post(RUNS_URL, callback=answer, repeat=True)
    start = anyio.current_time()
    with anyio.fail_after(5):
        got = await mock_client.runs.create_all([item(0), item(1)], concurrency=2, timeout=0.3)
    assert anyio.current_time() - start < 1
    assert isinstance(got[0].error, APITimeoutError)
    assert "not sent again" in str(got[0].error)
    assert isinstance(got[1].error, RateLimitError)


async def test_waiting_for_a_slot_after_a_429_is_bounded_by_the_deadline(
    mocked: aioresponses, mock_client: AsyncCrewship
) -> None:
    # Item 0's 429 halves the limit to 1 while item 1 holds the only slot for 30 s.
    hold = asyncio.Event()

    async def answer(url: Any, **kwargs: Any) -> CallbackResult:
        if number(kwargs) == 1:
            await hold.wait()
            return mock_created(url, **kwargs)
        await asyncio.sleep(0.02)
        return CallbackResult(status=429, headers={"Retry-After": "0"})

    mocked.post(RUNS_URL, callback=answer, repeat=True)
    fan = mock_client.runs.create_many([item(0), item(1)], concurrency=2, timeout=0.3)
    start = anyio.current_time()
    async with fan as outcomes:
        with anyio.fail_after(5):
            first = await outcomes.__anext__()
        assert anyio.current_time() - start < 1
        assert first.index == 0
        assert isinstance(first.error, APITimeoutError)
        assert "not sent again" in str(first.error)
        assert fan.concurrency == 1
        hold.set()
        rest = [o async for o in outcomes]
    assert [o.index for o in rest] == [1]


# -- bounded buffers: a consumer that stops reading stops the source -----------------------


@pytest.mark.parametrize("ordered", [False, True])
async def test_a_consumer_that_never_reads_bounds_what_is_pulled(
    server: RunServer,
    client: AsyncCrewship,
    made_sessions: list[aiohttp.ClientSession],
    ordered: bool,
) -> None:
    concurrency, max_pending = 8, 16
    source = Counted(1_000_000)
    fan = client.runs.create_many(
        source, concurrency=concurrency, max_pending=max_pending, ordered=ordered
    )
    async with fan as outcomes:
        # Every pulled item finished, and the pump is blocked on the full buffer.
        await eventually(
            lambda: (
                source.pulled >= max_pending
                and server.completed == source.pulled
                and fan.in_flight == 0
            )
        )
        settled = source.pulled
        await asyncio.sleep(0.2)  # every chance to run further ahead
        assert source.pulled == settled
        assert settled <= max_pending + concurrency
        assert fan.stats.pending == settled
        # Up to concurrency - 1 outcomes past max_pending may have finished while the pump
        # was blocked: reading until fewer than max_pending wait lets it go on, a bit.
        first = await outcomes.__anext__()
        for _ in range(settled - max_pending):
            await outcomes.__anext__()
        await eventually(lambda: source.pulled > settled)
        assert source.pulled <= settled + concurrency
    if ordered:
        assert first.index == 0
    await assert_clean(server, made_sessions)


async def test_a_stuck_first_item_bounds_the_reorder_buffer(
    server: RunServer, client: AsyncCrewship, made_sessions: list[aiohttp.ClientSession]
) -> None:
    concurrency, max_pending = 4, 12
    release = asyncio.Event()
    server.hook = blocked_hook(release, unless=lambda n: n != 0)
    source = Counted(1_000_000)
    fan = client.runs.create_many(
        source, concurrency=concurrency, max_pending=max_pending, ordered=True
    )
    async with fan as outcomes:
        await eventually(lambda: fan.stats.pending >= max_pending and fan.in_flight == 1)
        settled = source.pulled
        await asyncio.sleep(0.2)
        assert source.pulled == settled <= max_pending + concurrency
        assert fan.stats.pending <= max_pending + concurrency - 1
        release.set()
        got = [await outcomes.__anext__() for _ in range(settled)]
    assert [o.index for o in got] == list(range(settled))
    await assert_clean(server, made_sessions)


# -- against the emulator ----------------------------------------------------------------


async def test_emulator_drain_records_every_run_it_created() -> None:
    async with CrewshipEmulator(step_delay=0.001) as emu:
        emu.faults.latency(0.05, route="POST /v1/runs")
        async with emu.client(retry_policy=FAST) as c:
            source = Counted(100_000)
            fan = c.runs.create_many(source, concurrency=32)
            got: list[RunOutcome] = []
            async with fan as outcomes:
                async for outcome in outcomes:
                    got.append(outcome)
                    if len(got) == 200:
                        assert fan.in_flight > 0
                        fan.stop_feeding(grace=30)
        posts = [r for r in emu.requests if r.method == "POST" and r.path == "/v1/runs"]
        assert len(posts) == source.pulled < 200 + 2 * 32
        assert all(o.ok for o in got)
        assert sorted(o.index for o in got) == list(range(source.pulled))
        created = Counter(run.input["n"] for run in emu.runs.values())
        assert created == Counter(range(source.pulled))  # each exactly once, all reported
        assert {o.run.run_id for o in got if o.run is not None} == set(emu.runs)
        assert fan.cut_short == 0


async def test_emulator_grace_expiry_reports_only_the_unknown_ones() -> None:
    async with CrewshipEmulator(step_delay=0.001) as emu:
        emu.faults.latency(0.02, route="POST /v1/runs")
        async with emu.client(retry_policy=FAST) as c:
            fan = c.runs.create_many(Counted(100_000), concurrency=16)
            got: list[RunOutcome] = []
            async with fan as outcomes:
                async for outcome in outcomes:
                    got.append(outcome)
                    if len(got) == 20:
                        emu.faults.latency(30, route="POST /v1/runs")  # what comes next hangs
                    if len(got) == 30:
                        fan.stop_feeding(grace=0.5)
            await eventually(lambda: emu.stats.in_flight == 0)
        ok = [o for o in got if o.ok]
        unknown = [o for o in got if not o.ok]
        assert unknown
        assert fan.cut_short == len(unknown)
        assert all("may or may not exist" in str(o.error) for o in unknown)
        assert {o.run.run_id for o in ok if o.run is not None} == set(emu.runs)
        assert sorted(o.index for o in got) == list(range(len(got)))


async def test_stop_feeding_as_the_task_starts_and_closing_before_the_cut(
    server: RunServer, client: AsyncCrewship
) -> None:
    source = Counted(10)
    fan = client.runs.create_many(source)
    async with fan as outcomes:  # the engine exists, its task has not run yet
        fan.stop_feeding(grace=0)
        assert [o async for o in outcomes] == []
    assert source.pulled == 0

    fan = client.runs.create_many(source)
    async with fan:
        fan.stop_feeding(grace=0.01)
    # aclose cancelled the task before it ran; the timer that fires later finds no work.
    await asyncio.sleep(0.05)
    assert fan.cut_short == 0
    assert source.pulled == 0
