"""JSON encoding and decoding: orjson when installed (the ``orjson`` extra), else stdlib.

``dumps`` returns UTF-8 bytes ready to send and raises ``TypeError`` for a value JSON
cannot hold (including NaN and infinities); ``loads`` accepts bytes (UTF-8) or str and
raises one of ``JSONDecodeError`` on any input it cannot take: invalid JSON or UTF-8,
``NaN``/``Infinity``, a number past Python's digit limit (``ValueError``), nesting deeper
than the decoder allows (``RecursionError`` from the stdlib decoder; orjson stops at 1,024
levels). Both implementations behave alike, except that the stdlib decoder accepts lone
surrogate escapes (``"\\ud800"``) that orjson refuses; the stdlib one is also the reference
in the tests.
"""

from __future__ import annotations

import importlib
import json
import math
from typing import Any, Callable

__all__ = ["JSONDecodeError", "dumps", "loads"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
#: What either decoder raises for input it cannot take (JSONDecodeError, UnicodeDecodeError
#: and the digit limit's error are ValueErrors).
STDLIB_DECODE_ERRORS: tuple[type[Exception], ...] = (ValueError, RecursionError)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_stdlib_decoder = json.JSONDecoder(parse_constant=_refuse_constant)
_stdlib_decode = _stdlib_decoder.decode
_stdlib_scan = _stdlib_decoder.scan_once  # type: ignore[attr-defined]  # set in __init__


def stdlib_loads(data: bytes | str) -> Any:
    """Decode JSON text (bytes must be UTF-8) with the stdlib decoder, refusing NaN and
    the infinities as orjson does."""
    text = data if isinstance(data, str) else data.decode("utf-8")
    # JSONDecoder.decode skips whitespace around one scan_once(text, 0) call; text that
    # starts with a value and ends right after it (nearly all of it) needs only that call.
    # Anything else (whitespace, trailing data, no value) goes through decode for its
    # exact result or error; an error raised by the scan itself is the one decode raises.
    try:
        value, end = _stdlib_scan(text, 0)
    except StopIteration:
        return _stdlib_decode(text)
    if end != len(text):
        return _stdlib_decode(text)
    return value


def stdlib_dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON with the stdlib encoder, refusing what orjson
    refuses (non-string keys, integers outside 64 bits, NaN and infinities), so a body
    that one back-end sends the other sends too."""
    _check_like_orjson(value)
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except ValueError as exc:
        raise TypeError(str(exc)) from exc


def _check_like_orjson(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    raise TypeError(f"Dict key must be str, got {type(key).__name__}")
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise TypeError(_NON_FINITE)
        elif isinstance(item, int) and not -(2**63) <= item < 2**64:
            raise TypeError("Integer exceeds 64-bit range")


_NON_FINITE = "Out of range float values are not JSON compliant: NaN or infinity"


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
            raise TypeError(_NON_FINITE)
        return encoded

    return dumps


def _import_orjson() -> Any:
    try:
        return importlib.import_module("orjson")
    except ImportError:
        return None


_orjson = _import_orjson()

JSONDecodeError: tuple[type[Exception], ...] = STDLIB_DECODE_ERRORS
loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]

if _orjson is not None:
    loads = _orjson.loads
    dumps = make_orjson_dumps(_orjson)
else:  # pragma: no cover - CI runs the suite without orjson too, outside coverage
    loads = stdlib_loads
    dumps = stdlib_dumps
