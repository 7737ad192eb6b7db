"""The rich progress bar of ``create_many(progress=True)``, behind the ``cli`` extra.

One implementation of the fan-out's
:class:`~crewship_async._fanout.progress.ProgressReporter`. Imported only when a bar is
asked for: the library core imports no UI library.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ._fanout.progress import FanOutStats

__all__ = ["RichBar", "require_rich"]

_REFRESH_INTERVAL = 0.1


def require_rich() -> None:
    """Raise ``ImportError`` naming the ``cli`` extra unless rich can be imported."""
    try:
        import rich.progress  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "progress=True draws its bar with rich, which is not installed; "
            "install it with: pip install 'crewship-async[cli]'",
            name="rich",
        ) from exc


class RichBar:
    """A live progress bar on stderr, refreshed at most every 0.1 s, without a thread."""

    def __init__(self, total: Optional[int]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress: Progress = Progress(
            TextColumn("[bold]runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed, {task.fields[in_flight]} in flight"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task: TaskID = self._progress.add_task("runs", total=total, failed=0, in_flight=0)
        self._last = -math.inf
        self._progress.start()

    def update(self, stats: FanOutStats) -> None:
        """Show ``stats``; the screen is redrawn at most every 0.1 s."""
        self._progress.update(
            self._task, completed=stats.done, failed=stats.failed, in_flight=stats.in_flight
        )
        now = time.monotonic()
        if now - self._last >= _REFRESH_INTERVAL:
            self._last = now
            self._progress.refresh()

    def close(self) -> None:
        """Stop the live display, leaving the last state on the screen."""
        self._progress.stop()
