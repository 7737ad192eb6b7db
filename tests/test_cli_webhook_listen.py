"""``crewship-async webhooks listen``, run as a user runs it: in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from web_servers import serve_aiohttp

from crewship_async.webhooks import delivery_headers, verify

BODY = json.dumps(
    {"event": "run.failed", "run": {"id": "run_7", "status": "failed", "error_message": "boom"}}
).encode()


def headers(secret: str, delivery_id: str = "dlv_7") -> dict[str, str]:
    return delivery_headers(BODY, secret, event="run.failed", delivery_id=delivery_id)


@asynccontextmanager
async def listener(
    *options: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crewship_async.cli",
        "webhooks",
        "listen",
        "--port",
        "0",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        found = re.search(r"http://\S+/", line)
        assert found, line
        yield process, found.group(0)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 20)


async def post(url: str, body: bytes, hdrs: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=hdrs) as r:
        return r.status, await r.text()


async def test_listen_prints_verified_deliveries_and_refuses_bad_ones() -> None:
    async with listener("--secret", "whsec_old", "--secret", "whsec_new", "--json") as (
        process,
        url,
    ):
        assert process.stdout is not None
        assert process.stderr is not None
        assert await post(url + "any/path", BODY, headers("whsec_new")) == (200, "ok")
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 10))
        assert line["event"] == "run.failed"
        assert line["run_id"] == "run_7"
        assert line["error_message"] == "boom"
        status, text = await post(url, BODY, headers("whsec_new"))
        assert (status, text.split(":")[0]) == (200, "duplicate")
        status, text = await post(url, BODY, headers("whsec_wrong", "dlv_8"))
        assert status == 400
        refused = (await asyncio.wait_for(process.stderr.readline(), 10)).decode()
        assert "refused a delivery: bad_signature" in refused
        assert "whsec" not in refused
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        assert (await process.stdout.read()) == b""  # the duplicate was not printed


async def test_listen_forwards_the_raw_delivery_and_its_headers() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    answers = [500, 204]

    async def target(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/hook", target)
    async with (
        serve_aiohttp(app) as base,
        listener("--forward-to", f"{base}/hook", env={"CREWSHIP_WEBHOOK_SECRET": "whsec_env"}) as (
            process,
            url,
        ),
    ):
        assert process.stdout is not None
        status, _ = await post(url, BODY, headers("whsec_env"))
        assert status == 500  # the target failed: the sender will retry
        assert await post(url, BODY, headers("whsec_env")) == (200, "ok")
        text = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert "run.failed  run_7  failed  [dlv_7]  error: boom  -> 204" in text
    body, forwarded = received[-1]
    assert body == BODY
    assert verify(body, forwarded, "whsec_env").run_id == "run_7"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["webhooks", "listen"], "no signing secret"),
        (["webhooks", "listen", "--secret", "s", "--forward-to", "ftp://x"], "--forward-to"),
        (["webhook", "listen", "--secret", "s", "--port", "70000"], "port number"),
        (["--base-url", "https://x.test", "webhook", "listen", "--secret", "s"], "means nothing"),
    ],
)
def test_listen_usage_errors(argv: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREWSHIP_WEBHOOK_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "crewship_async.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr


def test_listen_help_shows_only_its_own_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crewship_async.cli", "webhooks", "listen", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--forward-to" in done.stdout
    assert "--base-url" not in done.stdout
    assert "--emulator" not in done.stdout


async def test_listen_in_process_forwards_prints_and_stops_on_sigterm() -> None:
    """The same command in this process, so that its paths are measured: human lines,
    forward answers 2xx / 5xx / no connection, and a clean stop on SIGTERM."""
    import io

    from crewship_async.cli._app import build_parser
    from crewship_async.cli._output import Output
    from crewship_async.cli._webhook_listen import listen_for_deliveries

    answers = [204, 503]

    async def target(request: web.Request) -> web.Response:
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/hook", target)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    forward = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    args = build_parser().parse_args(
        ["webhooks", "listen", "--secret", "whsec_in", "--port", "0", "--forward-to", forward]
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    task = asyncio.create_task(
        listen_for_deliveries(
            args, Output(json_mode=False, need_rich=False, stdout=stdout, stderr=stderr)
        )
    )
    try:
        for _ in range(1000):
            if "listening" in stderr.getvalue():
                break
            await asyncio.sleep(0.01)
        url = re.search(r"http://\S+/", stderr.getvalue()).group(0)  # type: ignore[union-attr]
        assert await post(url, BODY, headers("whsec_in", "d1")) == (200, "ok")
        assert (await post(url, BODY, headers("whsec_in", "d2")))[0] == 500  # target 503
        await runner.cleanup()
        assert (await post(url, BODY, headers("whsec_in", "d3")))[0] == 500  # target gone
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 405
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(task, 10) == 0
    finally:
        task.cancel()
        await runner.cleanup()
    assert "run.failed  run_7  failed  [d1]  error: boom  -> 204" in stdout.getvalue()
    assert "answered 503" in stderr.getvalue()
    assert "failed: ClientConnectorError" in stderr.getvalue()
    assert stderr.getvalue().rstrip().endswith("stopped")


def test_listen_reports_a_port_in_use() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "crewship_async.cli",
                "webhooks",
                "listen",
                "--secret",
                "s",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
