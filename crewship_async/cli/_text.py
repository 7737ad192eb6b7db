"""Values as text without any UI library: JSON data, JSON lines, one-line table cells.

Shared by :mod:`._output` (what the CLI prints) and :mod:`._render` (the rich tables), so
neither imports the other for them.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["dumps_line", "human_time", "short", "to_jsonable"]

_MAX_CELL = 60


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
