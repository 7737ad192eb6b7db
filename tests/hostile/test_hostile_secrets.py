"""A server or gateway that echoes the request never gets the key (or a webhook token) into
an exception, anything chained to it, or a log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any, Callable

import pytest

from crewship_async import (
    APIConnectionError,
    APIError,
    AsyncCrewship,
    AuthenticationError,
    CrewshipError,
    InternalServerError,
    PermissionDeniedError,
    ResponseError,
    RunRequest,
    StreamError,
)
from crewship_async._redact import scrub
from crewship_async._streams import EventStream
from crewship_async.models.events import RunEvent

from .rawserver import (
    KEY,
    TOKEN,
    RawRequest,
    RawServer,
    echo_text,
    leaks,
    reply,
    response_bytes,
    texts_of,
)

RUNNING = {"id": "run_1", "deployment_id": "dep_1", "status": "running"}


def envelope(request: RawRequest) -> bytes:
    quoted = request.head.decode("latin-1")
    auth = request.headers.get("authorization", "")
    return json.dumps(
        {
            "error": {
                "message": f"invalid key in header Authorization: {auth}",
                "code": auth,
                "detail": quoted,
                "hint": [auth[-12:], {auth: auth[:20]}],
            }
        }
    ).encode()


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [caplog.text] + [record.getMessage() for record in caplog.records]


async def caught(call: Awaitable[Any]) -> CrewshipError:
    with pytest.raises(CrewshipError) as info:
        await call
    return info.value


async def consume(stream: EventStream) -> list[RunEvent]:
    async with stream as events:
        return [event async for event in events]


def assert_clean(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    assert leaks(texts_of(error)) == []
    assert leaks(log_texts(caplog)) == []


AUTH_HEADER_ECHO = {"Content-Type": "application/json"}

CASES: dict[str, tuple[Callable[[RawServer], None], type[CrewshipError]]] = {
    "401 envelope echoing the header in every field": (
        lambda raw: setattr(raw, "behaviour", reply(401, envelope, AUTH_HEADER_ECHO)),
        AuthenticationError,
    ),
    "HTML error page quoting the request": (
        lambda raw: setattr(
            raw,
            "behaviour",
            reply(
                502,
                lambda r: b"<html><pre>" + r.head + b"</pre></html>",
                {"Content-Type": "text/html"},
            ),
        ),
        InternalServerError,
    ),
    "text/plain body on a 2xx": (
        lambda raw: setattr(
            raw, "behaviour", reply(200, echo_text, {"Content-Type": "text/plain"})
        ),
        ResponseError,
    ),
    "2xx JSON of the wrong shape holding the key": (
        lambda raw: setattr(
            raw,
            "behaviour",
            reply(200, lambda r: json.dumps({"id": r.headers["authorization"]}).encode()),
        ),
        ResponseError,
    ),
    "x-request-id and other headers echoing it": (
        lambda raw: setattr(
            raw,
            "behaviour",
            reply(
                403,
                b"",
                {"x-request-id": f"Bearer {KEY}", "x-echo": KEY, "Content-Type": "text/plain"},
            ),
        ),
        PermissionDeniedError,
    ),
    "a bad status line quoting the key": (
        lambda raw: setattr(
            raw, "behaviour", reply(f"HTTP/1.1 2OO Bearer {KEY}\r\n".encode(), b"{}")
        ),
        APIConnectionError,
    ),
    "an oversized header line ending in the key": (
        lambda raw: setattr(
            raw, "behaviour", reply(200, b"{}", {"X-Big": "a" * 9000 + f" Bearer {KEY}"})
        ),
        APIConnectionError,
    ),
    "the key cut short by the server (head only)": (
        lambda raw: setattr(
            raw, "behaviour", reply(401, f'{{"error": "bad key {KEY[:12]}..."}}'.encode())
        ),
        AuthenticationError,
    ),
    "the key cut short by the server (tail only)": (
        lambda raw: setattr(
            raw, "behaviour", reply(401, f'{{"error": "bad key ...{KEY[-9:]}"}}'.encode())
        ),
        AuthenticationError,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_echoes_never_reach_errors_or_logs(
    raw: RawServer,
    client: AsyncCrewship,
    debug_log: pytest.LogCaptureFixture,
    case: tuple[Callable[[RawServer], None], type[CrewshipError]],
) -> None:
    arrange, expected = case
    arrange(raw)
    error = await caught(client.runs.get("run_1"))
    assert type(error) is expected
    assert raw.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was echoed
    assert_clean(error, debug_log)


async def test_the_message_still_says_what_happened(
    raw: RawServer, client: AsyncCrewship, debug_log: pytest.LogCaptureFixture
) -> None:
    raw.behaviour = reply(401, envelope, AUTH_HEADER_ECHO)
    error = await caught(client.runs.get("run_1"))
    assert isinstance(error, APIError)
    assert str(error).startswith(
        "GET /v1/runs/run_1 -> 401: invalid key in header Authorization: Bearer ***"
    )
    assert error.code == "Bearer ***"
    assert error.body["error"]["hint"] == ["***", {"Bearer ***": "Bearer ***"}]


async def test_stream_error_event_and_http_error_on_open(
    raw: RawServer, client: AsyncCrewship, debug_log: pytest.LogCaptureFixture
) -> None:
    event = json.dumps({"type": "error", "data": {"message": f"denied: Bearer {KEY}"}})
    raw.behaviour = reply(
        200, f"id: 1\ndata: {event}\n\n".encode(), {"Content-Type": "text/event-stream"}
    )
    with pytest.raises(StreamError, match=r"denied: Bearer \*\*\*") as info:
        await consume(client.runs.stream("run_1"))
    assert_clean(info.value, debug_log)

    raw.behaviour = reply(401, envelope, AUTH_HEADER_ECHO)
    with pytest.raises(AuthenticationError) as opened:
        await consume(client.runs.stream("run_1"))
    assert_clean(opened.value, debug_log)


async def test_wait_falling_back_to_polling(
    raw: RawServer, client: AsyncCrewship, debug_log: pytest.LogCaptureFixture
) -> None:
    calls = {"GET /v1/runs/run_1": 0}

    async def behaviour(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if request.target.endswith("/events"):
            # The stream fails with an echo: wait() logs it at DEBUG and polls.
            writer.write(response_bytes(500, envelope(request), AUTH_HEADER_ECHO))
            return
        calls["GET /v1/runs/run_1"] += 1
        if calls["GET /v1/runs/run_1"] == 1:
            writer.write(response_bytes(200, json.dumps(RUNNING).encode()))
        else:
            writer.write(response_bytes(403, envelope(request), AUTH_HEADER_ECHO))

    raw.behaviour = behaviour
    error = await caught(client.runs.wait("run_1", timeout=30, poll_interval=0.01))
    assert isinstance(error, PermissionDeniedError)
    assert any("stream unavailable" in r.getMessage() for r in debug_log.records)
    assert_clean(error, debug_log)


async def test_create_many_outcomes(
    raw: RawServer, client: AsyncCrewship, debug_log: pytest.LogCaptureFixture
) -> None:
    raw.behaviour = reply(400, envelope, AUTH_HEADER_ECHO)
    requests = [RunRequest("dep_1", input={"n": n}) for n in range(5)]
    outcomes = await client.runs.create_all(requests)
    assert [type(o.error) for o in outcomes] == [type(outcomes[0].error)] * 5
    for outcome in outcomes:
        assert outcome.error is not None
        assert leaks(texts_of(outcome.error)) == []
    assert leaks(log_texts(debug_log)) == []


async def test_webhook_token_echoed_in_body_headers_and_status_line(
    raw: RawServer, debug_log: pytest.LogCaptureFixture
) -> None:
    async with AsyncCrewship(api_key=KEY, base_url=raw.url, max_retries=0) as client:
        raw.behaviour = reply(
            404, lambda r: b"no such hook: " + r.head, {"x-request-id": r"tok=" + TOKEN}
        )
        error = await caught(client.webhooks.trigger(TOKEN, {"a": 1}))
        assert TOKEN in raw.requests[0].target
        assert_clean(error, debug_log)
        raw.behaviour = reply(f"HTTP/1.1 20x {TOKEN}\r\n".encode(), b"{}")
        error = await caught(client.webhooks.trigger(TOKEN, {"a": 1}))
        assert_clean(error, debug_log)


def test_scrub_masks_whole_values_fragments_and_escapes_control_characters() -> None:
    from crewship_async._redact import Secret

    secret = Secret("abcdefghijklmnop")
    assert scrub("x abcdefghijklmnop y") == "x *** y"
    assert scrub("cut: abcdefghij") == "cut: ***"
    assert scrub("tail: ...ijklmnop") == "tail: ...***"
    assert scrub("short abcdefg stays") == "short abcdefg stays"
    assert scrub("two abcdefghijklmnopabcdefghijklmnop") == "two ***"
    assert scrub("\x1b[2Jcleared\r\x00") == "\\x1b[2Jcleared\\x0d\\x00"
    assert scrub("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    assert scrub("line\nand\ttab") == "line\nand\ttab"
    assert repr(secret) == "<Secret ***>"
    short = Secret("k9")
    assert scrub("key k9, webhook9k9") == "key ***, webhook9k9"
    del secret, short
    assert scrub("abcdefghijklmnop") == "abcdefghijklmnop"  # no longer live


def test_log_records_are_scrubbed_whatever_their_arguments(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    from crewship_async._redact import Secret

    secret = Secret("zyxwvutsrqponmlk")
    logger = logging.getLogger("crewship_async")
    logger.debug("header %s", f"Bearer {secret.value}")
    try:
        raise RuntimeError(f"boom {secret.value}")
    except RuntimeError:
        logger.exception("failed")
    assert secret.value not in debug_log.text
    assert [r.getMessage() for r in debug_log.records] == [
        "header Bearer ***",
        "failed (RuntimeError: boom ***)",
    ]
