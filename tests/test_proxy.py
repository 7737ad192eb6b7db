"""Proxies: which one the client chooses, and requests through real proxies on sockets.

A plain forward proxy and a CONNECT tunnel run in the test (tests/proxy_servers.py); the
https case runs the client in a subprocess that trusts a test CA through SSL_CERT_FILE,
as a user's process trusts its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import trustme
from aiohttp import web
from proxy_servers import serve_forward_proxy, serve_tls_front
from web_servers import serve_aiohttp

from crewship_async import APIConnectionError, AsyncCrewship
from crewship_async._proxy import choose_proxy, display_proxy
from crewship_async.testing import CrewshipEmulator

PROXY_ENV = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


# --- the choice ----------------------------------------------------------------------


def test_the_environment_gives_the_proxy_of_the_base_urls_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://tls-proxy:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-proxy:3128")
    assert choose_proxy("https://api.crewship.dev", proxy=None, trust_env=True).url == (
        "http://tls-proxy:3128"
    )
    assert choose_proxy("http://gateway.internal", proxy=None, trust_env=True).url == (
        "http://plain-proxy:3128"
    )
    assert choose_proxy("https://api.crewship.dev", proxy=None, trust_env=False).url is None


def test_all_proxy_is_the_fallback_and_lower_case_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://all:1")
    assert choose_proxy("https://api.crewship.dev", proxy=None, trust_env=True).url == (
        "http://all:1"
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "http://lower:1")
    assert choose_proxy("https://api.crewship.dev", proxy=None, trust_env=True).url == (
        "http://lower:1"
    )


def test_a_proxy_without_a_scheme_is_taken_as_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    choice = choose_proxy("https://api.crewship.dev", proxy=None, trust_env=True)
    assert choice.url == "http://proxy.internal:3128"


@pytest.mark.parametrize(
    "no_proxy",
    ["api.crewship.dev", ".crewship.dev", "crewship.dev", "*", "other, api.crewship.dev"],
)
def test_no_proxy_sends_matching_hosts_direct(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert choose_proxy("https://api.crewship.dev", proxy=None, trust_env=True).url is None


def test_no_proxy_for_another_host_keeps_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,crewship.dev.example")
    assert choose_proxy("https://api.crewship.dev", proxy=None, trust_env=True).url == (
        "http://proxy:3128"
    )


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost", "http://a.localhost"],
)
def test_loopback_goes_direct_whatever_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("ALL_PROXY", "http://proxy:3128")
    assert choose_proxy(base_url, proxy=None, trust_env=True).url is None


def test_an_explicit_proxy_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://from-env:1")
    monkeypatch.setenv("NO_PROXY", "*")
    chosen = choose_proxy("https://api.crewship.dev", proxy="http://explicit:2", trust_env=True)
    assert chosen.url == "http://explicit:2"


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("not a url", ValueError, "whitespace"),
        ("proxy:3128", ValueError, "http:// or https:// URL with a host"),
        ("ftp://proxy:21", ValueError, "http:// or https:// URL with a host"),
        ("http://", ValueError, "with a host"),
        ("http://proxy:99999", ValueError, "not a valid URL"),
        ("http://proxy:3128/path", ValueError, "path, query or fragment"),
        (3128, TypeError, "must be a URL string"),
    ],
)
def test_a_bad_proxy_is_refused_at_construction(
    value: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        AsyncCrewship(api_key="k", proxy=value)  # type: ignore[arg-type]


def test_a_bad_proxy_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy:1080")
    with pytest.raises(ValueError, match="https_proxy environment variable"):
        AsyncCrewship(api_key="k")


def test_proxy_credentials_are_never_shown() -> None:
    client = AsyncCrewship(api_key="k", proxy="http://alice:s3cret-proxy-pass@proxy:3128")
    assert client.proxy == "http://***@proxy:3128"
    assert "s3cret" not in repr(client)
    assert display_proxy(None) == "direct"
    choice = choose_proxy(
        "https://api.crewship.dev",
        proxy="http://alice:s3cret-proxy-pass@proxy:3128",
        trust_env=False,
    )
    assert "s3cret" not in repr(choice)


async def test_a_lent_session_keeps_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    async with aiohttp.ClientSession() as session:
        lent = AsyncCrewship(api_key="k", session=session)
        assert lent.proxy is None
        with pytest.raises(ValueError, match="set the proxy on the aiohttp session"):
            AsyncCrewship(api_key="k", session=session, proxy="http://proxy:3128")
        await lent.aclose()
    assert AsyncCrewship(api_key="k").proxy == "http://proxy:3128"


# --- through a forward proxy (plain http) ----------------------------------------------


async def test_plain_http_goes_through_a_forward_proxy_with_credentials(
    crewship_emulator: CrewshipEmulator,
) -> None:
    async with serve_forward_proxy(address(crewship_emulator.url)) as (proxy, url):
        authority = url.replace("http://", "http://alice:proxy-pass-123@")
        client = AsyncCrewship(
            api_key=crewship_emulator.api_key,
            base_url="http://api.crewship.test",
            allow_insecure_http=True,
            proxy=authority,
        )
        async with client:
            created = await client.runs.create("dep_a")
            run = await client.runs.get(created.run_id)
    assert run.id == created.run_id
    targets = [request.target for request in proxy.requests]
    assert targets == [
        "http://api.crewship.test/v1/runs",
        f"http://api.crewship.test/v1/runs/{created.run_id}",
    ]
    expected = "Basic " + base64.b64encode(b"alice:proxy-pass-123").decode()
    assert all(r.headers["proxy-authorization"] == expected for r in proxy.requests)


async def test_http_proxy_from_the_environment_is_used(
    crewship_emulator: CrewshipEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve_forward_proxy(address(crewship_emulator.url)) as (proxy, url):
        monkeypatch.setenv("HTTP_PROXY", url)
        client = AsyncCrewship(
            api_key=crewship_emulator.api_key,
            base_url="http://api.crewship.test",
            allow_insecure_http=True,
        )
        async with client:
            await client.runs.create("dep_a")
        # The emulator itself is loopback: straight there, though HTTP_PROXY is set.
        async with crewship_emulator.client() as direct:
            await direct.runs.create("dep_a")
    assert [request.target for request in proxy.requests] == ["http://api.crewship.test/v1/runs"]


async def test_an_unreachable_proxy_is_a_connection_error_without_credentials() -> None:
    async with serve_forward_proxy(("127.0.0.1", 9)) as (_, url):
        port = address(url)[1]
    client = AsyncCrewship(
        api_key="k",
        base_url="https://api.crewship.test",
        proxy=f"http://bob:hidden-proxy-pw@127.0.0.1:{port}",
        max_retries=1,
    )
    async with client:
        with pytest.raises(APIConnectionError) as caught:
            await client.runs.get("run_1")
    text = str(caught.value)
    assert f"cannot connect to the proxy 127.0.0.1:{port}" in text
    assert "gave up after 2 attempts" in text
    assert "hidden-proxy-pw" not in text
    assert "ssl:" not in text


# --- through a CONNECT tunnel (https) ----------------------------------------------------

HTTPS_CLIENT = textwrap.dedent(
    """
    import asyncio, json, os
    from crewship_async import AsyncCrewship

    async def main():
        async with AsyncCrewship(base_url="https://api.crewship.test") as client:
            created = await client.runs.create("dep_a")
            run = await client.runs.get(created.run_id)
            print(json.dumps({"run_id": run.id, "proxy": client.proxy}))

    asyncio.run(main())
    """
)


async def test_https_goes_through_a_connect_tunnel_that_never_sees_the_key(
    crewship_emulator: CrewshipEmulator, tmp_path: Path
) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("api.crewship.test").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    key = crewship_emulator.api_key
    async with (
        serve_tls_front(address(crewship_emulator.url), server_context) as (front, tls_address),
        serve_forward_proxy(tls_address) as (proxy, proxy_url),
    ):
        env = {
            **os.environ,
            "HTTPS_PROXY": proxy_url,
            "SSL_CERT_FILE": str(ca_file),
            "CREWSHIP_API_KEY": key,
        }
        env.pop("CREWSHIP_BASE_URL", None)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HTTPS_CLIENT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["proxy"] == proxy_url
    assert result["run_id"].startswith("run_")
    assert [(r.method, r.target) for r in proxy.requests] == [("CONNECT", "api.crewship.test:443")]
    assert "authorization" not in proxy.requests[0].headers
    assert key.encode() not in proxy.requests[0].head
    assert key.encode() not in proxy.tunnelled
    assert len(proxy.tunnelled) > 0
    # ... while the server behind the tunnel got the key, over TLS.
    assert f"Bearer {key}".encode() in front.received


# --- ~/.netrc never replaces the key -------------------------------------------------------


async def test_a_netrc_entry_never_replaces_the_bearer_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    async def run(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"id": "run_1", "deployment_id": "dep_a", "status": "running"})

    app = web.Application()
    app.router.add_get("/v1/runs/{run_id}", run)
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    async with (
        serve_aiohttp(app) as url,
        AsyncCrewship(api_key="sk_bearer", base_url=url) as client,
    ):
        await client.runs.get("run_1")
    assert seen == ["Bearer sk_bearer"]
