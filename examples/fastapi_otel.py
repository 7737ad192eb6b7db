"""FastAPI with OpenTelemetry: one Crewship client for the app's lifetime, one span per call.

    pip install 'crewship-async[examples,otel]' opentelemetry-sdk
    pip install opentelemetry-instrumentation-aiohttp-client   # optional: a span per attempt
    python examples/fastapi_otel.py          # embedded emulator: no key, no network
    CREWSHIP_API_KEY=... CREWSHIP_DEPLOYMENT=dep_... python examples/fastapi_otel.py

``POST /runs`` starts a run, ``GET /runs/{run_id}`` answers its status within two seconds
(``with_options(timeout=2)``: a slow API gives a 504, not a hung request). Every finished
span is printed to stdout as one JSON line. The SDK makes one span per logical call
(``runs.create``, ``runs.get``, ...) covering its retries; with the aiohttp instrumentation
installed, each HTTP attempt is a child span of it.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Optional

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from yarl import URL

from crewship_async import APITimeoutError, AsyncCrewship, CrewshipError, NotFoundError
from crewship_async.testing import CrewshipEmulator

SERVICE_NAME = "crewship-fastapi-example"
STATUS_TIMEOUT = 2.0


def one_line(span: ReadableSpan) -> str:
    """A span as one JSON line (the exporter's default spreads it over many)."""
    return span.to_json(indent=None) + "\n"


def hide_webhook_token(url: URL) -> str:
    """The URL the aiohttp instrumentation records, with an incoming webhook's token (a
    secret that sits in the path) masked. The SDK's own spans record no URL at all."""
    if url.path.startswith("/webhooks/runs/"):
        return str(url.with_path("/webhooks/runs/***"))
    return str(url)


def setup_tracing() -> TracerProvider:
    """Install a tracer provider that prints each finished span to stdout.

    In production, replace the console exporter with an OTLP exporter behind a
    ``BatchSpanProcessor``. The aiohttp instrumentation is used when it is installed; the
    SDK's spans do not need it.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    trace.set_tracer_provider(provider)
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    except ImportError:
        return provider
    # Here before the client exists; after AsyncCrewship(...) works too, as long as it comes
    # before the first call: the client makes its aiohttp session on first use.
    AioHttpClientInstrumentor().instrument(tracer_provider=provider, url_filter=hide_webhook_token)
    return provider


def create_app(*, deployment_id: Optional[str] = None) -> FastAPI:
    """The app. Its lifespan opens the client from ``CREWSHIP_API_KEY`` (or an embedded
    emulator without it) and closes it when the server stops."""
    deployment = deployment_id or os.environ.get("CREWSHIP_DEPLOYMENT", "dep_demo")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if os.environ.get("CREWSHIP_API_KEY"):
                crewship = AsyncCrewship()
            else:
                emulator = await stack.enter_async_context(CrewshipEmulator(step_delay=0.2))
                crewship = emulator.client()
            app.state.crewship = await stack.enter_async_context(crewship)
            yield

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(CrewshipError)
    async def crewship_failed(request: Request, exc: CrewshipError) -> JSONResponse:
        # The SDK's messages never hold the key: safe to show.
        if isinstance(exc, NotFoundError):
            status = 404
        elif isinstance(exc, APITimeoutError):
            status = 504
        else:
            status = 502
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.post("/runs")
    async def start_run(request: Request) -> dict[str, Any]:
        body = await request.json()
        topic = str(body.get("topic") or "AI agents")[:200]
        crewship: AsyncCrewship = request.app.state.crewship
        created = await crewship.runs.create(deployment, input={"topic": topic})
        return {"run_id": created.run_id}

    @app.get("/runs/{run_id}")
    async def run_status(request: Request, run_id: str) -> dict[str, Any]:
        # A cheap copy sharing the pool: this endpoint answers within STATUS_TIMEOUT.
        crewship: AsyncCrewship = request.app.state.crewship
        quick = crewship.with_options(timeout=STATUS_TIMEOUT)
        run = await quick.runs.get(run_id)
        return {"run_id": run.id, "status": str(run.status)}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    provider = setup_tracing()
    sock = socket.create_server((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"Serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    config = uvicorn.Config(create_app(), log_level="warning")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down (the lifespan closes the client), then re-raises the Ctrl-C.
        pass
    finally:
        provider.shutdown()


if __name__ == "__main__":
    main()
