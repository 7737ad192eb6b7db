"""Closed sets of words an argument may take: their ``Literal`` types and run-time checks.

Each ``Literal`` alias of the models (``EnvironmentName``, ``RunStatusName``, ...) lists
the values of an enum. :func:`literal_values` returns those values and raises at import
time when the two differ, so the static type and the enum cannot drift apart.
:func:`check_choice` is the run-time check of arguments that take one of these words.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, get_args

__all__ = ["check_choice", "describe_choices", "literal_values"]


def literal_values(literal: Any, members: type[enum.Enum]) -> tuple[str, ...]:
    """The values of the ``Literal`` type ``literal``, checked against the enum ``members``.

    Raises ``TypeError`` unless they are the enum's values, in the enum's order.
    """
    values = get_args(literal)
    expected = tuple(member.value for member in members)
    if values != expected:
        raise TypeError(
            f"the Literal values {values!r} differ from those of {members.__name__}: {expected!r}"
        )
    return values


def describe_choices(choices: Sequence[str]) -> str:
    """``'a' or 'b'`` for two choices, ``one of 'a', 'b', 'c'`` for more."""
    quoted = [repr(choice) for choice in choices]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` as a plain string if it is one of ``choices`` (a member of a ``str`` enum
    counts as its value), else ``ValueError`` naming ``name`` and the choices."""
    if isinstance(value, str) and value in choices:
        return str.__str__(value)
    raise ValueError(f"{name} must be {describe_choices(choices)}, got {value!r}")
