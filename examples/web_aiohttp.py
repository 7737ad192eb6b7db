"""aiohttp.web: start a Crewship run from a web page and watch its events live.

    python examples/web_aiohttp.py          # embedded emulator: no key, no network
    CREWSHIP_API_KEY=... CREWSHIP_DEPLOYMENT=dep_... python examples/web_aiohttp.py

Open the URL it prints. The client lives as long as the app (``cleanup_ctx`` opens and
closes it); ``POST /runs`` starts a run, ``GET /runs/{id}/events`` relays its events to
the page's ``EventSource`` (which resumes with ``Last-Event-ID`` after a dropped
connection). Needs nothing beyond the SDK itself.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Optional

from aiohttp import web

from crewship_async import AsyncCrewship, CrewshipError
from crewship_async.integrations.aiohttp import relay_run
from crewship_async.testing import CrewshipEmulator

PAGE = Path(__file__).with_name("relay_page.html").read_text(encoding="utf-8")
CLIENT = web.AppKey("crewship", AsyncCrewship)


def create_app(
    client: Optional[AsyncCrewship] = None,
    *,
    deployment_id: Optional[str] = None,
    step_delay: float = 0.4,
) -> web.Application:
    """The app. With ``client`` given it is used as is (and not closed); otherwise it opens
    one from ``CREWSHIP_API_KEY``, or an embedded emulator without it."""
    deployment = deployment_id or os.environ.get("CREWSHIP_DEPLOYMENT", "dep_demo")

    async def crewship_client(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            crewship = client
            if crewship is None:
                if os.environ.get("CREWSHIP_API_KEY"):
                    crewship = AsyncCrewship()
                else:
                    emulator = CrewshipEmulator(step_delay=step_delay)
                    await stack.enter_async_context(emulator)
                    crewship = emulator.client()
                await stack.enter_async_context(crewship)
            app[CLIENT] = crewship
            yield

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def start_run(request: web.Request) -> web.Response:
        body = await request.json()
        topic = str(body.get("topic") or "AI agents")[:200]
        try:
            created = await request.app[CLIENT].runs.create(deployment, input={"topic": topic})
        except CrewshipError as exc:  # already scrubbed of the key: safe to show
            return web.json_response({"error": str(exc)}, status=502)
        return web.json_response({"run_id": created.run_id})

    async def run_events(request: web.Request) -> web.StreamResponse:
        return await relay_run(request, request.app[CLIENT], request.match_info["run_id"])

    app = web.Application()
    app.cleanup_ctx.append(crewship_client)
    app.router.add_get("/", page)
    app.router.add_post("/runs", start_run)
    app.router.add_get("/runs/{run_id}/events", run_events)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    sock = socket.create_server((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"Serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    # Handlers of lost connections are cancelled, so a closed page stops its relay at once.
    web.run_app(create_app(), sock=sock, print=None, handler_cancellation=True)


if __name__ == "__main__":
    main()
