"""When and how an event stream opens its connection (again): the reconnect/resume policy.

:class:`Reconnector` opens a run's event stream with ``Last-Event-ID``, retries transient
failures, counts consecutive failed attempts against ``max_reconnects`` and sleeps between
attempts: the server's ``retry`` time (grown and jittered for repeated failures) when it
gave one, else the client's :class:`~crewship_async.RetryPolicy` backoff.
"""

from __future__ import annotations

import random
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Callable, Optional

import anyio

from . import _tracing
from ._connection import StreamConnection
from ._extras import NO_EXTRAS, Extras
from ._retry import is_transient_status
from ._transport import Transport
from .errors import APIConnectionError, APIError, CrewshipError, StreamError

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["Reconnector"]


class Reconnector:
    """Opens one stream's connections and paces its reconnect attempts.

    ``failures`` counts the attempts that failed since an event was last delivered
    (:meth:`reset` clears it); ``reconnects`` counts every reconnect attempt made;
    ``last_error`` is the error of the last failed attempt.
    """

    __slots__ = (
        "_extras",
        "_path",
        "_server_retry",
        "_transport",
        "failures",
        "last_error",
        "max_reconnects",
        "reconnects",
        "span",
    )

    def __init__(
        self, transport: Transport, path: str, max_reconnects: int, extras: Extras = NO_EXTRAS
    ) -> None:
        self._transport = transport
        self._path = path
        self._extras = extras
        #: The stream's span (set by the stream once it starts): reconnects are its events.
        self.span: Optional[Span] = None
        self.max_reconnects = max_reconnects
        self.failures = 0
        self.reconnects: int = 0
        self.last_error: Optional[BaseException] = None
        self._server_retry: Optional[float] = None

    def reset(self) -> None:
        """An event was delivered: the next failure is the first in a row."""
        self.failures = 0

    def set_server_retry(self, milliseconds: int) -> None:
        """Adopt the server's ``retry`` time, capped at the policy's ``max_retry_after``."""
        self._server_retry = min(
            milliseconds / 1000.0, self._transport.retry_policy.max_retry_after
        )

    def attempt(self, last_event_id: Optional[str]) -> Coroutine[Any, Any, StreamConnection]:
        """One connection attempt, numbered after the failures so far: the transport's own
        coroutine, to await (a stream holds no frame of this object while it opens)."""
        return self._transport.open_stream(
            self._path, last_event_id=last_event_id, attempt=self.failures + 1, extras=self._extras
        )

    async def open(
        self,
        last_event_id: Optional[str],
        finished: Callable[[], bool],
        *,
        failed: Optional[CrewshipError] = None,
    ) -> Optional[StreamConnection]:
        """Open a connection, retrying transient failures up to ``max_reconnects`` times.

        ``failed``: the error of an attempt the caller already made (see :meth:`attempt`),
        handled as if this call had made it. Returns None, making no further attempt, when
        ``finished()`` turns true during a wait (the stream was closed from another task);
        a connection that answers after that is returned, for the stream to close. An
        HTTP error other than 429/5xx, and a 429/503 whose ``Retry-After`` exceeds the
        policy's ``max_retry_after``, is raised as is; :class:`StreamError` is raised once
        the budget of attempts is spent.
        """
        while True:
            if failed is not None:
                await self._after_failed_attempt(failed)
                if finished():
                    return None
            try:
                return await self.attempt(last_event_id)
            except (APIError, APIConnectionError) as exc:
                failed = exc

    async def _after_failed_attempt(self, error: CrewshipError) -> None:
        """Raise ``error`` unless another attempt may follow it; else count it and wait."""
        if not isinstance(error, APIError):
            await self.after_failure(error, None)
            return
        if not is_transient_status(error.status_code):
            raise error
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > self._transport.retry_policy.max_retry_after:
            raise error
        await self.after_failure(error, retry_after)

    async def after_failure(self, error: BaseException, retry_after: Optional[float]) -> None:
        """Count a failed attempt; raise :class:`StreamError` from ``error`` when the budget
        is spent, else sleep before the next attempt (``retry_after`` seconds if given)."""
        self.failures += 1
        self.last_error = error
        _tracing.add_event(
            self.span,
            "crewship.stream.reconnect",
            {"crewship.attempt": self.failures, "error.type": type(error).__name__},
        )
        if self.failures > self.max_reconnects:
            raise StreamError(
                f"GET {self._path}: gave up after {self.max_reconnects} reconnect attempts "
                f"without an event; last error: {error}"
            ) from error
        await self._sleep(retry_after)

    async def _sleep(self, retry_after: Optional[float]) -> None:
        self.reconnects += 1
        if retry_after is not None:
            delay = retry_after
        else:
            base = self._server_retry
            if base is None:
                delay = self._transport.retry_policy.backoff(max(self.failures - 1, 0))
            else:
                # The server's retry time, grown and jittered for repeated failures, never
                # past the longest server-asked wait the policy honours.
                grown = base * (2 ** min(max(self.failures - 1, 0), 10))
                ceiling = max(base, self._transport.retry_policy.max_retry_after)
                delay = random.uniform(base, min(grown, ceiling))
        if delay > 0:
            await anyio.sleep(delay)
        else:
            await anyio.lowlevel.checkpoint()
