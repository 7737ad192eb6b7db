"""What the CLI prints: JSON lines for machines, rich tables and short lines for people.

With ``--json`` every result is one JSON object on one line of stdout (a list prints one
line per item), written and flushed as soon as it is known. Models are converted with
:func:`attrs.asdict`; datetimes become ISO 8601 strings and enums their value.

Without ``--json`` lists become tables and single objects a field/value listing, drawn by
``rich`` (the ``cli`` extra). ``rich`` is imported lazily and only in human mode, so the
SDK and ``--json`` work without it; when it is missing :func:`require_rich` says how to
install it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Optional

from ._errors import CLIError
from ._text import dumps_line, to_jsonable

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Output", "require_rich"]

_PIPE_WIDTH = 160


def require_rich() -> None:
    """Import ``rich`` or raise :class:`CLIError` saying how to get it."""
    try:
        import rich  # noqa: F401
    except ImportError:
        raise CLIError(
            "human-readable output needs the 'rich' package: "
            "pip install 'crewship-async[cli]' (or pass --json)"
        ) from None


class Output:
    """Where a command's results go; one per invocation.

    ``json_mode`` selects JSON lines; in human mode ``rich`` must be installed unless
    ``need_rich`` is false. ``stdout``/``stderr`` default to the current
    ``sys.stdout``/``sys.stderr`` at the time of each write (so captured streams work).
    """

    def __init__(
        self,
        *,
        json_mode: bool,
        need_rich: bool = True,
        stdout: Optional[IO[str]] = None,
        stderr: Optional[IO[str]] = None,
    ) -> None:
        self.json_mode = json_mode
        self._stdout = stdout
        self._stderr = stderr
        self._console: Optional[Console] = None
        if not json_mode and need_rich:
            require_rich()

    @property
    def stdout(self) -> IO[str]:
        """The stream results are written to."""
        return self._stdout if self._stdout is not None else sys.stdout

    @property
    def stderr(self) -> IO[str]:
        """The stream for progress and diagnostics."""
        return self._stderr if self._stderr is not None else sys.stderr

    @property
    def console(self) -> Console:
        """A rich console on :attr:`stdout` (human mode only)."""
        if self._console is None:
            from ._render import PipeConsole

            console = PipeConsole(file=self.stdout, highlight=False, soft_wrap=False)
            if not console.is_terminal and "COLUMNS" not in os.environ:
                # A log or a pipe: do not squeeze tables into 80 columns.
                console.width = _PIPE_WIDTH
            self._console = console
        return self._console

    # -- primitives -----------------------------------------------------------------------

    def write_json(self, value: Any) -> None:
        """Write ``value`` as one JSON line and flush."""
        self.stdout.write(dumps_line(value) + "\n")
        self.stdout.flush()

    def line(self, text: str) -> None:
        """A line for people (printed in human mode only) and flushed."""
        if not self.json_mode:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def note(self, text: str) -> None:
        """A diagnostic line on stderr (both modes) and flushed."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    # -- results --------------------------------------------------------------------------

    def record(self, value: Any, *, title: Optional[str] = None) -> None:
        """One object: a JSON line, or a field/value listing under ``title``."""
        if self.json_mode:
            self.write_json(value)
            return
        from ._render import render_record

        render_record(self.console, to_jsonable(value, human=True), title=title)

    def table(
        self,
        values: Sequence[Any],
        *,
        columns: Optional[Sequence[str]] = None,
        title: Optional[str] = None,
        empty: str = "nothing found",
    ) -> None:
        """Many objects: one JSON line each, or a table with ``columns`` (default: all)."""
        if self.json_mode:
            for value in values:
                self.write_json(value)
            return
        if not values:
            self.line(empty)
            return
        from ._render import render_table

        rows = [to_jsonable(value, human=True) for value in values]
        render_table(self.console, rows, columns=columns or _all_keys(rows), title=title)


def _all_keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key == "extra" and not value:
                continue
            keys.setdefault(key, None)
    return list(keys)
