"""Rich renderings for human output. Imported only when ``rich`` is available."""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._text import short

__all__ = ["PipeConsole", "render_record", "render_table"]

_INLINE = 80


class PipeConsole(Console):
    """A rich console whose closed output raises ``BrokenPipeError``.

    rich's own answer to a closed pipe is ``SystemExit(1)``, which would end ``| head`` with
    status 1; raised as ``BrokenPipeError`` it reaches the CLI's handler, which ends quietly
    with 141 as after SIGPIPE.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


def _cell(value: Any) -> str:
    """A record's value: one line when short, else indented JSON (long text folded)."""
    text = short(value, 10_000)
    if isinstance(value, (dict, list)) and len(text) > _INLINE:
        return json.dumps(value, indent=2, ensure_ascii=False)
    return text


def render_record(console: Console, data: Any, *, title: Optional[str] = None) -> None:
    """One object as aligned ``field  value`` lines; empty ``extra`` is left out."""
    if not isinstance(data, Mapping):
        console.print(Text(short(data, 10_000)))
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in data.items():
        if key == "extra" and not value:
            continue
        grid.add_row(Text(str(key)), Text(_cell(value)))
    if title:
        console.print(Text(title, style="bold cyan"))
    console.print(grid)


def render_table(
    console: Console,
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str],
    title: Optional[str] = None,
) -> None:
    """Rows as a table with one column per key in ``columns``."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(short(row.get(column))) for column in columns))
    console.print(table)
