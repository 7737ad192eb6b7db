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

import datetime as _dt
import enum
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Optional

import attrs

from ._errors import CLIError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Output", "dumps_line", "require_rich", "short", "to_jsonable"]

_MAX_CELL = 60
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


def _json_default(value: Any) -> Any:
    """Convert what ``json`` cannot encode: models, datetimes, enums, mappings, errors."""
    if attrs.has(type(value)):
        return to_jsonable(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


def _serialize(inst: Any, field: Any, value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return dict(value)
    return value


def human_time(value: _dt.datetime) -> str:
    """A datetime for people: ``2024-01-15 10:35:02Z`` (UTC to the second)."""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _serialize_human(inst: Any, field: Any, value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return human_time(value)
    return _serialize(inst, field, value)


def _keep(attribute: Any, value: Any) -> bool:
    # ``RunEvent.raw`` repeats ``data`` as text; leave it out of the output.
    return bool(attribute.name != "raw")


def to_jsonable(value: Any, *, human: bool = False) -> Any:
    """``value`` as plain JSON data: attrs models through :func:`attrs.asdict`.

    Datetimes become ISO 8601 strings (``human``: ``2024-01-15 10:35:02Z``), enums their
    value, other mappings dicts. Plain values (dicts, lists, strings, numbers) come back
    unchanged.
    """
    if attrs.has(type(value)):
        serializer = _serialize_human if human else _serialize
        data = attrs.asdict(value, filter=_keep, value_serializer=serializer)
        return json.loads(json.dumps(data, default=_json_default))
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, human=human) for item in value]
    return json.loads(json.dumps(value, default=_json_default))


def dumps_line(value: Any) -> str:
    """``value`` as one line of compact JSON (no trailing newline)."""
    return json.dumps(
        value if isinstance(value, dict) else to_jsonable(value),
        default=_json_default,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def short(value: Any, limit: int = _MAX_CELL) -> str:
    """``value`` as a one-line string of at most ``limit`` characters (for table cells)."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


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
            from rich.console import Console

            console = Console(file=self.stdout, highlight=False, soft_wrap=False)
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
