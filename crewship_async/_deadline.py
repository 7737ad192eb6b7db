"""One call's deadline: a moment on the event loop's clock, or none at all.

The resources and the fan-out bound a call that spans several requests (polls, retries,
batches) by one deadline; this is its arithmetic, written once.
"""

from __future__ import annotations

import asyncio
import math
from typing import Optional

__all__ = ["Deadline", "now"]


def now() -> float:
    """The running event loop's clock (``RuntimeError`` outside a loop)."""
    return asyncio.get_running_loop().time()


class Deadline:
    """The moment ``seconds`` after its creation on the running event loop's clock
    (``loop.time()``, which is also :func:`anyio.current_time` under asyncio), or after
    ``start``, a reading of that clock.

    ``Deadline(None)`` never expires: :meth:`remaining` is ``None`` and :attr:`at` is
    ``math.inf``, so it can be handed to ``anyio.CancelScope(deadline=...)`` as is.
    Must be created inside a running event loop (``RuntimeError`` otherwise).
    """

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: Optional[float], *, start: Optional[float] = None) -> None:
        #: The length it was given (``None``: unbounded), for messages.
        self.seconds = seconds
        #: The moment on the event loop's clock; ``math.inf`` when unbounded.
        self.at = math.inf
        if seconds is not None:
            self.at = (now() if start is None else start) + seconds

    def __repr__(self) -> str:
        return f"<Deadline seconds={self.seconds!r} remaining={self.remaining()!r}>"

    @property
    def bounded(self) -> bool:
        """Whether the deadline is a real moment (it was given a number of seconds)."""
        return self.seconds is not None

    def remaining(self) -> Optional[float]:
        """Seconds left (0 once passed), or ``None`` when unbounded."""
        if self.seconds is None:
            return None
        return max(0.0, self.at - now())

    def remaining_at(self, now: float) -> Optional[float]:
        """:meth:`remaining` at ``now``, a reading of the loop's clock the caller already
        has (the transport reads ``loop.time()`` once per attempt)."""
        if self.seconds is None:
            return None
        return max(0.0, self.at - now)
