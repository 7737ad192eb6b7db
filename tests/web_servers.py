"""Serve a web app on 127.0.0.1 (a free port) inside the test's event loop: an
aiohttp.web ``Application`` with its ``AppRunner``, or an ASGI app with uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from aiohttp import web


@asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Run ``app`` on a free port; yields its base URL and stops the server on exit."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", loop="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=None))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serve_aiohttp(app: web.Application, **runner_options: Any) -> AsyncIterator[str]:
    """Run ``app`` on a free port; yields its base URL (``http://127.0.0.1:<port>``) and
    cleans the runner up on exit. ``runner_options`` go to ``web.AppRunner``."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
