"""The structure function of each model class, written and compiled once per class.

Why it exists: on the 1,000-thread page of the ``decode`` benchmark these functions
structure the page 2.4x faster than cattrs' own ``make_dict_structure_fn`` function
for the same model and field hooks (1.07 ms against 2.60 ms per page, measured with
``python -m benchmarks.hook_speed``), and model building is about half of a list call's
CPU. They check each field inline (str,
int, bool, mapping, datetime, open enum, optional) in one pass over the declared keys,
and build the instance through its slots when ``__init__`` would only store the values.

What it guarantees: for every model the generated function returns the same instance
that cattrs' path (``__init__`` with the structured keys present) would build, with
unknown keys kept in ``extra``, and raises on the same inputs, so that
:func:`crewship_async._convert.structure` raises the same
:class:`~crewship_async.errors.ResponseError`. Checked by
``tests/test_convert.py::test_models_built_with_or_without_init_agree``,
``test_model_defaults_and_hooks_run``, ``test_structured_model_is_the_constructed_one``
and ``tests/test_convert_hooks.py`` (generated functions against cattrs'
``make_dict_structure_fn`` on valid and invalid data).
"""

from __future__ import annotations

import inspect
import linecache
import threading
from datetime import UTC, datetime
from typing import Any, Optional

import attrs

from ._convert_rules import (
    INLINE_CHECKS,
    MISSING,
    Hook,
    OpenEnumHook,
    OptionalHook,
    converter,
    key_of,
    mismatch,
    parse_datetime,
    structure_any,
    structure_datetime,
)

__all__ = ["make_model_hook"]


class _Source:
    """The text and namespace of one generated structure function."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "MISSING": MISSING,
            "mismatch": mismatch,
            "_fromisoformat": datetime.fromisoformat,
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
        if hook is structure_any:
            return
        check = next((check for check in INLINE_CHECKS if check[0] is hook), None)
        if check is not None:
            _, refused, expected = check
            raise_it = f"    raise mismatch({expected!r}, {var})"
            self.add(pad, f"if {refused.format(v=var)}:", raise_it)
        elif hook is structure_datetime:
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
        elif isinstance(hook, OpenEnumHook):
            members = self.name("members", hook.members.get)
            self.add(
                pad,
                f"if not isinstance({var}, str):",
                f"    raise mismatch('a string', {var})",
                f"{var} = {members}({var}, {var})",
            )
        elif isinstance(hook, OptionalHook):
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
    names = {field.name for field in fields}
    slots = {slot for klass in cls.__mro__ for slot in klass.__dict__.get("__slots__", ())}
    if not names <= slots:
        return None
    # A slot that is no field (a mixin's, say) is left unset, as __init__ leaves it,
    # unless __init__ names it (attrs' cached hash): then __init__ must run.
    named = set(code.co_names) | {c for c in code.co_consts if isinstance(c, str)}
    if any(slot in named for slot in slots - names - {"__weakref__"}):
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
    known = frozenset(key_of(field) for field in declared)
    setters = _slot_setters(cls, fields)

    source = _Source()
    source.add("", "def structure(data, _=None):")
    pad = "    "
    source.add(
        pad,
        "if not isinstance(data, dict):",
        "    raise mismatch('a JSON object', data)",
        f"present = {len(declared)}",
    )
    if setters is None:
        source.add(pad, "kwargs = {}")
    values: dict[str, str] = {}
    for field in declared:
        key = key_of(field)
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
        source.add(pad, f"{var} = data.get({key!r}, MISSING)")
        start = len(source.lines)
        source.convert(var, field.type, pad + "    ")
        source.add(pad + "    ", *store)
        if len(source.lines) > start:
            source.lines.insert(start, f"{pad}if {var} is not MISSING:")
            source.add(pad, "else:")
        else:
            source.add(pad, f"if {var} is MISSING:")
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


def make_model_hook(cls: type[Any]) -> Hook:
    """The structure hook of the attrs class ``cls``, generated on its first use."""
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
