"""``client.tables``: structured tables; their rows are in :mod:`.table_rows`."""

from __future__ import annotations

import builtins
import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final, Optional, Union

from .._convert import structure, structure_list
from .._pagination import AsyncPager
from .._transport import Transport
from ..models.tables import Column, Table
from ._common import segment
from ._row_batches import MAX_ROWS_PER_INSERT
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
        self._transport = transport
        self.rows: TableRows = TableRows(transport)

    def list(
        self,
        *,
        limit: int = 20,
        max_items: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> AsyncPager[Table]:
        """Every table (``GET /v1/tables``) as an :class:`AsyncPager`.

        Pages of ``limit`` are requested with ``offset``; the API does not document paging
        here, so the pager also stops (without repeating a table) when the server ignores
        ``limit``/``offset`` (see :class:`GuardedPager`). ``max_items`` stops early.
        """
        path = "/v1/tables"

        async def fetch(offset: int, size: int) -> builtins.list[Table]:
            params = {"limit": size, "offset": offset}
            data = await self._transport.request("GET", path, params=params, timeout=timeout)
            return structure_list(data, "tables", Table, method="GET", path=path)

        return GuardedPager(fetch, page_size=limit, max_items=max_items, key=lambda t: t.id)

    async def create(
        self,
        name: str,
        *,
        columns: Iterable[ColumnLike],
        description: Optional[str] = None,
        timeout: Optional[float] = None,
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
        data = await self._transport.request("POST", path, json=body, timeout=timeout)
        return structure(data, Table, method="POST", path=path)

    async def get(self, table_id: str, *, timeout: Optional[float] = None) -> Table:
        """The table (``GET /v1/tables/{id}``); :class:`NotFoundError` if unknown."""
        path = f"/v1/tables/{segment('table_id', table_id)}"
        data = await self._transport.request("GET", path, timeout=timeout)
        return structure(data, Table, method="GET", path=path)

    async def update(
        self,
        table_id: str,
        *,
        name: Union[str, NotGiven] = NOT_GIVEN,
        description: Union[str, NotGiven, None] = NOT_GIVEN,
        columns: Union[Iterable[ColumnLike], NotGiven] = NOT_GIVEN,
        timeout: Optional[float] = None,
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
        data = await self._transport.request("PATCH", path, json=body, timeout=timeout)
        return structure(data, Table, method="PATCH", path=path)

    async def delete(self, table_id: str, *, timeout: Optional[float] = None) -> None:
        """Delete the table and its rows (``DELETE /v1/tables/{id}``)."""
        path = f"/v1/tables/{segment('table_id', table_id)}"
        await self._transport.request("DELETE", path, timeout=timeout)
