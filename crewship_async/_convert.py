"""The one cattrs converter, and the rules that turn API JSON into models.

Every model is a frozen attrs class. Its structure hook is generated once per class, on
first use (see :func:`_make_model_hook`), so that:

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
import inspect
import linecache
import threading
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Callable, Optional, TypeVar, Union, get_args, get_origin

import attrs
import cattrs

from .errors import ResponseError
from .models.tables import Column, Row, column_from_json, row_from_json

__all__ = ["converter", "parse_datetime", "structure", "structure_list"]

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]

converter = cattrs.Converter(detailed_validation=False)
_fromisoformat = datetime.fromisoformat
_MISSING: Any = object()


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


def _mismatch(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {type(value).__name__}")


def _structure_datetime(value: Any, _: Any) -> datetime:
    return parse_datetime(value)


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise _mismatch("a string", value)


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _mismatch("an integer", value)


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _mismatch("a boolean", value)


def _structure_mapping(value: Any, _: Any) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    raise _mismatch("a JSON object", value)


# What a generated model hook writes in place of a call to these hooks: the condition
# under which the value is refused, and what was expected instead.
_INLINE_CHECKS: tuple[tuple[Hook, str, str], ...] = (
    (_structure_str, "not isinstance({v}, str)", "a string"),
    (_structure_int, "not isinstance({v}, int) or isinstance({v}, bool)", "an integer"),
    (_structure_bool, "not isinstance({v}, bool)", "a boolean"),
    (_structure_mapping, "not isinstance({v}, dict)", "a JSON object"),
)

converter.register_structure_hook(datetime, _structure_datetime)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook_func(lambda t: t is Any or t is object, _structure_any)
_MAPPING_TYPES: tuple[Any, ...] = (dict, Mapping)
converter.register_structure_hook_func(
    lambda t: get_origin(t) in _MAPPING_TYPES or t in _MAPPING_TYPES, _structure_mapping
)

_UNION_ORIGINS: tuple[Any, ...] = (Union, getattr(types, "UnionType", Union))


def _optional_of(tp: Any) -> Any:
    """``X`` for ``Optional[X]`` (or ``X | None``), else None."""
    if get_origin(tp) not in _UNION_ORIGINS:
        return None
    args = get_args(tp)
    if len(args) != 2 or type(None) not in args:
        return None
    return args[0] if args[1] is type(None) else args[1]


class _OptionalHook:
    """The hook of ``Optional[X]``: None stays None, anything else goes to X's hook."""

    __slots__ = ("inner", "inner_type")

    def __init__(self, tp: Any) -> None:
        self.inner_type = _optional_of(tp)
        self.inner = converter.get_structure_hook(self.inner_type)

    def __call__(self, value: Any, _: Any) -> Any:
        return None if value is None else self.inner(value, self.inner_type)


converter.register_structure_hook_factory(lambda t: _optional_of(t) is not None, _OptionalHook)


def _open_enum(tp: Any) -> Optional[type[enum.Enum]]:
    """The enum class of ``Union[SomeEnum, str]``, else None."""
    if get_origin(tp) is not Union:
        return None
    args = [arg for arg in get_args(tp) if arg is not type(None)]
    enums = [arg for arg in args if isinstance(arg, type) and issubclass(arg, enum.Enum)]
    if len(enums) == 1 and str in args and len(args) == 2:
        return enums[0]
    return None


class _OpenEnumHook:
    """The hook of ``Union[SomeEnum, str]``: the member for a known value, else the str."""

    __slots__ = ("members",)

    def __init__(self, tp: Any) -> None:
        enum_cls: Any = _open_enum(tp)
        self.members = {member.value: member for member in enum_cls}

    def __call__(self, value: Any, _: Any) -> Any:
        if not isinstance(value, str):
            raise _mismatch("a string", value)
        return self.members.get(value, value)


converter.register_structure_hook_factory(lambda t: _open_enum(t) is not None, _OpenEnumHook)


def _key_of(field: attrs.Attribute[Any]) -> str:
    key = field.metadata.get("key")
    return key if isinstance(key, str) else field.name


class _Source:
    """The text and namespace of one generated structure function."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "_MISSING": _MISSING,
            "_mismatch": _mismatch,
            "_fromisoformat": _fromisoformat,
            "_parse_datetime": parse_datetime,
            "_utc": UTC,
        }

    def name(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def add(self, pad: str, *lines: str) -> None:
        self.lines.extend(pad + line for line in lines)

    def convert(self, var: str, tp: Any, pad: str) -> None:
        """Code that checks ``var`` as ``tp`` and rebinds it to the structured value."""
        hook = converter.get_structure_hook(tp)
        if hook is _structure_any:
            return
        check = next((check for check in _INLINE_CHECKS if check[0] is hook), None)
        if check is not None:
            _, refused, expected = check
            raise_it = f"    raise _mismatch({expected!r}, {var})"
            self.add(pad, f"if {refused.format(v=var)}:", raise_it)
        elif hook is _structure_datetime:
            self.add(
                pad,
                "try:",
                f"    {var} = _fromisoformat({var})",
                "except (TypeError, ValueError):",
                f"    {var} = _parse_datetime({var})",
                "else:",
                f"    if {var}.tzinfo is None:",
                f"        {var} = {var}.replace(tzinfo=_utc)",
            )
        elif isinstance(hook, _OpenEnumHook):
            members = self.name("members", hook.members.get)
            self.add(
                pad,
                f"if not isinstance({var}, str):",
                f"    raise _mismatch('a string', {var})",
                f"{var} = {members}({var}, {var})",
            )
        elif isinstance(hook, _OptionalHook):
            start = len(self.lines)
            self.convert(var, hook.inner_type, pad + "    ")
            if len(self.lines) > start:
                self.lines.insert(start, f"{pad}if {var} is not None:")
        else:
            self.add(pad, f"{var} = {self.name('hook', hook)}({var}, {self.name('type', tp)})")

    def compile(self, cls: type[Any]) -> Hook:
        filename = f"<crewship_async structure {cls.__module__}.{cls.__qualname__}>"
        text = "\n".join(self.lines) + "\n"
        exec(compile(text, filename, "exec"), self.namespace)
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        hook: Hook = self.namespace["structure"]
        return hook


@attrs.frozen(slots=True)
class _FrozenProbe:
    pass


_Factory: Any = attrs.Factory  # a class, though typed as a function
_PLAIN_SETATTRS = (
    inspect.getattr_static(object, "__setattr__"),
    inspect.getattr_static(_FrozenProbe, "__setattr__"),
)


def _slot_setters(cls: type[Any], fields: tuple[attrs.Attribute[Any], ...]) -> Optional[list[Any]]:
    """The ``__set__`` of each field's slot, when ``cls.__init__`` would do nothing but
    store its arguments (or the defaults) in them; else None."""
    code = getattr(cls.__dict__.get("__init__"), "__code__", None)
    if code is None or not code.co_filename.startswith("<attrs generated"):
        return None
    if inspect.getattr_static(cls, "__setattr__") not in _PLAIN_SETATTRS or any(
        hasattr(cls, name) for name in ("__attrs_pre_init__", "__attrs_post_init__")
    ):
        return None
    # Any other slot (a cached hash, say) is something __init__ would also set.
    slots = {slot for klass in cls.__mro__ for slot in klass.__dict__.get("__slots__", ())}
    if slots - {"__weakref__"} != {field.name for field in fields}:
        return None
    if not all(map(_is_stored_as_given, fields)):
        return None
    return [inspect.getattr_static(cls, field.name).__set__ for field in fields]


def _is_stored_as_given(field: attrs.Attribute[Any]) -> bool:
    """Whether ``__init__`` stores this field's argument (or default) unchanged."""
    default: Any = field.default
    if default is attrs.NOTHING:
        # ``extra`` is never read from the data: only its default can fill it.
        fillable = field.name != "extra"
    else:
        fillable = not (isinstance(default, _Factory) and default.takes_self)
    return fillable and field.init and field.validator is None and field.converter is None


def _default_code(source: _Source, default: Any) -> str:
    if not isinstance(default, _Factory):
        return source.name("default", default)
    if default.factory is dict:
        return "{}"
    if default.factory is list:
        return "[]"
    return f"{source.name('factory', default.factory)}()"


def _generate(cls: type[Any]) -> Hook:
    """Write the structure function of ``cls``: one pass over its declared keys, with the
    checks of str, int, bool, mapping, datetime, open enum and optional fields inline.

    When ``__init__`` would only store values, the instance is built without it, each
    value set through its slot's descriptor (attrs' ``__init__`` binds every argument and
    sets each slot through ``object.__setattr__``: a third of the time of a small model);
    otherwise ``__init__`` gets the keys present, as cattrs would call it. ``extra`` is
    built only when the object has more keys than the declared keys found in it.
    """
    fields = attrs.fields(cls)
    if any(isinstance(field.type, str) for field in fields):
        attrs.resolve_types(cls)
        fields = attrs.fields(cls)
    declared = [field for field in fields if field.name != "extra"]
    has_extra = len(declared) < len(fields)
    known = frozenset(_key_of(field) for field in declared)
    setters = _slot_setters(cls, fields)

    source = _Source()
    source.add("", "def structure(data, _=None):")
    pad = "    "
    source.add(
        pad,
        "if not isinstance(data, dict):",
        "    raise _mismatch('a JSON object', data)",
        f"present = {len(declared)}",
    )
    if setters is None:
        source.add(pad, "kwargs = {}")
    values: dict[str, str] = {}
    for field in declared:
        key = _key_of(field)
        var = values[field.name] = f"v{len(values)}"
        if not field.init:
            source.add(pad, f"if {key!r} not in data:", "    present -= 1")
            continue
        store = [] if setters is not None else [f"kwargs[{field.alias!r}] = {var}"]
        if field.default is attrs.NOTHING:
            source.add(pad, f"{var} = data[{key!r}]")
            source.convert(var, field.type, pad)
            source.add(pad, *store)
            continue
        source.add(pad, f"{var} = data.get({key!r}, _MISSING)")
        start = len(source.lines)
        source.convert(var, field.type, pad + "    ")
        source.add(pad + "    ", *store)
        if len(source.lines) > start:
            source.lines.insert(start, f"{pad}if {var} is not _MISSING:")
            source.add(pad, "else:")
        else:
            source.add(pad, f"if {var} is _MISSING:")
        if setters is not None:
            source.add(pad, f"    {var} = {_default_code(source, field.default)}")
        source.add(pad, "    present -= 1")

    known_name = source.name("known", known)
    has_unknown = "len(data) > present"
    if len(known) < len(declared):
        # Two fields read the same key, so the count of keys read says nothing.
        has_unknown = f"not data.keys() <= {known_name}"
    unknown = f"{{key: value for key, value in data.items() if key not in {known_name}}}"
    cls_name = source.name("cls", cls)
    if setters is None:
        source.add(pad, f"obj = {cls_name}(**kwargs)")
        if has_extra:
            setattr_name = source.name("setattr", object.__setattr__)
            source.add(pad, f"if {has_unknown}:", f"    {setattr_name}(obj, 'extra', {unknown})")
    else:
        source.add(pad, f"obj = {source.name('new', object.__new__)}({cls_name})")
        for field, setter in zip(fields, setters, strict=True):
            value = values.get(field.name)
            if value is None:
                default = _default_code(source, field.default)
                value = f"{unknown} if {has_unknown} else {default}"
            source.add(pad, f"{source.name('set', setter)}(obj, {value})")
    source.add(pad, "return obj")
    return source.compile(cls)


class _Generating(threading.local):
    """The model classes whose hooks this thread is writing."""

    def __init__(self) -> None:
        self.classes: set[type[Any]] = set()


_GENERATING = _Generating()
_MODEL_HOOKS: dict[type[Any], Hook] = {}


def _make_model_hook(cls: type[Any]) -> Hook:
    generating = _GENERATING.classes
    if cls in generating:
        # A model that contains itself: its hook is asked for while it is being written.
        def forward(data: Any, tp: Any) -> Any:
            return _MODEL_HOOKS[cls](data, tp)

        return forward
    generating.add(cls)
    try:
        hook = _MODEL_HOOKS[cls] = _generate(cls)
    finally:
        generating.discard(cls)
    return hook


converter.register_structure_hook_factory(
    lambda t: attrs.has(t) and isinstance(t, type), _make_model_hook
)
# Models the generated hook cannot express (a row's column values are its top-level keys;
# a server's column type may be unknown here) bring their own function, registered here so
# that the models never import the converter.
converter.register_structure_hook(Column, lambda data, _: column_from_json(data))
converter.register_structure_hook(Row, lambda data, _: row_from_json(data, converter.structure))


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
