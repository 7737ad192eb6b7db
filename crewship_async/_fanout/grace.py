"""Stopping early with a grace period: the timer, and the outcomes of what it cut."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any, Callable, Optional

from ..errors import APITimeoutError
from ..models.runs import RunOutcome
from .sending import RUNS, RUNS_PATH

__all__ = ["GracePeriod", "cut_short_outcomes"]


class GracePeriod:
    """The grace period of ``stop_feeding``: calls ``on_expire`` when it runs out.

    :meth:`start` may shorten a running period, never lengthen it.
    """

    __slots__ = ("_ends_at", "_loop", "_on_expire", "_timer", "seconds")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_expire: Callable[[], None]) -> None:
        self._loop = loop
        self._on_expire = on_expire
        self._ends_at = math.inf
        self._timer: Optional[asyncio.TimerHandle] = None
        #: The length of the period in force (``None`` before any).
        self.seconds: Optional[float] = None

    def start(self, seconds: float) -> None:
        """Run out ``seconds`` from now, unless the period in force ends earlier."""
        ends_at = self._loop.time() + seconds
        if ends_at >= self._ends_at:
            return
        self.seconds, self._ends_at = seconds, ends_at
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(ends_at, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._on_expire()

    def cancel(self) -> None:
        """Never run out (the fan-out ended first)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def cut_short_outcomes(
    unfinished: Mapping[int, Any], sending: set[int], grace: Optional[float]
) -> list[RunOutcome]:
    """The outcome of every item the grace period cut short, in index order.

    ``unfinished`` maps each index pulled and not finished to its item as given;
    ``sending`` holds those whose request was waiting for its response: their run may
    exist. The others were not sent, so no run was created for them.
    """
    outcomes = []
    for index in sorted(unfinished):
        sent = index in sending
        if sent:
            message = (
                f"{RUNS}: cancelled {grace:g}s after create_many stopped feeding, "
                "still waiting for the response; the request may have reached the "
                "server, so its run may or may not exist. It was not sent again."
            )
        else:
            message = (
                f"{RUNS}: not sent: the {grace:g}s grace period after create_many "
                "stopped feeding ran out while it waited to be sent; no run was "
                "created for it"
            )
        error = APITimeoutError(message, method="POST", path=RUNS_PATH, request_sent=sent)
        outcomes.append(RunOutcome(index, unfinished[index], error=error))
    return outcomes
