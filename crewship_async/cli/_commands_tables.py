"""``tables list|create|get|update|delete|insert|rows``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from .. import AsyncCrewship
from ..errors import PartialInsertError
from ._args import open_input, parse_columns, positive_int
from ._errors import CLIError, UsageError
from ._output import Output
from ._text import to_jsonable

__all__ = ["read_rows", "register"]

_TABLE_COLUMNS = ("id", "name", "row_count", "columns", "description")
_COLUMNS_HELP = "'name:type[:required],...' (e.g. 'company:text:required,score:number') or JSON"


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``tables`` command group."""
    group = commands.add_parser(
        "tables",
        help="structured data tables and their rows",
        description="Create, change and delete tables; insert and list their rows.",
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[parent], help="list tables")
    listing.set_defaults(handler=list_tables)

    create = actions.add_parser("create", parents=[parent], help="create a table")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--columns", type=_columns, required=True, metavar="SPEC", help=_COLUMNS_HELP
    )
    create.add_argument("--description")
    create.set_defaults(handler=create_table)

    get = actions.add_parser("get", parents=[parent], help="show a table and its columns")
    get.add_argument("table_id", metavar="TABLE_ID")
    get.set_defaults(handler=get_table)

    update = actions.add_parser(
        "update",
        parents=[parent],
        help="rename a table, change its description or replace its columns",
    )
    update.add_argument("table_id", metavar="TABLE_ID")
    update.add_argument("--name")
    described = update.add_mutually_exclusive_group()
    described.add_argument("--description")
    described.add_argument(
        "--clear-description", action="store_true", help="remove the description"
    )
    update.add_argument(
        "--columns",
        type=_columns,
        metavar="SPEC",
        help="the new full column list (replaces every column): " + _COLUMNS_HELP,
    )
    update.set_defaults(handler=update_table)

    delete = actions.add_parser("delete", parents=[parent], help="delete a table and its rows")
    delete.add_argument("table_id", metavar="TABLE_ID")
    delete.set_defaults(handler=delete_table)

    insert = actions.add_parser(
        "insert",
        parents=[parent],
        help="insert rows from a JSON lines file",
        description=(
            "Insert the rows of FILE (one JSON object per line, or one JSON array; "
            "'-' reads stdin) into TABLE_ID, 100 per request. Every row is checked "
            "before anything is sent."
        ),
    )
    insert.add_argument("table_id", metavar="TABLE_ID")
    insert.add_argument("file", metavar="FILE")
    insert.set_defaults(handler=insert_rows)

    rows = actions.add_parser("rows", parents=[parent], help="list a table's rows")
    rows.add_argument("table_id", metavar="TABLE_ID")
    rows.add_argument("--limit", type=positive_int, default=20, help="show at most this many (20)")
    rows.set_defaults(handler=list_rows)


def _columns(text: str) -> list[Any]:
    try:
        return parse_columns(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- output helpers ------------------------------------------------------------------------


def _column_spec(column: Mapping[str, Any]) -> str:
    text = f"{column.get('name')}:{column.get('type')}"
    return text + ":required" if column.get("required") else text


def _table_summary(table: Any) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(table, human=True)
    columns = data.get("columns") or []
    data["columns"] = ", ".join(_column_spec(c) for c in columns if isinstance(c, Mapping))
    return data


def _print_table(out: Output, table: Any) -> None:
    if out.json_mode:
        out.write_json(table)
    else:
        out.record(_table_summary(table), title=f"table {table.id}")


def row_cells(row: Any) -> dict[str, Any]:
    """A row flattened for display: ``id`` first, then the column values."""
    data = to_jsonable(row, human=True)
    if not isinstance(data, dict):
        return {"value": data}
    cells: dict[str, Any] = {"id": data.get("id")}
    for key in ("values", "data"):
        nested = data.get(key)
        if isinstance(nested, dict):
            cells.update(nested)
    for key, value in data.items():
        if key in ("id", "values", "data", "_meta", "meta") or (key == "extra" and not value):
            continue
        if key == "extra" and isinstance(value, dict):
            cells.update({k: v for k, v in value.items() if k != "_meta"})
            continue
        cells.setdefault(key, value)
    return cells


def ranges(numbers: Iterable[int]) -> str:
    """``[1, 2, 3, 6]`` -> ``"1-3, 6"``."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def read_rows(handle: IO[str], name: str) -> tuple[list[dict[str, Any]], list[int], str]:
    """The rows of a JSON lines file, or of one JSON array.

    Returns the rows, where each one was (line numbers, or item numbers for an array)
    and the word for those positions (``"line"``/``"item"``). Blank lines are skipped.
    Raises :class:`UsageError` naming the first malformed row.
    """
    text = handle.read()
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{name}: not valid JSON: {exc}") from None
        for position, row in enumerate(items, start=1):
            if not isinstance(row, dict):
                raise UsageError(f"{name}: item {position} is not a JSON object")
        return list(items), list(range(1, len(items) + 1)), "item"
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{name} line {number}: not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise UsageError(f"{name} line {number}: not a JSON object")
        rows.append(row)
        numbers.append(number)
    return rows, numbers, "line"


# -- handlers ------------------------------------------------------------------------------


async def list_tables(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``tables list``."""
    tables = [table async for table in client.tables.list()]
    if out.json_mode:
        out.table(tables)
    else:
        out.table([_table_summary(t) for t in tables], columns=_TABLE_COLUMNS, empty="no tables")
    return 0


async def create_table(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``tables create``."""
    table = await client.tables.create(
        args.name, columns=args.columns, description=args.description
    )
    _print_table(out, table)
    return 0


async def get_table(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``tables get``."""
    _print_table(out, await client.tables.get(args.table_id))
    return 0


async def update_table(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``tables update``: only the options given are sent (``--clear-description``: null)."""
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.clear_description:
        changes["description"] = None
    elif args.description is not None:
        changes["description"] = args.description
    if args.columns is not None:
        changes["columns"] = args.columns
    if not changes:
        raise UsageError(
            "nothing to change: give --name, --description, --clear-description or --columns"
        )
    _print_table(out, await client.tables.update(args.table_id, **changes))
    return 0


async def delete_table(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``tables delete``."""
    await client.tables.delete(args.table_id)
    if out.json_mode:
        out.write_json({"table_id": args.table_id, "deleted": True})
    else:
        out.line(f"deleted {args.table_id}")
    return 0


async def insert_rows(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``tables insert``: every row is read and checked, then sent in batches of 100."""
    name = "stdin" if args.file == "-" else args.file
    with open_input(args.file) as handle:
        rows, numbers, unit = read_rows(handle, name)
    if not rows:
        raise UsageError(f"{name}: no rows to insert")
    try:
        inserted: Sequence[Any] = await client.tables.rows.insert(args.table_id, rows)
    except PartialInsertError as exc:
        cause = exc.cause or exc.__cause__ or exc
        failed = ranges(numbers[i] for i in exc.failed_indices)
        raise CLIError(
            f"{len(exc.inserted)} of {len(rows)} rows stored in {args.table_id}; not stored: "
            f"{name} {unit}s {failed} (insert just those to finish without duplicates). "
            f"Cause: {cause}"
        ) from exc
    if out.json_mode:
        for row in inserted:
            out.write_json(row)
    else:
        out.line(f"inserted {len(inserted)} rows into {args.table_id}")
    return 0


async def list_rows(client: AsyncCrewship, args: argparse.Namespace, out: Output) -> int:
    """``tables rows``: the table's rows (at most ``--limit``)."""
    rows = []
    async for row in client.tables.rows.list(args.table_id, limit=min(args.limit, 100)):
        rows.append(row)
        if len(rows) >= args.limit:
            break
    if out.json_mode:
        out.table(rows)
    else:
        out.table([row_cells(r) for r in rows], empty="no rows")
    return 0
