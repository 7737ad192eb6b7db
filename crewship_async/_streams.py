"""EventStream: a run's events as an async iterator that survives dropped connections.

The I/O shell around the sans-I/O decoder in :mod:`crewship_async._sse`. It reconnects
with ``Last-Event-ID``, drops events it already delivered, enforces an idle timeout
between delivered events, and always releases its connection.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Optional, Union

import anyio

from . import _json
from ._connection import StreamConnection
from ._retry import is_transient_status
from ._sse import EventTooLargeError, ServerSentEvent, SSEDecoder
from ._transport import Transport
from .errors import APIConnectionError, APIError, StreamError
from .models.events import TERMINAL_EVENT_TYPES, EventType, RunEvent

__all__ = ["DEFAULT_IDLE_TIMEOUT", "EventStream"]

DEFAULT_IDLE_TIMEOUT = 120.0
# How many recent event ids a stream remembers to drop replays after a reconnect: enough
# for a server that resumes a little before Last-Event-ID. An id longer than _SHORT_ID is
# remembered by a 16-byte digest, so the window holds at most ~130 KB whatever the ids.
_DEDUPE_WINDOW = 1_024
_SHORT_ID = 32
# How much of an `error` event's text its StreamError quotes.
_ERROR_TEXT_LIMIT = 1_000


def _id_key(event_id: str) -> Union[str, bytes]:
    """What the dedupe window stores for an id: the id itself, or a digest of a long one."""
    if len(event_id) <= _SHORT_ID:
        return event_id
    return hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EventStream:
    """The events of one run: ``async with client.runs.stream(run_id) as events``.

    Iterating yields :class:`~crewship_async.models.events.RunEvent` objects in order.

    * ``run.completed``, ``run.failed`` and ``complete`` are delivered, then the iteration
      ends.
    * An ``error`` event raises :class:`StreamError` with its message.
    * A ``timeout`` event, a dropped connection, and a connection that ends without a
      terminal event all reconnect with ``Last-Event-ID`` (when an id is known), after the
      server's ``retry`` delay or a jittered exponential backoff (the client's
      :class:`~crewship_async.RetryPolicy` ``initial_delay``/``max_delay``). Events whose
      own id was already delivered are dropped (among the last 1,024 delivered ids). The
      server's ``retry`` is honoured up to the policy's ``max_retry_after``.
    * ``max_reconnects`` consecutive failed attempts (no event delivered in between; a
      ``timeout`` event counts as one) raise :class:`StreamError` from the last error. An
      HTTP error other than 429/5xx (401, 404, ...) is raised as is, without reconnecting,
      and so is a 429/503 whose ``Retry-After`` exceeds the policy's ``max_retry_after``.
    * ``idle_timeout`` seconds without a delivered event raise :class:`StreamError`,
      whatever the stream is doing meanwhile: reading, opening a connection (waiting for
      the response headers included) or waiting to reconnect. Comments and ``heartbeat``
      events do not reset that clock. ``client.runs.stream(..., idle_timeout=math.inf)``
      disables it for one stream, ``AsyncCrewship(idle_timeout=None)`` for every stream
      (each attempt to open is then bounded by 30 s).
    * ``last_event_id`` is the id to resume from later
      (``client.runs.stream(run_id, last_event_id=...)``).

    Leaving the ``async with`` block, ``break``, cancellation, :meth:`aclose` and every
    error close the connection. Iterating without ``async with`` also works; the
    connection is then closed when the iteration ends or fails.
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        *,
        last_event_id: Optional[str] = None,
        idle_timeout: Optional[float] = DEFAULT_IDLE_TIMEOUT,
        max_reconnects: int = 5,
        max_event_size: int = 16 * 1024 * 1024,
    ) -> None:
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0 or None, got {idle_timeout!r}")
        if isinstance(max_reconnects, bool) or max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0, got {max_reconnects!r}")
        self._transport = transport
        self._path = path
        self.last_event_id: Optional[str] = last_event_id or None
        self.idle_timeout = idle_timeout
        self.max_reconnects = max_reconnects
        self._max_event_size = max_event_size
        self._connection: Optional[StreamConnection] = None
        self._decoder = SSEDecoder(max_event_size)
        self._pending: deque[ServerSentEvent] = deque()
        # Ids delivered lately (see _id_key): a set to look up, a deque to forget the oldest.
        self._delivered_ids: set[Union[str, bytes]] = set()
        self._delivered_order: deque[Union[str, bytes]] = deque()
        self._failures = 0
        self._server_retry: Optional[float] = None
        self._last_error: Optional[BaseException] = None
        # An event past the size cap: raised once the events before it were delivered.
        self._oversized: Optional[EventTooLargeError] = None
        self._idle_since = 0.0
        # Set when an event that resets the idle clock was delivered since the last read:
        # the clock is read once per chunk, not once per event.
        self._active = False
        self._started = False
        self._finished = False
        self.reconnects = 0

    def __repr__(self) -> str:
        state = "finished" if self._finished else "open" if self._connection else "idle"
        return f"<EventStream {self._path} {state} last_event_id={self.last_event_id!r}>"

    async def __aenter__(self) -> EventStream:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> EventStream:
        return self

    async def aclose(self) -> None:
        """Close the connection and end the iteration. Idempotent."""
        self._finished = True
        self._drop_connection()

    async def __anext__(self) -> RunEvent:
        if self._finished:
            self._drop_connection()
            raise StopAsyncIteration
        try:
            if not self._started:
                await self._start()
            while True:
                while self._pending:
                    event = self._accept(self._pending.popleft())
                    if event is not None:
                        return event
                if self._finished:
                    raise StopAsyncIteration
                if self._oversized is not None:
                    raise self._oversized
                await self._within_idle_timeout(self._fill())
        except BaseException:
            self._finished = True
            self._drop_connection()
            raise

    async def _start(self) -> None:
        self._started = True
        self._idle_since = anyio.current_time()
        await self._within_idle_timeout(self._connect())

    async def _within_idle_timeout(self, step: Awaitable[None]) -> None:
        """Await ``step`` (a read, a connection attempt, a reconnect delay), raising
        :class:`StreamError` once ``idle_timeout`` has passed since the last delivered
        event. The clock is read once per step, not once per event."""
        if self.idle_timeout is None:
            await step
            return
        if self._active:
            self._active = False
            self._idle_since = anyio.current_time()
        with anyio.CancelScope(deadline=self._idle_since + self.idle_timeout) as scope:
            await step
        if scope.cancelled_caught:
            detail = f"; last error: {self._last_error}" if self._failures else ""
            raise StreamError(
                f"GET {self._path}: no event for {self.idle_timeout:g}s (idle timeout){detail}"
            )

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def _connect(self) -> None:
        """Open a connection, retrying transient failures up to ``max_reconnects`` times.

        Keeps nothing open once the stream is finished (closed by :meth:`aclose` from
        another task while this one waited).
        """
        while True:
            try:
                connection = await self._transport.open_stream(
                    self._path, last_event_id=self.last_event_id, attempt=self._failures + 1
                )
            except APIError as exc:
                if not is_transient_status(exc.status_code):
                    raise
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None and (
                    retry_after > self._transport.retry_policy.max_retry_after
                ):
                    raise
                await self._after_failure(exc, retry_after)
            except APIConnectionError as exc:
                await self._after_failure(exc, None)
            else:
                if self._finished:
                    connection.close()
                    return
                self._connection = connection
                self._decoder = SSEDecoder(self._max_event_size)
                return
            if self._finished:
                return

    async def _after_failure(self, error: BaseException, retry_after: Optional[float]) -> None:
        """Count a failed attempt; raise when the budget is spent, else sleep."""
        self._failures += 1
        self._last_error = error
        if self._failures > self.max_reconnects:
            raise StreamError(
                f"GET {self._path}: gave up after {self.max_reconnects} reconnect attempts "
                f"without an event; last error: {error}"
            ) from error
        await self._sleep_before_reconnect(retry_after)

    async def _sleep_before_reconnect(self, retry_after: Optional[float]) -> None:
        self.reconnects += 1
        if retry_after is not None:
            delay = retry_after
        else:
            base = self._server_retry
            if base is None:
                delay = self._transport.retry_policy.backoff(max(self._failures - 1, 0))
            else:
                # The server's retry time, grown and jittered for repeated failures, never
                # past the longest server-asked wait the policy honours.
                grown = base * (2 ** min(max(self._failures - 1, 0), 10))
                ceiling = max(base, self._transport.retry_policy.max_retry_after)
                delay = random.uniform(base, min(grown, ceiling))
        if delay > 0:
            await anyio.sleep(delay)
        else:
            await anyio.lowlevel.checkpoint()

    async def _reconnect(self, error: Optional[BaseException]) -> None:
        """Replace a connection that ended or dropped (``error`` None: ended cleanly)."""
        self._drop_connection()
        if error is None:
            error = APIConnectionError(
                f"GET {self._path}: the stream ended without a terminal event",
                method="GET",
                path=self._path,
            )
        await self._after_failure(error, None)
        if not self._finished:  # aclose() during the delay: open nothing
            await self._connect()

    async def _fill(self) -> None:
        """Read the next chunk into the pending queue, reconnecting when needed."""
        connection = self._connection
        if connection is None:
            # After a `timeout` event: resume after the server's retry time (or a short
            # jittered backoff). It counts as a failed attempt, so a server that answers
            # every connection with `timeout` cannot keep the stream reconnecting forever.
            await self._after_failure(
                StreamError(f"GET {self._path}: the server timed out the stream"), None
            )
            if not self._finished:  # aclose() during the delay: open nothing
                await self._connect()
            return
        error: Optional[APIConnectionError] = None
        try:
            chunk = await connection.read_chunk()
        except APIConnectionError as exc:
            chunk, error = b"", exc
        if self._finished:
            # aclose() was called (from another task) while this one was reading.
            return
        if not chunk:
            await self._reconnect(error)
            return
        try:
            self._pending.extend(self._decoder.feed(chunk))
        except EventTooLargeError as exc:
            # The events this chunk completed before the oversized one come first.
            self._pending.extend(exc.events)
            self._oversized = exc
        retry = self._decoder.retry
        if retry is not None:
            self._server_retry = min(retry / 1000.0, self._transport.retry_policy.max_retry_after)

    def _accept(self, sse: ServerSentEvent) -> Optional[RunEvent]:
        """Turn a decoded SSE event into a RunEvent to deliver, or None to skip it."""
        own_id = sse.id
        key = _id_key(own_id) if own_id else None
        if key is not None and key in self._delivered_ids:
            return None
        event = _to_run_event(sse)
        kind = event.type
        if kind == EventType.ERROR:
            message = event.data.get("message") if isinstance(event.data, dict) else None
            text = message if isinstance(message, str) and message else sse.data
            raise StreamError(
                f"GET {self._path}: the server reported an error: {text[:_ERROR_TEXT_LIMIT]}"
            )
        if own_id is not None:
            self.last_event_id = own_id or None
        if kind == EventType.TIMEOUT:
            # The API closes streams after 30 minutes; resume right away.
            self._drop_connection()
            self._pending.clear()
            return None
        if key is not None:
            order = self._delivered_order
            if len(order) >= _DEDUPE_WINDOW:
                self._delivered_ids.discard(order.popleft())
            order.append(key)
            self._delivered_ids.add(key)
        self._failures = 0
        if kind != EventType.HEARTBEAT:
            self._active = True
        if kind in TERMINAL_EVENT_TYPES:
            self._finished = True
            self._drop_connection()
        return event


def _to_run_event(sse: ServerSentEvent) -> RunEvent:
    raw = sse.data
    try:
        decoded: Any = _json.loads(raw)
    except _json.JSONDecodeError:
        return RunEvent(type=sse.event, data=raw, id=sse.id, raw=raw)
    if isinstance(decoded, dict):
        kind = decoded.get("type")
        if isinstance(kind, str):
            data = decoded.get("data")
            if data is None:
                data = decoded.get("payload")
            return RunEvent(type=kind, data={} if data is None else data, id=sse.id, raw=raw)
    return RunEvent(type=sse.event, data=decoded, id=sse.id, raw=raw)
