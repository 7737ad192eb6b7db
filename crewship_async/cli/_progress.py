"""Progress of many operations: a live rich bar, periodic plain lines, or nothing.

A rich bar (done, failed, rate, ETA) is drawn only on a terminal; when the stream is not
a terminal (a CI log, a file) plain lines are printed every ``interval`` seconds plus a
final one, and with ``--json`` nothing is printed at all.
"""

from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING, Any, Optional

from ._errors import is_broken_pipe

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["ProgressReporter", "choose_mode"]

MODES = ("rich", "plain", "off")


def choose_mode(*, json_mode: bool, stream: IO[str]) -> str:
    """``off`` with ``--json``, ``rich`` on a terminal (when rich is installed), else ``plain``."""
    if json_mode:
        return "off"
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        try:
            import rich.progress  # noqa: F401
        except ImportError:
            return "plain"
        return "rich"
    return "plain"


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{whole:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressReporter:
    """Counts finished operations and shows how far along they are.

    ``total`` may be ``None`` when unknown (no bar length, no ETA). Use as a context
    manager, or call :meth:`start` and :meth:`stop`. :meth:`advance` records one
    finished operation, failed or not.
    """

    def __init__(
        self,
        label: str,
        total: Optional[int],
        *,
        mode: str,
        stream: IO[str],
        interval: float = 2.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.label = label
        self.total = total
        self.mode = mode
        self.stream = stream
        self.interval = interval
        self.done = 0
        self.failed = 0
        self._started = time.monotonic()
        self._last_line = self._started
        self._progress: Optional[Progress] = None
        self._task: Optional[TaskID] = None

    @property
    def elapsed(self) -> float:
        """Seconds since :meth:`start`."""
        return time.monotonic() - self._started

    @property
    def rate(self) -> float:
        """Finished operations per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def __enter__(self) -> ProgressReporter:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if exc is not None and is_broken_pipe(exc):
            # The reader of stdout went away (`| head`): end quietly, without a last line.
            self.mode = "off"
        self.stop()

    def start(self) -> None:
        """Start the clock (and the live bar in ``rich`` mode)."""
        self._started = self._last_line = time.monotonic()
        if self.mode != "rich":
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            refresh_per_second=8,
        )
        self._task = self._progress.add_task(self.label, total=self.total, failed=0, rate="0.0")
        self._progress.start()

    def skip(self, count: int) -> None:
        """Count ``count`` operations that were already done before (``--resume``)."""
        if self.total is not None:
            self.total = max(self.total - count, 0)
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, total=self.total)

    def advance(self, ok: bool = True) -> None:
        """Record one finished operation."""
        self.done += 1
        if not ok:
            self.failed += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, advance=1, failed=self.failed, rate=f"{self.rate:.1f}"
            )
        elif self.mode == "plain":
            now = time.monotonic()
            if now - self._last_line >= self.interval:
                self._last_line = now
                self._write_line()

    def stop(self) -> None:
        """Stop the live bar, or print the final plain line. Idempotent."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self.mode == "plain":
            self._write_line()
            self.mode = "off"

    def note(self, text: str) -> None:
        """Print ``text`` as a line of its own on the stream, above a live bar if one is
        drawn (so the bar is not torn), in every mode, ``off`` included."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def status(self) -> str:
        """A one-line summary: done, failed, rate and (when the total is known) ETA."""
        done = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        text = f"{self.label}: {done} done, {self.failed} failed, {self.rate:.1f}/s"
        if self.total is not None and self.done < self.total and self.rate > 0:
            text += f", ETA {_duration((self.total - self.done) / self.rate)}"
        return text

    def _write_line(self) -> None:
        self.stream.write(self.status() + "\n")
        self.stream.flush()
