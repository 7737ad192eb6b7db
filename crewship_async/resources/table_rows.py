"""``client.tables.rows``: the rows of a table, inserted in batches, listed, changed."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, Optional, Union

from .._checks import check_count, check_optional_seconds
from .._deadline import Deadline
from .._extras import extras_of
from .._pagination import AsyncPager
from .._transport import Transport
from ..models.tables import Row
from ._common import PAGED_QUERY, check_json_object, segment
from ._row_batches import BatchedInsert
from ._sender import Sender, as_list_of, as_model, as_nothing, page_fetcher
from ._support import GuardedPager

__all__ = ["RowsInput", "TableRows"]

RowsInput = Union[Mapping[str, Any], Iterable[Mapping[str, Any]], AsyncIterable[Mapping[str, Any]]]


class TableRows:
    """Rows of a table. Reached as ``client.tables.rows``."""

    def __init__(self, transport: Transport) -> None:
        self._send = Sender(transport)

    async def insert(
        self,
        table_id: str,
        rows: RowsInput,
        *,
        concurrency: int = 4,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> builtins.list[Row]:
        """Insert rows (``POST /v1/tables/{id}/rows``) and return them, in input order.

        ``rows`` is one mapping (column name -> value) or any iterable or async iterable of
        mappings, of any length, generators included. Rows are sent as JSON arrays of at
        most 100 (the API's limit), with at most ``concurrency`` batches in flight; a batch
        is read from ``rows`` only when it can be sent, so memory holds at most
        ``concurrency`` batches besides the result. A single mapping is sent the same way,
        as a one-row array. An empty input sends nothing and returns ``[]``.

        Each row must be a mapping with string keys; it is checked before its batch is
        sent. ``timeout`` is the deadline of the whole insert (``None``: each batch gets the
        client's timeout).

        Errors:

        * invalid arguments, and a bad row or an error of the input iterator before the
          first batch was sent: raised as they are (``TypeError``/``ValueError``, ...);
          nothing was sent.
        * any later failure (an API error, a connection error, a bad row, an iterator
          error): no new batch is sent, the batches in flight finish, then
          :class:`PartialInsertError` is raised with ``inserted`` (the stored rows in input
          order), ``inserted_indices``, ``failed_indices`` and ``cause`` (the first error,
          also ``__cause__``; the message names every failed batch). ``failed_indices``
          holds every index not inserted: for a sized input (list, tuple, ...) up to its
          end; for other iterables, every index read, since reading stops at the failure:
          the rest is still in the iterator. A batch whose answer was lost
          (:class:`APIConnectionError`) or unreadable (:class:`ResponseError`) may have been
          stored even so: check those rows before sending them again.

        A POST of rows is never replayed after it may have reached the server.
        """
        path = f"/v1/tables/{segment('table_id', table_id)}/rows"
        check_count("concurrency", concurrency)
        limit = check_optional_seconds("timeout", timeout)
        extras = extras_of(extra_headers, extra_query)
        insert = BatchedInsert(
            Sender(self._send.transport),
            path,
            rows,
            concurrency=concurrency,
            deadline=Deadline(limit),
            extras=extras,
        )
        return await insert.run()

    def list(
        self,
        table_id: str,
        *,
        limit: int = 20,
        max_items: Optional[int] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> AsyncPager[Row]:
        """The table's rows (``GET /v1/tables/{id}/rows``) as an :class:`AsyncPager`.

        Pages of ``limit`` are requested with ``offset``; as the API does not document
        paging here, the pager also stops (without repeating a row) when the server ignores
        ``limit``/``offset`` (see :class:`GuardedPager`). ``max_items`` stops early.
        """
        path = f"/v1/tables/{segment('table_id', table_id)}/rows"
        extras = extras_of(extra_headers, extra_query, own_query=PAGED_QUERY)
        parse = as_list_of("rows", Row, "GET", path)

        fetch = page_fetcher(self._send, path, parse, timeout=timeout, extras=extras)

        return GuardedPager(fetch, page_size=limit, max_items=max_items, key=lambda r: r.id)

    async def update(
        self,
        table_id: str,
        row_id: str,
        values: Mapping[str, Any],
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Row:
        """Change some column values of a row (``PATCH /v1/tables/{id}/rows/{row_id}``);
        the columns not in ``values`` keep theirs. Returns the updated row.

        Raises ``TypeError`` for a non-mapping and ``ValueError`` for an empty one, before
        sending; :class:`NotFoundError` for an unknown table or row.
        """
        path = f"/v1/tables/{segment('table_id', table_id)}/rows/{segment('row_id', row_id)}"
        body = check_json_object("values", values)
        if body is None:
            raise TypeError("values must be a mapping of column names to values, got None")
        if not body:
            raise ValueError("nothing to update: values is empty")
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(Row, "PATCH", path)
        return await self._send(
            "PATCH", path, parse, json=dict(body), timeout=timeout, extras=extras
        )

    async def delete(
        self,
        table_id: str,
        row_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Delete one row (``DELETE /v1/tables/{id}/rows/{row_id}``)."""
        path = f"/v1/tables/{segment('table_id', table_id)}/rows/{segment('row_id', row_id)}"
        extras = extras_of(extra_headers, extra_query)
        return await self._send("DELETE", path, as_nothing, timeout=timeout, extras=extras)
