"""``client.runs``: create, inspect, cancel, stream and wait for runs."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from .._checks import check_optional_seconds, check_seconds
from .._extras import Extras, extras_of
from .._pagination import AsyncPager, validate_page_size
from .._streams import EventStream
from .._transport import Transport
from ..models.runs import (
    CancelResult,
    Environment,
    EnvironmentName,
    Run,
    RunCreated,
    RunOutcome,
    RunRequest,
    RunStatus,
    RunStatusName,
    check_run_status,
)
from ._common import (
    FILTERED_QUERY,
    check_environment,
    check_json_object,
    check_optional_str,
    segment,
)
from ._sender import Sender, as_list_of, as_model, page_fetcher

if TYPE_CHECKING:
    # The fan-out engine is imported by create_many, not with the package.
    from .._fanout import FanOut, ProgressCallback, ProgressOption, RequestSource

__all__ = ["Runs"]

# The same value as ``_fanout.DEFAULT_CONCURRENCY`` (a test keeps the two equal).
DEFAULT_CONCURRENCY = 64


def _run_body(deployment_id: object, input: object, environment: object) -> dict[str, Any]:
    """The JSON body of ``POST /v1/runs``, its arguments checked."""
    check_optional_str("deployment_id", deployment_id)
    if deployment_id is None:
        raise ValueError("deployment_id is required")
    body: dict[str, Any] = {
        "deployment_id": deployment_id,
        "environment": check_environment(environment),
    }
    payload = check_json_object("input", input)
    if payload is not None:
        body["input"] = payload
    return body


class Runs:
    """Operations on runs. Reached as ``client.runs``."""

    def __init__(self, transport: Transport, *, idle_timeout: Optional[float]) -> None:
        self._transport = transport
        self._send = Sender(transport)
        self._idle_timeout = idle_timeout

    async def create(
        self,
        deployment_id: str,
        *,
        input: Optional[Mapping[str, Any]] = None,
        environment: Union[Environment, EnvironmentName] = "production",
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> RunCreated:
        """Start a run of ``deployment_id`` (``POST /v1/runs``) and return its ids.

        The run executes asynchronously; follow it with :meth:`stream` or :meth:`wait`.
        Raises ``ValueError``/``TypeError`` before sending anything for an empty id, an
        environment other than production/staging, or an input that is not a JSON object.
        A POST whose connection failed after sending is never replayed: that raises
        :class:`APIConnectionError` saying the run may or may not exist.
        ``extra_headers``/``extra_query`` are added to this request (every method takes
        them; see :mod:`crewship_async._extras` for what is refused).
        """
        body = _run_body(deployment_id, input, environment)
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(RunCreated, "POST", "/v1/runs")
        return await self._send(
            "POST", "/v1/runs", parse, json=body, timeout=timeout, extras=extras
        )

    async def get(
        self,
        run_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Run:
        """The run's current state (``GET /v1/runs/{id}``); :class:`NotFoundError` if unknown."""
        path = f"/v1/runs/{segment('run_id', run_id)}"
        extras = extras_of(extra_headers, extra_query)
        return await self._send(
            "GET", path, as_model(Run, "GET", path), timeout=timeout, extras=extras
        )

    def list(
        self,
        deployment_id: Optional[str] = None,
        status: Union[RunStatus, RunStatusName, None] = None,
        *,
        limit: int = 20,
        max_items: Optional[int] = None,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> AsyncPager[Run]:
        """Runs, newest first, filtered by deployment and status (``GET /v1/runs``).

        ``status`` is a :class:`RunStatus` or its value (``"pending"``, ``"running"``,
        ``"succeeded"``, ``"failed"``, ``"canceled"``); another string raises
        ``ValueError``, a non-string ``TypeError``, here, before any request. The
        :class:`AsyncPager` fetches pages of ``limit`` as it is iterated (``max_items``
        stops early), and stops without repeating a run when the server ignores
        ``limit``/``offset`` (the API does not document this paging).
        """
        check_optional_str("deployment_id", deployment_id)
        wanted = None if status is None else check_run_status(status)
        validate_page_size(limit)
        given = (("deployment_id", deployment_id), ("status", wanted))
        fetch = page_fetcher(
            self._send,
            "/v1/runs",
            as_list_of("runs", Run, "GET", "/v1/runs"),
            timeout=timeout,
            extras=extras_of(extra_headers, extra_query, own_query=FILTERED_QUERY),
            filters={name: value for name, value in given if value is not None},
        )
        # Imported here: the client imports this module up front, the guard is rarely used.
        from ._support import GuardedPager

        return GuardedPager(fetch, page_size=limit, max_items=max_items, key=lambda run: run.id)

    async def cancel(
        self,
        run_id: str,
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> CancelResult:
        """Cancel a pending or running run (``POST /v1/runs/{id}/cancel``).

        A run that already finished gives :class:`BadRequestError` (the API's answer).
        """
        path = f"/v1/runs/{segment('run_id', run_id)}/cancel"
        extras = extras_of(extra_headers, extra_query)
        parse = as_model(CancelResult, "POST", path)
        return await self._send("POST", path, parse, timeout=timeout, extras=extras)

    def stream(
        self,
        run_id: str,
        *,
        last_event_id: Optional[str] = None,
        idle_timeout: Optional[float] = None,
        max_reconnects: int = 5,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> EventStream:
        """The run's events as an :class:`EventStream` (``GET /v1/runs/{id}/events``).

        Use as ``async with client.runs.stream(run_id) as events: async for event in
        events``. ``last_event_id`` resumes after that event. ``idle_timeout`` (seconds
        without a delivered event before :class:`StreamError`): ``None`` (the default) means
        the client's, ``math.inf`` disables it. See :class:`EventStream` for reconnects and
        errors.
        """
        path = f"/v1/runs/{segment('run_id', run_id)}/events"
        check_optional_str("last_event_id", last_event_id)
        idle = self._idle_timeout if idle_timeout is None else idle_timeout
        return EventStream(
            self._transport,
            path,
            last_event_id=last_event_id,
            idle_timeout=idle,
            max_reconnects=max_reconnects,
            extras=extras_of(extra_headers, extra_query),
        )

    async def wait(
        self,
        run_id: str,
        *,
        timeout: Optional[float] = None,
        poll_interval: float = 2.0,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> Run:
        """Wait until the run is terminal and return it, whatever its status.

        Follows the event stream; when the stream cannot be had or ends without a terminal
        state, polls ``GET /v1/runs/{id}`` every ``poll_interval`` seconds, growing with
        jitter up to 15 s. Past ``timeout`` seconds (``None``: no limit) raises
        :class:`APITimeoutError`. :class:`NotFoundError` and other client errors propagate.
        Raises ``TypeError`` for a ``timeout`` or ``poll_interval`` that is not a number
        (``bool`` included) and ``ValueError`` for one that is not finite and > 0, before
        sending anything. ``extra_headers``/``extra_query`` go with every read and stream.
        """
        path = f"/v1/runs/{segment('run_id', run_id)}"
        interval = check_seconds("poll_interval", poll_interval)
        limit = check_optional_seconds("timeout", timeout)
        extras_of(extra_headers, extra_query)  # checked before anything is sent
        extra = {"extra_headers": extra_headers, "extra_query": extra_query}
        # Imported here, like the fan-out: the client imports this module up front.
        from ._run_wait import wait_within

        return await wait_within(self, run_id, path, limit, interval, extra)

    def create_many(
        self,
        requests: RequestSource,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        ordered: bool = False,
        fail_fast: bool = False,
        max_pending: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        progress: ProgressOption = False,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> FanOut:
        """Create a run for every item of ``requests``, ``concurrency`` at a time.

        ``requests`` is any iterable or async iterable of :class:`RunRequest` or mappings
        with its fields (``deployment_id``, ``input``, ``environment``), pulled lazily
        (memory stays flat for any length; a sync iterable is pulled on the event loop, so
        it must not block). Returns a :class:`FanOut`:
        iterate it, preferably as ``async with client.runs.create_many(reqs) as outcomes:
        async for outcome in outcomes``, for one :class:`RunOutcome` ``(index, request,
        run, error)`` per item, as each finishes, or in input order with ``ordered=True``
        (``max_pending``, default ``4 * concurrency``, bounds how far it runs ahead of the
        slowest unyielded item). A bad item or a failed request gives an error outcome and
        the batch goes on; ``fail_fast=True`` cancels what is in flight and raises the
        first error instead. A 429 pauses every request until its ``Retry-After`` has
        passed and halves the concurrency, which then recovers step by step.
        ``on_progress``, ``progress`` (a rich bar, or a
        :class:`~crewship_async._fanout.ProgressReporter`) and ``timeout`` (each item's
        deadline across its attempts): see :class:`FanOut`. ``extra_headers`` and
        ``extra_query`` go with every request.

        Raises ``TypeError``/``ValueError`` here for invalid arguments; see
        :class:`FanOut` for what iterating raises and how it cleans up.
        """
        from .._fanout import FanOut

        send = _fan_out_sender(self._transport, extras_of(extra_headers, extra_query))
        return FanOut(
            self._transport,
            send,
            requests,
            concurrency=concurrency,
            ordered=ordered,
            fail_fast=fail_fast,
            max_pending=max_pending,
            on_progress=on_progress,
            progress=progress,
            timeout=timeout,
        )

    async def create_all(
        self,
        requests: RequestSource,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        ordered: bool = False,
        fail_fast: bool = False,
        max_pending: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        progress: ProgressOption = False,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> builtins.list[RunOutcome]:
        """Like :meth:`create_many`, but wait for every outcome and return them in input
        order (``ordered`` only decides the order ``on_progress`` and the bar see). For
        batches that fit in memory. Raises what iterating :meth:`create_many` raises; on
        any exception or cancellation the requests in flight are cancelled first.
        """
        from .._fanout import collect

        return await collect(
            self.create_many(
                requests,
                concurrency=concurrency,
                ordered=ordered,
                fail_fast=fail_fast,
                max_pending=max_pending,
                on_progress=on_progress,
                progress=progress,
                timeout=timeout,
                extra_headers=extra_headers,
                extra_query=extra_query,
            )
        )


def _fan_out_sender(
    transport: Transport, extras: Extras
) -> Callable[[RunRequest, Optional[float]], Awaitable[RunCreated]]:
    """How ``create_many`` sends one item: a 429 is raised at once (``retry_rate_limits``
    off), for the fan-out's shared gate to pause every request."""
    sender = Sender(transport)
    parse = as_model(RunCreated, "POST", "/v1/runs")

    async def send(request: RunRequest, timeout: Optional[float]) -> RunCreated:
        body = _run_body(request.deployment_id, request.input, request.environment)
        return await sender(
            "POST",
            "/v1/runs",
            parse,
            json=body,
            timeout=timeout,
            extras=extras,
            retry_rate_limits=False,
        )

    return send
