"""Table models: column definitions, tables, and rows with their write metadata."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Callable, Literal, Optional, Union

import attrs

from .._metadata import ResponseMetadata
from ._choices import describe_choices, literal_values

__all__ = [
    "COLUMN_TYPES",
    "column_from_json",
    "row_from_json",
    "ROW_RESERVED_KEYS",
    "Column",
    "ColumnType",
    "ColumnTypeName",
    "Row",
    "RowMeta",
    "Table",
]


class ColumnType(str, enum.Enum):
    """The column types a :class:`Column` may be given.

    The API shows ``text`` and ``number`` and does not publish its full list; ``boolean``,
    ``json`` and ``datetime`` are the others the SDK knows. A column read from the server
    keeps a type not listed here as a plain string.
    """

    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"
    DATETIME = "datetime"

    def __str__(self) -> str:
        return self.value


#: The values of :class:`ColumnType`, as a type: what ``Column(name, type)`` takes (the
#: enum members are accepted too).
ColumnTypeName = Literal["text", "number", "boolean", "json", "datetime"]

#: The values of :data:`ColumnTypeName` (checked equal to :class:`ColumnType` on import).
COLUMN_TYPES = literal_values(ColumnTypeName, ColumnType)
_COLUMN_TYPE_MEMBERS = {member.value: member for member in ColumnType}

#: Top-level keys of a row object that are not column values.
ROW_RESERVED_KEYS = frozenset({"id", "_meta"})


def _frozen_extra() -> Mapping[str, Any]:
    return {}


def _non_empty_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"Column.{attribute.name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"Column.{attribute.name} must be a non-empty string")


def _column_type(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _non_empty_str(instance, attribute, value)
    if value not in _COLUMN_TYPE_MEMBERS:
        raise ValueError(f"Column.type must be {describe_choices(COLUMN_TYPES)}, got {value!r}")


def _is_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"Column.{attribute.name} must be a bool, got {type(value).__name__}")


def _str_keys(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise TypeError(f"Column.{attribute.name} must be a mapping with string keys")


@attrs.frozen(slots=True)
class Column:
    """One column of a table: ``Column("company", "text", required=True)``.

    Validated on construction: ``name`` a non-empty string, ``type`` one of
    :data:`ColumnTypeName` or a :class:`ColumnType` (``TypeError`` for a non-string,
    ``ValueError`` naming the known types otherwise), ``required`` a bool. A column read
    from the server is not refused for a type this SDK does not know: its ``type`` is then
    the plain string the server sent (a known one is the :class:`ColumnType` member).
    ``extra`` holds column properties this model does not know (from the server, or given
    by the caller); :meth:`to_json` sends them back, so a column read from a table and
    written again keeps them.
    """

    name: str = attrs.field(validator=_non_empty_str)
    type: Union[ColumnType, ColumnTypeName] = attrs.field(validator=_column_type)
    required: bool = attrs.field(default=False, validator=_is_bool)
    extra: Mapping[str, Any] = attrs.field(
        factory=_frozen_extra, repr=False, kw_only=True, validator=_str_keys
    )

    def to_json(self) -> dict[str, Any]:
        """The column as the API takes it."""
        return {
            **self.extra,
            "name": self.name,
            "type": str.__str__(self.type),
            "required": self.required,
        }

    @classmethod
    def coerce(cls, item: object) -> Column:
        """A :class:`Column` from itself or from a mapping with ``name``, ``type`` and
        optionally ``required``; other keys go to ``extra`` and are sent as given.

        Raises ``TypeError`` for anything else and ``ValueError`` for a missing or empty
        ``name``, or a missing or unknown ``type``.
        """
        if isinstance(item, Column):
            return item
        if not isinstance(item, Mapping):
            raise TypeError(f"a column must be a Column or a mapping, got {type(item).__name__}")
        for key in ("name", "type"):
            if key not in item:
                raise ValueError(
                    f"a column mapping needs {key!r}, got keys {sorted(map(str, item))}"
                )
        extra = {
            key: value for key, value in item.items() if key not in ("name", "type", "required")
        }
        return cls(item["name"], item["type"], item.get("required", False), extra=extra)


@attrs.frozen(slots=True)
class Table(ResponseMetadata):
    """A table as the API returns it. ``description`` is ``None`` when unset; ``row_count``
    is the number of stored rows when the server reports it. Unknown fields are in
    ``extra``. The table's id is :attr:`id`, also readable as :attr:`table_id`."""

    id: str
    name: str
    description: Optional[str] = None
    columns: list[Column] = attrs.field(factory=list)
    row_count: Optional[int] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)

    @property
    def table_id(self) -> str:
        """The table's id: the same as :attr:`id`."""
        return self.id

    def column(self, name: str) -> Optional[Column]:
        """The column called ``name``, or ``None``."""
        for column in self.columns:
            if column.name == name:
                return column
        return None


@attrs.frozen(slots=True)
class RowMeta:
    """Who wrote a row and when (the row's ``_meta``). API-key writes show
    ``created_by``/``updated_by`` as ``"api:<key name>"``."""

    created_at: Optional[datetime] = None
    created_by: Optional[str] = None
    updated_at: Optional[datetime] = None
    updated_by: Optional[str] = None
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)


@attrs.frozen(slots=True)
class Row(ResponseMetadata):
    """A stored row.

    The API puts a row's column values at the top level of the object, next to ``id`` and
    ``_meta``. Here ``values`` holds every top-level key except those two, ``meta`` the
    ``_meta`` object (all fields ``None`` when absent or ``null``). ``extra`` exists for
    uniformity with the other models and stays empty: every unknown key is a column value.
    The row's id is :attr:`id`, also readable as :attr:`row_id`.
    """

    id: str
    meta: RowMeta = attrs.field(factory=RowMeta, kw_only=True, metadata={"key": "_meta"})
    values: Mapping[str, Any] = attrs.field(factory=dict, kw_only=True)
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False, kw_only=True)

    @property
    def row_id(self) -> str:
        """The row's id: the same as :attr:`id`."""
        return self.id

    def __getitem__(self, column: str) -> Any:
        """The value of ``column`` (``KeyError`` if the row has no such key)."""
        return self.values[column]


#: How :func:`row_from_json` turns a JSON value into a given type: the converter's
#: ``structure`` (the models do not import the converter; it registers these functions).
Structure = Callable[[Any, type[Any]], Any]


def row_from_json(data: Any, structure: Structure) -> Row:
    """A :class:`Row` from its JSON object: ``id``, ``_meta`` and the column values at the
    top level (every other key). ``structure`` converts the id and the ``_meta`` object.

    Raises ``TypeError`` for anything but an object, and what ``structure`` raises.
    """
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    row_id = structure(data.get("id"), str)
    raw_meta = data.get("_meta")
    meta = RowMeta() if raw_meta is None else structure(raw_meta, RowMeta)
    values = {key: value for key, value in data.items() if key not in ROW_RESERVED_KEYS}
    return Row(row_id, meta=meta, values=values)


def column_from_json(data: Any) -> Column:
    """A column as the server sent it: like :meth:`Column.coerce`, except that a type this
    SDK does not know is kept as the plain string (a newer server may have more).

    Raises ``TypeError``/``ValueError`` for an object that is not a valid column.
    """
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    name: Any = data.get("name")
    kind: Any = data.get("type")
    required: Any = data.get("required", False)
    _non_empty_str(None, attrs.fields(Column).type, kind)
    member = _COLUMN_TYPE_MEMBERS.get(kind)
    extra = {key: value for key, value in data.items() if key not in ("name", "type", "required")}
    column = Column(
        name,
        ColumnType.TEXT if member is None else member,
        required,
        extra=extra,
    )
    if member is None:
        # Set past the validator, which refuses unknown types from callers only.
        object.__setattr__(column, "type", kind)
    return column
