"""What :meth:`Transport.aclose` can end: call guards, and open event-stream connections.

aiohttp never wakes a body read whose connection its session closed, so every awaited
call, read and stream chunk runs inside a :class:`CallGuard` that ``aclose`` fires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Optional

import aiohttp

from .errors import APIConnectionError, ClientClosedError

__all__ = ["CallGuard", "StreamConnection"]


class CallGuard:
    """Lets :meth:`Transport.aclose` end one call or read in flight.

    ``async with guard`` around the awaited work; ``guard.cancel()`` (from ``aclose``)
    cancels the task inside it, the block then exits quietly and ``guard.fired`` is true.
    It keeps ``asyncio.timeout``'s accounting (``Task.cancelling``/``uncancel``), so a
    cancellation of the task from elsewhere, even at the same moment, still propagates.
    It is a plain object rather than an ``asyncio.timeout`` because it runs around every
    call and stream read, and never needs a timer.
    """

    __slots__ = ("_cancelling", "_task", "fired")

    def __init__(self) -> None:
        self._task: Optional[asyncio.Task[object]] = None
        self._cancelling = 0
        self.fired = False

    async def __aenter__(self) -> CallGuard:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - asyncio always runs coroutines in tasks
            raise RuntimeError("a CallGuard needs a running asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        task, self._task = self._task, None
        if not self.fired or task is None:
            return False
        # Our cancel() is absorbed; one from elsewhere (a count above the entry's) is not.
        return task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError

    def cancel(self) -> None:
        """Cancel the task inside the guard: nothing when no task is inside it, or when it
        is the task calling this (it is running, not waiting, and a cancellation could
        only reach it after it left the guard)."""
        task = self._task
        if task is not None and not self.fired and task is not asyncio.current_task():
            self.fired = True
            task.cancel()


class StreamConnection:
    """An open ``text/event-stream`` response: read it with :meth:`read_chunk`, then close.

    Read errors become :class:`APIConnectionError` (the stream layer reconnects on them); a
    read waiting when the client is closed raises :class:`ClientClosedError`.
    """

    __slots__ = ("_in_flight", "_method", "_path", "_response")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        method: str,
        path: str,
        in_flight: Optional[set[CallGuard]] = None,
    ) -> None:
        self._response = response
        self._method = method
        self._path = path
        self._in_flight: set[CallGuard] = set() if in_flight is None else in_flight

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""
        return self._response.headers

    async def read_chunk(self) -> bytes:
        """The next body chunk as it arrives (any size, never split into lines); ``b""`` at
        the end of the body."""
        guard = CallGuard()
        self._in_flight.add(guard)
        failure = None
        try:
            async with guard:
                return await self._response.content.readany()
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            # aiohttp raises RuntimeError("Connection closed.") for a response whose
            # connection its session already closed.
            failure = f"{type(exc).__name__}: {exc}"
        finally:
            self._in_flight.discard(guard)
        if failure is not None:
            # Raised outside the handler: aiohttp's exception may quote server bytes.
            raise APIConnectionError(
                f"{self._method} {self._path}: event stream connection lost ({failure})",
                method=self._method,
                path=self._path,
            )
        raise ClientClosedError(
            f"{self._method} {self._path}: the client was closed while reading the stream"
        )

    def close(self) -> None:
        """Close the connection now (it is not returned to the pool half-read)."""
        self._response.close()
