"""Batched row inserts and their partial-failure bookkeeping (``tables.rows.insert``).

:class:`BatchedInsert` reads the caller's rows, sends them in batches of at most
:data:`MAX_ROWS_PER_INSERT` with a bounded number in flight, and keeps what each batch
stored or why it failed; :func:`partial_insert_error` turns that record into the
:class:`~crewship_async.errors.PartialInsertError` the caller sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sized
from typing import Any, Optional

import anyio

from .._convert import structure, structure_list
from .._deadline import Deadline
from .._extras import Extras
from ..errors import APITimeoutError, PartialInsertError, ResponseError
from ..models.tables import Row
from ._sender import Sender

__all__ = ["MAX_ROWS_PER_INSERT", "BatchedInsert", "partial_insert_error"]

#: The most rows the API takes in one insert request.
MAX_ROWS_PER_INSERT = 100

_END = object()

#: A failed batch: ``(index of its first row, rows in it, error)``. A count of 0 means
#: the failure was reading the row at that index.
Failure = tuple[int, int, Exception]


def _check_row(item: object, index: int) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise TypeError(
            f"rows[{index}] must be a mapping (a JSON object), got {type(item).__name__}"
        )
    for key in item:
        if not isinstance(key, str):
            raise TypeError(f"rows[{index}] keys must be strings, got {key!r}")
    return dict(item)


def _parse_inserted(data: Any, count: int, *, path: str) -> list[Row]:
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


class BatchedInsert:
    """One ``tables.rows.insert`` call: ``rows`` sent to ``path`` in batches.

    Raises ``TypeError`` at once when ``rows`` is neither a mapping nor an iterable of
    them. ``concurrency`` batches at most are in flight; ``deadline`` bounds the whole
    insert (each batch is sent with the time left).
    """

    def __init__(
        self,
        sender: Sender,
        path: str,
        rows: object,
        *,
        concurrency: int,
        deadline: Deadline,
        extras: Extras,
    ) -> None:
        self._sender = sender
        self._extras = extras
        self._path = path
        self._reader = _RowReader(rows)
        self._concurrency = concurrency
        self._deadline = deadline
        #: The stored rows of each batch, by the index of its first row.
        self.done: dict[int, list[Row]] = {}
        #: The failed batches (and failed reads), in the order they failed.
        self.failures: list[Failure] = []
        #: How many rows were read from the input.
        self.read = 0
        self._slots = anyio.Semaphore(concurrency)
        self._stop = anyio.Event()

    async def _send(self, start: int, batch: list[dict[str, Any]]) -> None:
        path = self._path
        try:
            left = self._deadline.remaining()
            if left is not None and left <= 0:
                raise APITimeoutError(
                    f"POST {path}: the insert's timeout of {self._deadline.seconds:g}s "
                    "passed before this batch was sent",
                    method="POST",
                    path=path,
                )
            count = len(batch)

            def parse(data: Any) -> list[Row]:
                return _parse_inserted(data, count, path=path)

            self.done[start] = await self._sender(
                "POST", path, parse, json=batch, timeout=left, extras=self._extras
            )
        except Exception as exc:
            self.failures.append((start, len(batch), exc))
            self._stop.set()
        finally:
            self._slots.release()

    async def run(self) -> list[Row]:
        """Send every batch and return the stored rows in input order.

        Raises what went wrong before the first batch was sent as it is (nothing was
        sent); any later failure stops the reading, lets the batches in flight finish and
        raises :class:`PartialInsertError` (see :func:`partial_insert_error`).
        """
        slots, stop, reader = self._slots, self._stop, self._reader
        sent = False
        unsent_error: Optional[Exception] = None
        async with anyio.create_task_group() as group:
            exhausted = False
            while not (stop.is_set() or exhausted):
                await slots.acquire()
                if stop.is_set():
                    slots.release()
                    break
                start = self.read
                batch: list[dict[str, Any]] = []
                try:
                    while len(batch) < MAX_ROWS_PER_INSERT:
                        item = await reader.next()
                        if item is _END:
                            exhausted = True
                            break
                        self.read += 1
                        batch.append(_check_row(item, self.read - 1))
                except Exception as exc:
                    slots.release()
                    if not sent:
                        unsent_error = exc  # raised below: nothing was sent
                        break
                    self.failures.append((start, self.read - start, exc))
                    stop.set()
                    break
                if not batch or stop.is_set():
                    # Empty: the input is exhausted. Stop: a batch failed while this one
                    # was read; its rows count as read and not inserted.
                    slots.release()
                    break
                sent = True
                group.start_soon(self._send, start, batch)
        if unsent_error is not None:
            raise unsent_error
        if not self.failures:
            return [row for start in sorted(self.done) for row in self.done[start]]
        end = self.read if reader.total is None else reader.total
        raise partial_insert_error(self._path, self.done, self.failures, end)


def _ranges(indices: list[int], limit: int = 6) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (at most ``limit`` ranges, then ``...``)."""
    spans: list[str] = []
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


def partial_insert_error(
    path: str, done: dict[int, list[Row]], failures: list[Failure], end: int
) -> PartialInsertError:
    """The error of an insert that stored some batches and not others.

    ``done`` maps each stored batch's first index to its rows, ``failures`` lists what
    failed, ``end`` is one past the last index that counts as not inserted when not stored.
    ``cause`` (also ``__cause__``) is the first failure; the message names every one.
    """
    inserted = [row for start in sorted(done) for row in done[start]]
    inserted_indices = [
        index for start in sorted(done) for index in range(start, start + len(done[start]))
    ]
    stored = set(inserted_indices)
    failed_indices = [index for index in range(end) if index not in stored]
    cause = failures[0][2]
    lines = [
        (
            f"rows {_ranges(list(range(start, start + count)))}"
            if count
            else f"reading rows[{start}]"
        )
        + f": {type(exc).__name__}: {exc}"
        for start, count, exc in sorted(failures, key=lambda failure: failure[0])
    ]
    message = (
        f"POST {path}: inserted {len(inserted)} rows; {len(failed_indices)} rows "
        f"({_ranges(failed_indices) if failed_indices else 'none'}) were not: " + "; ".join(lines)
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
