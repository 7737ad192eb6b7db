"""Turning API JSON into models: :func:`structure`, :func:`structure_list`.

Every model is a frozen attrs class, structured by the one cattrs converter
(:mod:`._convert_rules`) with a hook generated once per class, on first use
(:mod:`._model_hooks`), so that:

* keys the model does not declare are kept in its ``extra`` mapping (a newer server never
  breaks an older client);
* a field's JSON key may differ from its attribute name (``attrs.field(metadata={"key":
  "_meta"})``);
* ISO-8601 strings become timezone-aware datetimes (a naive one is taken as UTC);
* enum-typed fields declared ``Union[SomeStrEnum, str]`` give the enum member for a known
  value and the plain string for an unknown one;
* any mismatch raises :class:`~crewship_async.errors.ResponseError` naming the field,
  found again on the slow path (:func:`_explain`) only once a hook has failed.
"""

from __future__ import annotations

from typing import Any, Optional, TypeVar, Union, get_args, get_origin

import attrs

from ._convert_rules import converter, key_of, optional_of, parse_datetime, register_model_function
from ._model_hooks import make_model_hook
from .errors import ResponseError
from .models.tables import Column, Row, column_from_json, row_from_json

__all__ = ["converter", "parse_datetime", "structure", "structure_list"]

T = TypeVar("T")
_optional_of = optional_of  # kept importable under its former name

converter.register_structure_hook_factory(
    lambda t: attrs.has(t) and isinstance(t, type), make_model_hook
)
# Models the generated hook cannot express (a row's column values are its top-level keys;
# a server's column type may be unknown here) bring their own function, registered here so
# that the models never import the converter.
register_model_function(Column, column_from_json)
register_model_function(Row, lambda data: row_from_json(data, converter.structure))


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
        key = key_of(field)
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
    except Exception:
        pass
    # Raised outside the handler: the converter's own exception quotes server values, so
    # the scrubbed reason below is all that is kept of it.
    field, reason = _explain(data, cls)
    where = f" field {field!r}" if field else ""
    raise ResponseError(
        f"{method} {path}: the response{where} does not match {cls.__name__}: {reason}",
        method=method,
        path=path,
        field=field,
    )


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
    hook = converter.get_structure_hook(cls)
    out: list[T] = []
    append = out.append
    try:
        for item in items:
            append(hook(item, cls))
    except Exception:
        pass
    else:
        return out
    index = len(out)
    field, reason = _explain(items[index], cls)
    name = f"{key}[{index}]" + (f".{field}" if field else "")
    raise ResponseError(
        f"{method} {path}: {name} does not match {cls.__name__}: {reason}",
        method=method,
        path=path,
        field=name,
    )
