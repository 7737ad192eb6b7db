"""Argument types shared by the commands: JSON objects, numbers, column specs, files."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

from ..models.tables import COLUMN_TYPES, ColumnTypeName
from ._errors import InputFileError, UsageError

__all__ = [
    "json_object",
    "open_input",
    "parse_columns",
    "positive_float",
    "positive_int",
]


def _load_json(text: str, what: str) -> Any:
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            # Not an ArgumentTypeError: argparse would make it a usage error (exit 2),
            # and a file that cannot be read is an I/O error (exit 1).
            raise InputFileError(f"cannot read {what} from {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{what} is not valid JSON ({exc}): {text!r}") from None


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object given inline, or ``@path`` to read it from a file.

    Bad JSON is a usage error (exit 2); a file that cannot be read raises
    :class:`InputFileError` (exit 1), which :func:`~crewship_async.cli.main` reports."""
    value = _load_json(text, "value")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'expected a JSON object like \'{{"topic": "AI"}}\', got {type(value).__name__}'
        )
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


_REQUIRED_FLAGS = {"required": True, "optional": False}


def _column_type(kind: object, where: str) -> ColumnTypeName:
    """``kind`` if it is a known column type, else :class:`UsageError` saying ``where``."""
    if isinstance(kind, str) and kind in COLUMN_TYPES:
        return cast(ColumnTypeName, kind)
    raise UsageError(f"{where}: unknown column type {kind!r} (known: {', '.join(COLUMN_TYPES)})")


def parse_columns(text: str) -> list[Any]:
    """Column definitions from ``name:type[:required],...`` or a JSON array of objects.

    ``type`` defaults to ``text`` and must be one of the known column types (``text``,
    ``number``, ``boolean``, ``json``, ``datetime``). A JSON array holds objects with
    ``name``, ``type`` and optionally ``required``. Returns
    :class:`~crewship_async.Column` objects; raises :class:`UsageError` naming the bad part.
    """
    from crewship_async import Column

    text = text.strip()
    columns: list[Any] = []
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--columns is not valid JSON: {exc}") from None
        for position, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise UsageError(f"--columns[{position}] must be an object with a 'name'")
            required = item.get("required", False)
            if not isinstance(required, bool):
                raise UsageError(f"--columns[{position}].required must be true or false")
            kind = _column_type(item.get("type", "text"), f"--columns[{position}]")
            columns.append(Column(item["name"], kind, required=required))
        return columns
    for part in text.split(","):
        pieces = [piece.strip() for piece in part.split(":")]
        if not pieces[0] or len(pieces) > 3:
            raise UsageError(
                f"bad column {part.strip()!r}: expected name[:type[:required]], "
                "e.g. 'company:text:required,score:number'"
            )
        kind = _column_type(
            pieces[1] if len(pieces) > 1 and pieces[1] else "text", f"bad column {part.strip()!r}"
        )
        flag = pieces[2].lower() if len(pieces) > 2 else "optional"
        if flag not in _REQUIRED_FLAGS:
            raise UsageError(f"bad column {part.strip()!r}: the third part must be 'required'")
        columns.append(Column(pieces[0], kind, required=_REQUIRED_FLAGS[flag]))
    return columns


@contextmanager
def open_input(path: str) -> Iterator[IO[str]]:
    """``path`` opened for reading text (``-``: stdin, left open); :class:`InputFileError`
    (exit 1, like every I/O error) if it cannot be opened."""
    if path == "-":
        yield sys.stdin
        return
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        yield handle


def port_number(text: str) -> int:
    """A TCP port 0-65535 (0: the system picks one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return value
