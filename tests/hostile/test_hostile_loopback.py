"""Plain HTTP goes only to real loopback: ``*.localhost`` never reaches the system resolver."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from crewship_async import AsyncCrewship
from crewship_async._loopback import LoopbackResolver, is_localhost_name, is_loopback_host

from .rawserver import KEY, RawServer, reply

RUN = b'{"id": "run_1", "deployment_id": "dep_1", "status": "running"}'


@pytest.fixture
def system_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name handed to the system resolver; a ``localhost`` name fails the test."""
    asked: list[str] = []
    original = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(host))
        if isinstance(host, str) and host.endswith("localhost"):
            raise AssertionError(f"{host} was handed to the system resolver")
        return original(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


async def test_a_localhost_name_is_resolved_to_loopback_by_the_client(
    raw: RawServer, system_lookups: list[str]
) -> None:
    raw.behaviour = reply(200, RUN)
    for host in ("api.localhost", "localhost", "API.Localhost."):
        async with AsyncCrewship(api_key=KEY, base_url=f"http://{host}:{raw.port}") as client:
            run = await client.runs.get("run_1")
            assert run.id == "run_1"
    assert not [name for name in system_lookups if "localhost" in name]
    assert raw.requests[0].headers["host"] == f"api.localhost:{raw.port}"


async def test_a_borrowed_session_cannot_pin_the_name_so_it_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="borrowed session"):
            AsyncCrewship(api_key=KEY, base_url="http://api.localhost:9", session=session)
        # Loopback literals and plain localhost stay allowed; so does an explicit opt-in.
        AsyncCrewship(api_key=KEY, base_url="http://127.0.0.1:9", session=session)
        AsyncCrewship(api_key=KEY, base_url="http://localhost:9", session=session)
        AsyncCrewship(
            api_key=KEY,
            base_url="http://api.localhost:9",
            session=session,
            allow_insecure_http=True,
        )


@pytest.mark.parametrize(
    "host", ["api.localhost.example.com", "localhost.evil", "10.0.0.1", "127.0.0.1.nip.io"]
)
def test_other_hosts_still_need_https(host: str) -> None:
    with pytest.raises(ValueError, match="refusing plain http"):
        AsyncCrewship(api_key=KEY, base_url=f"http://{host}:9")


def test_which_hosts_are_loopback() -> None:
    assert is_loopback_host("127.0.0.2")
    assert is_loopback_host("::1")
    assert is_loopback_host("a.b.localhost")
    assert not is_loopback_host("localhost.com")
    assert not is_localhost_name("127.0.0.1")


async def test_the_resolver_answers_per_family_and_delegates_other_names() -> None:
    resolver = LoopbackResolver()
    try:
        both = await resolver.resolve("x.localhost", 80, socket.AF_UNSPEC)
        assert {entry["host"] for entry in both} == {"127.0.0.1", "::1"}
        only_v4 = await resolver.resolve("x.localhost", 80, socket.AF_INET)
        assert [entry["host"] for entry in only_v4] == ["127.0.0.1"]
        only_v6 = await resolver.resolve("x.localhost", 80, socket.AF_INET6)
        assert [entry["host"] for entry in only_v6] == ["::1"]
        other = await resolver.resolve("127.0.0.1", 80, socket.AF_INET)
        assert other[0]["host"] == "127.0.0.1"
    finally:
        await resolver.close()
