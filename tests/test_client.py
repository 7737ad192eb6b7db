"""AsyncCrewship: configuration, environment, session ownership, loop binding, secrets."""

from __future__ import annotations

import asyncio
import copy
import math
import pickle
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
from aioresponses import aioresponses
from conftest import API_KEY, BASE, FAST, RUN, calls

import crewship_async
from crewship_async import (
    AsyncCrewship,
    ClientClosedError,
    CrewshipError,
    RetryPolicy,
    __version__,
)

RUN_URL = f"{BASE}/v1/runs/run_1"


# --- key and base URL -------------------------------------------------------------------


async def sent_authorization(client: AsyncCrewship, mocked: aioresponses) -> str:
    """The ``Authorization`` header of one request, as the server receives it."""
    url = f"{client.base_url}/v1/runs/run_1"
    mocked.get(url, payload=RUN)
    async with client:
        await client.runs.get("run_1")
    (call,) = calls(mocked, "GET", url)
    header: str = call.kwargs["headers"]["Authorization"]
    return header


async def test_key_from_argument(mocked: aioresponses) -> None:
    client = AsyncCrewship(api_key=API_KEY)
    assert client.base_url == "https://api.crewship.dev"
    assert await sent_authorization(client, mocked) == f"Bearer {API_KEY}"


async def test_key_and_base_url_from_environment(
    monkeypatch: pytest.MonkeyPatch, mocked: aioresponses
) -> None:
    monkeypatch.setenv("CREWSHIP_API_KEY", "sk_from_env")
    monkeypatch.setenv("CREWSHIP_BASE_URL", "https://eu.crewship.test/v1/")
    client = AsyncCrewship()
    assert client.base_url == "https://eu.crewship.test"
    assert await sent_authorization(client, mocked) == "Bearer sk_from_env"


async def test_argument_wins_over_environment(
    monkeypatch: pytest.MonkeyPatch, mocked: aioresponses
) -> None:
    monkeypatch.setenv("CREWSHIP_API_KEY", "sk_from_env")
    monkeypatch.setenv("CREWSHIP_BASE_URL", "https://env.test")
    client = AsyncCrewship(api_key="sk_arg", base_url="https://arg.test")
    assert client.base_url == "https://arg.test"
    assert await sent_authorization(client, mocked) == "Bearer sk_arg"


@pytest.mark.parametrize("env_value", [None, ""])
def test_missing_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch, env_value: str) -> None:
    if env_value is not None:
        monkeypatch.setenv("CREWSHIP_API_KEY", env_value)
    with pytest.raises(CrewshipError, match="CREWSHIP_API_KEY"):
        AsyncCrewship()


@pytest.mark.parametrize(
    ("key", "error"),
    [(123, TypeError), ("sk\r\nX-Evil: 1", ValueError), (" sk_padded", ValueError)],
)
def test_bad_key_refused(key: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        AsyncCrewship(api_key=key)  # type: ignore[arg-type]
    assert str(key) not in str(info.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.test", "https://api.test"),
        ("https://api.test/", "https://api.test"),
        ("https://api.test/v1", "https://api.test"),
        ("https://api.test/v1/", "https://api.test"),
        ("https://gw.test/crewship/v1", "https://gw.test/crewship"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://app.localhost", "http://app.localhost"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9"),
        ("http://[::1]:9", "http://[::1]:9"),
    ],
)
def test_base_url_normalised(given: str, expected: str) -> None:
    assert AsyncCrewship(api_key=API_KEY, base_url=given).base_url == expected


@pytest.mark.parametrize("url", ["http://api.test", "http://10.0.0.5:8080", "http://example"])
def test_plain_http_to_remote_host_refused(url: str) -> None:
    with pytest.raises(ValueError, match="allow_insecure_http"):
        AsyncCrewship(api_key=API_KEY, base_url=url)
    client = AsyncCrewship(api_key=API_KEY, base_url=url, allow_insecure_http=True)
    assert client.base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.test",
        "api.test",
        "https://",
        "https://api.test?x=1",
        "https://api.test#frag",
        "https://user:pw@api.test",
        "https://api.test/\r\nX: y",
        "https://api .test",
    ],
)
def test_bad_base_url_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url") as info:
        AsyncCrewship(api_key=API_KEY, base_url=url)
    assert "pw" not in str(info.value)


# --- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Trace": "a\r\nInjected: 1"},
        {"X-Trace": "a\nb"},
        {"X-Trace": "a\rb"},
        {"X-Trace": "a\0b"},
        {"X-Bad\r\nName": "v"},
        {"X:Colon": "v"},
    ],
)
def test_header_with_cr_lf_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="refused"):
        AsyncCrewship(api_key=API_KEY, default_headers=headers)


def test_header_checks() -> None:
    with pytest.raises(TypeError, match="str to str"):
        AsyncCrewship(api_key=API_KEY, default_headers={"X-N": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="api_key="):
        AsyncCrewship(api_key=API_KEY, default_headers={"authorization": "Bearer other"})


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"idle_timeout": 0}, ValueError),
        ({"max_connections": 0}, ValueError),
        ({"max_connections": 2.5}, TypeError),
        ({"max_connections": True}, TypeError),
        ({"max_retries": -1}, ValueError),
    ],
)
def test_invalid_options(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        AsyncCrewship(api_key=API_KEY, **options)  # type: ignore[arg-type]


def test_options_kept() -> None:
    policy = RetryPolicy(max_retries=4, initial_delay=0.1, max_delay=1.0, max_retry_after=5.0)
    client = AsyncCrewship(
        api_key=API_KEY,
        timeout=None,
        max_connections=7,
        retry_policy=policy,
        idle_timeout=None,
    )
    assert client.timeout is None
    assert client.idle_timeout is None
    assert client.max_connections == 7
    assert client.retry_policy is policy


@pytest.mark.parametrize("no_limit", [None, math.inf])
def test_idle_timeout_none_and_inf_both_mean_no_limit_on_the_client(no_limit: float | None) -> None:
    # One rule: math.inf disables the idle timeout wherever it is given; the client and
    # with_options also take None for it; a stream's None means the client's value.
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE, idle_timeout=no_limit)
    assert client.runs.stream("run_1").idle_timeout is None
    assert client.runs.stream("run_1", idle_timeout=5).idle_timeout == 5
    limited = client.with_options(idle_timeout=30)
    assert limited.runs.stream("run_1").idle_timeout == 30
    assert limited.runs.stream("run_1", idle_timeout=None).idle_timeout == 30
    assert limited.runs.stream("run_1", idle_timeout=math.inf).idle_timeout is None
    unlimited = limited.with_options(idle_timeout=no_limit)
    assert unlimited.runs.stream("run_1").idle_timeout is None


def test_max_retries_is_shorthand_for_the_policy_field() -> None:
    policy = RetryPolicy(initial_delay=0.1, max_delay=1.0, max_retry_after=5.0)
    client = AsyncCrewship(api_key=API_KEY, max_retries=0, retry_policy=policy)
    assert client.retry_policy == RetryPolicy(
        max_retries=0, initial_delay=0.1, max_delay=1.0, max_retry_after=5.0
    )
    assert AsyncCrewship(api_key=API_KEY, max_retries=5).retry_policy.max_retries == 5
    assert AsyncCrewship(api_key=API_KEY).retry_policy == RetryPolicy()


def test_public_names() -> None:
    for name in crewship_async.__all__:
        assert hasattr(crewship_async, name), name
    assert crewship_async.__version__ == __version__


# --- secrets ----------------------------------------------------------------------------


def test_repr_never_shows_the_key() -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    assert API_KEY not in repr(client)
    assert API_KEY not in str(client)
    assert API_KEY not in repr(client.runs)
    assert repr(client) == "<AsyncCrewship base_url='https://api.test'>"


async def test_repr_shows_closed() -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    await client.aclose()
    assert repr(client) == "<AsyncCrewship base_url='https://api.test' closed>"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_client_cannot_be_pickled(protocol: int) -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(client, protocol=protocol)
    assert API_KEY not in str(info.value)
    # Nor can anything that holds the client's connection state and key.
    for resource in (client.runs, client.threads, client.tables, client.webhooks):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(resource, protocol=protocol)


def test_client_cannot_be_copied() -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    with pytest.raises(TypeError):
        copy.copy(client)
    with pytest.raises(TypeError):
        copy.deepcopy(client)


# --- session lifecycle ------------------------------------------------------------------


def test_constructed_outside_a_loop_without_a_session(
    made_sessions: list[aiohttp.ClientSession],
) -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    assert made_sessions == []
    assert not client.closed

    async def use() -> asyncio.AbstractEventLoop:
        with aioresponses() as mock:
            mock.get(RUN_URL, payload=RUN)
            await client.runs.get("run_1")
        (session,) = made_sessions
        assert session._loop is asyncio.get_running_loop()
        await client.aclose()
        assert session.closed
        return asyncio.get_running_loop()

    asyncio.run(use())


async def test_session_created_lazily_and_closed_by_async_with(
    made_sessions: list[aiohttp.ClientSession],
) -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    assert made_sessions == []
    async with client as entered:
        assert entered is client
        (session,) = made_sessions
        assert not session.closed
        assert session.connector is not None
        assert session.connector.limit == 100
    assert session.closed
    assert client.closed


async def test_aclose_is_idempotent_and_closes_the_pool(
    made_sessions: list[aiohttp.ClientSession], mocked: aioresponses
) -> None:
    mocked.get(RUN_URL, payload=RUN)
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE, max_connections=3)
    await client.runs.get("run_1")
    (session,) = made_sessions
    assert session.connector is not None
    assert session.connector.limit == 3
    await client.aclose()
    await client.aclose()
    assert session.closed
    assert client.closed


async def test_aclose_before_any_use() -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        await client.runs.get("run_1")


async def test_closed_client_raises(mocked: aioresponses) -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)
    async with client:
        pass
    with pytest.raises(ClientClosedError, match="closed; create a new one"):
        await client.runs.get("run_1")
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    with pytest.raises(ClientClosedError):
        async with client.runs.stream("run_1"):
            pass
    assert isinstance(ClientClosedError("x"), RuntimeError)
    assert calls(mocked) == []


async def test_borrowed_session_is_used_and_never_closed(
    mocked: aioresponses, made_sessions: list[aiohttp.ClientSession]
) -> None:
    mocked.get(RUN_URL, payload=RUN)
    async with aiohttp.ClientSession() as session:
        async with AsyncCrewship(api_key=API_KEY, base_url=BASE, session=session) as client:
            run = await client.runs.get("run_1")
            assert run.id == "run_1"
            assert made_sessions == [session]  # the client made none of its own
        assert client.closed
        assert not session.closed
        with pytest.raises(ClientClosedError):
            await client.runs.get("run_1")


async def test_borrowed_session_closed_by_its_owner() -> None:
    session = aiohttp.ClientSession()
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE, session=session)
    await session.close()
    with pytest.raises(ClientClosedError, match="session given to AsyncCrewship is closed"):
        await client.runs.get("run_1")
    await client.aclose()


def test_second_event_loop_gets_a_clear_error() -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE, retry_policy=FAST)
    first = asyncio.new_event_loop()
    try:
        with aioresponses() as mock:
            mock.get(RUN_URL, payload=RUN, repeat=True)
            assert first.run_until_complete(client.runs.get("run_1")).id == "run_1"

            def in_another_thread() -> object:
                return asyncio.run(asyncio.wait_for(client.runs.get("run_1"), 10))

            with ThreadPoolExecutor(1) as pool:
                future = pool.submit(in_another_thread)
                with pytest.raises(ClientClosedError, match="one client per event loop"):
                    future.result(timeout=30)

            second = asyncio.new_event_loop()
            try:
                with pytest.raises(ClientClosedError, match="bound to the event loop"):
                    second.run_until_complete(client.runs.get("run_1"))
            finally:
                second.close()
            # The first loop still works, and only it may close the client.
            assert first.run_until_complete(client.runs.get("run_1")).id == "run_1"
            assert len(calls(mock)) == 2
            with pytest.raises(ClientClosedError, match="in the event loop it was used in"):
                asyncio.run(client.aclose())
            assert not client.closed
    finally:
        first.run_until_complete(client.aclose())
        first.close()


# --- headers ----------------------------------------------------------------------------


async def test_user_agent_and_headers(mocked: aioresponses) -> None:
    mocked.get(RUN_URL, payload=RUN)
    async with AsyncCrewship(
        api_key=API_KEY, base_url=BASE, default_headers={"X-Team": "blue"}
    ) as client:
        await client.runs.get("run_1")
    (call,) = calls(mocked)
    headers = call.kwargs["headers"]
    major, minor = sys.version_info[:2]
    aiohttp_minor = ".".join(aiohttp.__version__.split(".")[:2])
    assert headers["User-Agent"] == (
        f"crewship-async/{__version__} python/{major}.{minor} aiohttp/{aiohttp_minor}"
    )
    assert re.fullmatch(
        r"crewship-async/\S+ python/\d+\.\d+ aiohttp/\d+\.\d+", headers["User-Agent"]
    )
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Accept"] == "application/json"
    assert headers["X-Team"] == "blue"
    assert "Content-Type" not in headers


def test_closing_after_the_loop_is_gone() -> None:
    client = AsyncCrewship(api_key=API_KEY, base_url=BASE)

    async def use() -> None:
        with aioresponses() as mock:
            mock.get(RUN_URL, payload=RUN)
            await client.runs.get("run_1")
        await client.aclose()

    asyncio.run(use())
    asyncio.run(client.aclose())  # the first loop is closed: nothing left to protect
    assert client.closed
