"""client.threads and client.threads.runs against aioresponses."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Callable

import anyio
import pytest
from aioresponses import CallbackResult, aioresponses

from crewship_async import (
    APITimeoutError,
    AsyncCrewship,
    Checkpoint,
    ConflictError,
    NotFoundError,
    ResponseError,
    RetryPolicy,
    Run,
    RunCreated,
    Thread,
    ThreadBusyError,
    ThreadRunResult,
    ThreadStatus,
    _deadline,
)
from crewship_async.resources import thread_runs as thread_runs_module
from crewship_async.testing import CrewshipEmulator

BASE = "https://api.example.test"
THREAD = {
    "thread_id": "thr_1",
    "deployment_id": "dep_1",
    "status": "idle",
    "metadata": {"user_id": "u1"},
    "values": {"messages": [{"role": "user", "content": "Hello"}]},
    "created_at": "2024-01-15T10:35:00Z",
    "updated_at": "2024-01-15T10:40:00Z",
}
ACCEPTED = {
    "run_id": "run_1",
    "thread_id": "thr_1",
    "version_id": "ver_1",
    "version_number": 3,
    "status": "running",
}
BUSY = {"error": {"message": "Thread is busy: run run_0 is still executing", "code": "conflict"}}
THREAD_URL = f"{BASE}/v1/threads/thr_1"
RUNS_URL = f"{BASE}/v1/threads/thr_1/runs"
HISTORY = re.compile(r"^https://api\.example\.test/v1/threads/thr_1/history(\?.*)?$")
LIST = re.compile(r"^https://api\.example\.test/v1/threads\?.*$")


def thread(**changes: Any) -> dict[str, Any]:
    return {**THREAD, **changes}


def checkpoint(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "checkpoint_id": f"ckpt_{n}",
        "run_id": f"run_{n}",
        "values": {"n": n},
        "created_at": "2024-01-15T10:35:00Z",
        **changes,
    }


def calls(mock: aioresponses, method: str, path: str) -> list[Any]:
    """The requests of ``method`` to ``path`` (any query), in the order they were made."""
    out = []
    for (m, url), made in mock.requests.items():
        if m == method and url.path == path:
            out.extend(made)
    return out


def body(call: Any) -> Any:
    return json.loads(call.kwargs["data"])


def queries(mock: aioresponses, path: str) -> list[dict[str, Any]]:
    return [dict(call.kwargs["params"]) for call in calls(mock, "GET", path)]


@pytest.fixture
async def client() -> AsyncIterator[AsyncCrewship]:
    policy = RetryPolicy(initial_delay=0.001, max_delay=0.01)
    async with AsyncCrewship(api_key="k", base_url=BASE, retry_policy=policy) as c:
        yield c


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thread_runs_module, "_BUSY_POLL_INITIAL", 0.001)
    monkeypatch.setattr(thread_runs_module, "_BUSY_POLL_MAX", 0.002)


class Clock:
    """The deadlines' clock shifted by ``offset`` seconds (to pass deadlines at will)."""

    def __init__(self) -> None:
        self.real: Callable[[], float] = _deadline.now
        self.offset = 0.0

    def __call__(self) -> float:
        return self.real() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_deadline, "now", fake)
    return fake


class Log:
    """Records the order of requests answered through callbacks."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def answer(self, name: str, status: int, payload: Any) -> Callable[..., CallbackResult]:
        def callback(url: Any, **kwargs: Any) -> CallbackResult:
            self.entries.append(name)
            return CallbackResult(status=status, payload=payload)

        return callback


# --- threads: create, get, delete, copy --------------------------------------------------


async def test_create_sends_the_given_fields(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(f"{BASE}/v1/threads", status=201, payload=thread(values=None))
        created = await client.threads.create("dep_1", metadata={"user_id": "u1"})
    assert isinstance(created, Thread)
    assert created.thread_id == "thr_1"
    assert created.status is ThreadStatus.IDLE
    assert created.is_idle
    assert not created.is_busy
    assert created.values is None
    assert created.created_at == datetime(2024, 1, 15, 10, 35, tzinfo=UTC)
    [call] = calls(m, "POST", "/v1/threads")
    assert body(call) == {"deployment_id": "dep_1", "metadata": {"user_id": "u1"}}
    assert call.kwargs["headers"]["Authorization"] == "Bearer k"


async def test_create_with_values(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(f"{BASE}/v1/threads", status=201, payload=THREAD)
        await client.threads.create("dep_1", values={"messages": []})
    [call] = calls(m, "POST", "/v1/threads")
    assert body(call) == {"deployment_id": "dep_1", "values": {"messages": []}}


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("",), {}, ValueError),
        ((None,), {}, ValueError),
        ((7,), {}, TypeError),
        (("dep_1",), {"metadata": ["not", "an", "object"]}, TypeError),
        (("dep_1",), {"values": {1: "int key"}}, TypeError),
    ],
)
async def test_create_checks_arguments_before_sending(
    client: AsyncCrewship, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with aioresponses() as m:
        with pytest.raises(error):
            await client.threads.create(*args, **kwargs)
        assert not m.requests


async def test_get_encodes_the_id_and_keeps_unknowns(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(f"{BASE}/v1/threads/thr%2F..%2Fx", payload=thread(status="paused", ttl=30))
        got = await client.threads.get("thr/../x")
    assert got.status == "paused"
    assert not isinstance(got.status, ThreadStatus)
    assert got.extra == {"ttl": 30}
    assert got.metadata == {"user_id": "u1"}


async def test_get_unknown_thread(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(THREAD_URL, status=404, payload={"error": {"message": "Thread not found"}})
        with pytest.raises(NotFoundError, match="GET /v1/threads/thr_1 -> 404"):
            await client.threads.get("thr_1")


@pytest.mark.parametrize("bad", ["", ".", "..", None])
async def test_ids_are_checked(client: AsyncCrewship, bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        await client.threads.get(bad)
    with pytest.raises((TypeError, ValueError)):
        await client.threads.runs.create(bad)


async def test_get_rejects_a_wrong_shape(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(THREAD_URL, payload={"status": "idle"})
        with pytest.raises(ResponseError, match="thread_id"):
            await client.threads.get("thr_1")


async def test_delete(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.delete(THREAD_URL, status=204)
        await client.threads.delete("thr_1")
    assert len(calls(m, "DELETE", "/v1/threads/thr_1")) == 1


async def test_delete_busy_thread_conflict(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.delete(THREAD_URL, status=409, payload=BUSY)
        with pytest.raises(ConflictError):
            await client.threads.delete("thr_1")


async def test_copy(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(f"{THREAD_URL}/copy", status=201, payload=thread(thread_id="thr_2"))
        copied = await client.threads.copy("thr_1")
    assert copied.thread_id == "thr_2"
    [call] = calls(m, "POST", "/v1/threads/thr_1/copy")
    assert call.kwargs["data"] is None


# --- threads.list --------------------------------------------------------------------------


async def test_list_walks_every_page(client: AsyncCrewship) -> None:
    items = [thread(thread_id=f"thr_{n}") for n in range(5)]
    with aioresponses() as m:
        m.get(LIST, payload={"threads": items[0:2]})
        m.get(LIST, payload={"threads": items[2:4]})
        m.get(LIST, payload={"threads": items[4:]})
        got = [t.thread_id async for t in client.threads.list("dep_1", status="idle", limit=2)]
    assert got == [f"thr_{n}" for n in range(5)]
    assert queries(m, "/v1/threads") == [
        {"deployment_id": "dep_1", "status": "idle", "limit": 2, "offset": offset}
        for offset in (0, 2, 4)
    ]


async def test_list_status_enum_and_max_items(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(LIST, payload={"threads": [thread(status="busy")] * 3})
        pager = client.threads.list("dep_1", status=ThreadStatus.BUSY, limit=3, max_items=2)
        got = await pager.to_list()
    assert len(got) == 2
    assert queries(m, "/v1/threads")[0]["status"] == "busy"


async def test_list_checks_arguments(client: AsyncCrewship) -> None:
    with pytest.raises(ValueError, match="deployment_id"):
        client.threads.list("")
    with pytest.raises(ValueError, match="limit"):
        client.threads.list("dep_1", limit=0)
    with pytest.raises(ValueError, match="status"):
        client.threads.list("dep_1", status="")


# --- threads.history -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        lambda items: items,
        lambda items: {"history": items},
        lambda items: {"checkpoints": items, "thread_id": "thr_1"},
    ],
    ids=["array", "history", "checkpoints"],
)
async def test_history_shapes(client: AsyncCrewship, shape: Callable[[Any], Any]) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=shape([checkpoint(2), checkpoint(1, extra_field=True)]))
        got = await client.threads.history("thr_1").to_list()
    assert [c.checkpoint_id for c in got] == ["ckpt_2", "ckpt_1"]
    assert isinstance(got[0], Checkpoint)
    assert got[0].values == {"n": 2}
    assert got[1].extra == {"extra_field": True}


async def test_history_lenient_checkpoint(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=[{"state": {"a": 1}}])
        [got] = await client.threads.history("thr_1").to_list()
    assert got.checkpoint_id is None
    assert got.values is None
    assert got.extra == {"state": {"a": 1}}


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"items": []}, "'history' or 'checkpoints'"),
        ("nope", "got str"),
        ({"history": {"not": "a list"}}, "expected a list under 'history'"),
        ([{"created_at": 12}], r"history\[0\]\.created_at"),
    ],
)
async def test_history_bad_shapes(client: AsyncCrewship, payload: Any, match: str) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=payload)
        with pytest.raises(ResponseError, match=match):
            await client.threads.history("thr_1").to_list()


async def test_history_pages_when_the_server_pages(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload={"history": [checkpoint(5), checkpoint(4)]})
        m.get(HISTORY, payload={"history": [checkpoint(3), checkpoint(2)]})
        m.get(HISTORY, payload={"history": [checkpoint(1)]})
        got = await client.threads.history("thr_1", limit=2).to_list()
    assert [c.checkpoint_id for c in got] == [f"ckpt_{n}" for n in (5, 4, 3, 2, 1)]
    path = "/v1/threads/thr_1/history"
    assert queries(m, path) == [{"limit": 2, "offset": o} for o in (0, 2, 4)]


async def test_history_server_ignoring_paging_longer_than_limit(client: AsyncCrewship) -> None:
    whole = [checkpoint(n) for n in range(5)]
    with aioresponses() as m:
        m.get(HISTORY, payload=whole, repeat=True)
        pages = [
            [c.checkpoint_id for c in page]
            async for page in client.threads.history("thr_1", limit=2).pages()
        ]
    assert pages == [["ckpt_0", "ckpt_1"], ["ckpt_2", "ckpt_3"], ["ckpt_4"]]
    assert len(calls(m, "GET", "/v1/threads/thr_1/history")) == 1


async def test_history_server_ignoring_paging_exactly_limit(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=[checkpoint(1), checkpoint(2)], repeat=True)
        got = await client.threads.history("thr_1", limit=2).to_list()
    assert [c.checkpoint_id for c in got] == ["ckpt_1", "ckpt_2"]
    assert len(calls(m, "GET", "/v1/threads/thr_1/history")) == 2


async def test_history_server_ignoring_offset_without_ids(client: AsyncCrewship) -> None:
    page = [{"values": {"n": 1}}, {"values": {"n": 2}}]
    with aioresponses() as m:
        m.get(HISTORY, payload=page, repeat=True)
        got = await client.threads.history("thr_1", limit=2).to_list()
    assert [c.values for c in got] == [{"n": 1}, {"n": 2}]
    assert len(calls(m, "GET", "/v1/threads/thr_1/history")) == 2


async def test_history_skips_repeats_when_the_list_shifts(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=[checkpoint(4), checkpoint(3)])
        # A new checkpoint arrived: the next page repeats ckpt_3.
        m.get(HISTORY, payload=[checkpoint(3), checkpoint(2)])
        m.get(HISTORY, payload=[checkpoint(1)])
        got = await client.threads.history("thr_1", limit=2).to_list()
    assert [c.checkpoint_id for c in got] == ["ckpt_4", "ckpt_3", "ckpt_2", "ckpt_1"]


async def test_history_stops_when_a_page_brings_nothing_new(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=[checkpoint(9), checkpoint(8)])
        # Honours limit, ignores offset, and a new checkpoint arrived in between.
        m.get(HISTORY, payload=[checkpoint(10), checkpoint(9)])
        m.get(HISTORY, payload=[checkpoint(10), checkpoint(9)])
        got = await client.threads.history("thr_1", limit=2).to_list()
    assert [c.checkpoint_id for c in got] == ["ckpt_9", "ckpt_8", "ckpt_10"]
    assert len(calls(m, "GET", "/v1/threads/thr_1/history")) == 3


async def test_history_max_items(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=[checkpoint(n) for n in range(5)])
        got = await client.threads.history("thr_1", limit=2, max_items=3).to_list()
    assert [c.checkpoint_id for c in got] == ["ckpt_0", "ckpt_1", "ckpt_2"]


async def test_history_max_items_at_a_page_boundary(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload=[checkpoint(1), checkpoint(2)], repeat=True)
        got = await client.threads.history("thr_1", limit=2, max_items=2).to_list()
    assert len(got) == 2
    assert len(calls(m, "GET", "/v1/threads/thr_1/history")) == 1


async def test_history_empty(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.get(HISTORY, payload={"history": []})
        assert await client.threads.history("thr_1").to_list() == []


# --- threads.runs.create ---------------------------------------------------------------------


async def test_run_create_sends_input_and_environment(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=202, payload=ACCEPTED)
        created = await client.threads.runs.create(
            "thr_1", input={"message": "hi"}, environment="staging"
        )
    assert isinstance(created, RunCreated)
    assert (created.run_id, created.thread_id) == ("run_1", "thr_1")
    [call] = calls(m, "POST", "/v1/threads/thr_1/runs")
    assert body(call) == {"environment": "staging", "input": {"message": "hi"}}


async def test_run_create_without_input(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=202, payload=ACCEPTED)
        await client.threads.runs.create("thr_1")
    [call] = calls(m, "POST", "/v1/threads/thr_1/runs")
    assert body(call) == {"environment": "production"}


async def test_busy_error_names_the_run_holding_the_thread(client: AsyncCrewship) -> None:
    busy = {"error": {**BUSY["error"], "run_id": "run_0"}}
    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=busy)
        with pytest.raises(ThreadBusyError) as caught:
            await client.threads.runs.create("thr_1")
    assert caught.value.run_id == "run_0"


async def test_busy_raises_thread_busy_error_once(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY, headers={"x-request-id": "req_42"})
        with pytest.raises(ThreadBusyError) as caught:
            await client.threads.runs.create("thr_1", input={"message": "hi"})
    error = caught.value
    assert isinstance(error, ConflictError)
    assert error.thread_id == "thr_1"
    assert error.run_id is None
    assert error.message == "Thread is busy: run run_0 is still executing"
    assert (error.status_code, error.code, error.request_id) == (409, "conflict", "req_42")
    assert error.body == BUSY
    assert "POST /v1/threads/thr_1/runs -> 409" in str(error)
    assert len(calls(m, "POST", "/v1/threads/thr_1/runs")) == 1
    assert not calls(m, "GET", "/v1/threads/thr_1")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"on_busy": "retry"}, ValueError),
        ({"on_busy": None}, ValueError),
        ({"environment": "dev"}, ValueError),
        ({"input": "text"}, TypeError),
        ({"busy_timeout": 0}, ValueError),
        ({"busy_timeout": float("inf")}, ValueError),
        ({"busy_timeout": True}, TypeError),
        ({"timeout": "5"}, TypeError),
    ],
)
async def test_run_create_checks_arguments_before_sending(
    client: AsyncCrewship, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with aioresponses() as m:
        with pytest.raises(error):
            await client.threads.runs.create("thr_1", **kwargs)
        assert not m.requests


@pytest.mark.usefixtures("fast_polls")
async def test_wait_resubmits_once_after_idle(client: AsyncCrewship) -> None:
    log = Log()
    with aioresponses() as m:
        m.post(RUNS_URL, callback=log.answer("POST", 409, BUSY))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="busy")))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="busy")))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="idle")))
        m.post(RUNS_URL, callback=log.answer("POST", 202, ACCEPTED))
        created = await client.threads.runs.create("thr_1", input={"message": "hi"}, on_busy="wait")
    assert created.run_id == "run_1"
    assert log.entries == ["POST", "GET", "GET", "GET", "POST"]
    posts = calls(m, "POST", "/v1/threads/thr_1/runs")
    assert [body(p) for p in posts] == [
        {"environment": "production", "input": {"message": "hi"}}
    ] * 2


@pytest.mark.usefixtures("fast_polls")
async def test_wait_again_when_another_run_takes_the_thread(client: AsyncCrewship) -> None:
    log = Log()
    with aioresponses() as m:
        m.post(RUNS_URL, callback=log.answer("POST", 409, BUSY))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="idle")))
        m.post(RUNS_URL, callback=log.answer("POST", 409, BUSY))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="busy")))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="idle")))
        m.post(RUNS_URL, callback=log.answer("POST", 202, ACCEPTED))
        await client.threads.runs.create("thr_1", on_busy="wait")
    # Exactly one POST per observed idle.
    assert log.entries == ["POST", "GET", "POST", "GET", "GET", "POST"]


@pytest.mark.usefixtures("fast_polls")
async def test_wait_treats_an_unknown_status_as_busy(client: AsyncCrewship) -> None:
    log = Log()
    with aioresponses() as m:
        m.post(RUNS_URL, callback=log.answer("POST", 409, BUSY))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="migrating")))
        m.get(THREAD_URL, callback=log.answer("GET", 200, thread(status="idle")))
        m.post(RUNS_URL, callback=log.answer("POST", 202, ACCEPTED))
        await client.threads.runs.create("thr_1", on_busy="wait")
    assert log.entries == ["POST", "GET", "GET", "POST"]


@pytest.mark.usefixtures("fast_polls")
@pytest.mark.parametrize("status", ["error", "interrupted"])
async def test_wait_ends_on_a_stuck_thread(client: AsyncCrewship, status: str) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY, headers={"x-request-id": "req_7"})
        m.get(THREAD_URL, payload=thread(status="busy"))
        m.get(THREAD_URL, payload=thread(status=status))
        with pytest.raises(ThreadBusyError) as caught:
            await client.threads.runs.create("thr_1", on_busy="wait", busy_timeout=60)
    error = caught.value
    assert f"'{status}'" in error.message
    assert "not idle" in error.message
    assert "Thread is busy" in error.message
    assert (error.thread_id, error.status_code, error.request_id) == ("thr_1", 409, "req_7")
    assert len(calls(m, "POST", "/v1/threads/thr_1/runs")) == 1


@pytest.mark.usefixtures("fast_polls")
async def test_wait_busy_timeout(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY)
        m.get(THREAD_URL, payload=thread(status="busy"), repeat=True)
        with pytest.raises(APITimeoutError, match=r"busy_timeout of 0\.05s") as caught:
            await client.threads.runs.create("thr_1", on_busy="wait", busy_timeout=0.05)
    assert isinstance(caught.value.__cause__, ThreadBusyError)
    assert "no run was created" in str(caught.value)
    assert len(calls(m, "POST", "/v1/threads/thr_1/runs")) == 1
    assert len(calls(m, "GET", "/v1/threads/thr_1")) >= 1


@pytest.mark.usefixtures("fast_polls")
async def test_wait_call_timeout(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY)
        m.get(THREAD_URL, payload=thread(status="busy"), repeat=True)
        with pytest.raises(APITimeoutError, match=r"call's timeout of 0\.05s"):
            await client.threads.runs.create("thr_1", on_busy="wait", busy_timeout=30, timeout=0.05)
    assert len(calls(m, "POST", "/v1/threads/thr_1/runs")) == 1


async def test_wait_bounds_a_hanging_poll(client: AsyncCrewship) -> None:
    async def hang(url: Any, **kwargs: Any) -> CallbackResult:
        await anyio.sleep(30)
        raise AssertionError("unreachable")  # pragma: no cover

    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY)
        m.get(THREAD_URL, callback=hang)
        with pytest.raises(APITimeoutError, match="busy_timeout"):
            await client.threads.runs.create("thr_1", on_busy="wait", busy_timeout=0.05)


async def test_wait_deadline_passed_before_resubmitting(
    client: AsyncCrewship, clock: Clock
) -> None:
    def idle_but_late(url: Any, **kwargs: Any) -> CallbackResult:
        clock.offset += 100  # the poll answered, but the call's deadline has passed
        return CallbackResult(payload=thread(status="idle"))

    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY)
        m.get(THREAD_URL, callback=idle_but_late)
        with pytest.raises(APITimeoutError, match="timeout of 10s passed while thread thr_1"):
            await client.threads.runs.create("thr_1", on_busy="wait", timeout=10)
    assert len(calls(m, "POST", "/v1/threads/thr_1/runs")) == 1


async def test_wait_propagates_a_deleted_thread(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY)
        m.get(THREAD_URL, status=404, payload={"error": {"message": "Thread not found"}})
        with pytest.raises(NotFoundError):
            await client.threads.runs.create("thr_1", on_busy="wait")


async def test_other_errors_are_not_busy(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=404, payload={"error": {"message": "Thread not found"}})
        with pytest.raises(NotFoundError):
            await client.threads.runs.create("thr_1", on_busy="wait")


# --- threads.runs.create_and_wait ------------------------------------------------------------

RUN_DONE = {
    "id": "run_1",
    "status": "succeeded",
    "deployment_id": "dep_1",
    "output": {"result": "Hi!"},
}


async def test_create_and_wait(client: AsyncCrewship) -> None:
    after = thread(values={"messages": [{"role": "assistant", "content": "Hi!"}]})
    with aioresponses() as m:
        m.post(RUNS_URL, status=202, payload=ACCEPTED)
        m.get(f"{BASE}/v1/runs/run_1", payload=RUN_DONE)
        m.get(THREAD_URL, payload=after)
        result = await client.threads.runs.create_and_wait(
            "thr_1", input={"message": "hi"}, timeout=30, poll_interval=0.01
        )
    assert isinstance(result, ThreadRunResult)
    run, got = result
    assert isinstance(run, Run)
    assert run.status == "succeeded"
    assert run.is_terminal
    assert got.values == after["values"]
    assert result.run is run
    assert result.thread is got


async def test_create_and_wait_busy_raises(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=409, payload=BUSY)
        with pytest.raises(ThreadBusyError):
            await client.threads.runs.create_and_wait("thr_1")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"poll_interval": 0}, ValueError),
        ({"poll_interval": float("nan")}, ValueError),
        ({"poll_interval": True}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"on_busy": "later"}, ValueError),
    ],
)
async def test_create_and_wait_checks_arguments_before_sending(
    client: AsyncCrewship, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with aioresponses() as m:
        with pytest.raises(error):
            await client.threads.runs.create_and_wait("thr_1", **kwargs)
        assert not m.requests


async def test_create_and_wait_deadline_after_create(client: AsyncCrewship, clock: Clock) -> None:
    def accepted_late(url: Any, **kwargs: Any) -> CallbackResult:
        clock.offset += 100
        return CallbackResult(status=202, payload=ACCEPTED)

    with aioresponses() as m:
        m.post(RUNS_URL, callback=accepted_late)
        with pytest.raises(APITimeoutError, match="run run_1 was created but") as caught:
            await client.threads.runs.create_and_wait("thr_1", timeout=10)
    assert caught.value.path == "/v1/runs/run_1"


async def test_create_and_wait_deadline_after_run(client: AsyncCrewship, clock: Clock) -> None:
    def done_late(url: Any, **kwargs: Any) -> CallbackResult:
        clock.offset += 100
        return CallbackResult(payload=RUN_DONE)

    with aioresponses() as m:
        m.post(RUNS_URL, status=202, payload=ACCEPTED)
        m.get(f"{BASE}/v1/runs/run_1", callback=done_late)
        with pytest.raises(APITimeoutError, match="run run_1 ended with status 'succeeded'"):
            await client.threads.runs.create_and_wait("thr_1", timeout=10)
    assert not calls(m, "GET", "/v1/threads/thr_1")


async def test_create_and_wait_without_timeout(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(RUNS_URL, status=202, payload=ACCEPTED)
        m.get(f"{BASE}/v1/runs/run_1", payload={**RUN_DONE, "status": "failed"})
        m.get(THREAD_URL, payload=thread(status="error"))
        run, got = await client.threads.runs.create_and_wait("thr_1")
    assert run.status == "failed"
    assert got.status is ThreadStatus.ERROR


# --- end to end, against the emulator --------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[CrewshipEmulator]:
    async with CrewshipEmulator(step_delay=0.005) as emu:
        yield emu


@pytest.fixture
async def live(emulator: CrewshipEmulator) -> AsyncIterator[AsyncCrewship]:
    async with emulator.client(retry_policy=RetryPolicy(initial_delay=0.001, max_delay=0.01)) as c:
        yield c


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll the emulator's request log (it has no event to wait on) for up to ~10 s."""
    for _ in range(2000):
        if predicate():
            return
        await anyio.sleep(0.005)
    pytest.fail("the emulator never reached the expected state")


@pytest.mark.usefixtures("fast_polls")
async def test_e2e_busy_wait_resubmits_exactly_once(
    emulator: CrewshipEmulator, live: AsyncCrewship
) -> None:
    created = await live.threads.create("dep_e2e")
    tid = created.thread_id
    runs_path = f"/v1/threads/{tid}/runs"
    emulator.script_runs("forever", count=1)
    first = await live.threads.runs.create(tid, input={"message": "first"})
    with pytest.raises(ThreadBusyError) as caught:
        await live.threads.runs.create(tid, input={"message": "too soon"})
    assert caught.value.thread_id == tid
    emulator.clear_requests()

    result: list[RunCreated] = []

    async def waiter() -> None:
        result.append(
            await live.threads.runs.create(
                tid, input={"message": "second"}, on_busy="wait", busy_timeout=10
            )
        )

    def polls() -> int:
        return sum(r.method == "GET" and r.path == f"/v1/threads/{tid}" for r in emulator.requests)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await wait_until(lambda: polls() >= 3)  # it is waiting, not re-posting
        await live.runs.cancel(first.run_id)  # the thread becomes idle
    [second] = result
    assert second.thread_id == tid
    assert second.run_id != first.run_id
    sent = [(r.method, r.path) for r in emulator.requests if r.path.startswith(runs_path[:-5])]
    posts = [i for i, (method, path) in enumerate(sent) if (method, path) == ("POST", runs_path)]
    assert len(posts) == 2  # the 409 and the accepted one: exactly one resubmission
    assert sent[posts[0] + 1 : posts[1]].count(("GET", f"/v1/threads/{tid}")) >= 3
    final = await live.runs.wait(second.run_id, timeout=10, poll_interval=0.01)
    assert final.status == "succeeded"


async def test_e2e_history_after_thread_runs(live: AsyncCrewship) -> None:
    created = await live.threads.create("dep_e2e", metadata={"user": "u1"})
    tid = created.thread_id
    one = await live.threads.runs.create_and_wait(
        tid, input={"message": "hello"}, timeout=10, poll_interval=0.01
    )
    two = await live.threads.runs.create_and_wait(
        tid, input={"message": "again"}, timeout=10, poll_interval=0.01
    )
    assert two.thread.is_idle
    assert two.thread.values is not None
    assert [m["content"] for m in two.thread.values["messages"]][-2:] == [
        "again",
        "You said: again",
    ]
    history = await live.threads.history(tid).to_list()
    assert [c.run_id for c in history] == [two.run.id, one.run.id]  # newest first
    assert history[0].values == two.thread.values
    paged = await live.threads.history(tid, limit=1).to_list()
    assert paged == history
    copied = await live.threads.copy(tid)
    assert copied.values == two.thread.values
    await live.threads.delete(copied.thread_id)
    with pytest.raises(NotFoundError):
        await live.threads.get(copied.thread_id)


async def test_e2e_list_threads_across_pages(
    emulator: CrewshipEmulator, live: AsyncCrewship
) -> None:
    made = {(await live.threads.create("dep_list")).thread_id for _ in range(5)}
    await live.threads.create("dep_other")
    emulator.clear_requests()
    listed = [t.thread_id async for t in live.threads.list("dep_list", limit=2)]
    assert sorted(listed) == sorted(made)
    offsets = [r.query["offset"] for r in emulator.requests]
    assert offsets == ["0", "2", "4"]
    idle = await live.threads.list("dep_list", status=ThreadStatus.IDLE, limit=2).to_list()
    assert len(idle) == 5
