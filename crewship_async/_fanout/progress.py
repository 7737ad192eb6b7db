"""What a fan-out tells about its progress: a snapshot, and who may listen.

The core reports to two kinds of listener, neither of which it knows the type of:

* ``on_progress(done, failed, in_flight)``, a plain callback;
* a :class:`ProgressReporter` (``progress=``), an object told the whole
  :class:`FanOutStats` after each outcome and closed when the fan-out closes.
  ``progress=True`` picks the rich bar of :mod:`crewship_async._progress_bar`, imported
  only then (it needs the ``cli`` extra); the core imports no UI library.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Union

import attrs

__all__ = [
    "FanOutStats",
    "ProgressCallback",
    "ProgressOption",
    "ProgressReporter",
    "check_progress",
    "open_reporter",
]

ProgressCallback = Callable[[int, int, int], object]
"""``on_progress(done, failed, in_flight)``; its return value is ignored."""


@attrs.frozen(slots=True)
class FanOutStats:
    """A snapshot of a fan-out (:attr:`FanOut.stats <crewship_async._fanout.FanOut.stats>`).

    ``done``: outcomes yielded so far, ``failed`` of them errors; ``in_flight``: items
    started and not finished; ``pending``: finished outcomes not yielded yet (held back by
    ``ordered=True`` or waiting for the consumer). ``concurrency``: the current limit,
    ``lowest_concurrency`` the lowest it has been since the start (both equal the
    requested concurrency, capped at the pool size, until a 429 lowers them).
    ``rate_limited``: 429 answers received; ``paused_for``: seconds the shared rate-limit
    pause still lasts (0 when none). ``cut_short``: requests a grace period cancelled.
    ``total``: the number of items when the source has a length, else ``None``.
    """

    done: int = 0
    failed: int = 0
    in_flight: int = 0
    pending: int = 0
    concurrency: int = 0
    lowest_concurrency: int = 0
    rate_limited: int = 0
    paused_for: float = 0.0
    cut_short: int = 0
    total: Optional[int] = None


class ProgressReporter(Protocol):
    """Receives a fan-out's progress: :meth:`update` after each outcome, :meth:`close` once.

    Both are called in the consumer's task, on the event loop: they must not block. What
    they raise propagates from the iteration (``update``) or from ``aclose`` (``close``).
    """

    def update(self, stats: FanOutStats) -> None:
        """Show ``stats``, taken just after an outcome and before it is yielded."""

    def close(self) -> None:
        """The fan-out is closed: nothing more will be reported."""


ProgressOption = Union[bool, ProgressReporter]
"""What ``progress=`` takes: ``False``, ``True`` (the rich bar) or a reporter."""


def check_progress(progress: object) -> None:
    """Refuse a ``progress=`` that is neither a bool nor a :class:`ProgressReporter`.

    ``True`` needs rich: ``ImportError`` naming the ``cli`` extra when it is missing.
    """
    if progress is True:
        from .._progress_bar import require_rich

        require_rich()
    elif not isinstance(progress, bool) and not (
        callable(getattr(progress, "update", None)) and callable(getattr(progress, "close", None))
    ):
        raise TypeError(
            "progress must be a bool or an object with update(stats) and close(), "
            f"got {type(progress).__name__}"
        )


def open_reporter(progress: ProgressOption, total: Optional[int]) -> Optional[ProgressReporter]:
    """The reporter ``progress`` asks for (checked by :func:`check_progress`), or ``None``."""
    if progress is True:
        from .._progress_bar import RichBar

        return RichBar(total)
    if progress is False:
        return None
    return progress
