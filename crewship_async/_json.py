"""JSON encoding and decoding: orjson when installed (the ``orjson`` extra), else stdlib.

``dumps`` returns UTF-8 bytes ready to send and raises ``TypeError`` for a value JSON
cannot hold (including NaN and infinities); ``loads`` accepts bytes or str and raises one
of ``JSONDecodeError`` (a tuple of ``ValueError`` subclasses) on bad input. Both
implementations behave alike; the stdlib one is also the reference in the tests.
"""

from __future__ import annotations

import importlib
import json
import math
from typing import Any, Callable

__all__ = ["JSONDecodeError", "dumps", "loads"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
STDLIB_DECODE_ERRORS: tuple[type[ValueError], ...] = (json.JSONDecodeError, UnicodeDecodeError)


def stdlib_dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON with the stdlib encoder."""
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except ValueError as exc:
        raise TypeError(str(exc)) from exc


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def make_orjson_dumps(orjson: Any) -> Callable[[Any], bytes]:
    """``dumps`` on top of the ``orjson`` module given."""
    encode = orjson.dumps
    encode_error = orjson.JSONEncodeError

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON with orjson."""
        try:
            encoded: bytes = encode(value)
        except encode_error as exc:
            raise TypeError(str(exc)) from exc
        # orjson writes NaN and infinities as null; JSON has no such values, so refuse them
        # as the stdlib encoder does. Only a body holding a null needs the walk.
        if b"null" in encoded and _has_non_finite(value):
            raise TypeError("Out of range float values are not JSON compliant: NaN or infinity")
        return encoded

    return dumps


def _import_orjson() -> Any:
    try:
        return importlib.import_module("orjson")
    except ImportError:
        return None


_orjson = _import_orjson()

JSONDecodeError: tuple[type[ValueError], ...]
loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]

if _orjson is not None:
    JSONDecodeError = (_orjson.JSONDecodeError, *STDLIB_DECODE_ERRORS)
    loads = _orjson.loads
    dumps = make_orjson_dumps(_orjson)
else:  # pragma: no cover - the test environment installs orjson; stdlib_* is tested directly
    JSONDecodeError = STDLIB_DECODE_ERRORS
    loads = json.loads
    dumps = stdlib_dumps
