"""The one cattrs converter and its rules for the values inside models.

The hooks registered here decide what a JSON value of each field type becomes:

* ISO-8601 strings become timezone-aware datetimes (a naive one is taken as UTC);
* ``str``, ``int`` and ``bool`` are strict (no ``True`` for an int, no number for a str);
* mappings must be JSON objects; ``Any``/``object`` take any value;
* ``Optional[X]`` keeps None and gives anything else to ``X``'s hook;
* ``Union[SomeStrEnum, str]`` gives the enum member for a known value and the plain
  string for an unknown one.

Model classes get their hooks from :mod:`._model_hooks`; a model the generated hook
cannot express registers its own function with :func:`register_model_function`. Every
mismatch raises ``TypeError`` (or ``ValueError``); :mod:`._convert` turns it into a
:class:`~crewship_async.errors.ResponseError` naming the field.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Callable, Optional, Union, get_args, get_origin

import attrs
import cattrs

__all__ = [
    "INLINE_CHECKS",
    "MISSING",
    "Hook",
    "OpenEnumHook",
    "OptionalHook",
    "converter",
    "key_of",
    "mismatch",
    "optional_of",
    "parse_datetime",
    "register_model_function",
    "structure_any",
    "structure_datetime",
]

Hook = Callable[[Any, Any], Any]

converter = cattrs.Converter(detailed_validation=False)
_fromisoformat = datetime.fromisoformat
MISSING: Any = object()


def parse_datetime(value: Any) -> datetime:
    """Parse an ISO-8601 timestamp into an aware datetime (naive values are UTC)."""
    if isinstance(value, str):
        try:
            moment = _fromisoformat(value)
        except ValueError:
            # RFC 3339 allows a lower-case "z", which fromisoformat refuses (and before
            # Python 3.11 it refuses "Z" too).
            if not value.endswith(("Z", "z")):
                raise
            moment = _fromisoformat(value[:-1] + "+00:00")
    elif isinstance(value, datetime):
        moment = value
    else:
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def mismatch(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {type(value).__name__}")


def structure_datetime(value: Any, _: Any) -> datetime:
    return parse_datetime(value)


def structure_any(value: Any, _: Any) -> Any:
    return value


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise mismatch("a string", value)


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise mismatch("an integer", value)


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise mismatch("a boolean", value)


def _structure_mapping(value: Any, _: Any) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    raise mismatch("a JSON object", value)


# What a generated model hook writes in place of a call to these hooks: the condition
# under which the value is refused, and what was expected instead.
INLINE_CHECKS: tuple[tuple[Hook, str, str], ...] = (
    (_structure_str, "not isinstance({v}, str)", "a string"),
    (_structure_int, "not isinstance({v}, int) or isinstance({v}, bool)", "an integer"),
    (_structure_bool, "not isinstance({v}, bool)", "a boolean"),
    (_structure_mapping, "not isinstance({v}, dict)", "a JSON object"),
)

converter.register_structure_hook(datetime, structure_datetime)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook_func(lambda t: t is Any or t is object, structure_any)
_MAPPING_TYPES: tuple[Any, ...] = (dict, Mapping)
converter.register_structure_hook_func(
    lambda t: get_origin(t) in _MAPPING_TYPES or t in _MAPPING_TYPES, _structure_mapping
)

_UNION_ORIGINS: tuple[Any, ...] = (Union, getattr(types, "UnionType", Union))


def optional_of(tp: Any) -> Any:
    """``X`` for ``Optional[X]`` (or ``X | None``), else None."""
    if get_origin(tp) not in _UNION_ORIGINS:
        return None
    args = get_args(tp)
    if len(args) != 2 or type(None) not in args:
        return None
    return args[0] if args[1] is type(None) else args[1]


class OptionalHook:
    """The hook of ``Optional[X]``: None stays None, anything else goes to X's hook."""

    __slots__ = ("inner", "inner_type")

    def __init__(self, tp: Any) -> None:
        self.inner_type = optional_of(tp)
        self.inner = converter.get_structure_hook(self.inner_type)

    def __call__(self, value: Any, _: Any) -> Any:
        return None if value is None else self.inner(value, self.inner_type)


converter.register_structure_hook_factory(lambda t: optional_of(t) is not None, OptionalHook)


def _open_enum(tp: Any) -> Optional[type[enum.Enum]]:
    """The enum class of ``Union[SomeEnum, str]``, else None."""
    if get_origin(tp) is not Union:
        return None
    args = [arg for arg in get_args(tp) if arg is not type(None)]
    enums = [arg for arg in args if isinstance(arg, type) and issubclass(arg, enum.Enum)]
    if len(enums) == 1 and str in args and len(args) == 2:
        return enums[0]
    return None


class OpenEnumHook:
    """The hook of ``Union[SomeEnum, str]``: the member for a known value, else the str."""

    __slots__ = ("members",)

    def __init__(self, tp: Any) -> None:
        enum_cls: Any = _open_enum(tp)
        self.members = {member.value: member for member in enum_cls}

    def __call__(self, value: Any, _: Any) -> Any:
        if not isinstance(value, str):
            raise mismatch("a string", value)
        return self.members.get(value, value)


converter.register_structure_hook_factory(lambda t: _open_enum(t) is not None, OpenEnumHook)


def key_of(field: attrs.Attribute[Any]) -> str:
    key = field.metadata.get("key")
    return key if isinstance(key, str) else field.name


def register_model_function(cls: type[Any], function: Callable[[Any], Any]) -> None:
    """Structure ``cls`` with ``function(data)`` instead of a generated hook.

    For a model whose JSON the generated hooks cannot express (its values at the top
    level, say). ``function`` raises ``TypeError`` or ``ValueError`` on a mismatch, as
    every hook does.
    """
    converter.register_structure_hook(cls, lambda data, _: function(data))
