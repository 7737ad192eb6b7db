"""``client.threads.runs``: runs inside a thread, the wait for a busy thread to become idle,
and ``create_and_wait``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

import anyio

from .._checks import check_optional_seconds, check_seconds
from .._deadline import Deadline
from .._extras import extras_of
from .._retry import poll_delays
from .._transport import Transport
from ..errors import APITimeoutError, ConflictError, ThreadBusyError
from ..models._choices import check_choice
from ..models.runs import Environment, EnvironmentName, RunCreated
from ..models.threads import (
    ON_BUSY_CHOICES,
    OnBusy,
    ThreadRunResult,
    ThreadStatus,
)
from ._common import check_environment, check_json_object, segment
from ._sender import Sender, as_model
from .runs import Runs

if TYPE_CHECKING:
    from .threads import Threads

__all__ = ["ThreadRuns"]

logger: logging.Logger = logging.getLogger("crewship_async")


# How often a busy thread is polled: the first poll right after the 409, then sleeps
# growing from the initial to the maximum interval, each jittered by +/-20 %.
_BUSY_POLL_INITIAL = 0.5
_BUSY_POLL_MAX = 5.0
_BUSY_POLL_GROWTH = 1.5

_STUCK_STATUSES = frozenset({ThreadStatus.ERROR, ThreadStatus.INTERRUPTED})


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
        ``extra_query`` go with every request it makes.
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
            extra_headers=extra_headers,
            extra_query=extra_query,
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
