"""client.webhooks.trigger: no bearer header, and the token never shows."""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from crewship_async import (
    APIConnectionError,
    AsyncCrewship,
    CrewshipError,
    NotFoundError,
    ResponseError,
    RetryPolicy,
    RunCreated,
)
from crewship_async.testing import CrewshipEmulator

BASE = "https://api.example.test"
TOKEN = "whk_SECRET_9d8c7b6a5f4e"
URL = f"{BASE}/webhooks/runs/{TOKEN}"
ACCEPTED = {"run_id": "run_9", "version_id": "ver_1", "version_number": 5, "status": "running"}


def calls(mock: aioresponses) -> list[Any]:
    return [call for made in mock.requests.values() for call in made]


def everything_about(error: BaseException) -> str:
    """All the text an error can show: str, repr, args, body, and its formatted traceback."""
    parts = [str(error), repr(error), repr(error.args), repr(getattr(error, "body", None))]
    parts.extend(traceback.format_exception(type(error), error, error.__traceback__))
    return "\n".join(parts)


@pytest.fixture
async def client() -> AsyncIterator[AsyncCrewship]:
    policy = RetryPolicy(initial_delay=0.001, max_delay=0.01)
    async with AsyncCrewship(api_key="k", base_url=BASE, retry_policy=policy) as c:
        yield c


async def test_trigger_posts_the_input_without_bearer(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(URL, status=202, payload=ACCEPTED)
        created = await client.webhooks.trigger(TOKEN, {"topic": "AI agents", "year": "2025"})
    assert isinstance(created, RunCreated)
    assert (created.run_id, created.version_number) == ("run_9", 5)
    [call] = calls(m)
    assert json.loads(call.kwargs["data"]) == {"topic": "AI agents", "year": "2025"}
    headers = {k.lower(): v for k, v in call.kwargs["headers"].items()}
    assert "authorization" not in headers
    assert headers["content-type"] == "application/json"


async def test_trigger_without_input_sends_an_empty_object(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(URL, status=202, payload=ACCEPTED)
        await client.webhooks.trigger(TOKEN, None)
    [call] = calls(m)
    assert json.loads(call.kwargs["data"]) == {}


async def test_token_is_percent_encoded(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(f"{BASE}/webhooks/runs/a%25b%3Fc", status=202, payload=ACCEPTED)
        await client.webhooks.trigger("a%b?c", {})
    assert len(calls(m)) == 1


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("", ValueError),
        (".", ValueError),
        ("..", ValueError),
        (None, TypeError),
        (12345, TypeError),
        (b"whk_bytes_SECRET", TypeError),
        (" whk_SECRET_padded", ValueError),
        ("whk_SECRET\r\nX-Evil: 1", ValueError),
        ("whk_SECRET\x7f", ValueError),
        ("https://api.crewship.dev/webhooks/runs/whk_SECRET", ValueError),
        (f"{BASE}/webhooks/runs/whk_SECRET/extra", ValueError),
        (f"{BASE}/other/whk_SECRET", ValueError),
        (f"{BASE}/webhooks/runs/whk_SECRET?x=1", ValueError),
        (f"{BASE}/webhooks/runs/whk_SECRET#f", ValueError),
        ("https://user:pw@api.example.test/webhooks/runs/whk_SECRET", ValueError),
        ("http://api.example.test/webhooks/runs/whk_SECRET", ValueError),
        ("https://api.example.test:99999/webhooks/runs/whk_SECRET", ValueError),
        (f"{BASE}/webhooks/runs/", ValueError),
        (f"{BASE}/webhooks/runs/..", ValueError),
        (f"{BASE}/webhooks/runs/whk_SECRET%0A", ValueError),
        ("ftp://api.example.test/webhooks/runs/whk_SECRET", ValueError),
    ],
)
async def test_bad_tokens_are_refused_without_echo(
    client: AsyncCrewship, token: Any, error: type[Exception]
) -> None:
    with aioresponses() as m:
        with pytest.raises(error) as caught:
            await client.webhooks.trigger(token, {"a": 1})
        assert not m.requests
    assert "SECRET" not in everything_about(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        URL,
        f"{BASE}/v1/webhooks/runs/{TOKEN}",
        f"{BASE.upper()}:443/webhooks/runs/{TOKEN}".replace("HTTPS", "https"),
    ],
)
async def test_the_whole_webhook_url_is_accepted(client: AsyncCrewship, url: str) -> None:
    with aioresponses() as m:
        m.post(URL, payload=ACCEPTED)
        created = await client.webhooks.trigger(url, {"topic": "AI"})
        [call] = calls(m)
    assert created.run_id == "run_9"
    assert "Authorization" not in call.kwargs["headers"]


async def test_a_percent_encoded_token_in_the_url_is_sent_once_encoded(
    client: AsyncCrewship,
) -> None:
    with aioresponses() as m:
        m.post(f"{BASE}/webhooks/runs/whk%20SECRET_x", payload=ACCEPTED)
        await client.webhooks.trigger(f"{BASE}/webhooks/runs/whk%20SECRET_x", None)
        assert len(calls(m)) == 1


async def test_input_must_be_an_object(client: AsyncCrewship) -> None:
    with pytest.raises(TypeError, match="input"):
        await client.webhooks.trigger(TOKEN, ["a"])  # type: ignore[arg-type]


async def test_error_shows_a_masked_path_and_scrubs_echoes(client: AsyncCrewship) -> None:
    echo = {"error": {"message": f"Unknown webhook token {TOKEN}", "tried": [TOKEN, 1]}}
    with aioresponses() as m:
        m.post(URL, status=404, payload=echo, headers={"x-request-id": "req_1"})
        with pytest.raises(NotFoundError) as caught:
            await client.webhooks.trigger(TOKEN, {"a": 1})
    error = caught.value
    assert str(error).startswith("POST /webhooks/runs/*** -> 404")
    assert error.path == "/webhooks/runs/***"
    assert error.body == {"error": {"message": "Unknown webhook token ***", "tried": ["***", 1]}}
    assert TOKEN not in everything_about(error)


async def test_connection_error_text_never_holds_the_token(client: AsyncCrewship) -> None:
    # aiohttp's own message names the whole URL, token included.
    failure = aiohttp.ConnectionTimeoutError(f"Connection timeout to host {URL}")
    with aioresponses() as m:
        m.post(URL, exception=failure, repeat=True)
        with pytest.raises(APIConnectionError) as caught:
            await client.webhooks.trigger(TOKEN, {"a": 1})
    assert "/webhooks/runs/***" in str(caught.value)
    assert TOKEN not in everything_about(caught.value)


async def test_no_chained_exception_holds_the_token(client: AsyncCrewship) -> None:
    # `raise ... from None` only hides the chain from tracebacks: __context__ still held
    # the internal attempt error and, through it, aiohttp's message with the whole URL.
    failure = aiohttp.ConnectionTimeoutError(f"Connection timeout to host {URL}")
    with aioresponses() as m:
        m.post(URL, exception=failure, repeat=True)
        with pytest.raises(APIConnectionError) as caught:
            await client.webhooks.trigger(TOKEN, {"a": 1})
    chain: list[BaseException] = []
    pending: list[BaseException] = [caught.value]
    while pending:
        error = pending.pop()
        if any(error is seen for seen in chain):
            continue
        chain.append(error)
        pending.extend(e for e in (error.__cause__, error.__context__) if e is not None)
    assert all(TOKEN not in everything_about(error) for error in chain)


async def test_non_json_success_body_is_scrubbed(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(URL, status=202, body=f"started {TOKEN}", content_type="text/plain")
        with pytest.raises(ResponseError) as caught:
            await client.webhooks.trigger(TOKEN, {"a": 1})
    assert TOKEN not in everything_about(caught.value)


async def test_wrong_shape_names_the_masked_path(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(URL, status=202, payload={"status": "running"})
        with pytest.raises(ResponseError, match=re.escape("/webhooks/runs/***")) as caught:
            await client.webhooks.trigger(TOKEN, {"a": 1})
    assert TOKEN not in everything_about(caught.value)


async def test_token_absent_from_debug_logs(
    client: AsyncCrewship, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with aioresponses() as m:
        m.post(URL, status=503, payload={"error": {"message": "busy"}})
        m.post(URL, status=202, payload=ACCEPTED)
        await client.webhooks.trigger(TOKEN, {"a": 1})
    assert len(calls(m)) == 2
    assert "/webhooks/runs/***" in caplog.text
    assert TOKEN not in caplog.text


async def test_errors_stay_crewship_errors(client: AsyncCrewship) -> None:
    with aioresponses() as m:
        m.post(URL, status=400, payload={"error": {"message": "No running version found"}})
        with pytest.raises(CrewshipError, match="No running version found"):
            await client.webhooks.trigger(TOKEN, {"a": 1})


async def test_e2e_trigger_against_the_emulator() -> None:
    async with CrewshipEmulator(step_delay=0.005) as emulator:
        token = emulator.add_webhook("dep_hook")
        async with emulator.client() as client:
            created = await client.webhooks.trigger(token, {"topic": "AI"})
            by_url = await client.webhooks.trigger(emulator.webhook_url(token), {"topic": "B"})
            run = await client.runs.get(created.run_id)
            assert (await client.runs.get(by_url.run_id)).input == {"topic": "B"}
            with pytest.raises(NotFoundError) as caught:
                await client.webhooks.trigger(token + "x", {"topic": "AI"})
        [first, *_] = [r for r in emulator.requests if r.path.startswith("/webhooks/")]
    assert run.input == {"topic": "AI"}
    assert run.deployment_id == "dep_hook"
    assert "authorization" not in {name.lower() for name in first.headers}
    assert first.body == {"topic": "AI"}
    assert token not in everything_about(caught.value)
