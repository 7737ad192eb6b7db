"""What watches each response: the client's ``on_response`` hooks, and the call's record.

A :class:`CallRecord` follows one call (its start, its attempts, its last response) and
gives the :class:`~crewship_async.ResponseInfo` that models, errors and hooks carry.
:class:`ResponseHooks` calls the user's ``on_response`` callables with it after every
response, retried ones included. A hook that raises is logged (scrubbed) and ignored: the
response it saw may have created a run, and the caller must still get it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Optional, Union

from .._metadata import ResponseInfo
from .._operations import RequestContext

__all__ = ["CallRecord", "ResponseHook", "ResponseHooks"]

logger = logging.getLogger("crewship_async")

#: An ``on_response`` hook: a plain or an async callable taking a :class:`ResponseInfo`.
ResponseHook = Callable[[ResponseInfo], Union[Awaitable[None], None]]


class CallRecord:
    """The timing and the last response of one call (one per :meth:`Transport.request`)."""

    __slots__ = ("_attempt_started", "attempts", "context", "headers", "loop", "started", "status")

    def __init__(
        self, context: RequestContext, *, started: Optional[float] = None, attempt: int = 0
    ) -> None:
        """A record from now, or from ``started`` (the loop's time) with ``attempt``
        under way since then."""
        self.loop = asyncio.get_running_loop()
        self.context = context
        self.started = self._attempt_started = self.loop.time() if started is None else started
        self.attempts = attempt
        self.status: Optional[int] = None
        self.headers: Optional[Mapping[str, str]] = None

    def attempt_started(self, attempt: int) -> float:
        """Note the start of ``attempt``; returns the loop time."""
        self.attempts = attempt
        self._attempt_started = now = self.loop.time()
        return now

    def elapsed_attempt(self) -> float:
        """Seconds since the current attempt started."""
        return self.loop.time() - self._attempt_started

    def responded(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status
        self.headers = headers

    def info(self) -> Optional[ResponseInfo]:
        """The :class:`ResponseInfo` of the last response, or ``None`` before one came."""
        if self.status is None or self.headers is None:
            return None
        return ResponseInfo(
            self.status,
            self.headers,
            self.loop.time() - self.started,
            self.attempts,
            self.context.operation,
        )

    def error_info(self) -> Optional[ResponseInfo]:
        """:meth:`info` with its headers scrubbed, for an error to carry."""
        info = self.info()
        return None if info is None else info.scrubbed()


class ResponseHooks:
    """The client's ``on_response`` hooks (none: nothing is built per response)."""

    __slots__ = ("_hooks",)

    def __init__(self, hooks: Sequence[ResponseHook] = ()) -> None:
        self._hooks = tuple(hooks)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def plus(self, hooks: Sequence[ResponseHook]) -> ResponseHooks:
        """These hooks followed by ``hooks``."""
        return ResponseHooks((*self._hooks, *hooks))

    async def responded(self, record: CallRecord) -> None:
        """Call every hook with the record's response."""
        if not self._hooks:
            return
        info = record.info()
        if info is None:
            return
        for hook in self._hooks:
            try:
                result = hook(info)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # a hook's bug must not lose the response
                logger.warning(
                    "on_response hook %r raised %s: %s; ignored",
                    getattr(hook, "__qualname__", hook),
                    type(exc).__name__,
                    exc,
                )
