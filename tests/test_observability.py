"""What a production service plugs in: trace_request_ctx and trace_configs, on_response
hooks, ResponseInfo on errors, OpenTelemetry spans, and the CREWSHIP_LOG switch."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crewship_async import (
    AsyncCrewship,
    BadRequestError,
    NotFoundError,
    RetryPolicy,
    ServiceUnavailableError,
    _logging,
)
from crewship_async._metadata import RateLimit, ResponseInfo
from crewship_async._operations import RequestContext, describe
from crewship_async.testing import CrewshipEmulator

BASE = "https://api.crewship.test"
RUN = {"id": "run_1", "deployment_id": "dep_a", "status": "running"}

# --- which operation a request is --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "operation", "ids"),
    [
        ("POST", "/v1/runs", "runs.create", {}),
        ("GET", "/v1/runs/run_1", "runs.get", {"run_id": "run_1"}),
        ("GET", "/v1/runs/run%2F1/events", "runs.stream", {"run_id": "run/1"}),
        ("POST", "/v1/threads/thr_1/runs", "threads.runs.create", {"thread_id": "thr_1"}),
        (
            "PATCH",
            "/v1/tables/tbl_1/rows/row_2",
            "tables.rows.update",
            {"table_id": "tbl_1", "row_id": "row_2"},
        ),
        ("POST", "/webhooks/runs/***", "webhooks.trigger", {}),
    ],
)
def test_describe_names_the_operation_and_reads_the_ids(
    method: str, path: str, operation: str, ids: dict[str, str]
) -> None:
    context = describe(method, path)
    assert context.operation == operation
    assert context.path == path
    assert context.attempt == 1
    found = {name: getattr(context, name) for name in ("run_id", "thread_id", "table_id", "row_id")}
    assert {name: value for name, value in found.items() if value is not None} == ids


def test_an_unknown_path_is_named_by_method_and_path() -> None:
    context = describe("PUT", "/v2/things/1")
    assert context.operation == "PUT /v2/things/1"
    assert context.template == "/v2/things/1"
    assert context.for_attempt(1) is context
    assert context.for_attempt(2).attempt == 2


# --- trace_configs and trace_request_ctx -----------------------------------------------------


def recording_trace_config() -> tuple[aiohttp.TraceConfig, list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []
    config = aiohttp.TraceConfig()

    async def on_start(
        session: aiohttp.ClientSession,
        ctx: types.SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        seen.append((params.method, ctx.trace_request_ctx))

    config.on_request_start.append(on_start)
    return config, seen


async def test_every_attempt_is_tagged_with_its_request_context(
    crewship_emulator: CrewshipEmulator,
) -> None:
    config, seen = recording_trace_config()
    async with crewship_emulator.client(trace_configs=[config]) as client:
        created = await client.runs.create("dep_a")
        path = f"/v1/runs/{created.run_id}"
        crewship_emulator.faults.fail_next(1, status=503, route=f"GET {path}")
        await client.runs.get(created.run_id)
        async with client.runs.stream(created.run_id) as events:
            async for _ in events:
                pass
    contexts = [ctx for _, ctx in seen]
    assert all(isinstance(ctx, RequestContext) for ctx in contexts)
    assert [(c.operation, c.attempt) for c in contexts] == [
        ("runs.create", 1),
        ("runs.get", 1),
        ("runs.get", 2),
        ("runs.stream", 1),
    ]
    assert {c.run_id for c in contexts[1:]} == {created.run_id}


@pytest.mark.parametrize("value", [aiohttp.TraceConfig(), ["not a trace config"], "x"])
def test_trace_configs_must_be_a_list_of_trace_config(value: object) -> None:
    with pytest.raises(TypeError, match=r"trace_configs must be a list of aiohttp\.TraceConfig"):
        AsyncCrewship(api_key="k", trace_configs=value)  # type: ignore[arg-type]


async def test_trace_configs_are_refused_with_a_lent_session() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="give them to the aiohttp session you lend"):
            AsyncCrewship(api_key="k", session=session, trace_configs=[aiohttp.TraceConfig()])


# --- on_response and ResponseInfo --------------------------------------------------------------


async def test_on_response_sees_every_response_and_a_failing_hook_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain: list[ResponseInfo] = []
    awaited: list[ResponseInfo] = []

    async def async_hook(info: ResponseInfo) -> None:
        await asyncio.sleep(0)
        awaited.append(info)

    def broken(info: ResponseInfo) -> None:
        raise RuntimeError("metrics backend down")

    client = AsyncCrewship(
        api_key="k", base_url=BASE, on_response=[plain.append, async_hook, broken]
    )
    limits = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "12"}
    async with client:
        with aioresponses() as mocked:
            mocked.get(f"{BASE}/v1/runs/run_1", status=503, payload={"error": {"message": "b"}})
            mocked.get(
                f"{BASE}/v1/runs/run_1", payload=RUN, headers={"x-request-id": "req_9", **limits}
            )
            run = await client.runs.get("run_1")
    assert run.id == "run_1"
    assert [(i.status, i.attempts, i.operation) for i in plain] == [
        (503, 1, "runs.get"),
        (200, 2, "runs.get"),
    ]
    assert awaited == plain
    assert plain[1].request_id == "req_9"
    assert plain[1].rate_limit == RateLimit(limit=60, remaining=59, reset=12.0)
    assert plain[0].rate_limit is None
    assert plain[1].elapsed >= plain[0].elapsed >= 0
    assert "metrics backend down" in caplog.text


def test_on_response_must_be_callables() -> None:
    with pytest.raises(TypeError, match="on_response must be a callable"):
        AsyncCrewship(api_key="k", on_response=[1])  # type: ignore[list-item]


def test_rate_limit_headers_that_are_not_numbers_are_ignored() -> None:
    assert RateLimit.from_headers(CIMultiDict({"X-RateLimit-Limit": "lots"})) is None
    found = RateLimit.from_headers(CIMultiDict({"RateLimit-Remaining": "3"}))
    assert found == RateLimit(None, 3, None)


async def test_an_api_error_carries_the_response_info_and_pickles(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with crewship_emulator.client(max_retries=1) as client:
        crewship_emulator.faults.fail_next(2, status=503, route="GET /v1/runs/run_nope")
        with pytest.raises(ServiceUnavailableError) as caught:
            await client.runs.get("run_nope")
        with pytest.raises(NotFoundError) as missing:
            await client.runs.get("run_nope")
    info = caught.value.response_info
    assert info is not None
    assert (info.status, info.attempts, info.operation) == (503, 2, "runs.get")
    assert info.request_id == caught.value.request_id
    assert "headers" not in repr(info)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.response_info == info
    assert copy.response_info.headers["x-request-id"] == info.request_id
    assert missing.value.response_info is not None
    assert missing.value.response_info.status == 404


# --- OpenTelemetry --------------------------------------------------------------------------

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_one_span_per_call_covers_its_retries(
    crewship_emulator: CrewshipEmulator, spans: InMemorySpanExporter
) -> None:
    client = crewship_emulator.client()
    # Instrumented after the client was made: its session does not exist yet.
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=trace.get_tracer_provider())
    try:
        async with client:
            created = await client.runs.create("dep_a")
            crewship_emulator.faults.fail_next(
                1, status=503, route=f"GET /v1/runs/{created.run_id}"
            )
            await client.runs.get(created.run_id)
            with pytest.raises(NotFoundError):
                await client.runs.get("run_missing")
    finally:
        instrumentor.uninstrument()
    finished = spans.get_finished_spans()
    ours = [s for s in finished if s.instrumentation_scope.name == "crewship_async"]
    assert [s.name for s in ours] == ["runs.create", "runs.get", "runs.get"]
    create, get, missing = ours
    assert attributes(create)["crewship.deployment_id"] == "dep_a"
    assert attributes(create)["http.response.status_code"] == 202
    assert attributes(get)["http.request.resend_count"] == 1
    assert attributes(get)["crewship.run_id"] == created.run_id
    assert attributes(get)["url.template"] == "/v1/runs/{run_id}"
    assert attributes(get)["http.request.method"] == "GET"
    assert attributes(get)["server.address"] == "127.0.0.1"
    assert attributes(missing)["error.type"] == "404"
    assert missing.status.status_code == trace.StatusCode.ERROR
    # The aiohttp instrumentation's spans, one per attempt, are children of ours.
    children = [
        s for s in finished if s.parent is not None and s.parent.span_id == get.context.span_id
    ]
    assert len(children) == 2


async def test_no_span_attribute_holds_the_webhook_token_or_the_key(
    crewship_emulator: CrewshipEmulator, spans: InMemorySpanExporter
) -> None:
    token = crewship_emulator.add_webhook("dep_a")
    async with crewship_emulator.client() as client:
        await client.webhooks.trigger(crewship_emulator.webhook_url(token), {"topic": "x"})
    (span,) = [s for s in spans.get_finished_spans() if s.name == "webhooks.trigger"]
    values = " ".join(str(value) for value in attributes(span).values())
    assert token not in values
    assert crewship_emulator.api_key not in values


def test_without_a_tracer_provider_no_span_is_made() -> None:
    # In a fresh interpreter: the API's default provider is a no-op, so the calls skip the
    # span machinery; once an SDK provider is set, they make spans.
    code = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from crewship_async import _tracing
        print(_tracing.active())
        trace.set_tracer_provider(TracerProvider())
        print(_tracing.active())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "True"]


def test_a_tracer_provider_named_in_the_environment_makes_spans() -> None:
    # The API loads it on first use; nothing was set in code.
    code = "from crewship_async import _tracing; print(_tracing.active())"
    env = {**os.environ, "OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    assert result.stdout.split() == ["True"]


async def test_a_stream_is_one_span_with_its_reconnects_and_terminal_event(
    crewship_emulator: CrewshipEmulator, spans: InMemorySpanExporter
) -> None:
    quick = RetryPolicy(initial_delay=0.01, max_delay=0.02)
    async with crewship_emulator.client(retry_policy=quick) as client:
        created = await client.runs.create("dep_a")
        route = f"GET /v1/runs/{created.run_id}/events"
        crewship_emulator.faults.fail_next(1, status=503, route=route)
        async with client.runs.stream(created.run_id) as events:
            types = [event.type async for event in events]
        with pytest.raises(NotFoundError):
            async with client.runs.stream("run_missing") as events:
                pass
    assert types[-1] == "run.completed"
    streams = [s for s in spans.get_finished_spans() if s.name == "runs.stream"]
    assert len(streams) == 2
    done, missing = streams
    assert attributes(done)["crewship.run_id"] == created.run_id
    assert attributes(done)["crewship.stream.reconnects"] == 1
    assert done.status.status_code == trace.StatusCode.UNSET
    (reconnect, terminal) = done.events
    assert reconnect.name == "crewship.stream.reconnect"
    assert dict(reconnect.attributes or {}) == {
        "crewship.attempt": 1,
        "error.type": "ServiceUnavailableError",
    }
    assert terminal.name == "crewship.stream.terminal"
    assert dict(terminal.attributes or {}) == {"crewship.event_type": "run.completed"}
    assert attributes(missing)["error.type"] == "NotFoundError"
    assert missing.status.status_code == trace.StatusCode.ERROR


async def test_a_stream_left_early_ends_its_span_without_an_error(
    crewship_emulator: CrewshipEmulator, spans: InMemorySpanExporter
) -> None:
    async with crewship_emulator.client() as client:
        created = await client.runs.create("dep_a")
        async with client.runs.stream(created.run_id) as events:
            async for _ in events:
                break
    (span,) = [s for s in spans.get_finished_spans() if s.name == "runs.stream"]
    assert span.status.status_code == trace.StatusCode.UNSET
    assert span.events == ()


async def test_create_many_is_one_parent_span_of_its_requests(
    crewship_emulator: CrewshipEmulator, spans: InMemorySpanExporter
) -> None:
    async with crewship_emulator.client(max_retries=0) as client:
        crewship_emulator.faults.fail_next(1, status=400, route="POST /v1/runs")
        outcomes = await client.runs.create_all([{"deployment_id": "dep_a"}] * 4, concurrency=2)
    assert sum(o.error is not None for o in outcomes) == 1
    finished = spans.get_finished_spans()
    (batch,) = [s for s in finished if s.name == "runs.create_many"]
    calls = [s for s in finished if s.name == "runs.create"]
    assert len(calls) == 4
    assert all(c.parent is not None and c.parent.span_id == batch.context.span_id for c in calls)
    assert batch.kind == trace.SpanKind.INTERNAL
    assert attributes(batch) == {
        "crewship.operation": "runs.create_many",
        "crewship.concurrency": 2,
        "crewship.requests.created": 3,
        "crewship.requests.failed": 1,
        "crewship.rate_limited": 0,
        "crewship.lowest_concurrency": 2,
        "crewship.cut_short": 0,
    }
    assert batch.status.status_code == trace.StatusCode.UNSET


async def test_a_fail_fast_batch_span_ends_as_an_error(
    crewship_emulator: CrewshipEmulator, spans: InMemorySpanExporter
) -> None:
    async with crewship_emulator.client(max_retries=0) as client:
        crewship_emulator.faults.fail_next(1, status=400, route="POST /v1/runs")
        with pytest.raises(BadRequestError):
            await client.runs.create_all([{"deployment_id": "dep_a"}], fail_fast=True)
    (batch,) = [s for s in spans.get_finished_spans() if s.name == "runs.create_many"]
    assert batch.status.status_code == trace.StatusCode.ERROR
    assert attributes(batch)["error.type"] == "BadRequestError"


# --- CREWSHIP_LOG ---------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("crewship_async")
    handlers, level = list(logger.handlers), logger.level
    state = dict(_logging._state)
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    _logging._state.clear()
    _logging._state.update(state)


def test_an_unknown_log_level_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setenv("CREWSHIP_LOG", "loud")
    with pytest.raises(ValueError, match="CREWSHIP_LOG must be one of debug, info; got 'loud'"):
        AsyncCrewship(api_key="k")


async def test_bodies_are_logged_only_when_asked_and_scrubbed(restore_logging: None) -> None:
    key = "sk_live_body_secret_0123456789"
    echoed = {**RUN, "note": f"key {key}"}
    for bodies in (False, True):
        out = io.StringIO()
        _logging.enable_logging("debug", bodies=bodies, stream=out)
        async with AsyncCrewship(api_key=key, base_url=BASE) as client:
            with aioresponses() as mocked:
                mocked.get(f"{BASE}/v1/runs/run_1", payload=echoed)
                await client.runs.get("run_1")
        text = out.getvalue()
        assert "GET /v1/runs/{run_id} -> 200 in " in text
        assert ("body: {" in text) is bodies
        assert key not in text
    with pytest.raises(ValueError, match="level must be one of debug, info"):
        _logging.enable_logging("trace")


LOGGED_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging
    from crewship_async.testing import CrewshipEmulator

    async def main():
        async with CrewshipEmulator() as emulator, emulator.client() as client:
            await client.runs.create("dep_a")
        assert logging.getLogger().handlers == [], "the root logger was touched"

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(("level", "retry_line"), [("info", False), ("DEBUG", True)])
def test_crewship_log_turns_the_logger_on_in_a_user_process(level: str, retry_line: bool) -> None:
    env = {**os.environ, "CREWSHIP_LOG": level}
    done = subprocess.run(
        [sys.executable, "-c", LOGGED_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "crewship_async INFO POST /v1/runs -> 202 in " in done.stderr
    assert "(attempt 1, runs.create)" in done.stderr
    assert done.stdout == ""


# --- with_options ---------------------------------------------------------------------------------


async def test_with_options_shares_the_pool_and_changes_only_what_it_is_given(
    crewship_emulator: CrewshipEmulator, made_sessions: list[aiohttp.ClientSession]
) -> None:
    seen: list[ResponseInfo] = []
    client = crewship_emulator.client(default_headers={"X-Team": "a"}, max_retries=3)
    async with client:
        created = await client.runs.create("dep_a")
        fast = client.with_options(
            timeout=5, max_retries=0, default_headers={"X-Call": "b"}, on_response=seen.append
        )
        assert fast.timeout == 5
        assert fast.retry_policy.max_retries == 0
        assert client.retry_policy.max_retries == 3
        assert fast.idle_timeout == client.idle_timeout
        crewship_emulator.faults.fail_next(1, status=503, route=f"GET /v1/runs/{created.run_id}")
        with pytest.raises(ServiceUnavailableError):
            await fast.runs.get(created.run_id)  # no retries on the copy
        assert (await client.runs.get(created.run_id)).id == created.run_id
        assert (await fast.threads.create("dep_a")).thread_id
        assert len(made_sessions) == 1  # the copy sent through the client's own pool
        await fast.aclose()  # the copy only
        assert fast.closed
        assert not client.closed
        assert (await client.runs.get(created.run_id)).id == created.run_id
    assert [info.operation for info in seen] == ["runs.get", "threads.create"]
    (thread_request,) = [r for r in crewship_emulator.requests if r.path == "/v1/threads"]
    headers = CIMultiDict(thread_request.headers)
    assert headers["x-team"] == "a"
    assert headers["x-call"] == "b"
    copy = client.with_options()
    assert copy.closed  # closing the client closes its copies


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"timeout": 0}, ValueError, "timeout must be a finite number"),
        ({"max_retries": -1}, ValueError, "max_retries must be an int >= 0"),
        ({"default_headers": {"Authorization": "x"}}, ValueError, "not an Authorization header"),
        ({"idle_timeout": -1}, ValueError, "idle_timeout must be > 0"),
        ({"on_response": [3]}, TypeError, "on_response must be a callable"),
    ],
)
def test_with_options_checks_its_values(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        AsyncCrewship(api_key="k").with_options(**options)
