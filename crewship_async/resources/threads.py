"""``client.threads``: stateful conversations, their history, and runs inside them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Optional, Union

import anyio

from .._checks import check_optional_seconds, check_seconds
from .._convert import structure_list
from .._deadline import Deadline
from .._extras import extras_of
from .._pagination import AsyncPager, validate_page_size
from .._retry import poll_delays
from .._transport import Transport
from ..errors import APITimeoutError, ConflictError, ResponseError, ThreadBusyError
from ..models._choices import check_choice
from ..models.runs import Environment, EnvironmentName, RunCreated
from ..models.threads import (
    ON_BUSY_CHOICES,
    Checkpoint,
    OnBusy,
    Thread,
    ThreadRunResult,
    ThreadStatus,
    ThreadStatusName,
    check_thread_status,
)
from ._common import FILTERED_QUERY, PAGED_QUERY, check_environment, check_json_object, segment
from ._sender import Sender, as_list_of, as_model, as_nothing
from ._support import GuardedPager, require_str
from .runs import Runs

__all__ = ["ON_BUSY_CHOICES", "OnBusy", "ThreadRuns", "Threads"]

logger: logging.Logger = logging.getLogger("crewship_async")


# How often a busy thread is polled: the first poll right after the 409, then sleeps
# growing from the initial to the maximum interval, each jittered by +/-20 %.
_BUSY_POLL_INITIAL = 0.5
_BUSY_POLL_MAX = 5.0
_BUSY_POLL_GROWTH = 1.5

_STUCK_STATUSES = frozenset({ThreadStatus.ERROR, ThreadStatus.INTERRUPTED})
_HISTORY_KEYS = ("history", "checkpoints")


def _busy_error(
    exc: ConflictError, thread_id: str, message: Optional[str] = None
) -> ThreadBusyError:
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    run_id = error.get("run_id") if isinstance(error, dict) else None
    return ThreadBusyError(
        exc.message if message is None else message,
        thread_id=thread_id,
        run_id=run_id if isinstance(run_id, str) else None,
        status_code=exc.status_code,
        method=exc.method,
        path=exc.path,
        code=exc.code,
        body=exc.body,
        request_id=exc.request_id,
    )


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

        async def fetch(offset: int, size: int) -> list[Thread]:
            params = {**base, "limit": size, "offset": offset}
            return await self._send(
                "GET", path, parse, params=params, timeout=timeout, extras=extras
            )

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

        async def fetch(offset: int, size: int) -> list[Checkpoint]:
            params = {"limit": size, "offset": offset}
            return await self._send(
                "GET", path, parse, params=params, timeout=timeout, extras=extras
            )

        return GuardedPager(
            fetch, page_size=limit, max_items=max_items, key=lambda item: item.checkpoint_id
        )


class ThreadRuns:
    """Runs inside a thread. Reached as ``client.threads.runs``."""

    def __init__(self, transport: Transport, *, threads: Threads, runs: Runs) -> None:
        self._send = Sender(transport)
        self._threads = threads
        self._runs = runs

    async def create(
        self,
        thread_id: str,
        *,
        input: Optional[Mapping[str, Any]] = None,
        environment: Union[Environment, EnvironmentName] = "production",
        on_busy: OnBusy = "raise",
        busy_timeout: Optional[float] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> RunCreated:
        """Start a run in the thread (``POST /v1/threads/{id}/runs``) and return its ids.

        A thread runs one run at a time; the API answers 409 while it is busy.

        * ``on_busy="raise"`` (default): the 409 raises :class:`ThreadBusyError` (a
          :class:`ConflictError`) with ``thread_id``, the server's message, ``status_code``,
          ``code``, ``body`` and ``request_id``. Nothing is retried.
        * ``on_busy="wait"``: on a 409 the thread is polled (``GET /v1/threads/{id}``, at
          once, then with growing jittered intervals) until it is ``idle``; then the POST is
          sent once more. If another run took the thread first (409 again), it waits again.
          The POST is sent exactly once per observed idle, never in a loop while the thread
          is busy. A thread found in ``error`` or ``interrupted`` will not become idle by
          waiting: that ends the wait with :class:`ThreadBusyError` (message naming the
          status; the other attributes are those of the last 409). An unknown status is
          waited on like ``busy``. Waiting longer than ``busy_timeout`` seconds (counted from
          the first 409; ``None``: no limit) raises :class:`APITimeoutError`, as does
          passing ``timeout``; no run was created then.

        ``timeout`` is the deadline of the whole call, polls and POSTs included; ``None``
        gives each request the client's timeout and bounds the wait only by
        ``busy_timeout``. Raises ``ValueError``/``TypeError`` before sending for a bad id,
        ``environment``, ``input``, ``on_busy`` or timeout. A POST that may have reached the
        server is never replayed (see :meth:`Runs.create`).
        """
        path = f"/v1/threads/{segment('thread_id', thread_id)}/runs"
        body: dict[str, Any] = {"environment": check_environment(environment)}
        payload = check_json_object("input", input)
        if payload is not None:
            body["input"] = payload
        check_choice("on_busy", on_busy, ON_BUSY_CHOICES)
        busy_limit = check_optional_seconds("busy_timeout", busy_timeout)
        deadline = Deadline(check_optional_seconds("timeout", timeout))
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(RunCreated, "POST", path)
        busy_deadline: Optional[Deadline] = None
        while True:
            left = deadline.remaining()
            if left is not None and left <= 0:
                raise APITimeoutError(
                    f"POST {path}: the call's timeout of {deadline.seconds:g}s passed while "
                    f"thread {thread_id} was busy; no run was created",
                    method="POST",
                    path=path,
                )
            try:
                return await self._send("POST", path, parse, json=body, timeout=left, extras=extras)
            except ConflictError as exc:
                busy = _busy_error(exc, thread_id)
                if on_busy == "raise":
                    raise busy from None
            if busy_deadline is None:
                busy_deadline = Deadline(busy_limit)  # counted from the first 409
            logger.debug("threads.runs.create(%s): thread busy; waiting for idle", thread_id)
            await self._wait_until_idle(
                thread_id, busy, path=path, deadline=deadline, busy_deadline=busy_deadline
            )

    async def _wait_until_idle(
        self,
        thread_id: str,
        busy: ThreadBusyError,
        *,
        path: str,
        deadline: Deadline,
        busy_deadline: Deadline,
    ) -> None:
        end = min(deadline.at, busy_deadline.at)
        with anyio.CancelScope(deadline=end) as scope:
            await self._poll_until_idle(thread_id, busy)
        if not scope.cancelled_caught:
            return
        if busy_deadline.bounded and busy_deadline.at == end:
            what = f"busy_timeout of {busy_deadline.seconds:g}s"
        else:
            what = f"call's timeout of {deadline.seconds:g}s"
        raise APITimeoutError(
            f"POST {path}: thread {thread_id} was still not idle when the {what} passed; "
            "no run was created",
            method="POST",
            path=path,
        ) from busy

    async def _poll_until_idle(self, thread_id: str, busy: ThreadBusyError) -> None:
        delays = poll_delays(_BUSY_POLL_INITIAL, growth=_BUSY_POLL_GROWTH, ceiling=_BUSY_POLL_MAX)
        while True:
            thread = await self._threads.get(thread_id)
            if thread.status == ThreadStatus.IDLE:
                return
            if thread.status in _STUCK_STATUSES:
                raise _busy_error(
                    busy,
                    thread_id,
                    f"thread {thread_id} is now {str(thread.status)!r}, not idle: waiting "
                    f"cannot make it idle, so no run was created (the 409 said: {busy.message})",
                )
            await anyio.sleep(next(delays))

    async def create_and_wait(
        self,
        thread_id: str,
        *,
        input: Optional[Mapping[str, Any]] = None,
        environment: Union[Environment, EnvironmentName] = "production",
        on_busy: OnBusy = "raise",
        busy_timeout: Optional[float] = None,
        timeout: Optional[float] = None,
        poll_interval: float = 2.0,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> ThreadRunResult:
        """Start a run in the thread, wait until it is terminal, and read the thread again.

        Returns ``ThreadRunResult(run, thread)`` (a named tuple: ``run, thread = ...``):
        the terminal :class:`Run`, whatever its status, and the thread as read once after
        the run ended. ``on_busy`` and ``busy_timeout`` are those of :meth:`create`; the
        wait is :meth:`Runs.wait` with ``poll_interval``. ``timeout`` bounds the whole call;
        past it :class:`APITimeoutError` is raised, naming the run id when the run was
        created. Arguments are checked before anything is sent. ``extra_headers`` and
        ``extra_query`` go with the POST and the final read of the thread.
        """
        segment("thread_id", thread_id)
        limit = check_optional_seconds("timeout", timeout)
        interval = check_seconds("poll_interval", poll_interval)
        deadline = Deadline(limit)
        created = await self.create(
            thread_id,
            input=input,
            environment=environment,
            on_busy=on_busy,
            busy_timeout=busy_timeout,
            timeout=limit,
            extra_headers=extra_headers,
            extra_query=extra_query,
        )
        run = await self._runs.wait(
            created.run_id,
            timeout=self._left(
                deadline,
                f"run {created.run_id} was created but",
                f"/v1/runs/{segment('run_id', created.run_id)}",
            ),
            poll_interval=interval,
        )
        thread = await self._threads.get(
            thread_id,
            timeout=self._left(
                deadline,
                f"run {run.id} ended with status {str(run.status)!r} but",
                f"/v1/threads/{segment('thread_id', thread_id)}",
            ),
            extra_headers=extra_headers,
            extra_query=extra_query,
        )
        return ThreadRunResult(run, thread)

    @staticmethod
    def _left(deadline: Deadline, what: str, path: str) -> Optional[float]:
        """The seconds ``deadline`` leaves for the next step; ``APITimeoutError`` if none."""
        left = deadline.remaining()
        if left is None or left > 0:
            return left
        raise APITimeoutError(
            f"GET {path}: {what} the call's timeout of {deadline.seconds:g}s passed",
            method="GET",
            path=path,
        )
