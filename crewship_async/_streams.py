"""EventStream: a run's events as an async iterator that survives dropped connections.

The I/O shell around the sans-I/O decoder in :mod:`crewship_async._sse`. It reads chunks,
hands their events to a :class:`~crewship_async._stream_delivery.DeliveryQueue` (dedupe
by id, RunEvent building), reconnects through a
:class:`~crewship_async._stream_reconnect.Reconnector` (``Last-Event-ID``, backoff),
enforces an idle timeout between delivered events, and always releases its connection.

``math.inf`` disables the idle timeout wherever ``idle_timeout`` is taken (each attempt to
open is then bounded by 30 s): ``client.runs.stream(..., idle_timeout=math.inf)`` for one
stream, ``AsyncCrewship(idle_timeout=math.inf)`` or ``with_options(idle_timeout=math.inf)``
for every stream. ``AsyncCrewship`` and ``with_options`` also take ``None`` for the same;
``runs.stream``'s ``idle_timeout=None`` (its default) means the client's value.

With OpenTelemetry set up, a stream is one ``runs.stream`` span from its first connection
attempt to its end, with an event per reconnect attempt (``crewship.stream.reconnect``:
the attempt number and the error's type) and one for the terminal event
(``crewship.stream.terminal``: its type); it ends with ``crewship.stream.reconnects`` and,
when an error ended the stream, ``error.type`` and an error status. A close, ``break`` or
cancellation is no error.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable
from types import TracebackType
from typing import TYPE_CHECKING, Optional, TypeVar

from . import _tracing
from ._connection import StreamConnection
from ._deadline import now
from ._extras import NO_EXTRAS, Extras
from ._sse import DEFAULT_MAX_EVENT_SIZE, EventTooLargeError, SSEDecoder
from ._stream_delivery import DeliveryQueue
from ._stream_reconnect import Reconnector
from ._transport import Transport
from .errors import APIConnectionError, APIError, StreamError
from .models.events import RunEvent

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["DEFAULT_IDLE_TIMEOUT", "EventStream"]

DEFAULT_IDLE_TIMEOUT = 120.0

_T = TypeVar("_T")
_NO_LIMIT = contextlib.nullcontext()


class EventStream:
    """The events of one run: ``async with client.runs.stream(run_id) as events``.

    Iterating yields :class:`~crewship_async.models.events.RunEvent` objects in order.

    * ``run.completed``, ``run.failed`` and ``complete`` are delivered, then the iteration
      ends.
    * An ``error`` event raises :class:`StreamError` with its message.
    * A ``timeout`` event, a dropped connection, and a connection that ends without a
      terminal event all reconnect with ``Last-Event-ID`` (when an id is known), after the
      server's ``retry`` delay or a jittered exponential backoff (the client's
      :class:`~crewship_async.RetryPolicy` ``initial_delay``/``max_delay``). From the
      first reconnect on, events whose own id was already delivered are dropped (among
      the last 1,024 delivered ids). The
      server's ``retry`` is honoured up to the policy's ``max_retry_after``.
    * ``max_reconnects`` consecutive failed attempts (no event delivered in between; a
      ``timeout`` event counts as one) raise :class:`StreamError` from the last error. An
      HTTP error other than 429/5xx (401, 404, ...) is raised as is, without reconnecting,
      and so is a 429/503 whose ``Retry-After`` exceeds the policy's ``max_retry_after``.
    * ``idle_timeout`` seconds without a delivered event raise :class:`StreamError`,
      whatever the stream is doing meanwhile: reading, opening a connection (waiting for
      the response headers included) or waiting to reconnect. Comments and ``heartbeat``
      events do not reset that clock. ``math.inf`` disables it (see the module notes).
    * ``last_event_id`` is the id to resume from later
      (``client.runs.stream(run_id, last_event_id=...)``).

    Leaving the ``async with`` block, ``break``, cancellation, :meth:`aclose` and every
    error close the connection (and end the stream's span, see the module notes).
    Iterating without ``async with`` also works; the connection is then closed when the
    iteration ends or fails.
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        *,
        last_event_id: Optional[str] = None,
        idle_timeout: Optional[float] = DEFAULT_IDLE_TIMEOUT,
        max_reconnects: int = 5,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        extras: Extras = NO_EXTRAS,
    ) -> None:
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 (math.inf: none), got {idle_timeout!r}")
        if isinstance(max_reconnects, bool) or max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0, got {max_reconnects!r}")
        if isinstance(max_event_size, bool) or max_event_size < 1:
            raise ValueError(f"max_event_size must be >= 1, got {max_event_size!r}")
        self._path = path
        self.last_event_id: Optional[str] = last_event_id or None
        self.idle_timeout: Optional[float] = None if idle_timeout == math.inf else idle_timeout
        self._transport = transport
        self._reconnector = Reconnector(transport, path, max_reconnects, extras)
        self._span: Optional[Span] = None
        self._max_event_size = max_event_size
        self._connection: Optional[StreamConnection] = None
        # Set with each connection (see _use): a stream opening holds no decoder yet.
        self._decoder: SSEDecoder
        self._queue = DeliveryQueue(path)
        self._idle_since = 0.0
        self._started = False
        self._finished = False

    @property
    def max_reconnects(self) -> int:
        """Consecutive failed attempts allowed before :class:`StreamError` is raised."""
        return self._reconnector.max_reconnects

    @max_reconnects.setter
    def max_reconnects(self, value: int) -> None:
        self._reconnector.max_reconnects = value

    @property
    def reconnects(self) -> int:
        """How many times the stream has tried to reconnect."""
        return self._reconnector.reconnects

    def __repr__(self) -> str:
        state = "finished" if self._finished else "open" if self._connection else "idle"
        return f"<EventStream {self._path} {state} last_event_id={self.last_event_id!r}>"

    async def __aenter__(self) -> EventStream:
        """Open the first connection (iterating without ``async with`` opens it on the
        first ``__anext__``)."""
        self._started = True
        self._span = self._reconnector.span = self._transport.stream_span(self._path)
        self._idle_since = now()
        # The idle clock inline, not through _within_idle_timeout: a stream holds one frame
        # less while it opens, which is when a thousand opening at once peak.
        scope = self._idle_scope()
        reconnector = self._reconnector
        try:
            try:
                # The first attempt is awaited here, not in the reconnector's loop: while a
                # thousand streams open at once (their peak), each holds one frame less.
                async with _NO_LIMIT if scope is None else scope:
                    connection: Optional[StreamConnection]
                    try:
                        connection = await reconnector.attempt(self.last_event_id)
                    except (APIError, APIConnectionError) as exc:
                        connection = await reconnector.open(
                            self.last_event_id, self._is_finished, failed=exc
                        )
            except TimeoutError:
                if scope is None or not scope.expired():
                    raise
                raise self._idle_error(scope) from None
        except Exception as exc:
            self._end_span(exc)
            raise
        self._use(connection)
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
        self._queue.clear()
        self._drop_connection()
        self._end_span(None)

    def _end_span(self, error: Optional[BaseException]) -> None:
        span, self._span = self._span, None
        if span is not None:
            _tracing.end_stream(span, reconnects=self._reconnector.reconnects, error=error)

    async def __anext__(self) -> RunEvent:
        # The common case, an event decoded and waiting, is kept to the bare minimum.
        ready = self._queue.ready
        if ready:
            event = ready.pop()
            own_id = event.id
            if own_id is not None:
                self.last_event_id = own_id or None
            return event
        return await self._next_after_read()

    async def _next_after_read(self) -> RunEvent:
        """The next event once the queue is empty: act on its note, read, reconnect."""
        queue = self._queue
        try:
            if not self._started:
                await self.__aenter__()
            while not queue.ready:
                if queue.pending and not self._finished:
                    queue.convert_more()
                    self._after_conversion()
                    continue
                if self._finished or queue.ended:
                    self._finished = True
                    raise StopAsyncIteration
                if queue.error is not None:
                    raise queue.error
                if queue.timed_out:
                    # The API closes streams after 30 minutes; resume after them.
                    queue.timed_out = False
                    if queue.resume_id is not None:
                        self.last_event_id = queue.resume_id or None
                    self._drop_connection()
                await self._within_idle_timeout(self._fill())
        except BaseException as exc:
            self._finished = True
            self._drop_connection()
            failed = isinstance(exc, Exception) and not isinstance(exc, StopAsyncIteration)
            self._end_span(exc if failed else None)
            raise
        event = queue.ready.pop()
        if event.id is not None:
            self.last_event_id = event.id or None
        return event

    async def _within_idle_timeout(self, step: Awaitable[_T]) -> _T:
        """Await ``step`` (a read, a connection attempt, a reconnect delay) and return its
        result, raising :class:`StreamError` once ``idle_timeout`` has passed since the
        last delivered event. The clock is read once per step, not once per event."""
        scope = self._idle_scope()
        if scope is None:
            return await step
        try:
            async with scope:
                return await step
        except TimeoutError:
            if not scope.expired():
                raise
            raise self._idle_error(scope) from None

    def _idle_scope(self) -> Optional[asyncio.Timeout]:
        """A timeout at ``idle_timeout`` after the last delivered event (None: no limit).

        asyncio's own timeout, not an anyio scope: one is entered around every read, and
        an anyio scope costs several times as much time and memory."""
        limit = self.idle_timeout
        if limit is None or limit == math.inf:
            return None
        queue = self._queue
        if queue.active:
            queue.active = False
            self._idle_since = now()
        return asyncio.timeout_at(self._idle_since + limit)

    def _idle_error(self, scope: asyncio.Timeout) -> StreamError:
        """The error for ``scope`` (from :meth:`_idle_scope`) having expired."""
        limit = (scope.when() or 0.0) - self._idle_since  # as set when the wait began
        reconnector = self._reconnector
        detail = f"; last error: {reconnector.last_error}" if reconnector.failures else ""
        return StreamError(f"GET {self._path}: no event for {limit:g}s (idle timeout){detail}")

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _open_connection(self) -> Awaitable[Optional[StreamConnection]]:
        """A connection from :meth:`Reconnector.open`, to pass to :meth:`_use`. (The
        reconnector's own coroutine: a stream holds one frame less while it opens.)"""
        return self._reconnector.open(self.last_event_id, self._is_finished)

    def _is_finished(self) -> bool:
        return self._finished

    def _use(self, connection: Optional[StreamConnection]) -> None:
        """Read from ``connection`` with a new decoder; ``None``, or a stream closed
        meanwhile (the connection is closed then), leaves the stream without one."""
        if connection is not None and self._finished:
            connection.close()
        elif connection is not None:
            self._connection = connection
            self._decoder = SSEDecoder(self._max_event_size)

    async def _reconnect(self, error: BaseException) -> None:
        """Count a failed attempt, wait, and open a new connection unless closed meanwhile."""
        self._drop_connection()
        self._queue.expect_replays()
        await self._reconnector.after_failure(error, None)
        if not self._finished:  # aclose() during the delay: open nothing
            self._use(await self._open_connection())

    def _after_conversion(self) -> None:
        """Act on what the queue's last conversion gave: delivered events end a run of
        failed attempts; after the terminal event the connection is not needed."""
        queue = self._queue
        if queue.ready:
            self._reconnector.reset()
            if queue.ended:
                self._drop_connection()
                if self._span is not None:
                    terminal = {"crewship.event_type": str(queue.ready[0].type)}
                    _tracing.add_event(self._span, "crewship.stream.terminal", terminal)

    async def _fill(self) -> None:
        """Read the next chunk into the queue, reconnecting when needed."""
        connection = self._connection
        if connection is None:
            # After a `timeout` event: resume after the server's retry time (or a short
            # jittered backoff). It counts as a failed attempt, so a server that answers
            # every connection with `timeout` cannot keep the stream reconnecting forever.
            await self._reconnect(StreamError(f"GET {self._path}: the server timed out the stream"))
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
            if error is None:
                error = APIConnectionError(
                    f"GET {self._path}: the stream ended without a terminal event",
                    method="GET",
                    path=self._path,
                )
            await self._reconnect(error)
            return
        decoder = self._decoder
        queue = self._queue
        try:
            queue.add(decoder.feed_runs(chunk))
        except EventTooLargeError as exc:
            # The events this chunk completed before the oversized one come first.
            queue.add([exc.events])
            if queue.error is None and not queue.ended:
                queue.error = exc
        self._after_conversion()
        retry = decoder.retry
        if retry is not None:
            self._reconnector.set_server_retry(retry)
