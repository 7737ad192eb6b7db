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
    cancels it, the block then exits quietly and ``guard.fired`` is true. Built on an
    ``asyncio.timeout`` that never fires on its own: it handles concurrent
    cancellations correctly and costs a fraction of an anyio cancel scope in the
    short-lived tasks (one per incoming web request) that typically make the calls.
    """

    __slots__ = ("_timeout",)

    def __init__(self) -> None:
        self._timeout = asyncio.timeout(None)

    async def __aenter__(self) -> CallGuard:
        await self._timeout.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError:  # raised only when cancel() fired it
            return True
        return False

    def cancel(self) -> None:
        self._timeout.reschedule(0)

    @property
    def fired(self) -> bool:
        return self._timeout.expired()


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
