"""Bytes the JSON decoder cannot take become the SDK's own errors, on either JSON back-end,
and no response at all makes anything but a ``CrewshipError`` escape a public call."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crewship_async import (
    AsyncCrewship,
    BadRequestError,
    Column,
    CrewshipError,
    ResponseError,
    RetryPolicy,
    RunRequest,
    ServiceUnavailableError,
    _json,
)

from .rawserver import KEY, RawRequest, RawServer, reply, response_bytes

JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}
HOSTILE = {
    "100,000 digits": "1" * 100_000,
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "invalid UTF-8": '"\udcff"',  # written out below as the lone byte 0xff
    "lone surrogate": '"\\ud800"',
    "NaN": "NaN",
}
# The stdlib decoder takes a lone surrogate escape (orjson refuses it): both are fine,
# as long as what comes out is a result or a CrewshipError.
LENIENT = {"lone surrogate"}


def hostile_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def run_with_output(text: str) -> bytes:
    return b'{"id": "run_1", "deployment_id": "dep_1", "status": "running", "output": ' + (
        hostile_bytes(text) + b"}"
    )


@pytest.mark.parametrize("name", HOSTILE)
async def test_in_a_2xx_body_a_response_error(
    raw: RawServer, client: AsyncCrewship, name: str
) -> None:
    raw.behaviour = reply(200, run_with_output(HOSTILE[name]), JSON)
    if name in LENIENT and _json.loads is _json.stdlib_loads:
        run = await client.runs.get("run_1")
        assert run.output == "\ud800"
        return
    with pytest.raises(ResponseError, match="not JSON"):
        await client.runs.get("run_1")


@pytest.mark.parametrize("name", HOSTILE)
async def test_in_an_error_envelope_the_status_class_with_the_raw_text(
    raw: RawServer, client: AsyncCrewship, name: str
) -> None:
    body = b'{"error": {"message": "x", "detail": ' + hostile_bytes(HOSTILE[name]) + b"}}"
    raw.behaviour = reply(400, body, JSON)
    with pytest.raises(BadRequestError) as info:
        await client.runs.get("run_1")
    if name not in LENIENT:
        assert "non-JSON error body" in info.value.message
        assert isinstance(info.value.body, str)


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - LENIENT))
async def test_a_503_with_such_a_body_is_retried_as_any_503(
    raw: RawServer, client: AsyncCrewship, name: str
) -> None:
    raw.behaviour = reply(503, hostile_bytes(HOSTILE[name]), JSON)
    with pytest.raises(ServiceUnavailableError):
        await client.runs.get("run_1")
    assert len(raw.requests) == 3  # the first attempt and max_retries=2


@pytest.mark.parametrize("name", HOSTILE)
async def test_in_stream_data_the_event_keeps_its_raw_text(
    raw: RawServer, client: AsyncCrewship, name: str
) -> None:
    data = hostile_bytes(HOSTILE[name])
    raw.behaviour = reply(
        200,
        b"id: 1\ndata: " + data + b'\n\nid: 2\ndata: {"type": "run.completed"}\n\n',
        SSE,
    )
    async with client.runs.stream("run_1") as events:
        received = [event async for event in events]
    assert [event.id for event in received] == ["1", "2"]
    first = received[0]
    assert first.raw == data.decode("utf-8", "replace")
    if name == "invalid UTF-8":
        # The event-stream rules replace the byte with U+FFFD: valid JSON after that.
        assert first.data == "\ufffd"
    elif name not in LENIENT:
        assert first.data == first.raw


# --- any response at all, against every public call ----------------------------------

CALLS: dict[str, Callable[[AsyncCrewship], Awaitable[Any]]] = {
    "runs.create": lambda c: c.runs.create("dep_1", input={"a": 1}),
    "runs.get": lambda c: c.runs.get("run_1"),
    "runs.list": lambda c: first_items(c.runs.list(deployment_id="dep_1")),
    "runs.cancel": lambda c: c.runs.cancel("run_1"),
    "runs.stream": lambda c: read_stream(c),
    "runs.wait": lambda c: c.runs.wait("run_1", timeout=0.3, poll_interval=0.05),
    "runs.create_all": lambda c: raise_first(c.runs.create_all([RunRequest("dep_1")])),
    "threads.create": lambda c: c.threads.create("dep_1", metadata={"u": 1}),
    "threads.get": lambda c: c.threads.get("thr_1"),
    "threads.list": lambda c: first_items(c.threads.list("dep_1")),
    "threads.delete": lambda c: c.threads.delete("thr_1"),
    "threads.copy": lambda c: c.threads.copy("thr_1"),
    "threads.history": lambda c: first_items(c.threads.history("thr_1")),
    "threads.runs.create": lambda c: c.threads.runs.create("thr_1", input={"m": "hi"}),
    "tables.create": lambda c: c.tables.create("t", columns=[Column("a", "text")]),
    "tables.list": lambda c: first_items(c.tables.list()),
    "tables.get": lambda c: c.tables.get("tbl_1"),
    "tables.update": lambda c: c.tables.update("tbl_1", description=None),
    "tables.delete": lambda c: c.tables.delete("tbl_1"),
    "tables.rows.insert": lambda c: c.tables.rows.insert("tbl_1", [{"a": "x"}] * 3),
    "tables.rows.list": lambda c: first_items(c.tables.rows.list("tbl_1")),
    "tables.rows.update": lambda c: c.tables.rows.update("tbl_1", "row_1", {"a": "y"}),
    "tables.rows.delete": lambda c: c.tables.rows.delete("tbl_1", "row_1"),
    "webhooks.trigger": lambda c: c.webhooks.trigger("whk_token_123456789", {"a": 1}),
}


async def first_items(pager: Any) -> list[Any]:
    items = []
    async for item in pager:
        items.append(item)
        if len(items) == 3:
            break
    return items


async def read_stream(client: AsyncCrewship) -> list[Any]:
    async with client.runs.stream("run_1", idle_timeout=0.5, max_reconnects=1) as events:
        return [event async for event in events]


async def raise_first(outcomes: Awaitable[list[Any]]) -> None:
    for outcome in await outcomes:
        if outcome.error is not None:
            raise outcome.error


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
known_keys = st.sampled_from(
    [
        "id",
        "run_id",
        "thread_id",
        "status",
        "rows",
        "runs",
        "threads",
        "tables",
        "error",
        "history",
        "checkpoints",
        "deployment_id",
        "name",
        "columns",
        "created_at",
        "values",
    ]
)
objects = st.dictionaries(known_keys, json_values, max_size=6)
sse_lines = st.lists(
    st.sampled_from([b"data: ", b"id: ", b"event: ", b"retry: ", b": ", b"", b"data"]).flatmap(
        lambda field: st.binary(max_size=30).map(lambda value: field + value)
    ),
    max_size=12,
).map(lambda lines: b"\n".join(lines) + b"\n\n")
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    objects.map(lambda v: json.dumps(v).encode()),
    sse_lines,
)
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(
            ["application/json", "text/event-stream", "text/html", "", "application/json; x"]
        ),
        "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "zz"]),
        "Retry-After": st.sampled_from(["0", "-1", "1e9", "nan", "Wed, 21 Oct 2015", "x"]),
        "x-request-id": header_values,
        "X-Random": header_values,
    },
)
statuses = st.sampled_from([200, 201, 202, 204, 301, 400, 401, 404, 409, 429, 500, 503]) | (
    st.integers(100, 599)
)
responses = st.tuples(statuses, headers, bodies, st.sampled_from(["exact", "short", "none"]))


def test_any_response_to_any_call_gives_a_result_or_a_crewship_error() -> None:
    with asyncio.Runner() as runner:
        server = runner.run(RawServer().start())
        client = AsyncCrewship(
            api_key=KEY,
            base_url=server.url,
            timeout=2,
            idle_timeout=0.5,
            retry_policy=RetryPolicy(
                max_retries=1, initial_delay=0, max_delay=0, max_retry_after=0.05
            ),
        )
        current: dict[str, Any] = {}

        async def behaviour(request: RawRequest, writer: asyncio.StreamWriter) -> None:
            status, fields, body, length = current["response"]
            if length == "exact":
                writer.write(response_bytes(status, body, fields))
            elif length == "short":
                fields = {**fields, "Content-Length": str(len(body) + 10)}
                writer.write(response_bytes(status, body, fields))
            else:
                writer.write(response_bytes(status, body, fields, content_length=False))

        server.behaviour = behaviour

        @settings(
            max_examples=400,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(call=st.sampled_from(sorted(CALLS)), response=responses)
        def check(call: str, response: tuple[int, dict[str, str], bytes, str]) -> None:
            current["response"] = response
            with contextlib.suppress(CrewshipError):
                runner.run(asyncio.wait_for(CALLS[call](client), 30))

        try:
            check()
        finally:
            runner.run(client.aclose())
            runner.run(server.close())
