"""``client.tables``: structured tables and their rows, with batched inserts."""

from __future__ import annotations

import builtins
import enum
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sized
from typing import Any, Final, Optional, Union

import anyio

from .._convert import structure, structure_list
from .._pagination import AsyncPager
from .._transport import Transport
from ..errors import APITimeoutError, PartialInsertError, ResponseError
from ..models.tables import Column, Row, Table
from ._common import check_json_object, segment
from ._support import GuardedPager, check_seconds, require_str

__all__ = ["MAX_ROWS_PER_INSERT", "NOT_GIVEN", "NotGiven", "TableRows", "Tables"]

#: The most rows the API takes in one insert request.
MAX_ROWS_PER_INSERT = 100


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
RowsInput = Union[Mapping[str, Any], Iterable[Mapping[str, Any]], AsyncIterable[Mapping[str, Any]]]


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


def _check_row(item: object, index: int) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise TypeError(
            f"rows[{index}] must be a mapping (a JSON object), got {type(item).__name__}"
        )
    for key in item:
        if not isinstance(key, str):
            raise TypeError(f"rows[{index}] keys must be strings, got {key!r}")
    return dict(item)


def _parse_inserted(data: Any, count: int, *, path: str) -> builtins.list[Row]:
    """The rows of an insert answer: ``{"rows": [...]}`` (or a bare array, or one Row for
    a one-row batch); the count must match what was sent."""
    if count == 1 and isinstance(data, dict) and "rows" not in data:
        return [structure(data, Row, method="POST", path=path)]
    rows = structure_list(data, "rows", Row, method="POST", path=path)
    if len(rows) != count:
        raise ResponseError(
            f"POST {path}: sent {count} rows, the response holds {len(rows)}",
            method="POST",
            path=path,
            field="rows",
        )
    return rows


def _ranges(indices: builtins.list[int], limit: int = 6) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (at most ``limit`` ranges, then ``...``)."""
    spans: builtins.list[str] = []
    start = prev = indices[0]
    for index in [*indices[1:], None]:
        if index is not None and index == prev + 1:
            prev = index
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if index is not None:
            start = prev = index
    if len(spans) > limit:
        spans = [*spans[:limit], "..."]
    return ", ".join(spans)


_END = object()


class _RowReader:
    """Reads the caller's rows one at a time, from an iterable or an async iterable."""

    def __init__(self, rows: object) -> None:
        self.sync: Optional[Iterator[Any]] = None
        self.aio: Optional[AsyncIterator[Any]] = None
        if isinstance(rows, Mapping):
            self.sync = iter([rows])
        elif isinstance(rows, (str, bytes, bytearray)):
            raise TypeError("rows must be a mapping or an iterable of mappings, got a string")
        elif isinstance(rows, AsyncIterable):
            self.aio = rows.__aiter__()
        elif isinstance(rows, Iterable):
            self.sync = iter(rows)
        else:
            raise TypeError(
                f"rows must be a mapping or an iterable of mappings, got {type(rows).__name__}"
            )
        self.total = 1 if isinstance(rows, Mapping) else None
        if self.total is None and self.sync is not None and isinstance(rows, Sized):
            self.total = len(rows)

    async def next(self) -> Any:
        if self.sync is not None:
            return next(self.sync, _END)
        assert self.aio is not None
        try:
            return await self.aio.__anext__()
        except StopAsyncIteration:
            return _END


class Tables:
    """Operations on tables. Reached as ``client.tables``; rows through :attr:`rows`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.rows = TableRows(transport)

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


class TableRows:
    """Rows of a table. Reached as ``client.tables.rows``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def insert(
        self,
        table_id: str,
        rows: RowsInput,
        *,
        concurrency: int = 4,
        timeout: Optional[float] = None,
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
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise TypeError(f"concurrency must be an int, got {type(concurrency).__name__}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        limit = check_seconds("timeout", timeout)
        reader = _RowReader(rows)
        deadline = None if limit is None else anyio.current_time() + limit
        done: dict[int, builtins.list[Row]] = {}
        failures: builtins.list[tuple[int, int, Exception]] = []
        slots = anyio.Semaphore(concurrency)
        stop = anyio.Event()

        async def send(start: int, batch: builtins.list[dict[str, Any]]) -> None:
            try:
                left = None if deadline is None else deadline - anyio.current_time()
                if left is not None and left <= 0:
                    raise APITimeoutError(
                        f"POST {path}: the insert's timeout of {limit:g}s passed before this "
                        "batch was sent",
                        method="POST",
                        path=path,
                    )
                data = await self._transport.request("POST", path, json=batch, timeout=left)
                done[start] = _parse_inserted(data, len(batch), path=path)
            except Exception as exc:
                failures.append((start, len(batch), exc))
                stop.set()
            finally:
                slots.release()

        read = 0
        sent = False
        unsent_error: Optional[Exception] = None
        async with anyio.create_task_group() as group:
            exhausted = False
            while not (stop.is_set() or exhausted):
                await slots.acquire()
                if stop.is_set():
                    slots.release()
                    break
                start = read
                batch: builtins.list[dict[str, Any]] = []
                try:
                    while len(batch) < MAX_ROWS_PER_INSERT:
                        item = await reader.next()
                        if item is _END:
                            exhausted = True
                            break
                        read += 1
                        batch.append(_check_row(item, read - 1))
                except Exception as exc:
                    slots.release()
                    if not sent:
                        unsent_error = exc  # raised below: nothing was sent
                        break
                    failures.append((start, read - start, exc))
                    stop.set()
                    break
                if not batch or stop.is_set():
                    # Empty: the input is exhausted. Stop: a batch failed while this one
                    # was read; its rows count as read and not inserted.
                    slots.release()
                    break
                sent = True
                group.start_soon(send, start, batch)
        if unsent_error is not None:
            raise unsent_error
        if not failures:
            return [row for start in sorted(done) for row in done[start]]
        raise self._partial(path, done, failures, read if reader.total is None else reader.total)

    @staticmethod
    def _partial(
        path: str,
        done: dict[int, builtins.list[Row]],
        failures: builtins.list[tuple[int, int, Exception]],
        end: int,
    ) -> PartialInsertError:
        inserted = [row for start in sorted(done) for row in done[start]]
        inserted_indices = [
            index for start in sorted(done) for index in range(start, start + len(done[start]))
        ]
        stored = set(inserted_indices)
        failed_indices = [index for index in range(end) if index not in stored]
        cause = failures[0][2]
        lines = [
            (
                f"rows {_ranges(builtins.list(range(start, start + count)))}"
                if count
                else f"reading rows[{start}]"
            )
            + f": {type(exc).__name__}: {exc}"
            for start, count, exc in sorted(failures, key=lambda failure: failure[0])
        ]
        message = (
            f"POST {path}: inserted {len(inserted)} rows; {len(failed_indices)} rows "
            f"({_ranges(failed_indices) if failed_indices else 'none'}) were not: "
            + "; ".join(lines)
        )
        error = PartialInsertError(
            message,
            inserted=inserted,
            inserted_indices=inserted_indices,
            failed_indices=failed_indices,
            cause=cause,
        )
        error.__cause__ = cause
        return error

    def list(
        self,
        table_id: str,
        *,
        limit: int = 20,
        max_items: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> AsyncPager[Row]:
        """The table's rows (``GET /v1/tables/{id}/rows``) as an :class:`AsyncPager`.

        Pages of ``limit`` are requested with ``offset``; as the API does not document
        paging here, the pager also stops (without repeating a row) when the server ignores
        ``limit``/``offset`` (see :class:`GuardedPager`). ``max_items`` stops early.
        """
        path = f"/v1/tables/{segment('table_id', table_id)}/rows"

        async def fetch(offset: int, size: int) -> builtins.list[Row]:
            params = {"limit": size, "offset": offset}
            data = await self._transport.request("GET", path, params=params, timeout=timeout)
            return structure_list(data, "rows", Row, method="GET", path=path)

        return GuardedPager(fetch, page_size=limit, max_items=max_items, key=lambda r: r.id)

    async def update(
        self,
        table_id: str,
        row_id: str,
        values: Mapping[str, Any],
        *,
        timeout: Optional[float] = None,
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
        data = await self._transport.request("PATCH", path, json=dict(body), timeout=timeout)
        return structure(data, Row, method="PATCH", path=path)

    async def delete(self, table_id: str, row_id: str, *, timeout: Optional[float] = None) -> None:
        """Delete one row (``DELETE /v1/tables/{id}/rows/{row_id}``)."""
        path = f"/v1/tables/{segment('table_id', table_id)}/rows/{segment('row_id', row_id)}"
        await self._transport.request("DELETE", path, timeout=timeout)
