"""The checks of a seconds or count argument, written once for every public entry point.

Every ``timeout=``, ``poll_interval=``, ``busy_timeout=``, ``grace=``, ``concurrency=``,
``limit=``, ``max_items=`` ... goes through one of these functions, so each argument kind
is refused for the same reasons with the same words wherever it is taken:

* a value of the wrong type, ``bool`` included (``True`` is an ``int`` to Python, not a
  number of seconds), raises :class:`ArgumentTypeError`: a ``TypeError``;
* a value of the right type outside its range (negative, zero where zero means nothing,
  ``nan``, ``inf``) raises ``ValueError``.

:class:`ArgumentTypeError` is also a ``ValueError``: several entry points raised
``ValueError`` for every bad value before their checks were unified, and code catching
that keeps working.
"""

from __future__ import annotations

import math
from typing import Optional

__all__ = [
    "ArgumentTypeError",
    "check_count",
    "check_non_negative_seconds",
    "check_optional_count",
    "check_optional_seconds",
    "check_seconds",
]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError``, and a ``ValueError`` for the
    callers written before the checks were unified)."""


def _number(name: str, value: object, *, optional: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        expected = "a number of seconds or None" if optional else "a number of seconds"
        raise ArgumentTypeError(f"{name} must be {expected}, got {type(value).__name__}")
    return float(value)


def check_seconds(name: str, value: object, *, optional: bool = False) -> float:
    """``value`` as a float if it is a finite number of seconds > 0.

    Raises :class:`ArgumentTypeError` for a non-number (``bool`` included) and
    ``ValueError`` for zero, a negative number, ``nan`` or ``inf``, naming ``name``.
    ``optional`` only changes the wording (the caller handles ``None``).
    """
    seconds = _number(name, value, optional=optional)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return seconds


def check_optional_seconds(name: str, value: object) -> Optional[float]:
    """``None``, or ``value`` checked by :func:`check_seconds`."""
    if value is None:
        return None
    return check_seconds(name, value, optional=True)


def check_non_negative_seconds(name: str, value: object) -> float:
    """``value`` as a float if it is a finite number of seconds >= 0 (0 is allowed).

    Raises :class:`ArgumentTypeError` for a non-number (``bool`` included) and
    ``ValueError`` for a negative number, ``nan`` or ``inf``.
    """
    seconds = _number(name, value, optional=False)
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` if it is an ``int`` >= ``minimum``.

    Raises :class:`ArgumentTypeError` for anything but an ``int`` (``bool`` included) and
    ``ValueError`` for a smaller one.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def check_optional_count(name: str, value: object, *, minimum: int = 1) -> Optional[int]:
    """``None``, or ``value`` checked by :func:`check_count`."""
    if value is None:
        return None
    return check_count(name, value, minimum=minimum)
