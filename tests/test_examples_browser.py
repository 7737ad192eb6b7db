"""The web examples as a person uses them: headless Chromium opens the page, starts a run
and reads the page until the run's final status shows; a page closed mid-stream closes
the upstream event stream.

Chromium is Debian's ``chromium`` package (``$CHROMIUM`` names another binary), driven by
Playwright without a downloaded browser. Without it these tests are skipped, except when
``CREWSHIP_REQUIRE_BROWSER=1`` (as in CI), where that is a failure.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from web_servers import serve_aiohttp, serve_asgi

from crewship_async.testing import CrewshipEmulator

playwright_api = pytest.importorskip("playwright.async_api")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
APPS = ["web_fastapi", "web_aiohttp"]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        if os.environ.get("CREWSHIP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium is required here but {CHROMIUM} does not exist")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def example_process(name: str) -> AsyncIterator[str]:
    """``python examples/<name>.py --port 0``, as the README runs it; yields its URL."""
    env = {k: v for k, v in os.environ.items() if k != "CREWSHIP_API_KEY"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / f"{name}.py"),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://\S+/", line)
        assert found, line
        yield found.group(0)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def start_run(page: Any, url: str) -> None:
    await page.goto(url)
    await page.fill("#topic", "browser test")
    await page.click("#start-button")
    await page.wait_for_function("document.getElementById('run-id').textContent.startsWith('run_')")


@pytest.mark.parametrize("name", APPS)
async def test_the_page_shows_a_run_live_until_its_final_status(
    browser: Any, name: str, tmp_path: Path
) -> None:
    async with example_process(name) as url:
        page = await browser.new_page()
        await start_run(page, url)
        await page.wait_for_selector("#status[data-final]", timeout=30_000)
        assert await page.text_content("#status") == "succeeded"
        types = await page.locator("#events li .type").all_text_contents()
        assert types[0] == "run.started"
        assert types[-1] == "run.completed"
        assert "task.started" in types
        assert int(await page.text_content("#count") or 0) == len(types)
        shot = Path(os.environ.get("CREWSHIP_SCREENSHOT") or tmp_path / "page.png")
        await page.screenshot(path=str(shot), full_page=True)
        assert (await asyncio.to_thread(shot.stat)).st_size > 10_000
        await page.close()


@asynccontextmanager
async def serve_example(name: str, emulator: CrewshipEmulator) -> AsyncIterator[str]:
    """The example's app, in this process, on the test's own emulator."""
    module = load_example(name)
    async with emulator.client() as client:
        app = module.create_app(client, deployment_id="dep_browser")
        if name == "web_fastapi":
            async with serve_asgi(app) as base:
                yield base + "/"
            return
        async with serve_aiohttp(app, handler_cancellation=True, shutdown_timeout=0.5) as base:
            yield base + "/"


@pytest.mark.parametrize("name", APPS)
async def test_closing_the_page_mid_stream_closes_the_upstream_stream(
    browser: Any, name: str
) -> None:
    async with CrewshipEmulator(step_delay=0.05) as emulator:
        emulator.script_runs("forever")
        async with serve_example(name, emulator) as url:
            page = await browser.new_page()
            await start_run(page, url)
            await page.wait_for_function(
                "Number(document.getElementById('count').textContent) >= 3"
            )
            assert emulator.stats.in_flight == 1  # the relay's upstream stream
            await page.close()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while emulator.stats.in_flight:
                assert loop.time() < deadline, "the upstream stream stayed open"
                await asyncio.sleep(0.02)
            (run,) = emulator.runs.values()
            assert run.status == "running"
            async with emulator.client() as client:
                await client.runs.cancel(run.id)
