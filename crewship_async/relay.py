"""Relay a run's events to a browser as ``text/event-stream``.

:func:`sse_frames` turns a :class:`~crewship_async.EventStream` into ready SSE frames,
each event carrying its upstream id, so a web framework's streaming response relays a run
in one line, and a browser's ``EventSource`` that reconnects with ``Last-Event-ID`` (read
with :func:`resume_id`) resumes the upstream stream from there. The framework helpers in
:mod:`crewship_async.integrations` wire it up for aiohttp.web and Starlette/FastAPI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Optional

from . import _json
from ._streams import EventStream
from .errors import CrewshipError
from .models.events import RunEvent
from .resources._common import has_control_characters

__all__ = ["DEFAULT_HEARTBEAT", "ERROR_EVENT", "SSE_HEADERS", "resume_id", "sse_frames"]

#: Seconds without an event after which a ``: heartbeat`` comment is sent, so that proxies
#: and load balancers keep an idle connection open.
DEFAULT_HEARTBEAT = 15.0
#: The SSE event name of the frame sent when the upstream stream fails (``error`` would
#: collide with ``EventSource``'s own connection-error event).
ERROR_EVENT = "crewship.error"
#: Response headers for a relayed stream: no caching, no proxy buffering.
SSE_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_HEARTBEAT_FRAME = b": heartbeat\n\n"
_MAX_RESUME_ID = 1_024


def resume_id(headers: Mapping[str, str]) -> Optional[str]:
    """The browser's ``Last-Event-ID`` header, to resume the upstream stream from, or
    ``None`` when absent, empty, longer than 1 KiB or holding control characters."""
    value = headers.get("Last-Event-ID") or headers.get("last-event-id")
    if not value or len(value) > _MAX_RESUME_ID:
        return None
    return None if has_control_characters(value) else value


def event_frame(event: RunEvent) -> bytes:
    """One SSE frame for ``event``: its upstream ``id`` and, as ``data``, the JSON object
    ``{"type", "data", "id"}`` (the browser reads it with ``JSON.parse(e.data)``)."""
    data = _json.dumps({"type": event.type, "data": event.data, "id": event.id})
    head = b"id: " + event.id.encode("utf-8") + b"\n" if event.id else b""
    return head + b"data: " + data + b"\n\n"


def error_frame(error: BaseException) -> bytes:
    """The ``crewship.error`` frame for an upstream failure (scrubbed SDK text only)."""
    message = str(error) if isinstance(error, CrewshipError) else "the event stream failed"
    data = _json.dumps({"error": type(error).__name__, "message": message})
    return b"event: " + ERROR_EVENT.encode() + b"\ndata: " + data + b"\n\n"


async def sse_frames(
    events: EventStream, *, heartbeat: Optional[float] = DEFAULT_HEARTBEAT
) -> AsyncGenerator[bytes, None]:
    """Yield ``text/event-stream`` frames for ``events`` until the run's terminal event.

    Each event becomes one frame (see :func:`event_frame`); every ``heartbeat`` seconds
    without one, a ``: heartbeat`` comment (``None``: never). An SDK error of the upstream
    stream (``StreamError``, ``NotFoundError``, ...) becomes one final ``crewship.error``
    frame holding its type and scrubbed message; cancellation and other errors propagate.
    Closing the iterator (the browser went away, ``aclose()``, cancellation) closes the
    upstream stream at once and leaves no task behind.
    """
    if heartbeat is not None and not heartbeat > 0:
        raise ValueError(f"heartbeat must be > 0 seconds or None, got {heartbeat!r}")
    pending: Optional[asyncio.Future[RunEvent]] = None
    try:
        while True:
            if pending is None:
                # The first call also opens the stream: its errors are framed like others.
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=heartbeat)
            if not done:
                yield _HEARTBEAT_FRAME
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return
            except CrewshipError as exc:
                yield error_frame(exc)
                return
            yield event_frame(event)
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait((pending,))
            if not pending.cancelled():
                pending.exception()  # the consumer has gone: nothing is left to report to
        await events.aclose()
