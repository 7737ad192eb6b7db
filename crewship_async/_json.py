"""JSON encoding and decoding: orjson when installed (the ``orjson`` extra), else stdlib.

``dumps`` returns UTF-8 bytes ready to send; ``loads`` accepts bytes or str. Both raise
``ValueError`` subclasses on bad input (``TypeError`` for values JSON cannot hold).
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

__all__ = ["JSONDecodeError", "dumps", "loads"]

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised when the extra is not installed
    _orjson = None

JSONDecodeError: tuple[type[ValueError], ...]
loads: Callable[[bytes | str], Any]

if _orjson is not None:
    JSONDecodeError = (_orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError)
    loads = _orjson.loads

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON (non-str keys and NaN are refused)."""
        try:
            encoded: bytes = _orjson.dumps(value)
        except _orjson.JSONEncodeError as exc:
            raise TypeError(str(exc)) from exc
        # orjson writes NaN and infinities as null; JSON has no such values, so refuse them
        # as the stdlib encoder does. Only a body holding a null needs the walk.
        if b"null" in encoded and _has_non_finite(value):
            raise TypeError("Out of range float values are not JSON compliant: NaN or infinity")
        return encoded

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

else:  # pragma: no cover - exercised when the extra is not installed
    JSONDecodeError = (json.JSONDecodeError, UnicodeDecodeError)
    loads = json.loads
    _encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON (non-str keys and NaN are refused)."""
        try:
            return _encoder.encode(value).encode("utf-8")
        except ValueError as exc:
            raise TypeError(str(exc)) from exc
