"""``client.tables``: structured tables; their rows are in :mod:`.table_rows`."""

from __future__ import annotations

import builtins
import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final, Optional, Union

from .._extras import extras_of
from .._pagination import AsyncPager
from .._transport import Transport
from ..models.tables import Column, Table
from ._common import PAGED_QUERY, segment
from ._row_batches import MAX_ROWS_PER_INSERT
from ._sender import Sender, as_list_of, as_model, as_nothing, page_fetcher
from ._support import GuardedPager, require_str
from .table_rows import TableRows

__all__ = ["MAX_ROWS_PER_INSERT", "NOT_GIVEN", "NotGiven", "TableRows", "Tables"]


class NotGiven(enum.Enum):
    """The type of :data:`NOT_GIVEN`: "argument omitted", as opposed to ``None``."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


#: Default of :meth:`Tables.update` arguments: the field is not sent (unlike ``None``).
NOT_GIVEN: Final = NotGiven.NOT_GIVEN

ColumnLike = Union[Column, Mapping[str, Any]]


def _columns_json(columns: object) -> builtins.list[dict[str, Any]]:
    if isinstance(columns, (str, bytes, Mapping, Column)) or not isinstance(columns, Iterable):
        raise TypeError(
            f"columns must be an iterable of Column or mappings, got {type(columns).__name__}"
        )
    out = []
    names: set[str] = set()
    for index, item in enumerate(columns):
        try:
            column = Column.coerce(item)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"columns[{index}]: {exc}") from None
        if column.name in names:
            raise ValueError(f"columns[{index}]: duplicate column name {column.name!r}")
        names.add(column.name)
        out.append(column.to_json())
    return out


class Tables:
    """Operations on tables. Reached as ``client.tables``; rows through :attr:`rows`."""

    def __init__(self, transport: Transport) -> None:
        self._send = Sender(transport)
        self.rows: TableRows = TableRows(transport)

    def list(
        self,
        *,
        limit: int = 20,
        max_items: Optional[int] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> AsyncPager[Table]:
        """Every table (``GET /v1/tables``) as an :class:`AsyncPager`.

        Pages of ``limit`` are requested with ``offset``; the API does not document paging
        here, so the pager also stops (without repeating a table) when the server ignores
        ``limit``/``offset`` (see :class:`GuardedPager`). ``max_items`` stops early.
        """
        path = "/v1/tables"
        extras = extras_of(extra_headers, extra_query, own_query=PAGED_QUERY)
        parse = as_list_of("tables", Table, "GET", path)

        fetch = page_fetcher(self._send, path, parse, timeout=timeout, extras=extras)

        return GuardedPager(fetch, page_size=limit, max_items=max_items, key=lambda t: t.id)

    async def create(
        self,
        name: str,
        *,
        columns: Iterable[ColumnLike],
        description: Optional[str] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Table:
        """Create a table (``POST /v1/tables``) with ``columns`` (:class:`Column` objects or
        mappings with ``name``, ``type`` and optionally ``required``).

        ``description`` left at ``None`` is not sent. Raises ``TypeError``/``ValueError``
        before sending for an empty name, a bad or duplicate column;
        :class:`BadRequestError` when the server refuses the definition.
        """
        body: dict[str, Any] = {
            "name": require_str("name", name),
            "columns": _columns_json(columns),
        }
        if description is not None:
            if not isinstance(description, str):
                raise TypeError(f"description must be a string, got {type(description).__name__}")
            body["description"] = description
        path = "/v1/tables"
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(Table, "POST", path)
        return await self._send("POST", path, parse, json=body, timeout=timeout, extras=extras)

    async def get(
        self,
        table_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Table:
        """The table (``GET /v1/tables/{id}``); :class:`NotFoundError` if unknown."""
        path = f"/v1/tables/{segment('table_id', table_id)}"
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(Table, "GET", path)
        return await self._send("GET", path, parse, timeout=timeout, extras=extras)

    async def update(
        self,
        table_id: str,
        *,
        name: Union[str, NotGiven] = NOT_GIVEN,
        description: Union[str, NotGiven, None] = NOT_GIVEN,
        columns: Union[Iterable[ColumnLike], NotGiven] = NOT_GIVEN,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Table:
        """Change the table's name, description or columns (``PATCH /v1/tables/{id}``).

        Only the arguments given are sent. ``description=None`` sends JSON ``null`` and
        clears the description; ``name=None`` is a ``TypeError`` (a table needs a name).

        Warning: ``columns`` REPLACES the whole column list: a column left out is removed
        (what happens to its data is up to the server). To add one, send the current
        columns plus the new one: ``[*table.columns, Column("notes", "text")]``.

        Raises ``ValueError`` when nothing is given to update, ``TypeError``/``ValueError``
        for invalid values, all before sending.
        """
        path = f"/v1/tables/{segment('table_id', table_id)}"
        body: dict[str, Any] = {}
        if name is not NOT_GIVEN:
            if name is None:
                raise TypeError("name cannot be None: a table needs a name (omit it to keep it)")
            body["name"] = require_str("name", name)
        if description is not NOT_GIVEN:
            if description is not None and not isinstance(description, str):
                raise TypeError(
                    f"description must be a string or None, got {type(description).__name__}"
                )
            body["description"] = description
        if columns is not NOT_GIVEN:
            body["columns"] = _columns_json(columns)
        if not body:
            raise ValueError("nothing to update: give name, description or columns")
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(Table, "PATCH", path)
        return await self._send("PATCH", path, parse, json=body, timeout=timeout, extras=extras)

    async def delete(
        self,
        table_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Delete the table and its rows (``DELETE /v1/tables/{id}``)."""
        path = f"/v1/tables/{segment('table_id', table_id)}"
        extras = extras_of(extra_headers, extra_query)
        return await self._send("DELETE", path, as_nothing, timeout=timeout, extras=extras)
