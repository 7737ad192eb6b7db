"""FastAPI: start a Crewship run from a web page and watch its events live.

    pip install 'crewship-async[examples]'
    python examples/web_fastapi.py          # embedded emulator: no key, no network
    CREWSHIP_API_KEY=... CREWSHIP_DEPLOYMENT=dep_... python examples/web_fastapi.py

Open the URL it prints. The client lives as long as the app (the lifespan opens and closes
it); ``POST /runs`` starts a run, ``GET /runs/{id}/events`` relays its events to the
page's ``EventSource`` (which resumes with ``Last-Event-ID`` after a dropped connection).
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Optional

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from crewship_async import AsyncCrewship, CrewshipError
from crewship_async.integrations.starlette import relay_run
from crewship_async.testing import CrewshipEmulator

PAGE = Path(__file__).with_name("relay_page.html").read_text(encoding="utf-8")


def create_app(
    client: Optional[AsyncCrewship] = None,
    *,
    deployment_id: Optional[str] = None,
    step_delay: float = 0.4,
) -> FastAPI:
    """The app. With ``client`` given it is used as is (and not closed); otherwise the
    lifespan opens one from ``CREWSHIP_API_KEY``, or an embedded emulator without it."""
    deployment = deployment_id or os.environ.get("CREWSHIP_DEPLOYMENT", "dep_demo")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
            app.state.crewship = crewship
            yield

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(CrewshipError)
    async def crewship_failed(request: Request, exc: CrewshipError) -> JSONResponse:
        # The SDK's messages are already scrubbed of the key: safe to show.
        return JSONResponse({"error": str(exc)}, status_code=502)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.post("/runs")
    async def start_run(request: Request) -> dict[str, Any]:
        body = await request.json()
        topic = str(body.get("topic") or "AI agents")[:200]
        created = await request.app.state.crewship.runs.create(deployment, input={"topic": topic})
        return {"run_id": created.run_id}

    @app.get("/runs/{run_id}/events")
    async def run_events(request: Request, run_id: str) -> Any:
        return relay_run(request, request.app.state.crewship, run_id)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    sock = socket.create_server((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"Serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    config = uvicorn.Config(create_app(), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
