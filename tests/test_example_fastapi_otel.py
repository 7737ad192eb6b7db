"""``examples/fastapi_otel.py`` as a user runs it: ``python examples/fastapi_otel.py`` in a
subprocess (uvicorn, the embedded emulator), driven over HTTP, its spans read back from the
JSON lines the console exporter prints.

Needs the ``examples`` extra, the OpenTelemetry SDK and its aiohttp instrumentation (all in
the ``test`` extra); without them the tests are skipped, saying which is missing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

for needed in (
    "fastapi",
    "uvicorn",
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation.aiohttp_client",
):
    pytest.importorskip(needed, reason=f"examples/fastapi_otel.py needs {needed}")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_otel.py"


@asynccontextmanager
async def example_app() -> AsyncIterator[tuple[str, list[str]]]:
    """Start the example on a free port; yields its URL and, once the block has left and
    the server has stopped, every line it printed after the first."""
    env = {k: v for k, v in os.environ.items() if k != "CREWSHIP_API_KEY"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "default",
        str(EXAMPLE),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://\S+/", first)
        assert found, first
        yield found.group(0), lines
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            out, err = await asyncio.wait_for(process.communicate(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    lines.extend(out.decode().splitlines())
    assert process.returncode == 0, err.decode()
    for noise in ("Traceback", "left open", "Unclosed", "Event loop is closed"):
        assert noise not in err.decode()


def spans_of(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


async def test_the_example_traces_each_call_of_its_handlers() -> None:
    async with example_app() as (url, lines), aiohttp.ClientSession() as http:
        async with http.post(url + "runs", json={"topic": "tracing"}) as started:
            assert started.status == 200
            run_id = (await started.json())["run_id"]
        async with http.get(url + f"runs/{run_id}") as status:
            assert status.status == 200
            assert (await status.json())["run_id"] == run_id
        async with http.get(url + "runs/run_missing") as missing:
            assert missing.status == 404
    spans = spans_of(lines)
    ours = [s for s in spans if s["attributes"].get("crewship.operation")]
    assert [s["name"] for s in ours] == ["runs.create", "runs.get", "runs.get"]
    create, get, not_found = ours
    assert create["attributes"]["crewship.deployment_id"] == "dep_demo"
    assert create["attributes"]["http.response.status_code"] == 202
    assert get["attributes"]["crewship.run_id"] == run_id
    assert get["attributes"]["url.template"] == "/v1/runs/{run_id}"
    assert not_found["attributes"]["error.type"] == "404"
    assert not_found["status"]["status_code"] == "ERROR"
    assert all("url.full" not in s["attributes"] for s in ours)
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {
        "crewship-fastapi-example"
    }
    # The aiohttp instrumentation's span of the attempt is a child of the call's span.
    children = [s for s in spans if s["parent_id"] == get["context"]["span_id"]]
    assert len(children) == 1


def test_the_instrumentations_url_filter_hides_a_webhook_token() -> None:
    spec = importlib.util.spec_from_file_location("example_fastapi_otel", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    hidden = example.hide_webhook_token(URL("https://api.crewship.dev/webhooks/runs/whk_s3cret"))
    assert hidden == "https://api.crewship.dev/webhooks/runs/***"
    other = "https://api.crewship.dev/v1/runs/run_1"
    assert example.hide_webhook_token(URL(other)) == other
