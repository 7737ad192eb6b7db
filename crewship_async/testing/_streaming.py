"""``GET /v1/runs/{id}/events``: a run's events as Server-Sent Events.

Frames are ``id: <n>\\ndata: <json>\\n\\n`` where the JSON is ``{"type", "data"}`` and
``n`` the event's id within its run. A stream replays the run's past events (only those
after ``Last-Event-ID`` when that header is sent), then follows live ones, and ends after
a terminal event (``run.completed``, ``run.failed``, ``complete``). A run that is already
terminal when a stream opens without ``Last-Event-ID``, or one resumed after its last
event, gets a single ``complete`` event ``{"status": ...}`` carrying no id. While idle the
stream sends ``: keepalive`` comments; past ``stream_timeout`` it sends a ``timeout``
event (no id) and ends, as the API does after 30 minutes. A ``Last-Event-ID`` that is
not one of the emulator's ids replays the whole log.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from aiohttp import web

from ._common import dumps
from ._state import RunEvent, RunRecord

__all__ = ["StreamSettings", "stream_events"]

KEEPALIVE = b": keepalive\n\n"


class StreamSettings:
    """Timing of event streams: ``keepalive_interval`` and ``stream_timeout`` (seconds)."""

    def __init__(self, *, keepalive_interval: float, stream_timeout: Optional[float]) -> None:
        if keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive")
        if stream_timeout is not None and stream_timeout <= 0:
            raise ValueError("stream_timeout must be positive (or None)")
        self.keepalive_interval = keepalive_interval
        self.stream_timeout = stream_timeout


def event_frame(event: RunEvent) -> bytes:
    return f"id: {event.id}\ndata: {dumps(event.to_json())}\n\n".encode()


def bare_frame(type: str, data: dict[str, Any]) -> bytes:
    return f"data: {dumps({'type': type, 'data': data})}\n\n".encode()


def parse_last_event_id(value: Optional[str]) -> Optional[int]:
    """The integer in ``Last-Event-ID``: ``None`` when absent, 0 (replay all) when foreign."""
    if value is None:
        return None
    try:
        return max(int(value.strip()), 0)
    except ValueError:
        return 0


class _Sender:
    """Writes frames and applies an injected ``drop_stream_after`` fault."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        drop: Optional[tuple[int, bool]],
    ) -> None:
        self.request = request
        self.response = response
        self.drop = drop
        self.sent = 0

    @property
    def cut_due(self) -> bool:
        """True when the stream must be cut now, without waiting for another event."""
        return self.drop is not None and not self.drop[1] and self.sent >= self.drop[0]

    async def send(self, frame: bytes) -> bool:
        """Write one event frame; ``False`` when the stream was cut instead."""
        if self.drop is not None and self.sent >= self.drop[0]:
            if self.drop[1]:
                await self.response.write(frame[: max(1, len(frame) // 2)])
            await self.cut()
            return False
        await self.response.write(frame)
        self.sent += 1
        return True

    async def cut(self) -> None:
        """Abort the connection once what was written has left the buffer."""
        transport = self.request.transport
        if transport is None:  # pragma: no cover - the client is already gone
            return
        for _ in range(200):
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.001)
        transport.abort()


async def stream_events(
    request: web.Request,
    run: RunRecord,
    *,
    settings: StreamSettings,
    drop: Optional[tuple[int, bool]],
    is_closing: Callable[[], bool],
) -> web.StreamResponse:
    """Serve the event stream of ``run`` (the run exists; auth is already checked)."""
    last_id = parse_last_event_id(request.headers.get("Last-Event-ID"))
    response = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )
    await response.prepare(request)
    sender = _Sender(request, response, drop)
    try:
        if await _pump(run, last_id, sender, settings, is_closing):
            await response.write_eof()
    except ConnectionError:
        pass  # the client went away; nothing is left to send it
    return response


async def _pump(
    run: RunRecord,
    last_id: Optional[int],
    sender: _Sender,
    settings: StreamSettings,
    is_closing: Callable[[], bool],
) -> bool:
    """Send events until the stream should end; ``False`` when it was cut (no clean end)."""
    loop = asyncio.get_running_loop()
    deadline = None if settings.stream_timeout is None else loop.time() + settings.stream_timeout
    if last_id is None and run.terminal:
        return await sender.send(bare_frame("complete", {"status": run.status}))
    cursor = last_id or 0
    while not is_closing():
        changed = run.changed()
        for event in run.events_after(cursor):
            if not await sender.send(event_frame(event)):
                return False
            cursor = event.id
            if event.terminal:
                return True
        if sender.cut_due:
            await sender.cut()
            return False
        if run.terminal:
            # Resumed after the run's last event: say how it ended.
            return await sender.send(bare_frame("complete", {"status": run.status}))
        wait = settings.keepalive_interval
        if deadline is not None:
            wait = min(wait, deadline - loop.time())
        try:
            await asyncio.wait_for(changed.wait(), max(wait, 0.0))
        except TimeoutError:
            if deadline is not None and loop.time() >= deadline:
                message = f"Stream timed out after {settings.stream_timeout} seconds"
                await sender.response.write(bare_frame("timeout", {"message": message}))
                return True
            await sender.response.write(KEEPALIVE)
    return True
