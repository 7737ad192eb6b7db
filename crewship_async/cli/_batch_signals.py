"""How ``batch`` stops on SIGINT and SIGTERM: gracefully the first time, at once the second."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

if TYPE_CHECKING:
    from .._fanout import FanOut

__all__ = ["STOP_SIGNALS", "StopOnSignal", "uncancel"]

#: The signals that stop a batch, and its exit code after each: 128 + the signal number.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

SignalHandler = Union[Callable[[int, Optional[FrameType]], Any], int, None]


class StopOnSignal:
    """While entered, SIGINT and SIGTERM stop the batch gracefully, then at once.

    The first of them calls ``fanout.stop_feeding(grace=grace)`` (no new input is sent,
    the requests in flight finish and their outcomes are still yielded) and then
    ``on_stop(signum, in_flight)``. A second one cancels the task that entered, which
    aborts the batch like a kill. ``received`` lists the signals in order.

    The handlers are installed with ``loop.add_signal_handler`` on entry, in the running
    loop, and removed on exit, when the handlers found on entry (such as the one of
    :func:`asyncio.run` for SIGINT) are put back. Where the loop cannot handle signals
    (not the main thread, or Windows) nothing is installed and Ctrl-C stops the batch at
    once, as a second one would.
    """

    def __init__(self, fanout: FanOut, grace: float, on_stop: Callable[[int, int], None]) -> None:
        self._fanout = fanout
        self._grace = grace
        self._on_stop = on_stop
        self.received: list[int] = []
        self._installed: list[tuple[int, SignalHandler]] = []
        self._task: Optional[asyncio.Task[Any]] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    @property
    def aborted(self) -> bool:
        """Whether a second signal cancelled the task."""
        return len(self.received) > 1

    def exit_code(self) -> int:
        """128 + the number of the last signal received (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.received[-1]

    def __enter__(self) -> StopOnSignal:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            try:
                self._loop.add_signal_handler(signum, self._handle, int(signum))
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                continue  # Windows, or not the main thread
            self._installed.append((int(signum), previous))
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        assert self._loop is not None
        for signum, previous in reversed(self._installed):
            self._loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)
        self._installed.clear()

    def _handle(self, signum: int) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            self._fanout.stop_feeding(grace=self._grace)
            self._on_stop(signum, self._fanout.in_flight)
        elif len(self.received) == 2:
            assert self._task is not None
            self._task.cancel()


def uncancel(task: Optional[asyncio.Task[Any]]) -> None:
    """Take back a cancellation that was handled (Python 3.11+ counts them)."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()
