"""Starlette and FastAPI helpers (the ``starlette`` extra): receive outgoing webhooks,
relay a run's events to a browser."""

from __future__ import annotations

from collections.abc import Awaitable
from functools import partial
from typing import Any, Callable, Optional

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Send

from .._client import AsyncCrewship
from ..relay import DEFAULT_HEARTBEAT, SSE_HEADERS, resume_id, sse_frames
from ..webhooks import WebhookReceiver
from ..webhooks._receiver import read_limited

__all__ = ["EventStreamResponse", "read_body", "relay_run", "webhook_endpoint"]


async def read_body(request: Request, limit: int) -> Optional[bytes]:
    """The raw request body, or ``None`` once it exceeds ``limit`` bytes (a declared
    ``Content-Length`` over it is refused before anything is read)."""
    declared = request.headers.get("content-length", "")
    length = int(declared) if declared.isdigit() else None
    return await read_limited(request.stream(), length, limit)


def webhook_endpoint(receiver: WebhookReceiver) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette/FastAPI endpoint for Crewship's deliveries::

        receiver = WebhookReceiver(secret, on_event)
        app.add_route("/crewship/webhooks", webhook_endpoint(receiver), methods=["POST"])

    Reads the raw body (at most ``receiver.max_body_size`` bytes, else 413, within
    ``receiver.body_timeout`` seconds, else 408) and answers
    what :meth:`WebhookReceiver.handle` decides, as ``text/plain``.
    """
    if not isinstance(receiver, WebhookReceiver):
        raise TypeError("webhook_endpoint() takes a WebhookReceiver")

    async def handle_delivery(request: Request) -> Response:
        reply = await receiver.receive(partial(read_body, request), request.headers)
        return PlainTextResponse(reply.text, status_code=reply.status)

    return handle_delivery


class EventStreamResponse(StreamingResponse):
    """A ``StreamingResponse`` of SSE frames that always closes its frame iterator (and so
    the upstream stream) when the response ends, the browser included going away."""

    async def stream_response(self, send: Send) -> None:
        """Send the frames, then close the frame iterator whether or not they all went."""
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def relay_run(
    request: Request,
    client: AsyncCrewship,
    run_id: str,
    *,
    heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
    **stream_options: Any,
) -> EventStreamResponse:
    """A response relaying the events of ``run_id`` to the browser that sent ``request``::

        @app.get("/runs/{run_id}/events")
        async def events(request: Request, run_id: str):
            return relay_run(request, client, run_id)

    The browser's ``Last-Event-ID`` resumes the upstream stream from there (other
    ``client.runs.stream`` options pass through ``stream_options``); heartbeats go out
    every ``heartbeat`` seconds without an event; when the browser disconnects the
    upstream stream is closed at once.
    """
    events = client.runs.stream(run_id, last_event_id=resume_id(request.headers), **stream_options)
    return EventStreamResponse(sse_frames(events, heartbeat=heartbeat), headers=SSE_HEADERS)
