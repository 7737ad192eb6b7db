"""The resources as ``client.with_raw_response`` shows them: each single-request method
returns a :class:`~crewship_async.RawResponse` instead of its model.

Every method here is the resource's own method, called with the same arguments on a twin
of the resource whose calls are raw (:func:`~crewship_async.resources._sender.raw_twin`).
Listings, streams, waits and batches are not here: they make many requests (or none yet),
so they have no single response to show; their models carry ``response_info`` as usual.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .._raw import raw_method
from ._sender import raw_twin
from .runs import Runs
from .table_rows import TableRows
from .tables import Tables
from .thread_runs import ThreadRuns
from .threads import Threads
from .webhooks import Webhooks

if TYPE_CHECKING:
    from .._client import AsyncCrewship

__all__ = [
    "ClientWithRawResponse",
    "RunsWithRawResponse",
    "TableRowsWithRawResponse",
    "TablesWithRawResponse",
    "ThreadRunsWithRawResponse",
    "ThreadsWithRawResponse",
    "WebhooksWithRawResponse",
]


class RunsWithRawResponse:
    """``client.with_raw_response.runs``."""

    def __init__(self, runs: Runs) -> None:
        self._resource = raw_twin(runs)

    @raw_method(Runs.create)
    def create(self) -> None:
        """:meth:`Runs.create`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Runs.get)
    def get(self) -> None:
        """:meth:`Runs.get`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Runs.cancel)
    def cancel(self) -> None:
        """:meth:`Runs.cancel`, returning its :class:`~crewship_async.RawResponse`."""


class ThreadRunsWithRawResponse:
    """``client.with_raw_response.threads.runs``."""

    def __init__(self, thread_runs: ThreadRuns) -> None:
        self._resource = raw_twin(thread_runs)

    @raw_method(ThreadRuns.create)
    def create(self) -> None:
        """:meth:`ThreadRuns.create`, returning the :class:`~crewship_async.RawResponse` of
        the POST that created the run (with ``on_busy="wait"``, the last one)."""


class ThreadsWithRawResponse:
    """``client.with_raw_response.threads``."""

    def __init__(self, threads: Threads) -> None:
        self._resource = raw_twin(threads)
        self.runs: ThreadRunsWithRawResponse = ThreadRunsWithRawResponse(threads.runs)

    @raw_method(Threads.create)
    def create(self) -> None:
        """:meth:`Threads.create`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Threads.get)
    def get(self) -> None:
        """:meth:`Threads.get`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Threads.copy)
    def copy(self) -> None:
        """:meth:`Threads.copy`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Threads.delete)
    def delete(self) -> None:
        """:meth:`Threads.delete`, returning its :class:`~crewship_async.RawResponse`
        (``parse()`` gives ``None``)."""


class TableRowsWithRawResponse:
    """``client.with_raw_response.tables.rows``."""

    def __init__(self, rows: TableRows) -> None:
        self._resource = raw_twin(rows)

    @raw_method(TableRows.update)
    def update(self) -> None:
        """:meth:`TableRows.update`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(TableRows.delete)
    def delete(self) -> None:
        """:meth:`TableRows.delete`, returning its :class:`~crewship_async.RawResponse`
        (``parse()`` gives ``None``)."""


class TablesWithRawResponse:
    """``client.with_raw_response.tables``."""

    def __init__(self, tables: Tables) -> None:
        self._resource = raw_twin(tables)
        self.rows: TableRowsWithRawResponse = TableRowsWithRawResponse(tables.rows)

    @raw_method(Tables.create)
    def create(self) -> None:
        """:meth:`Tables.create`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Tables.get)
    def get(self) -> None:
        """:meth:`Tables.get`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Tables.update)
    def update(self) -> None:
        """:meth:`Tables.update`, returning its :class:`~crewship_async.RawResponse`."""

    @raw_method(Tables.delete)
    def delete(self) -> None:
        """:meth:`Tables.delete`, returning its :class:`~crewship_async.RawResponse`
        (``parse()`` gives ``None``)."""


class WebhooksWithRawResponse:
    """``client.with_raw_response.webhooks``."""

    def __init__(self, webhooks: Webhooks) -> None:
        self._resource = raw_twin(webhooks)

    @raw_method(Webhooks.trigger)
    def trigger(self) -> None:
        """:meth:`Webhooks.trigger`, returning its :class:`~crewship_async.RawResponse`."""


class ClientWithRawResponse:
    """``client.with_raw_response``: the client's resources, raw. Built on first access
    of each resource, like the client's own; it shares the client's connection pool and
    settings (``client.with_options(...).with_raw_response`` works too). Each view is built
    once, like the client's resources."""

    def __init__(self, client: AsyncCrewship) -> None:
        self._client = client
        self.runs: RunsWithRawResponse = RunsWithRawResponse(client.runs)

    @cached_property
    def threads(self) -> ThreadsWithRawResponse:
        """The raw form of ``client.threads`` (and ``client.threads.runs``)."""
        return ThreadsWithRawResponse(self._client.threads)

    @cached_property
    def tables(self) -> TablesWithRawResponse:
        """The raw form of ``client.tables`` (and ``client.tables.rows``)."""
        return TablesWithRawResponse(self._client.tables)

    @cached_property
    def webhooks(self) -> WebhooksWithRawResponse:
        """The raw form of ``client.webhooks``."""
        return WebhooksWithRawResponse(self._client.webhooks)
