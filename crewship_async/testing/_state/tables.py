"""Tables and their rows: the records and the rules that change them.

Column definitions and row values are checked by :mod:`.columns`. A table keeps its rows
in insert order; a batch insert is all-or-nothing and holds at most ``max_rows_per_insert``
rows.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Optional

import attrs

from .._common import ApiError, IdFactory, isoformat, utcnow
from .columns import Column, parse_columns, validate_row

__all__ = ["ROW_AUTHOR", "RowRecord", "TableRecord", "Tables"]

#: Who a row write is attributed to (the API shows ``api:<key name>``).
ROW_AUTHOR = "api:Emulator Key"


@attrs.define(eq=False)
class RowRecord:
    """One stored row: its id, values and write metadata."""

    id: str
    values: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_json(self, columns: Sequence[Column]) -> dict[str, Any]:
        """The row with every current column at top level (``null`` when unset)."""
        body: dict[str, Any] = {"id": self.id}
        for column in columns:
            body[column.name] = copy.deepcopy(self.values.get(column.name))
        body["_meta"] = {
            "created_at": isoformat(self.created_at),
            "created_by": ROW_AUTHOR,
            "updated_at": isoformat(self.updated_at),
            "updated_by": ROW_AUTHOR,
        }
        return body


@attrs.define(eq=False)
class TableRecord:
    """A table and its rows (a dict keeps them in insert order)."""

    id: str
    seq: int
    name: str
    description: Optional[str]
    columns: list[Column]
    created_at: datetime
    updated_at: datetime
    rows: dict[str, RowRecord] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "columns": [column.to_json() for column in self.columns],
            "row_count": len(self.rows),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


def _checked_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "name must be a non-empty string")
    return value


def _checked_description(value: Any) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "description must be a string or null")
    return value


class Tables:
    """Every table by id, in creation order, with its rows."""

    def __init__(
        self, *, ids: IdFactory, sequence: Iterator[int], max_rows_per_insert: int = 100
    ) -> None:
        self._ids = ids
        self._sequence = sequence
        self.max_rows_per_insert = max_rows_per_insert
        self.by_id: dict[str, TableRecord] = {}

    def get(self, table_id: str) -> TableRecord:
        """The table ``table_id``; 404 if there is none."""
        table = self.by_id.get(table_id)
        if table is None:
            raise ApiError(404, f"Table not found: {table_id}")
        return table

    def create(self, body: Mapping[str, Any]) -> TableRecord:
        """A new, empty table from ``{"name", "description"?, "columns"?}`` (400 if invalid)."""
        name = body.get("name")
        if name is None:
            raise ApiError(400, "name is required")
        name = _checked_name(name)
        description = _checked_description(body.get("description"))
        columns = parse_columns(body.get("columns", []))
        now = utcnow()
        table = TableRecord(
            id=self._ids.new("tbl"),
            seq=next(self._sequence),
            name=name,
            description=description,
            columns=columns,
            created_at=now,
            updated_at=now,
        )
        self.by_id[table.id] = table
        return table

    def update(self, table_id: str, body: Mapping[str, Any]) -> TableRecord:
        """PATCH: only the fields present change; ``columns`` replaces the whole list."""
        table = self.get(table_id)
        name = _checked_name(body["name"]) if "name" in body else table.name
        description = (
            _checked_description(body["description"])
            if "description" in body
            else table.description
        )
        columns = parse_columns(body["columns"]) if "columns" in body else table.columns
        table.name, table.description, table.columns = name, description, columns
        table.updated_at = utcnow()
        return table

    def delete(self, table_id: str) -> None:
        """Forget the table and its rows; 404 if there is none."""
        self.get(table_id)
        del self.by_id[table_id]

    def insert_rows(self, table_id: str, body: Any) -> list[RowRecord]:
        """Validate every row first, then store them all (a batch is all-or-nothing)."""
        table = self.get(table_id)
        if isinstance(body, list):
            if not body:
                raise ApiError(400, "at least one row is required")
            if len(body) > self.max_rows_per_insert:
                raise ApiError(400, f"at most {self.max_rows_per_insert} rows per insert")
            checked = [
                validate_row(row, table.columns, position=index) for index, row in enumerate(body)
            ]
        else:
            checked = [validate_row(body, table.columns)]
        now = utcnow()
        rows = [
            RowRecord(
                id=self._ids.new("row"),
                values=copy.deepcopy(values),
                created_at=now,
                updated_at=now,
            )
            for values in checked
        ]
        for row in rows:
            table.rows[row.id] = row
        table.updated_at = now
        return rows

    @staticmethod
    def get_row(table: TableRecord, row_id: str) -> RowRecord:
        """The row ``row_id`` of ``table``; 404 if there is none."""
        row = table.rows.get(row_id)
        if row is None:
            raise ApiError(404, f"Row not found: {row_id}")
        return row

    def update_row(self, table_id: str, row_id: str, body: Any) -> RowRecord:
        """Change the columns ``body`` names (checked against the table's columns)."""
        table = self.get(table_id)
        row = self.get_row(table, row_id)
        changes = validate_row(body, table.columns, partial=True)
        row.values.update(copy.deepcopy(changes))
        row.updated_at = utcnow()
        return row

    def delete_row(self, table_id: str, row_id: str) -> None:
        """Remove one row; 404 for an unknown table or row."""
        table = self.get(table_id)
        self.get_row(table, row_id)
        del table.rows[row_id]
        table.updated_at = utcnow()
