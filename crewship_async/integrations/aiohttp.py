"""aiohttp.web helpers: receive outgoing webhooks, relay a run's events to a browser."""

from __future__ import annotations

from collections.abc import Awaitable
from functools import partial
from typing import Any, Callable, Optional

from aiohttp import web

from .._client import AsyncCrewship
from ..relay import DEFAULT_HEARTBEAT, SSE_HEADERS, resume_id, sse_frames
from ..webhooks import WebhookReceiver
from ..webhooks._receiver import read_limited

__all__ = ["read_body", "relay_run", "webhook_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CHUNK = 64 * 1024


async def read_body(request: web.Request, limit: int) -> Optional[bytes]:
    """The raw request body, or ``None`` once it exceeds ``limit`` bytes (a declared
    ``Content-Length`` over it is refused before anything is read)."""
    return await read_limited(request.content.iter_chunked(_CHUNK), request.content_length, limit)


def webhook_handler(receiver: WebhookReceiver) -> Handler:
    """An aiohttp.web handler for Crewship's deliveries::

        receiver = WebhookReceiver(secret, on_event)
        app.router.add_post("/crewship/webhooks", webhook_handler(receiver))

    Reads the raw body (at most ``receiver.max_body_size`` bytes, else 413, within
    ``receiver.body_timeout`` seconds, else 408) and answers
    what :meth:`WebhookReceiver.handle` decides, as ``text/plain``.
    """
    if not isinstance(receiver, WebhookReceiver):
        raise TypeError("webhook_handler() takes a WebhookReceiver")

    async def handle_delivery(request: web.Request) -> web.StreamResponse:
        reply = await receiver.receive(partial(read_body, request), request.headers)
        return web.Response(status=reply.status, text=reply.text)

    return handle_delivery


async def relay_run(
    request: web.Request,
    client: AsyncCrewship,
    run_id: str,
    *,
    heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
    **stream_options: Any,
) -> web.StreamResponse:
    """Relay the events of ``run_id`` to the browser that sent ``request``::

        async def events(request):
            return await relay_run(request, client, request.match_info["run_id"])

    The browser's ``Last-Event-ID`` resumes the upstream stream from there (other
    ``client.runs.stream`` options pass through ``stream_options``). Heartbeats go out
    every ``heartbeat`` seconds without an event. When the browser goes away the upstream
    stream is closed: at the next write, at the latest one heartbeat later, or at once
    when the app cancels handlers of lost connections (``handler_cancellation=True``).
    """
    events = client.runs.stream(run_id, last_event_id=resume_id(request.headers), **stream_options)
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    frames = sse_frames(events, heartbeat=heartbeat)
    try:
        await response.prepare(request)
        async for frame in frames:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            await response.write(frame)
        else:
            await response.write_eof()
    except ConnectionError:
        pass  # the browser went away; the upstream stream is closed below
    finally:
        await frames.aclose()
    return response
