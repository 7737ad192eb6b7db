"""The one cattrs converter, and the rules that turn API JSON into models.

Every model is a frozen attrs class. Its structure hook is generated once per class, on
first use, by cattrs (``make_dict_structure_fn``) and wrapped so that:

* keys the model does not declare are kept in its ``extra`` mapping (a newer server never
  breaks an older client);
* a field's JSON key may differ from its attribute name (``attrs.field(metadata={"key":
  "_meta"})``);
* ISO-8601 strings become timezone-aware datetimes (a naive one is taken as UTC);
* enum-typed fields declared ``Union[SomeStrEnum, str]`` give the enum member for a known
  value and the plain string for an unknown one;
* any mismatch raises :class:`~crewship_async.errors.ResponseError` naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Callable, Optional, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .errors import ResponseError

__all__ = ["converter", "parse_datetime", "structure", "structure_list"]

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=False)
_EMPTY: Mapping[str, Any] = {}


def parse_datetime(value: Any) -> datetime:
    """Parse an ISO-8601 timestamp into an aware datetime (naive values are UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value
        if text.endswith(("Z", "z")):
            # RFC 3339 allows a lower-case "z", which fromisoformat refuses (and before
            # Python 3.11 it refuses "Z" too).
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    else:
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _structure_datetime(value: Any, _: Any) -> datetime:
    return parse_datetime(value)


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected a boolean, got {type(value).__name__}")


def _structure_mapping(value: Any, _: Any) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    raise TypeError(f"expected a JSON object, got {type(value).__name__}")


converter.register_structure_hook(datetime, _structure_datetime)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook_func(lambda t: t is Any or t is object, _structure_any)
_MAPPING_TYPES: tuple[Any, ...] = (dict, Mapping)
converter.register_structure_hook_func(
    lambda t: get_origin(t) in _MAPPING_TYPES or t in _MAPPING_TYPES, _structure_mapping
)


def _open_enum(tp: Any) -> Optional[type[enum.Enum]]:
    """The enum class of ``Union[SomeEnum, str]``, else None."""
    if get_origin(tp) is not Union:
        return None
    args = [arg for arg in get_args(tp) if arg is not type(None)]
    enums = [arg for arg in args if isinstance(arg, type) and issubclass(arg, enum.Enum)]
    if len(enums) == 1 and str in args and len(args) == 2:
        return enums[0]
    return None


def _make_open_enum_hook(enum_cls: type[enum.Enum]) -> Callable[[Any, Any], Any]:
    members = {member.value: member for member in enum_cls}

    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return members.get(value, value)

    return hook


converter.register_structure_hook_factory(
    lambda t: _open_enum(t) is not None,
    lambda t: _make_open_enum_hook(_open_enum(t)),  # type: ignore[arg-type]
)


def _key_of(field: attrs.Attribute[Any]) -> str:
    key = field.metadata.get("key")
    return key if isinstance(key, str) else field.name


def _make_model_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
    fields = [f for f in attrs.fields(cls) if f.name != "extra"]
    known = frozenset(_key_of(f) for f in fields)
    options: dict[str, Any] = {
        f.name: override(rename=_key_of(f)) for f in fields if _key_of(f) != f.name
    }
    options["_cattrs_forbid_extra_keys"] = False
    has_extra = "extra" in attrs.fields_dict(cls)
    if has_extra:
        # ``extra`` is filled below; a JSON key named "extra" is an unknown field like any.
        options["extra"] = override(omit=True)
    base = make_dict_structure_fn(cls, converter, **options)

    def hook(data: Any, _: Any) -> Any:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        obj = base(data, cls)
        if has_extra and not data.keys() <= known:
            object.__setattr__(obj, "extra", {k: v for k, v in data.items() if k not in known})
        return obj

    return hook


converter.register_structure_hook_factory(
    lambda t: attrs.has(t) and isinstance(t, type), _make_model_hook
)


def _model_of(tp: Any) -> Optional[type[Any]]:
    """The attrs class of ``tp`` or ``Optional[tp]``, else None."""
    if get_origin(tp) is Union:
        args = [arg for arg in get_args(tp) if arg is not type(None)]
        tp = args[0] if len(args) == 1 else None
    return tp if isinstance(tp, type) and attrs.has(tp) else None


def _explain(data: Any, cls: type[Any]) -> tuple[Optional[str], str]:
    """Find the field of ``cls`` that ``data`` fails on (slow path, errors only)."""
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    for field in [f for f in attrs.fields(cls) if f.name != "extra"]:
        key = _key_of(field)
        if key not in data:
            if field.default is attrs.NOTHING:
                return key, "required field is missing"
            continue
        try:
            converter.structure(data[key], field.type)
        except Exception as exc:
            inner_field, reason = (None, str(exc))
            model = _model_of(field.type)
            if model is not None and data[key] is not None:
                inner_field, reason = _explain(data[key], model)
            name = key if inner_field is None else f"{key}.{inner_field}"
            return name, reason or type(exc).__name__
    return None, "unexpected shape"  # pragma: no cover - hook and explanation disagree


def structure(data: Any, cls: type[T], *, method: str, path: str) -> T:
    """Turn decoded JSON into ``cls``; raise :class:`ResponseError` naming the bad field."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        field, reason = _explain(data, cls)
        where = f" field {field!r}" if field else ""
        raise ResponseError(
            f"{method} {path}: the response{where} does not match {cls.__name__}: {reason}",
            method=method,
            path=path,
            field=field,
        ) from exc


def structure_list(data: Any, key: str, cls: type[T], *, method: str, path: str) -> list[T]:
    """Structure the list under ``data[key]`` (or ``data`` itself when it is a list)."""
    items = data.get(key) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ResponseError(
            f"{method} {path}: expected a list under {key!r}, got {type(data).__name__}",
            method=method,
            path=path,
            field=key,
        )
    out = []
    for index, item in enumerate(items):
        try:
            out.append(converter.structure(item, cls))
        except Exception as exc:
            field, reason = _explain(item, cls)
            name = f"{key}[{index}]" + (f".{field}" if field else "")
            raise ResponseError(
                f"{method} {path}: {name} does not match {cls.__name__}: {reason}",
                method=method,
                path=path,
                field=name,
            ) from exc
    return out
