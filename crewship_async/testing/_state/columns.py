"""Column definitions and row validation for the emulated Tables API.

Column types: ``text`` (a string), ``number`` (an int or float, not a bool), ``boolean``,
``json`` (any JSON value) and ``datetime`` (an ISO 8601 string). ``null`` is accepted for
any column that is not required. Every check raises :class:`ApiError` (400) naming the
column at fault, and the row's position when a batch is being checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Callable, Optional

import attrs

from .._common import ApiError

__all__ = ["COLUMN_TYPES", "Column", "parse_columns", "validate_row"]

#: Reserved keys of a stored row; they cannot be column names.
RESERVED_NAMES = frozenset({"id", "_meta"})


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


COLUMN_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "text": lambda value: isinstance(value, str),
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "boolean": lambda value: isinstance(value, bool),
    "json": lambda value: True,
    "datetime": _is_datetime,
}


@attrs.frozen
class Column:
    """One column of a table: ``name``, ``type`` (see :data:`COLUMN_TYPES`), ``required``."""

    name: str
    type: str
    required: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required}


def parse_columns(raw: Any) -> list[Column]:
    """Validate a ``columns`` request field and return the columns.

    Rejects a non-list, a non-object entry, a missing or empty name, a reserved name
    (``id``, ``_meta``), a duplicate name, an unknown type and a non-boolean ``required``.
    """
    if not isinstance(raw, list):
        raise ApiError(400, "columns must be an array")
    columns: list[Column] = []
    seen: set[str] = set()
    for position, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ApiError(400, f"columns[{position}] must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, f"columns[{position}]: column name is required")
        if name in RESERVED_NAMES:
            raise ApiError(400, f"Column name is reserved: {name}")
        if name in seen:
            raise ApiError(400, f"Duplicate column name: {name}")
        kind = entry.get("type", "text")
        if kind not in COLUMN_TYPES:
            allowed = ", ".join(COLUMN_TYPES)
            raise ApiError(400, f"Unknown type for column {name}: {kind!r} (allowed: {allowed})")
        required = entry.get("required", False)
        if not isinstance(required, bool):
            raise ApiError(400, f"required of column {name} must be a boolean")
        seen.add(name)
        columns.append(Column(name=name, type=kind, required=required))
    return columns


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate_row(
    row: Any,
    columns: Sequence[Column],
    *,
    partial: bool = False,
    position: Optional[int] = None,
) -> dict[str, Any]:
    """Check one row against ``columns`` and return its values as a new dict.

    ``partial`` is for updates: only the given keys are checked, and a required column may
    be left out but not set to ``null``. ``position`` (a batch index) prefixes messages.
    """
    where = "" if position is None else f"rows[{position}]: "
    if not isinstance(row, dict):
        raise ApiError(400, f"{where}a row must be a JSON object")
    by_name = {column.name: column for column in columns}
    for key in row:
        if key not in by_name:
            raise ApiError(400, f"{where}unknown column: {key}", column=key)
    for column in columns:
        present = column.name in row
        value = row.get(column.name)
        if value is None:
            if column.required and (present or not partial):
                raise ApiError(
                    400, f"{where}missing required column: {column.name}", column=column.name
                )
            continue
        if not COLUMN_TYPES[column.type](value):
            raise ApiError(
                400,
                f"{where}column {column.name} expects {column.type}, got {_type_name(value)}",
                column=column.name,
            )
    return dict(row)
