"""The fan-out's answer to 429s: one shared pause, and a concurrency that backs off.

:class:`RateGate` is the pause every worker waits at after a 429, until its
``Retry-After`` has passed (bounded by a caller's deadline). :class:`AIMD` halves the
concurrency limit on a 429 and grows it back one step at a time. Both are pure state on
the event loop's clock; :mod:`crewship_async._fanout.sending` drives them.
"""

from __future__ import annotations

import math
from typing import Optional

import anyio

from ._deadline import now

__all__ = ["AIMD", "RateGate"]


class RateGate:
    """The shared rate-limit pause: closed until a moment on the event loop's clock."""

    __slots__ = ("_resume_at",)

    def __init__(self) -> None:
        self._resume_at = -math.inf

    def close(self, delay: float) -> None:
        """Keep the gate closed for at least ``delay`` seconds from now."""
        self._resume_at = max(self._resume_at, now() + delay)

    def remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        return max(0.0, self._resume_at - now())

    async def wait(self, deadline: Optional[float] = None) -> bool:
        """Wait until the gate is open; ``False`` if it will not open before ``deadline``.

        ``deadline`` is a moment on the event loop's clock. The gate never reopens
        earlier than announced, so once it is closed past ``deadline`` this returns
        ``False`` at once instead of sleeping in vain. It may be closed again while a
        caller sleeps: the new reopening is waited for (and checked against ``deadline``)
        too. Without a deadline the wait ends when the last close's delay has passed;
        every close needs a 429 answer, and none is sent while the gate is closed, so it
        cannot stay closed forever.
        """
        if self._resume_at == -math.inf:  # never closed: no clock read on the hot path
            return True
        while True:
            delay = self.remaining()
            if delay <= 0:
                return True
            if deadline is not None and self._resume_at >= deadline:
                return False
            await anyio.sleep(delay)


class AIMD:
    """Additive-increase / multiplicative-decrease of a limiter's ``total_tokens``.

    ``on_rate_limit(epoch)`` halves the limit (floor 1) if the rejected request was sent
    in the current epoch, then starts a new epoch; ``on_success`` adds one token after
    ``limit`` successes since the last change, up to ``ceiling``. ``lowest`` is the lowest
    limit so far, reported as ``FanOut.stats.lowest_concurrency``.
    """

    __slots__ = ("_limiter", "_successes", "ceiling", "epoch", "limit", "lowest")

    def __init__(self, limiter: anyio.CapacityLimiter, ceiling: int) -> None:
        self._limiter = limiter
        self.ceiling = ceiling
        self.limit = ceiling
        self.lowest = ceiling
        self.epoch = 0
        self._successes = 0

    def on_success(self) -> None:
        if self.limit < self.ceiling:
            self._successes += 1
            if self._successes >= self.limit:
                self._set(self.limit + 1)

    def on_rate_limit(self, epoch: int) -> None:
        if epoch == self.epoch:
            self.epoch += 1
            self._set(max(1, self.limit // 2))

    def _set(self, value: int) -> None:
        self._successes = 0
        self.limit = value
        self.lowest = min(self.lowest, value)
        self._limiter.total_tokens = value
