"""The transport: status -> error, bodies, logging, secrets, and the retry matrix.

HTTP-level behaviour uses aioresponses; what depends on real sockets (refused
connections, a connection dropped after the request was sent, deadlines) uses the
scripted server of conftest.py.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import pickle
import socket
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any, Callable, Optional

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import CallbackResult, aioresponses
from conftest import (
    API_KEY,
    BASE,
    FAST,
    RUN,
    ScriptedServer,
    calls,
    drop,
    hang,
    respond,
    slow,
)

from crewship_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncCrewship,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    ServiceUnavailableError,
    _json,
)
from crewship_async._responses import make_api_error
from crewship_async._transport import Transport

RUNS_URL = f"{BASE}/v1/runs"
RUN_URL = f"{BASE}/v1/runs/run_1"
CANCEL_URL = f"{BASE}/v1/runs/run_1/cancel"
CREATED = {"run_id": "run_1", "status": "running"}
KEY = ConnectionKey("api.test", 443, True, True, None, None, None)


async def body_of(transport: Transport, method: str, path: str, **options: Any) -> Any:
    """The decoded body of one call through ``transport``."""
    return (await transport.call(method, path, **options)).body


def refused() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "Connection refused"))


def envelope(message: str, code: Optional[str] = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["code"] = code
    return {"error": error}


@pytest.fixture
async def no_retry() -> AsyncIterator[AsyncCrewship]:
    async with AsyncCrewship(api_key=API_KEY, base_url=BASE, max_retries=0) as c:
        yield c


class Sleeps:
    """Records what the transport asks to sleep, without sleeping."""

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


# --- status -> error --------------------------------------------------------------------


@pytest.mark.parametrize(("status", "cls"), [(429, RateLimitError), (503, ServiceUnavailableError)])
async def test_retry_after_is_kept_on_the_error(
    no_retry: AsyncCrewship, mocked: aioresponses, status: int, cls: type[APIError]
) -> None:
    mocked.get(RUN_URL, status=status, payload=envelope("later"), headers={"Retry-After": "7"})
    with pytest.raises(cls) as info:
        await no_retry.runs.get("run_1")
    assert getattr(info.value, "retry_after", None) == 7.0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (418, APIError),
        (422, APIError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, ServiceUnavailableError),
        (504, InternalServerError),
    ],
)
async def test_status_gives_the_error_class(
    no_retry: AsyncCrewship, mocked: aioresponses, status: int, cls: type[APIError]
) -> None:
    body = envelope("Run not found here", "some_code")
    mocked.get(RUN_URL, status=status, payload=body, headers={"x-request-id": "req_42"})
    with pytest.raises(APIError) as info:
        await no_retry.runs.get("run_1")
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.message == "Run not found here"
    assert error.code == "some_code"
    assert error.body == body
    assert error.request_id == "req_42"
    assert error.method == "GET"
    assert error.path == "/v1/runs/run_1"
    assert str(error) == (
        f"GET /v1/runs/run_1 -> {status}: Run not found here (code=some_code) [request_id=req_42]"
    )
    assert API_KEY not in str(error)


async def test_rate_limit_error_carries_retry_after(
    no_retry: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.post(RUNS_URL, status=429, payload=envelope("slow down"), headers={"Retry-After": "7"})
    with pytest.raises(RateLimitError) as info:
        await no_retry.runs.create("dep_1")
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("body", "content_type", "message", "decoded"),
    [
        (
            "<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>",
            "text/html",
            "non-JSON error body (text/html): '<html><body><h1>502 Bad Gateway</h1> <p>nginx</p>",
            "<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>",
        ),
        ('{"error": "plain string"}', "application/json", "plain string", None),
        ('{"message": "top level"}', "application/json", "top level", None),
        ('{"detail": "elsewhere"}', "application/json", "HTTP 502 with no error message", None),
        ('{"error": {"code": "x"}}', "application/json", "HTTP 502 with no error message", None),
        ("[1, 2]", "application/json", "HTTP 502 with no error message", [1, 2]),
        ("", "application/json", "HTTP 502 with no error message", None),
        ("\xff\xfe not utf-8", "", "non-JSON error body (", None),
    ],
)
async def test_error_bodies(
    no_retry: AsyncCrewship,
    mocked: aioresponses,
    body: str,
    content_type: str,
    message: str,
    decoded: Any,
) -> None:
    mocked.get(RUN_URL, status=502, body=body, content_type=content_type)
    with pytest.raises(InternalServerError) as info:
        await no_retry.runs.get("run_1")
    assert info.value.message.startswith(message)
    assert str(info.value).startswith("GET /v1/runs/run_1 -> 502: ")
    if decoded is not None:
        assert info.value.body == decoded


def test_long_html_error_body_is_summarised() -> None:
    page = "<html>" + "x" * 5000 + "</html>"
    error = make_api_error(
        500, {"Content-Type": "text/html"}, page.encode(), method="GET", path="/v1/runs"
    )
    assert isinstance(error, InternalServerError)
    assert len(error.message) < 300
    assert error.body == page
    assert make_api_error(302, {}, b"", method="GET", path="/p").__class__ is APIError


async def test_2xx_non_json_body_is_a_response_error(
    no_retry: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.get(RUN_URL, status=200, body="<html>login</html>", content_type="text/html")
    with pytest.raises(
        ResponseError, match=r"GET /v1/runs/run_1 -> 200: the body is not JSON"
    ) as e:
        await no_retry.runs.get("run_1")
    assert "text/html" in str(e.value)
    assert (e.value.method, e.value.path) == ("GET", "/v1/runs/run_1")
    assert len(calls(mocked)) == 1


async def test_204_and_empty_bodies_give_none(
    make_transport: Callable[..., Transport], mocked: aioresponses
) -> None:
    mocked.delete(f"{BASE}/v1/things/a", status=204)
    mocked.delete(f"{BASE}/v1/things/b", status=200, body="")
    transport = make_transport()
    assert await body_of(transport, "DELETE", "/v1/things/a") is None
    assert await body_of(transport, "DELETE", "/v1/things/b") is None


async def test_body_params_and_headers_sent(
    client: AsyncCrewship, mocked: aioresponses, make_transport: Callable[..., Transport]
) -> None:
    mocked.post(RUNS_URL, payload=CREATED)
    mocked.post(f"{BASE}/v1/empty", payload={})
    await client.runs.create("dep_1", input={"topic": "AI", "n": [1, 2]}, environment="staging")
    await body_of(make_transport(), "POST", "/v1/empty", json=None, send_json=True)
    first, second = calls(mocked, "POST")
    assert first.kwargs["data"] == (
        b'{"deployment_id":"dep_1","environment":"staging","input":{"topic":"AI","n":[1,2]}}'
    )
    assert first.kwargs["headers"]["Content-Type"] == "application/json"
    assert first.kwargs["allow_redirects"] is False
    assert second.kwargs["data"] == b"null"


async def test_unauthenticated_request_and_display_path(
    make_transport: Callable[..., Transport], mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    transport = make_transport()
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    mocked.post(f"{BASE}/hooks/tok_SECRET", payload={"ok": True})
    mocked.post(f"{BASE}/hooks/tok_SECRET", status=404, payload=envelope("no such hook"))
    result = await body_of(
        transport,
        "POST",
        "/hooks/tok_SECRET",
        json={"a": 1},
        authenticated=False,
        display_path="/hooks/***",
    )
    assert result == {"ok": True}
    with pytest.raises(NotFoundError) as info:
        await body_of(
            transport, "POST", "/hooks/tok_SECRET", authenticated=False, display_path="/hooks/***"
        )
    assert info.value.path == "/hooks/***"
    assert "tok_SECRET" not in str(info.value)
    for call in calls(mocked):
        assert "Authorization" not in call.kwargs["headers"]
    assert calls(mocked)[0].kwargs["headers"]["Content-Type"] == "application/json"
    assert all("tok_SECRET" not in r.getMessage() for r in caplog.records)


# --- logging and secrets ----------------------------------------------------------------


async def test_debug_line_per_attempt(
    client: AsyncCrewship, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    mocked.get(RUN_URL, status=503, payload=envelope("busy"))
    mocked.get(RUN_URL, exception=aiohttp.ServerDisconnectedError())
    mocked.get(RUN_URL, payload=RUN)
    await client.runs.get("run_1")
    lines = [r.getMessage() for r in caplog.records if r.name == "crewship_async"]
    attempts = [line for line in lines if "(attempt" in line]
    assert len(attempts) == 3
    suffix = ", runs.get, run_id=run_1)"
    assert attempts[0].startswith("GET /v1/runs/{run_id} -> 503 in ")
    assert attempts[0].endswith("(attempt 1" + suffix)
    assert attempts[1].startswith("GET /v1/runs/{run_id} -> ServerDisconnectedError in ")
    assert attempts[1].endswith("(attempt 2" + suffix)
    assert attempts[2].startswith("GET /v1/runs/{run_id} -> 200 in ")
    assert attempts[2].endswith("(attempt 3" + suffix)
    retries = [line for line in lines if "retry" in line]
    assert retries[0].startswith("GET /v1/runs/{run_id}: retry 1/2 in ")
    assert retries[0].endswith("after ServiceUnavailableError")
    attempt_records = [r for r in caplog.records if "(attempt" in r.getMessage()]
    assert all(r.levelno == logging.INFO for r in attempt_records)
    assert [r.crewship_request.attempt for r in attempt_records] == [1, 2, 3]
    assert [r.crewship_outcome for r in attempt_records] == [503, "ServerDisconnectedError", 200]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "retry" in r.getMessage())


async def test_key_never_in_errors_or_logs(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.get(RUN_URL, status=401, payload=envelope("bad key"), headers={"x-request-id": "r"})
    mocked.get(RUN_URL, status=500, body="<html>oops</html>", content_type="text/html")
    mocked.get(RUN_URL, exception=refused(), repeat=True)
    mocked.post(RUNS_URL, exception=aiohttp.ServerDisconnectedError())
    mocked.post(RUNS_URL, status=200, body="not json")
    errors: list[BaseException] = []
    async with AsyncCrewship(
        api_key=API_KEY, base_url=BASE, retry_policy=RetryPolicy(max_retries=0)
    ) as client:
        for call in (
            client.runs.get("run_1"),
            client.runs.get("run_1"),
            client.runs.get("run_1"),
            client.runs.create("dep_1"),
            client.runs.create("dep_1"),
        ):
            with pytest.raises(Exception) as info:  # noqa: PT011
                await call
            errors.append(info.value)
    assert [type(e) for e in errors] == [
        AuthenticationError,
        InternalServerError,
        APIConnectionError,
        APIConnectionError,
        ResponseError,
    ]
    for error in errors:
        text = "".join(traceback.format_exception(error)) + repr(error) + str(vars(error))
        assert API_KEY not in text
        assert API_KEY.encode() not in pickle.dumps(error)
    assert caplog.records
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in str(record.args)
    assert API_KEY not in caplog.text


# --- the retry matrix -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_refused_before_sending_is_retried(
    client: AsyncCrewship, mocked: aioresponses, method: str
) -> None:
    if method == "GET":
        mocked.get(RUN_URL, exception=refused())
        mocked.get(RUN_URL, payload=RUN)
        assert (await client.runs.get("run_1")).id == "run_1"
    else:
        mocked.post(RUNS_URL, exception=refused())
        mocked.post(RUNS_URL, payload=CREATED)
        assert (await client.runs.create("dep_1")).run_id == "run_1"
    assert len(calls(mocked, method)) == 2


async def test_refused_every_time_gives_connection_error(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.post(RUNS_URL, exception=refused(), repeat=True)
    with pytest.raises(APIConnectionError, match="POST /v1/runs: could not connect") as info:
        await client.runs.create("dep_1")
    assert not isinstance(info.value, APITimeoutError)
    assert "may or may not" not in str(info.value)
    # Described, not chained: aiohttp's exceptions may quote server bytes or the request.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert "ClientConnectorError" in str(info.value)
    assert info.value.request_sent is False
    assert len(calls(mocked)) == 3


async def test_connect_timeout_is_retried_for_post(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.post(RUNS_URL, exception=aiohttp.ConnectionTimeoutError("connect timed out"))
    mocked.post(RUNS_URL, payload=CREATED)
    assert (await client.runs.create("dep_1")).run_id == "run_1"
    assert len(calls(mocked)) == 2


@pytest.mark.parametrize(
    "exception",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("Response payload is not completed"),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
    ],
    ids=type,
)
async def test_dropped_after_sending_is_retried_for_get(
    client: AsyncCrewship, mocked: aioresponses, exception: Exception
) -> None:
    mocked.get(RUN_URL, exception=exception)
    mocked.get(RUN_URL, payload=RUN)
    assert (await client.runs.get("run_1")).id == "run_1"
    assert len(calls(mocked)) == 2


@pytest.mark.parametrize(
    "exception",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("Response payload is not completed"),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
    ],
    ids=type,
)
async def test_dropped_after_sending_is_not_retried_for_post(
    client: AsyncCrewship, mocked: aioresponses, exception: Exception
) -> None:
    mocked.post(RUNS_URL, exception=exception)
    mocked.post(RUNS_URL, payload=CREATED)
    with pytest.raises(APIConnectionError) as info:
        await client.runs.create("dep_1", input={"topic": "AI"})
    message = str(info.value)
    assert message.startswith("POST /v1/runs: the connection failed before a response")
    assert "it may or may not exist" in message
    assert "not sent again" in message
    assert len(calls(mocked)) == 1


async def test_read_timeout_is_not_retried_for_post(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.post(CANCEL_URL, timeout=True)
    mocked.post(CANCEL_URL, payload={"success": True})
    with pytest.raises(APITimeoutError, match="may or may not") as info:
        await client.runs.cancel("run_1")
    assert isinstance(info.value, TimeoutError)
    assert len(calls(mocked)) == 1


async def test_read_timeout_is_retried_for_get(client: AsyncCrewship, mocked: aioresponses) -> None:
    mocked.get(RUN_URL, timeout=True)
    mocked.get(RUN_URL, payload=RUN)
    assert (await client.runs.get("run_1")).id == "run_1"
    assert len(calls(mocked)) == 2


async def test_tls_certificate_error_is_not_retried(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    error = aiohttp.ClientConnectorCertificateError(KEY, ValueError("self-signed certificate"))
    mocked.get(RUN_URL, exception=error, repeat=True)
    with pytest.raises(APIConnectionError, match="TLS certificate check failed"):
        await client.runs.get("run_1")
    assert len(calls(mocked)) == 1


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
async def test_429_and_503_are_retried_for_every_method_honouring_retry_after(
    make_transport: Callable[..., Transport],
    mocked: aioresponses,
    sleeps: Sleeps,
    status: int,
    method: str,
) -> None:
    transport = make_transport()
    url = f"{BASE}/v1/things/t1"
    date = email.utils.formatdate(time.time() + 20, usegmt=True)
    mocked.add(url, method, status=status, payload=envelope("wait"), headers={"Retry-After": "3"})
    mocked.add(url, method, status=status, payload=envelope("wait"), headers={"Retry-After": date})
    mocked.add(url, method, payload={"ok": True})
    assert await body_of(transport, method, "/v1/things/t1", timeout=None) == {"ok": True}
    assert len(calls(mocked)) == 3
    assert sleeps.delays[0] == 3.0
    assert 15.0 <= sleeps.delays[1] <= 20.0


async def test_retry_after_ms_and_missing_retry_after(
    client: AsyncCrewship, mocked: aioresponses, sleeps: Sleeps
) -> None:
    mocked.get(RUN_URL, status=429, headers={"retry-after-ms": "1500"})
    mocked.get(RUN_URL, status=503)
    mocked.get(RUN_URL, payload=RUN)
    await client.runs.get("run_1", timeout=None)
    assert sleeps.delays[0] == 1.5
    assert 0 <= sleeps.delays[1] <= FAST.max_delay


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_above_the_cap_raises_at_once(
    client: AsyncCrewship, mocked: aioresponses, sleeps: Sleeps, status: int
) -> None:
    mocked.post(RUNS_URL, status=status, payload=envelope("later"), headers={"Retry-After": "61"})
    mocked.post(RUNS_URL, payload=CREATED)
    with pytest.raises(APIError) as info:
        await client.runs.create("dep_1")
    assert info.value.status_code == status
    assert sleeps.delays == []
    assert len(calls(mocked)) == 1


async def test_retry_after_cap_is_configurable(mocked: aioresponses, sleeps: Sleeps) -> None:
    mocked.get(RUN_URL, status=429, headers={"Retry-After": "120"})
    mocked.get(RUN_URL, payload=RUN)
    policy = RetryPolicy(max_retry_after=300)
    async with AsyncCrewship(
        api_key=API_KEY, base_url=BASE, retry_policy=policy, timeout=None
    ) as client:
        await client.runs.get("run_1")
    assert sleeps.delays == [120.0]


async def test_retry_after_beyond_the_deadline_raises_at_once(
    client: AsyncCrewship, mocked: aioresponses, sleeps: Sleeps
) -> None:
    mocked.get(RUN_URL, status=503, payload=envelope("later"), headers={"Retry-After": "30"})
    mocked.get(RUN_URL, payload=RUN)
    with pytest.raises(ServiceUnavailableError):
        await client.runs.get("run_1", timeout=5)
    assert sleeps.delays == []
    assert len(calls(mocked)) == 1


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("DELETE", True), ("POST", False)])
@pytest.mark.parametrize("status", [500, 502, 504])
async def test_other_5xx_retried_for_get_and_delete_only(
    make_transport: Callable[..., Transport],
    mocked: aioresponses,
    method: str,
    retried: bool,
    status: int,
) -> None:
    transport = make_transport()
    url = f"{BASE}/v1/things/t1"
    mocked.add(url, method, status=status, payload=envelope("boom"))
    mocked.add(url, method, payload={"ok": True})
    if retried:
        assert await body_of(transport, method, "/v1/things/t1") == {"ok": True}
        assert len(calls(mocked)) == 2
    else:
        with pytest.raises(InternalServerError):
            await body_of(transport, method, "/v1/things/t1")
        assert len(calls(mocked)) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_4xx_never_retried(
    make_transport: Callable[..., Transport], mocked: aioresponses, status: int, method: str
) -> None:
    transport = make_transport()
    url = f"{BASE}/v1/things/t1"
    mocked.add(url, method, status=status, payload=envelope("no"), repeat=True)
    with pytest.raises(APIError) as info:
        await body_of(transport, method, "/v1/things/t1")
    assert info.value.status_code == status
    assert len(calls(mocked)) == 1


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_max_retries_respected(mocked: aioresponses, max_retries: int) -> None:
    mocked.get(RUN_URL, status=503, payload=envelope("down"), repeat=True)
    policy = RetryPolicy(max_retries=max_retries, initial_delay=0.001, max_delay=0.001)
    async with AsyncCrewship(api_key=API_KEY, base_url=BASE, retry_policy=policy) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.runs.get("run_1")
    assert len(calls(mocked)) == max_retries + 1


async def test_backoff_delays_follow_the_policy(mocked: aioresponses, sleeps: Sleeps) -> None:
    mocked.get(RUN_URL, status=500, repeat=True)
    policy = RetryPolicy(max_retries=4, initial_delay=1.0, max_delay=3.0)
    async with AsyncCrewship(
        api_key=API_KEY, base_url=BASE, retry_policy=policy, timeout=None
    ) as client:
        with pytest.raises(InternalServerError):
            await client.runs.get("run_1")
    assert len(sleeps.delays) == 4
    for delay, ceiling in zip(sleeps.delays, [1.0, 2.0, 3.0, 3.0], strict=True):
        assert 0 <= delay <= ceiling


# --- deadlines --------------------------------------------------------------------------


async def test_deadline_is_shared_by_all_attempts(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    async def slow_503(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(0.05)
        return CallbackResult(status=503, payload=envelope("busy"))

    mocked.get(RUN_URL, callback=slow_503)
    mocked.get(RUN_URL, payload=RUN)
    await client.runs.get("run_1", timeout=30)
    first, second = calls(mocked)
    assert first.kwargs["timeout"].total <= 30
    # The second attempt only gets what is left of the same deadline.
    assert second.kwargs["timeout"].total <= first.kwargs["timeout"].total - 0.04
    assert second.kwargs["timeout"].sock_connect <= 10


async def test_no_deadline_when_timeout_is_none(mocked: aioresponses) -> None:
    mocked.get(RUN_URL, payload=RUN)
    async with AsyncCrewship(api_key=API_KEY, base_url=BASE, timeout=None) as client:
        await client.runs.get("run_1")
    (call,) = calls(mocked)
    assert call.kwargs["timeout"].total is None
    assert call.kwargs["timeout"].sock_connect == 10


async def test_deadline_passed_during_a_retry_sleep(
    client: AsyncCrewship, mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sleep = asyncio.sleep

    async def oversleep(delay: float) -> None:
        await real_sleep(0.3)

    monkeypatch.setattr(anyio, "sleep", oversleep)
    mocked.get(RUN_URL, status=503, payload=envelope("busy"))
    mocked.get(RUN_URL, payload=RUN)
    with pytest.raises(APITimeoutError, match="the call's deadline passed"):
        await client.runs.get("run_1", timeout=0.2)
    assert len(calls(mocked)) == 1


async def test_server_that_never_answers_hits_the_deadline(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.default(hang())
    with pytest.raises(APITimeoutError, match="GET /v1/runs/run_1: no response before") as info:
        with anyio.fail_after(10):
            await live.runs.get("run_1", timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert len(server.requests) == 1


async def test_one_deadline_across_attempts(server: ScriptedServer, live: AsyncCrewship) -> None:
    server.add(slow(0.1, respond(503, {"error": {"message": "busy"}})))
    server.default(hang())
    with pytest.raises(APITimeoutError):
        with anyio.fail_after(10):
            await live.runs.get("run_1", timeout=1.0)
    assert len(server.requests) == 2


async def test_post_past_its_deadline_may_or_may_not_exist(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.default(hang())
    with pytest.raises(APITimeoutError, match="it may or may not exist"):
        await live.runs.create("dep_1", timeout=0.3)
    assert len(server.requests) == 1


# --- real sockets -----------------------------------------------------------------------


async def test_real_refused_connection_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AsyncCrewship(
        api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", retry_policy=FAST
    ) as client:
        with pytest.raises(APIConnectionError, match="POST /v1/runs: could not connect"):
            await client.runs.create("dep_1")


async def test_real_drop_after_sending_post_is_sent_once(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(drop())
    server.default(respond(202, CREATED))
    with pytest.raises(APIConnectionError, match="it may or may not exist") as info:
        await live.runs.create("dep_1", input={"topic": "AI"})
    assert not isinstance(info.value, APITimeoutError)
    assert len(server.requests) == 1
    assert server.requests[0].body == b'{"deployment_id":"dep_1","environment":"production",' + (
        b'"input":{"topic":"AI"}}'
    )


async def test_real_drop_after_sending_get_is_retried(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.add(drop())
    server.default(respond(200, RUN))
    assert (await live.runs.get("run_1")).id == "run_1"
    assert len(server.requests) == 2


async def test_real_malformed_response_hides_the_key(
    live: AsyncCrewship, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n{}")
        await writer.drain()
        writer.close()

    tcp = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    try:
        async with AsyncCrewship(
            api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", max_retries=0
        ) as client:
            with pytest.raises(APIConnectionError) as info:
                await client.runs.get("run_1")
    finally:
        tcp.close()
        await tcp.wait_closed()
    text = "".join(traceback.format_exception(info.value))
    assert API_KEY not in text
    assert API_KEY not in caplog.text


# --- cancellation -----------------------------------------------------------------------


async def test_cancel_during_a_retry_sleep_propagates(
    client: AsyncCrewship, mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeping = asyncio.Event()
    real_sleep = anyio.sleep

    async def tracked_sleep(delay: float) -> None:
        sleeping.set()
        await real_sleep(delay)

    monkeypatch.setattr(anyio, "sleep", tracked_sleep)
    mocked.get(RUN_URL, status=503, headers={"Retry-After": "30"}, repeat=True)
    task = asyncio.create_task(client.runs.get("run_1", timeout=None))
    await asyncio.wait_for(sleeping.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert len(calls(mocked)) == 1


async def test_cancel_during_a_request_propagates(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.default(hang())
    task = asyncio.create_task(live.runs.create("dep_1"))
    await server.wait_for(lambda: len(server.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    await server.wait_for(lambda: server.disconnects == 1)


async def test_outer_timeout_is_not_turned_into_another_error(
    server: ScriptedServer, live: AsyncCrewship
) -> None:
    server.default(hang())
    with pytest.raises(TimeoutError) as info:
        async with asyncio.timeout(0.2):
            await live.runs.get("run_1", timeout=30)
    assert type(info.value) is TimeoutError


# --- validation before any request ------------------------------------------------------


class NotJSON:
    pass


@pytest.mark.parametrize(
    "payload",
    [
        {"when": NotJSON()},
        {"nested": {1: "int key"}},
        {"x": float("nan")},
        {"x": [float("inf")]},
        {"n": 2**70},
        {"s": {1, 2}},
    ],
)
async def test_unserialisable_input_raises_before_any_request(
    client: AsyncCrewship, mocked: aioresponses, payload: dict[str, Any]
) -> None:
    with pytest.raises(TypeError, match="POST /v1/runs: the request body is not JSON-serial"):
        await client.runs.create("dep_1", input=payload)
    assert calls(mocked) == []


@pytest.mark.parametrize(
    ("bad", "error"),
    [("", ValueError), (".", ValueError), ("..", ValueError), (None, TypeError), (7, TypeError)],
)
async def test_bad_ids_raise_before_any_request(
    client: AsyncCrewship, mocked: aioresponses, bad: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="run_id"):
        await client.runs.get(bad)
    with pytest.raises(error, match="run_id"):
        await client.runs.cancel(bad)
    with pytest.raises(error, match="run_id"):
        client.runs.stream(bad)
    with pytest.raises(error, match="run_id"):
        await client.runs.wait(bad)
    assert calls(mocked) == []


@pytest.mark.parametrize(
    ("run_id", "encoded"),
    [
        ("../x", "..%2Fx"),
        ("a/b", "a%2Fb"),
        ("run 1?x=#y", "run%201%3Fx=%23y"),  # yarl writes "=" bare: same segment
        ("r%2F", "r%252F"),
        ("ünï", "%C3%BCn%C3%AF"),
    ],
)
async def test_ids_are_percent_encoded_as_one_segment(
    server: ScriptedServer, live: AsyncCrewship, run_id: str, encoded: str
) -> None:
    server.default(respond(200, {**RUN, "id": run_id}))
    run = await live.runs.get(run_id)
    assert run.id == run_id
    (seen,) = server.requests
    assert seen.raw_path == f"/v1/runs/{encoded}"
    assert seen.path == f"/v1/runs/{run_id}"


async def test_dotdot_id_stays_in_its_segment_with_aioresponses(
    client: AsyncCrewship, mocked: aioresponses
) -> None:
    mocked.post(f"{BASE}/v1/runs/..%2Fx/cancel", payload={"success": True})
    assert (await client.runs.cancel("../x")).success is True


@pytest.mark.parametrize("environment", ["prod", "Production", "", None, "dev"])
async def test_environment_outside_the_two_raises(
    client: AsyncCrewship, mocked: aioresponses, environment: Any
) -> None:
    with pytest.raises(ValueError, match="environment must be 'production' or 'staging'"):
        await client.runs.create("dep_1", environment=environment)
    assert calls(mocked) == []


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ({"a": None, "b": "x", "c": [1, None, {"d": 1.5}], "e": (True, None)}, None),
        ({"a": [None, [float("-inf")]]}, TypeError),
        ([None, {"x": float("nan")}], TypeError),
        ({"when": "no null here", "x": 1}, None),
    ],
)
def test_json_dumps_refuses_non_finite_floats(value: Any, encoded: Any) -> None:
    if encoded is TypeError:
        with pytest.raises(TypeError, match="NaN or infinity"):
            _json.dumps(value)
    else:
        assert json.loads(_json.dumps(value)) == json.loads(json.dumps(value))


async def test_client_closed_during_a_retry_sleep(
    mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE, retry_policy=FAST)

    async def closing_sleep(delay: float) -> None:
        await client.aclose()

    monkeypatch.setattr(anyio, "sleep", closing_sleep)
    mocked.get(RUN_URL, status=503, repeat=True)
    with pytest.raises(ClientClosedError, match="closed"):
        await client.runs.get("run_1")
    assert len(calls(mocked)) == 1


async def test_client_closed_during_a_request(server: ScriptedServer) -> None:
    server.default(hang())
    client = AsyncCrewship(api_key=API_KEY, base_url=server.url, retry_policy=FAST)
    task = asyncio.create_task(client.runs.get("run_1"))
    await server.wait_for(lambda: len(server.requests) == 1)
    await client.aclose()
    with pytest.raises(ClientClosedError), anyio.fail_after(10):
        await task
    assert len(server.requests) == 1


def partial_body() -> Any:
    """Send the headers and part of a JSON body, then nothing more."""

    async def script(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": "100"}
        )
        await response.prepare(request)
        await response.write(b'{"id": ')
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")  # pragma: no cover

    return script


@pytest.mark.parametrize("script", [partial_body, hang], ids=["reading-body", "no-headers"])
@pytest.mark.parametrize("borrowed", [False, True], ids=["own-session", "borrowed-session"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_closing_the_client_ends_calls_in_flight(
    server: ScriptedServer, script: Any, borrowed: bool, method: str
) -> None:
    server.default(script())
    session = aiohttp.ClientSession() if borrowed else None
    client = AsyncCrewship(api_key=API_KEY, base_url=server.url, session=session)
    if method == "GET":
        call, path = client.runs.get("run_1", timeout=30), "/v1/runs/run_1"
    else:
        call, path = client.runs.create("dep_1", timeout=30), "/v1/runs"
    task = asyncio.create_task(call)
    await server.wait_for(lambda: len(server.requests) == 1)
    await asyncio.sleep(0.05)
    await client.aclose()
    with pytest.raises(ClientClosedError, match=f"{method} {path}: the client was closed") as info:
        with anyio.fail_after(10):
            await task
    assert ("it may or may not exist" in str(info.value)) is (method == "POST")
    assert len(server.requests) == 1
    # The call let go of its connection (a borrowed session's too): the server saw it go.
    await server.wait_for(lambda: server.disconnects == 1)
    if session is not None:
        assert not session.closed
        await session.close()
