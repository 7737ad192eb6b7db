"""``client.threads``: stateful conversations and their history (the runs inside them are
:mod:`~crewship_async.resources.thread_runs`, re-exported here)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Optional, Union

from .._convert import structure_list
from .._extras import extras_of
from .._pagination import AsyncPager, validate_page_size
from .._transport import Transport
from ..errors import ResponseError
from ..models.threads import (
    ON_BUSY_CHOICES,
    Checkpoint,
    OnBusy,
    Thread,
    ThreadStatus,
    ThreadStatusName,
    check_thread_status,
)
from ._common import FILTERED_QUERY, PAGED_QUERY, check_json_object, segment
from ._sender import Sender, as_list_of, as_model, as_nothing, page_fetcher
from ._support import GuardedPager, require_str
from .runs import Runs
from .thread_runs import ThreadRuns

__all__ = ["ON_BUSY_CHOICES", "OnBusy", "ThreadRuns", "Threads"]

logger: logging.Logger = logging.getLogger("crewship_async")


_HISTORY_KEYS = ("history", "checkpoints")


def _parse_history(data: Any, *, method: str, path: str) -> list[Checkpoint]:
    """Checkpoints from a bare array, or from an object holding one under a known key."""
    if isinstance(data, dict):
        for key in _HISTORY_KEYS:
            if key in data:
                return structure_list(data, key, Checkpoint, method=method, path=path)
        raise ResponseError(
            f"{method} {path}: expected a list of checkpoints, or an object holding one under "
            f"'history' or 'checkpoints'; got an object with keys {sorted(data)[:10]}",
            method=method,
            path=path,
        )
    if isinstance(data, list):
        return structure_list(data, "history", Checkpoint, method=method, path=path)
    raise ResponseError(
        f"{method} {path}: expected a list of checkpoints, got {type(data).__name__}",
        method=method,
        path=path,
    )


class Threads:
    """Operations on threads. Reached as ``client.threads``; runs inside a thread are
    started through :attr:`runs` (a :class:`ThreadRuns`)."""

    def __init__(self, transport: Transport, *, runs: Runs) -> None:
        self._send = Sender(transport)
        self.runs: ThreadRuns = ThreadRuns(transport, threads=self, runs=runs)

    async def create(
        self,
        deployment_id: str,
        *,
        metadata: Optional[Mapping[str, Any]] = None,
        values: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Thread:
        """Create an idle thread of ``deployment_id`` (``POST /v1/threads``).

        ``metadata`` and ``values`` (the initial state) are JSON objects; left at ``None``
        they are not sent. Raises ``ValueError``/``TypeError`` before sending for an empty
        id or a non-object argument; :class:`NotFoundError` for an unknown deployment.
        """
        body: dict[str, Any] = {"deployment_id": require_str("deployment_id", deployment_id)}
        for name, value in (("metadata", metadata), ("values", values)):
            checked = check_json_object(name, value)
            if checked is not None:
                body[name] = checked
        path = "/v1/threads"
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(Thread, "POST", path)
        return await self._send("POST", path, parse, json=body, timeout=timeout, extras=extras)

    async def get(
        self,
        thread_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Thread:
        """The thread and its current state (``GET /v1/threads/{id}``);
        :class:`NotFoundError` if unknown."""
        path = f"/v1/threads/{segment('thread_id', thread_id)}"
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(Thread, "GET", path)
        return await self._send("GET", path, parse, timeout=timeout, extras=extras)

    def list(
        self,
        deployment_id: str,
        *,
        status: Union[ThreadStatus, ThreadStatusName, None] = None,
        limit: int = 20,
        max_items: Optional[int] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> AsyncPager[Thread]:
        """The threads of ``deployment_id``, optionally only those in ``status``
        (``GET /v1/threads``; a :class:`ThreadStatus` or its value: ``"idle"``, ``"busy"``,
        ``"interrupted"``, ``"error"``; another string raises ``ValueError``, a non-string
        ``TypeError``).

        Returns an :class:`AsyncPager` walking every page of ``limit`` threads with
        ``offset`` as it is iterated; ``max_items`` stops early. Arguments are checked here,
        before any request.
        """
        base: dict[str, Any] = {"deployment_id": require_str("deployment_id", deployment_id)}
        if status is not None:
            base["status"] = check_thread_status(status)
        validate_page_size(limit)
        path = "/v1/threads"
        extras = extras_of(extra_headers, extra_query, own_query=FILTERED_QUERY)
        parse = as_list_of("threads", Thread, "GET", path)

        fetch = page_fetcher(self._send, path, parse, timeout=timeout, extras=extras, filters=base)

        return AsyncPager(fetch, page_size=limit, max_items=max_items)

    async def delete(
        self,
        thread_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Delete the thread (``DELETE /v1/threads/{id}``). The API does not say whether a
        busy thread can be deleted; a refusal surfaces as :class:`ConflictError`."""
        path = f"/v1/threads/{segment('thread_id', thread_id)}"
        extras = extras_of(extra_headers, extra_query)
        return await self._send("DELETE", path, as_nothing, timeout=timeout, extras=extras)

    async def copy(
        self,
        thread_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Thread:
        """A new thread holding a copy of this one's state (``POST /v1/threads/{id}/copy``)."""
        path = f"/v1/threads/{segment('thread_id', thread_id)}/copy"
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(Thread, "POST", path)
        return await self._send("POST", path, parse, timeout=timeout, extras=extras)

    def history(
        self,
        thread_id: str,
        *,
        limit: int = 20,
        max_items: Optional[int] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> AsyncPager[Checkpoint]:
        """The thread's checkpoints (``GET /v1/threads/{id}/history``), in the server's order.

        The API documents neither the shape nor the paging of this answer. A bare JSON array
        is accepted, and so is an object holding it under ``history`` or ``checkpoints``;
        anything else raises :class:`ResponseError`. Pages are requested with ``limit`` and
        ``offset`` like the other listings (so a server that pages is walked to the end),
        guarded against a server that ignores them: a page longer than ``limit`` is taken as
        the whole history and ends the iteration, and a page that repeats checkpoints
        already yielded (same ``checkpoint_id``, or the same page as the first) ends it too.
        No checkpoint is yielded twice and the iteration always ends.
        """
        path = f"/v1/threads/{segment('thread_id', thread_id)}/history"
        validate_page_size(limit)
        extras = extras_of(extra_headers, extra_query, own_query=PAGED_QUERY)

        def parse(data: Any) -> list[Checkpoint]:
            return _parse_history(data, method="GET", path=path)

        fetch = page_fetcher(self._send, path, parse, timeout=timeout, extras=extras)

        return GuardedPager(
            fetch, page_size=limit, max_items=max_items, key=lambda item: item.checkpoint_id
        )
