"""client.runs: create, get, list, cancel and wait (stream first, then polling)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from aioresponses import aioresponses
from conftest import (
    BASE,
    RUN,
    ScriptedServer,
    calls,
    frame,
    hang,
    respond,
    run_json,
    stream,
)

from crewship_async import (
    APITimeoutError,
    AsyncCrewship,
    BadRequestError,
    CancelResult,
    Environment,
    NotFoundError,
    ResponseError,
    Run,
    RunCreated,
    RunOutcome,
    RunRequest,
    RunStatus,
)
from crewship_async.testing import CrewshipEmulator

RUNS_URL = f"{BASE}/v1/runs"
RUN_URL = f"{BASE}/v1/runs/run_1"
EVENTS_URL = f"{BASE}/v1/runs/run_1/events"
SSE = "text/event-stream"


def sse(*frames: bytes) -> str:
    return b"".join(frames).decode()


# --- create -----------------------------------------------------------------------------


async def test_create(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.post(
        RUNS_URL,
        status=202,
        payload={"run_id": "run_1", "status": "running", "version_id": "ver_1", "v2": 1},
    )
    created = await client.runs.create("dep_1", input={"topic": "AI"})
    assert isinstance(created, RunCreated)
    assert created.run_id == "run_1"
    assert created.status is RunStatus.RUNNING
    assert created.version_id == "ver_1"
    assert created.extra == {"v2": 1}
    (call,) = calls(mocked)
    assert json.loads(call.kwargs["data"]) == {
        "deployment_id": "dep_1",
        "environment": "production",
        "input": {"topic": "AI"},
    }


@pytest.mark.parametrize("environment", ["staging", Environment.STAGING])
async def test_create_without_input_in_staging(
    client: AsyncCrewship, mocked: aioresponses, environment: Any
) -> None:
    mocked.post(RUNS_URL, status=202, payload={"run_id": "run_2"})
    await client.runs.create("dep_1", environment=environment)
    (call,) = calls(mocked)
    assert json.loads(call.kwargs["data"]) == {"deployment_id": "dep_1", "environment": "staging"}


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("",), {}, ValueError, "deployment_id must not be empty"),
        ((None,), {}, ValueError, "deployment_id is required"),
        ((5,), {}, TypeError, "deployment_id must be a string"),
        (("dep_1",), {"input": ["a"]}, TypeError, "input must be a mapping"),
        (("dep_1",), {"input": {1: "a"}}, TypeError, "input keys must be strings"),
        (("dep_1",), {"environment": "qa"}, ValueError, "environment must be"),
    ],
)
async def test_create_checks_arguments_before_sending(
    client: AsyncCrewship,
    mocked: aioresponses,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        await client.runs.create(*args, **kwargs)
    assert calls(mocked) == []


async def test_create_wrong_shape(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.post(RUNS_URL, status=202, payload={"id": "run_1"})
    with pytest.raises(ResponseError, match=r"'run_id'.*required field is missing") as info:
        await client.runs.create("dep_1")
    assert info.value.field == "run_id"
    assert str(info.value).startswith("POST /v1/runs: ")


# --- get --------------------------------------------------------------------------------


async def test_get(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.get(RUN_URL, payload=run_json(status="succeeded", output={"text": "done"}, cost=3))
    run = await client.runs.get("run_1")
    assert isinstance(run, Run)
    assert run.status is RunStatus.SUCCEEDED
    assert run.is_terminal
    assert run.output == {"text": "done"}
    assert run.created_at == datetime(2024, 1, 15, 10, 35, tzinfo=UTC)
    assert run.extra == {"cost": 3}


async def test_get_unknown_status_and_wrong_shape(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.get(RUN_URL, payload=run_json(status="queued_for_gpu"))
    mocked.get(RUN_URL, payload=run_json(started_at="half past ten"))
    run = await client.runs.get("run_1")
    assert run.status == "queued_for_gpu"
    assert not run.is_terminal
    with pytest.raises(ResponseError, match="GET /v1/runs/run_1: the response field 'started_at'"):
        await client.runs.get("run_1")


async def test_get_not_found(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/v1/runs/run_x", status=404, payload={"error": {"message": "Run not found"}})
    with pytest.raises(NotFoundError, match="GET /v1/runs/run_x -> 404: Run not found"):
        await client.runs.get("run_x")


# --- list -------------------------------------------------------------------------------


def page_url(offset: int, limit: int, **filters: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {**filters, "limit": limit, "offset": offset}.items())
    return f"{RUNS_URL}?{query}"


def runs(*ids: str) -> dict[str, Any]:
    return {"runs": [run_json(id=i) for i in ids]}


async def test_list_pages_with_filters(client: AsyncCrewship, mocked: aioresponses) -> None:
    filters = {"deployment_id": "dep_1", "status": "running"}
    mocked.get(page_url(0, 2, **filters), payload=runs("r1", "r2"))
    mocked.get(page_url(2, 2, **filters), payload=runs("r3", "r4"))
    mocked.get(page_url(4, 2, **filters), payload=runs("r5"))
    pager = client.runs.list(deployment_id="dep_1", status=RunStatus.RUNNING, limit=2)
    assert calls(mocked) == []  # lazy
    assert [run.id async for run in pager] == ["r1", "r2", "r3", "r4", "r5"]
    assert [c.kwargs["params"] for c in calls(mocked)] == [
        {**filters, "limit": 2, "offset": 0},
        {**filters, "limit": 2, "offset": 2},
        {**filters, "limit": 2, "offset": 4},
    ]


async def test_list_max_items_and_pages(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.get(page_url(0, 2), payload=runs("r1", "r2"))
    mocked.get(page_url(2, 2), payload=runs("r3", "r4"))
    items = await client.runs.list(limit=2, max_items=3).to_list()
    assert [run.id for run in items] == ["r1", "r2", "r3"]
    assert len(calls(mocked)) == 2
    mocked.get(page_url(0, 20), payload=runs("a", "b"))
    pages = [page async for page in client.runs.list().pages()]
    assert [[run.id for run in page] for page in pages] == [["a", "b"]]


async def test_list_ends_when_the_server_ignores_limit_and_offset(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    # GET /v1/runs is inferred: its paging is undocumented. A server that ignores
    # limit/offset answers every page with every run; the walk must end without repeats.
    everything = runs(*(f"r{n}" for n in range(25)))
    mocked.get(page_url(0, 20), payload=everything)
    mocked.get(page_url(20, 20), payload=everything)
    mocked.get(page_url(40, 20), payload=everything)
    items = await client.runs.list(max_items=100).to_list()
    assert [run.id for run in items] == [f"r{n}" for n in range(25)]
    mocked.get(page_url(0, 5), payload=runs("a", "b", "c", "d", "e"))
    mocked.get(page_url(5, 5), payload=runs("a", "b", "c", "d", "e"))
    mocked.get(page_url(10, 5), payload=runs("a", "b", "c", "d", "e"))
    items = await client.runs.list(limit=5, max_items=100).to_list()
    assert [run.id for run in items] == ["a", "b", "c", "d", "e"]


async def test_list_walks_5000_runs_on_the_emulator() -> None:
    async with CrewshipEmulator() as emu:
        # Stored directly: 5,000 POSTs would only slow the test down. They stay pending.
        created = [emu._store.create_run({"deployment_id": "dep_many"}).id for _ in range(5000)]
        async with emu.client() as client:
            listed = [run.id async for run in client.runs.list()]
            biggest_pages = [run.id async for run in client.runs.list(limit=1000)]
            pending = [run.id async for run in client.runs.list("dep_many", RunStatus.PENDING)]
        offsets = [int(r.query["offset"]) for r in emu.requests if r.path == "/v1/runs"]
    assert len(listed) == len(set(listed)) == 5000
    assert listed == created[::-1]  # newest first, each run once
    assert biggest_pages == listed
    assert pending == listed
    assert max(offsets) == 5000  # the empty page after the last full one ends the walk


async def test_list_wrong_shape(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.get(page_url(0, 20), payload={"runs": [RUN, {"id": "r2"}]})
    with pytest.raises(ResponseError, match=r"runs\[1\]\.status") as info:
        await client.runs.list().to_list()
    assert info.value.field == "runs[1].status"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"deployment_id": ""}, ValueError),
        ({"deployment_id": 3}, TypeError),
        ({"status": ""}, ValueError),
        ({"limit": 0}, ValueError),
        ({"limit": "10"}, TypeError),
        ({"max_items": -1}, ValueError),
    ],
)
def test_list_checks_arguments_at_once(kwargs: dict[str, Any], error: type[Exception]) -> None:
    client = AsyncCrewship(api_key="k")
    with pytest.raises(error):
        client.runs.list(**kwargs)


# --- cancel -----------------------------------------------------------------------------


async def test_cancel(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.post(f"{RUN_URL}/cancel", payload={"success": True, "status": "canceled"})
    result = await client.runs.cancel("run_1")
    assert result == CancelResult(success=True, status=RunStatus.CANCELED)
    (call,) = calls(mocked)
    assert call.kwargs["data"] is None


async def test_cancel_finished_run(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.post(
        f"{RUN_URL}/cancel",
        status=400,
        payload={"error": {"code": "bad_request", "message": "Cannot cancel run with status: x"}},
    )
    with pytest.raises(BadRequestError, match="Cannot cancel run") as info:
        await client.runs.cancel("run_1")
    assert info.value.code == "bad_request"
    assert len(calls(mocked)) == 1


# --- wait -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled"])
async def test_wait_returns_a_run_already_terminal(
    client: AsyncCrewship, mocked: aioresponses, status: str
) -> None:
    mocked.get(RUN_URL, payload=run_json(status=status))
    run = await client.runs.wait("run_1")
    assert run.status == status
    assert run.is_terminal
    assert len(calls(mocked)) == 1


@pytest.mark.parametrize(
    ("terminal", "status"),
    [("run.completed", "succeeded"), ("run.failed", "failed"), ("complete", "canceled")],
)
async def test_wait_follows_the_stream(
    client: AsyncCrewship, mocked: aioresponses, terminal: str, status: str
) -> None:
    mocked.get(RUN_URL, payload=run_json(status="running"))
    body = sse(frame("run.started", id="1"), frame("log", id="2"), frame(terminal, id="3"))
    mocked.get(EVENTS_URL, body=body, content_type=SSE)
    mocked.get(RUN_URL, payload=run_json(status=status, error_message="e"))
    run = await client.runs.wait("run_1", poll_interval=0.01)
    assert run.status == status
    assert len(calls(mocked, "GET", RUN_URL)) == 2
    assert len(calls(mocked, "GET", EVENTS_URL)) == 1


async def test_wait_polls_when_the_run_lags_behind_its_stream(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.get(RUN_URL, payload=run_json(status="pending"))
    mocked.get(EVENTS_URL, body=sse(frame("complete")), content_type=SSE)
    mocked.get(RUN_URL, payload=run_json(status="running"))
    mocked.get(RUN_URL, payload=run_json(status="running"))
    mocked.get(RUN_URL, payload=run_json(status="succeeded"))
    run = await client.runs.wait("run_1", poll_interval=0.01)
    assert run.status is RunStatus.SUCCEEDED
    assert len(calls(mocked, "GET", RUN_URL)) == 4


@pytest.mark.parametrize(
    "events",
    [
        {"body": sse(frame("error", {"message": "stream unavailable"})), "content_type": SSE},
        {"status": 200, "payload": {"not": "a stream"}},
        {"status": 503, "payload": {"error": {"message": "down"}}, "repeat": True},
        {"status": 429, "headers": {"Retry-After": "3600"}},
        {"body": ": nothing yet\n\n", "content_type": SSE, "repeat": True},
    ],
    ids=["error-event", "not-sse", "503s", "429-too-long", "ends-without-terminal"],
)
async def test_wait_falls_back_to_polling(
    client: AsyncCrewship,
    mocked: aioresponses,
    events: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    mocked.get(RUN_URL, payload=run_json(status="running"))
    mocked.get(EVENTS_URL, **events)
    mocked.get(RUN_URL, payload=run_json(status="running"))
    mocked.get(RUN_URL, payload=run_json(status="failed", error_message="boom"))
    with anyio.fail_after(10):
        run = await client.runs.wait("run_1", poll_interval=0.01)
    assert run.status is RunStatus.FAILED
    assert run.error_message == "boom"
    assert len(calls(mocked, "GET", RUN_URL)) == 3
    assert "stream unavailable" in caplog.text or "polling" in caplog.text


async def test_wait_stream_not_found_propagates(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.get(RUN_URL, payload=run_json(status="running"))
    mocked.get(EVENTS_URL, status=404, payload={"error": {"message": "Run not found"}})
    with pytest.raises(NotFoundError):
        await client.runs.wait("run_1", poll_interval=0.01)


async def test_wait_unknown_run(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.get(RUN_URL, status=404, payload={"error": {"message": "Run not found"}})
    with pytest.raises(NotFoundError):
        await client.runs.wait("run_1")


async def test_wait_times_out_while_polling(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.get(RUN_URL, payload=run_json(status="running"), repeat=True)
    mocked.get(EVENTS_URL, body=sse(frame("error", {"message": "x"})), content_type=SSE)
    with pytest.raises(APITimeoutError, match=r"run run_1 did not finish within 0\.2s") as info:
        with anyio.fail_after(10):
            await client.runs.wait("run_1", timeout=0.2, poll_interval=0.01)
    assert isinstance(info.value, TimeoutError)
    assert info.value.path == "/v1/runs/run_1"


async def test_wait_times_out_while_following_the_stream(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(respond(200, run_json(status="running")))
    server.add(stream(frame("run.started", id="1"), end="hang"))
    with pytest.raises(APITimeoutError):
        with anyio.fail_after(10):
            await live.runs.wait("run_1", timeout=0.3)
    assert [r.path for r in server.requests] == ["/v1/runs/run_1", "/v1/runs/run_1/events"]
    await server.wait_for(lambda: server.disconnects == 1)


async def test_wait_over_real_sockets(server: ScriptedServer, live: AsyncCrewship) -> None:
    server.add(
        respond(200, run_json(status="running")),
        stream(frame("run.started", id="1"), end="abort"),
        stream(frame("run.completed", {"status": "succeeded"}, id="2"), end="hang"),
        respond(200, run_json(status="succeeded", output={"ok": True})),
    )
    server.default(hang())
    with anyio.fail_after(10):
        run = await live.runs.wait("run_1")
    assert run.output == {"ok": True}
    assert server.requests[2].headers["Last-Event-ID"] == "1"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": float("inf")}, "poll_interval"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -5}, "timeout"),
    ],
)
async def test_wait_checks_arguments(
    client: AsyncCrewship, mocked: aioresponses, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        await client.runs.wait("run_1", **kwargs)
    assert calls(mocked) == []


# --- the request model of create_many ---------------------------------------------------


def test_run_request_validated_and_coerced() -> None:
    request = RunRequest("dep_1", input={"a": 1}, environment=Environment.STAGING)
    assert request.environment == "staging"
    assert RunRequest.coerce(request) is request
    assert RunRequest.coerce({"deployment_id": "dep_2"}) == RunRequest("dep_2")
    with pytest.raises(TypeError, match="unknown RunRequest keys"):
        RunRequest.coerce({"deployment_id": "d", "env": "x"})
    with pytest.raises(ValueError, match="deployment_id is required"):
        RunRequest.coerce({"input": {}})
    with pytest.raises(TypeError, match="expected a RunRequest or a mapping"):
        RunRequest.coerce(["dep_1"])
    with pytest.raises(ValueError, match="deployment_id"):
        RunRequest("")
    with pytest.raises(TypeError, match="input must be a mapping"):
        RunRequest("dep_1", input=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="environment"):
        RunRequest("dep_1", environment="dev")


def test_run_outcome() -> None:
    created = RunCreated(run_id="run_1")
    assert RunOutcome(0, "req", run=created).ok
    assert not RunOutcome(1, "req", error=ValueError("x")).ok
