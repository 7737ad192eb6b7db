"""Who owns the ``aiohttp.ClientSession``, when it is made, and which loop it belongs to."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncGenerator, Sequence
from typing import Optional

import aiohttp
import anyio

from .._connection import CallGuard
from .._loopback import LoopbackResolver
from ..errors import ClientClosedError

__all__ = ["SessionOwner"]


async def _close_when_forgotten(
    session: aiohttp.ClientSession, resolver: LoopbackResolver
) -> AsyncGenerator[None, None]:
    """Closes ``session`` if the client never did, while its loop still runs.

    An async generator that has started is closed by ``loop.shutdown_asyncgens()`` (the
    end of ``asyncio.run``), or by the loop soon after it is garbage: either way its
    ``finally`` runs inside the loop, where the session can still close cleanly. So a
    client left open warns once, with a ResourceWarning that says what to do, instead of
    aiohttp's "Unclosed client session" and "Event loop is closed" noise.
    """
    try:
        yield
    finally:
        if not session.closed:
            warnings.warn(
                "an AsyncCrewship client was left open; it was closed when its event loop "
                "shut down. Use `async with AsyncCrewship() as client` or `await "
                "client.aclose()`",
                ResourceWarning,
                stacklevel=1,
            )
            await session.close()
            await resolver.close()


def _start(generator: AsyncGenerator[None, None]) -> None:
    """Run ``generator`` to its first ``yield`` without awaiting (it awaits nothing
    before it): this registers it with the running loop's async-generator hooks."""
    step = generator.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return
    raise RuntimeError("the watcher awaited before its first yield")  # pragma: no cover


class SessionOwner:
    """Holds the session of one client: borrowed (used as is, never closed) or its own.

    The own session is made on the first :meth:`get` inside the running event loop, not at
    construction: an instrumentation that patches ``aiohttp.ClientSession`` after the
    client was built (OpenTelemetry's ``AioHttpClientInstrumentor().instrument()``) still
    sees it. It never reads the environment (``trust_env=False``): aiohttp's own
    ``trust_env`` would also read ``~/.netrc`` and replace the ``Authorization: Bearer``
    header with Basic auth. Proxies are chosen by the client and passed per request.
    """

    def __init__(
        self,
        session: Optional[aiohttp.ClientSession],
        *,
        max_connections: int,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self._session = session
        self.borrowed: bool = session is not None
        self.max_connections = max_connections
        self._trace_configs = list(trace_configs)
        self._resolver: Optional[LoopbackResolver] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._watcher: Optional[AsyncGenerator[None, None]] = None
        self.closed: bool = False
        # Guards of the calls and stream reads in flight, of every client sharing this
        # pool: aclose() fires them, because aiohttp never wakes a body read whose
        # connection its session closed.
        self.in_flight: set[CallGuard] = set()

    def get(self) -> aiohttp.ClientSession:
        """The session, made on first use inside the running loop.

        Raises :class:`ClientClosedError` after :meth:`aclose`, when the borrowed session was
        closed, or when called from a loop other than the first one.
        """
        if self.closed:
            raise ClientClosedError("this AsyncCrewship client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ClientClosedError(
                "this AsyncCrewship client is bound to the event loop it was first used in; "
                "create one client per event loop (or pass the client to that loop's code)"
            )
        session = self._session
        if session is None:
            self._resolver = LoopbackResolver()
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                ttl_dns_cache=300,
                resolver=self._resolver,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                raise_for_status=False,
                trust_env=False,
                trace_configs=self._trace_configs or None,
            )
            self._session = session
            self._watcher = _close_when_forgotten(session, self._resolver)
            _start(self._watcher)
        elif session.closed:
            raise ClientClosedError("the aiohttp session given to AsyncCrewship is closed")
        return session

    def pool_size(self) -> int:
        """How many connections the session's pool opens at most (0: unlimited)."""
        connector = self.get().connector
        return connector.limit if connector is not None else 0

    @property
    def bound_loop(self) -> Optional[asyncio.AbstractEventLoop]:
        """The loop of the first use, or ``None`` before it."""
        return self._loop

    @property
    def open_session(self) -> Optional[aiohttp.ClientSession]:
        """The own session when it was made and not closed yet, else ``None``."""
        session = self._session
        if session is None or self.borrowed or session.closed:
            return None
        return session

    def check_close_loop(self) -> None:
        """Raise :class:`ClientClosedError` when closing from another, still open loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and loop is not asyncio.get_running_loop():
            raise ClientClosedError(
                "close this AsyncCrewship client in the event loop it was used in"
            )

    async def aclose(self) -> None:
        """End the calls in flight, then close the own session and resolver (a borrowed
        session stays open)."""
        self.closed = True
        for guard in list(self.in_flight):
            guard.cancel()
        session, self._session = self._session, None
        if session is not None and not self.borrowed and not session.closed:
            # Shielded: aclose() may run inside a call it has just cancelled.
            with anyio.CancelScope(shield=True):
                await session.close()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.aclose()
