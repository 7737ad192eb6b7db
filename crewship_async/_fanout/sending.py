"""One item's way to the server: a concurrency token, the rate-limit gate, the 429 retries.

:class:`ItemSender` is shared by every worker of a fan-out. It owns the limiter whose
tokens bound the requests in flight, the :class:`~crewship_async._ratelimit.AIMD`
controller that resizes it, and the :class:`~crewship_async._ratelimit.RateGate` a 429
closes. Whether a 429 is retried is the :class:`~crewship_async._retry.RetryPolicy`'s
decision (:meth:`~crewship_async._retry.RetryPolicy.gives_up`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Callable, Optional

import anyio
import anyio.lowlevel

from .._deadline import Deadline
from .._ratelimit import AIMD, RateGate
from .._retry import RetryPolicy
from ..errors import APITimeoutError, RateLimitError
from ..models.runs import RunCreated, RunOutcome, RunRequest

__all__ = ["RUNS", "RUNS_PATH", "ItemSender", "Send"]

logger = logging.getLogger("crewship_async")

Send = Callable[[RunRequest, Optional[float]], Awaitable[RunCreated]]
"""Creates one run: ``(request, timeout) -> RunCreated``; 429 must raise RateLimitError."""

RUNS_PATH = "/v1/runs"
RUNS = "POST " + RUNS_PATH


def _not_sent_again() -> APITimeoutError:
    """The error of an item whose deadline passed while it waited to be sent after a 429."""
    return APITimeoutError(
        f"{RUNS}: the call's deadline passed while it waited to be sent again after a "
        "429 (rate limited); it was not sent again, so no run was created",
        request_sent=False,
        method="POST",
        path=RUNS_PATH,
    )


def _moment(deadline: Optional[Deadline]) -> Optional[float]:
    """The moment a wait must end by, or ``None`` when it need not."""
    return None if deadline is None or not deadline.bounded else deadline.at


class ItemSender:
    """Turns one pulled item into its :class:`RunOutcome`, within the shared limits.

    ``limit`` is the most requests in flight, ``timeout`` each item's deadline across its
    attempts (``None``: none), counted from its first send. :attr:`sending` holds the
    indices whose request is on the wire now.
    """

    def __init__(
        self, send: Send, *, limit: int, policy: RetryPolicy, timeout: Optional[float]
    ) -> None:
        self._send = send
        self._policy = policy
        self._timeout = timeout
        self._limiter = anyio.CapacityLimiter(limit)
        self.rate = AIMD(self._limiter, limit)
        self.gate = RateGate()
        self.sending: set[int] = set()
        #: 429 answers received so far.
        self.rate_limited = 0
        #: The scope the workers run in (the engine sets it when they start).
        self.scope = anyio.CancelScope()

    async def _acquire(self, deadline: Optional[Deadline]) -> bool:
        """Take a limiter token, without a trip through the event loop when one is free.

        ``False`` (no token taken) if ``deadline`` passes first. A worker that got its
        item just as the fan-out was cancelled must not send: the cancellation check comes
        first (the workers' scope read directly, a fraction of anyio's generic check).
        """
        if self.scope.cancel_called:
            await anyio.lowlevel.checkpoint()
        try:
            self._limiter.acquire_nowait()
        except anyio.WouldBlock:
            if deadline is None or not deadline.bounded:
                await self._limiter.acquire()
            else:
                with anyio.CancelScope(deadline=deadline.at):
                    await self._limiter.acquire()
                    return True
                return False
        return True

    async def create(self, index: int, item: Any) -> RunOutcome:
        """Validate ``item``, send it (again after each 429 the policy allows) and return
        its outcome; every failure becomes the outcome's error."""
        try:
            request = RunRequest.coerce(item)
        except Exception as exc:
            return RunOutcome(index, item, error=exc)
        deadline: Optional[Deadline] = None
        retries = 0
        while True:
            # Before the first send the item's deadline has not started; after a 429 the
            # waits for a token and for the gate are bounded by it.
            if not await self._acquire(deadline):
                return RunOutcome(index, item, error=_not_sent_again())
            try:
                if not await self.gate.wait(_moment(deadline)):
                    return RunOutcome(index, item, error=_not_sent_again())
                if deadline is None:
                    deadline = Deadline(self._timeout)
                epoch = self.rate.epoch
                self.sending.add(index)
                try:
                    run = await self._send(request, deadline.remaining())
                except RateLimitError as exc:
                    self.sending.discard(index)
                    error = exc
                except Exception as exc:
                    return RunOutcome(index, item, error=exc)
                else:
                    self.rate.on_success()
                    return RunOutcome(index, item, run=run)
            finally:
                self._limiter.release()
            if self._gives_up(index, retries, error, epoch, deadline):
                return RunOutcome(index, item, error=error)
            retries += 1

    def _gives_up(
        self, index: int, retries: int, error: RateLimitError, epoch: int, deadline: Deadline
    ) -> bool:
        """React to a 429 as a whole (halve the limit, close the gate) and say whether this
        item stops here. A 429 is answered before the server acts: a resend is safe."""
        self.rate_limited += 1
        self.rate.on_rate_limit(epoch)
        delay = self._policy.delay_for(retries, error.retry_after)
        if delay is not None:
            self.gate.close(delay)
        paused = self.gate.remaining()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "create_many: 429 on item %d; all requests paused for %.2fs, concurrency now %d",
                index,
                paused,
                self.rate.limit,
            )
        # The next attempt waits for the gate, which another 429 may hold closed for
        # longer than this one asked.
        wait = None if delay is None else paused
        return self._policy.gives_up(retries, wait, time_left=deadline.remaining())
