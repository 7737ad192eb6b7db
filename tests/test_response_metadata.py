"""What a response was, seen from what it became: ``response_info``/``request_id`` on every
returned model, ``client.with_raw_response``, and ``extra_headers``/``extra_query`` on
every method (through the emulator, whose recorded requests say what was sent)."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest
from aioresponses import aioresponses

from crewship_async import (
    AsyncCrewship,
    Column,
    NotFoundError,
    RateLimit,
    RawResponse,
    ResponseError,
    Run,
    RunCreated,
)
from crewship_async.testing import CrewshipEmulator

BASE = "https://api.crewship.test"


def last_request_id(emulator: CrewshipEmulator, method: str, path: str) -> str:
    matching = [r for r in emulator.requests if r.method == method and r.path == path]
    return matching[-1].request_id


# --- response_info on every returned model -----------------------------------------------


async def test_every_returned_model_carries_the_response_it_came_from(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client() as client:
        created = await client.runs.create("dep_a")
        run = await client.runs.get(created.run_id)
        listed = [r async for r in client.runs.list("dep_a")]
        thread = await client.threads.create("dep_a")
        table = await client.tables.create("t", columns=[Column("title", "text")])
        rows = await client.tables.rows.insert(table.id, [{"title": "a"}, {"title": "b"}])
        cancelled = await client.runs.cancel(created.run_id)

    runs_path = f"/v1/runs/{created.run_id}"
    assert created.request_id == last_request_id(crewship_emulator, "POST", "/v1/runs")
    assert run.request_id == last_request_id(crewship_emulator, "GET", runs_path)
    list_id = last_request_id(crewship_emulator, "GET", "/v1/runs")
    assert {r.request_id for r in listed} == {list_id}
    assert thread.request_id == last_request_id(crewship_emulator, "POST", "/v1/threads")
    assert table.request_id == last_request_id(crewship_emulator, "POST", "/v1/tables")
    rows_id = last_request_id(crewship_emulator, "POST", f"/v1/tables/{table.id}/rows")
    assert {r.request_id for r in rows} == {rows_id}
    assert cancelled.request_id == last_request_id(crewship_emulator, "POST", f"{runs_path}/cancel")
    info = run.response_info
    assert info is not None
    assert info.status == 200
    assert info.operation == "runs.get"
    assert info.attempts == 1
    assert info.elapsed >= 0  # uvloop's clock counts whole milliseconds
    assert info.headers["x-request-id"] == run.request_id


async def test_the_info_counts_the_attempts_of_a_retried_call(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client(max_retries=2) as client:
        created = await client.runs.create("dep_a")
        route = f"GET /v1/runs/{created.run_id}"
        crewship_emulator.faults.fail_next(1, status=503, route=route)
        run = await client.runs.get(created.run_id)
    assert run.response_info is not None
    assert run.response_info.attempts == 2


async def test_create_many_outcomes_carry_their_own_responses(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client() as client:
        outcomes = await client.runs.create_all([{"deployment_id": "dep_a"}] * 3)
    ids = {o.run.request_id for o in outcomes if o.run is not None}
    recorded = {r.request_id for r in crewship_emulator.requests if r.path == "/v1/runs"}
    assert len(ids) == 3
    assert ids == recorded


async def test_the_metadata_stays_out_of_equality_repr_and_pickle(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client() as client:
        tagged = await client.runs.create("dep_a")
    plain = attrs.evolve(tagged)  # the same fields, built by hand: no response
    assert tagged.request_id is not None
    assert plain.request_id is None
    assert plain.response_info is None
    assert tagged == plain
    assert repr(tagged) == repr(plain)
    assert "response_info" not in attrs.asdict(tagged)
    assert pickle.loads(pickle.dumps(tagged)).response_info is None


# --- with_raw_response ---------------------------------------------------------------------


async def test_a_raw_response_shows_the_response_and_parses_on_demand(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client() as client:
        created = await client.runs.create("dep_a")
        raw = await client.with_raw_response.runs.get(created.run_id)
        assert isinstance(raw, RawResponse)
        assert raw.status == 200
        assert raw.headers["Content-Type"].startswith("application/json")
        path = f"/v1/runs/{created.run_id}"
        assert raw.request_id == last_request_id(crewship_emulator, "GET", path)
        assert raw.json()["id"] == created.run_id
        assert raw.response_info.operation == "runs.get"
        assert repr(raw) == f"<RawResponse runs.get 200 request_id={raw.request_id!r}>"
        run = await raw.parse()
        assert isinstance(run, Run)
        assert run.request_id == raw.request_id
        assert await raw.parse() is run


async def test_every_raw_method_answers_like_its_resource(
    crewship_emulator: CrewshipEmulator,
) -> None:
    token = crewship_emulator.add_webhook("dep_a")
    async with crewship_emulator.client() as client:
        raw = client.with_raw_response
        assert client.with_raw_response is raw
        assert raw.threads is raw.threads
        assert raw.tables.rows is raw.tables.rows
        created = await (await raw.runs.create("dep_a")).parse()
        assert isinstance(created, RunCreated)
        assert (await raw.runs.cancel(created.run_id)).status == 200
        thread = await (await raw.threads.create("dep_a")).parse()
        assert (await (await raw.threads.get(thread.thread_id)).parse()) == thread
        copied = await (await raw.threads.copy(thread.thread_id)).parse()
        started = await raw.threads.runs.create(copied.thread_id)
        assert (await started.parse()).thread_id == copied.thread_id
        deleted = await raw.threads.delete(thread.thread_id)
        assert await deleted.parse() is None
        table = await (await raw.tables.create("t", columns=[Column("a", "text")])).parse()
        assert (await (await raw.tables.get(table.id)).parse()).id == table.id
        renamed = await (await raw.tables.update(table.id, name="u")).parse()
        assert renamed.name == "u"
        (row,) = await client.tables.rows.insert(table.id, {"a": "x"})
        updated = await raw.tables.rows.update(table.id, row.id, {"a": "y"})
        assert (await updated.parse())["a"] == "y"
        assert await (await raw.tables.rows.delete(table.id, row.id)).parse() is None
        assert await (await raw.tables.delete(table.id)).parse() is None
        triggered = await raw.webhooks.trigger(crewship_emulator.webhook_url(token), None)
        assert (await triggered.parse()).run_id
        copy = client.with_options(timeout=5).with_raw_response
        assert (await copy.runs.get(created.run_id)).status == 200


async def test_a_raw_call_raises_like_the_ordinary_one(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client(max_retries=0) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.with_raw_response.runs.get("run_missing")
        with pytest.raises(ValueError, match="run_id must be a non-empty id"):
            await client.with_raw_response.runs.get("")
    assert caught.value.request_id


async def test_a_body_that_does_not_fit_fails_in_parse_after_the_headers_were_read() -> None:
    headers = {"x-request-id": "req_9", "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7"}
    async with AsyncCrewship(api_key="k", base_url=BASE, max_retries=0) as client:
        with aioresponses() as mock:
            mock.get(f"{BASE}/v1/runs/run_1", payload={"id": 5}, headers=headers)
            raw = await client.with_raw_response.runs.get("run_1")
            assert raw.request_id == "req_9"
            assert raw.rate_limit == RateLimit(limit=100, remaining=7, reset=None)
            with pytest.raises(ResponseError, match="GET /v1/runs/run_1"):
                await raw.parse()


# --- extra_headers and extra_query ---------------------------------------------------------


async def test_extra_headers_and_query_go_with_that_call_only(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client(default_headers={"X-Team": "a"}) as client:
        created = await client.runs.create(
            "dep_a", extra_headers={"X-Team": "b", "X-Trace": "t1"}, extra_query={"dry": 1}
        )
        await client.runs.get(created.run_id)
        listed = [r async for r in client.runs.list(extra_query={"sort": "new"})]
    post, get, page = crewship_emulator.requests[-3:]
    assert post.headers["X-Team"] == "b"
    assert post.headers["X-Trace"] == "t1"
    assert post.query == {"dry": "1"}
    assert get.headers["X-Team"] == "a"
    assert "X-Trace" not in get.headers
    assert get.query == {}
    assert page.query["sort"] == "new"
    assert page.query["limit"] == "20"
    assert listed


async def test_batched_and_waiting_methods_send_the_extras_with_every_request(
    crewship_emulator: CrewshipEmulator,
) -> None:
    extra = {"X-Tenant": "acme"}
    async with crewship_emulator.client() as client:
        await client.runs.create_all([{"deployment_id": "dep_a"}] * 3, extra_headers=extra)
        table = await client.tables.create("t", columns=[Column("a", "text")])
        rows = [{"a": str(i)} for i in range(150)]
        await client.tables.rows.insert(table.id, rows, extra_headers=extra)
        thread = await client.threads.create("dep_a")
        await client.threads.runs.create_and_wait(
            thread.thread_id, extra_headers=extra, poll_interval=0.05
        )
    tagged = [r for r in crewship_emulator.requests if r.headers.get("X-Tenant") == "acme"]
    seen = [(r.method, r.path) for r in tagged]
    assert seen.count(("POST", "/v1/runs")) == 3
    assert seen.count(("POST", f"/v1/tables/{table.id}/rows")) == 2
    assert ("POST", f"/v1/threads/{thread.thread_id}/runs") in seen
    assert ("GET", f"/v1/threads/{thread.thread_id}") in seen


async def test_streams_and_waits_send_the_extras_with_every_connection(
    crewship_emulator: CrewshipEmulator,
) -> None:
    extra: dict[str, Any] = {"extra_headers": {"X-Tenant": "acme"}, "extra_query": {"v": 2}}
    async with crewship_emulator.client() as client:
        created = await client.runs.create("dep_a")
        async with client.runs.stream(created.run_id, **extra) as events:
            assert [e async for e in events]
        run = await client.runs.wait(created.run_id, poll_interval=0.05, **extra)
    assert run.is_terminal
    events_path = f"/v1/runs/{created.run_id}/events"
    reads = [
        r
        for r in crewship_emulator.requests
        if r.path in (events_path, f"/v1/runs/{created.run_id}") and r.method == "GET"
    ]
    # The stream, then the wait's read (the run is terminal by then: no second stream).
    assert {r.path for r in reads} == {events_path, f"/v1/runs/{created.run_id}"}
    for request in reads:
        assert request.headers["X-Tenant"] == "acme"
        assert request.query == {"v": "2"}


def test_a_stream_checks_its_extras_when_it_is_made() -> None:
    client = AsyncCrewship(api_key="k", base_url=BASE)
    with pytest.raises(ValueError, match="cannot set 'Host'"):
        client.runs.stream("run_1", extra_headers={"Host": "elsewhere"})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"extra_headers": {"Authorization": "Bearer x"}}, ValueError, "api_key="),
        ({"extra_headers": {"Content-Length": "3"}}, ValueError, "cannot set 'Content-Length'"),
        ({"extra_headers": {"X-A": "1\r\nX-B: 2"}}, ValueError, "CR, LF"),
        ({"extra_headers": {"X-A": 1}}, TypeError, "must map str to str"),
        ({"extra_headers": ["X-A"]}, TypeError, "must be a mapping"),
        ({"extra_query": {"flag": True}}, TypeError, r"extra_query\['flag'\] must be"),
        ({"extra_query": {1: "x"}}, TypeError, "names must be non-empty strings"),
        ({"extra_query": "a=1"}, TypeError, "must be a mapping"),
    ],
)
async def test_bad_extras_are_refused_before_anything_is_sent(
    crewship_emulator: CrewshipEmulator, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    async with crewship_emulator.client() as client:
        before = len(crewship_emulator.requests)
        with pytest.raises(error, match=match):
            await client.runs.create("dep_a", **kwargs)
    assert len(crewship_emulator.requests) == before


@pytest.mark.parametrize("name", ["limit", "offset", "status", "deployment_id"])
def test_a_listing_keeps_its_own_query_names(name: str) -> None:
    client = AsyncCrewship(api_key="k", base_url=BASE)
    with pytest.raises(ValueError, match=f"extra_query cannot set '{name}'"):
        client.runs.list(extra_query={name: "1"})
