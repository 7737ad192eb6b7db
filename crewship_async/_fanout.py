"""Bounded fan-out: create many runs concurrently from any (async) iterable.

:meth:`Runs.create_many <crewship_async.resources.runs.Runs.create_many>` returns a
:class:`FanOut`: an async iterator of :class:`~crewship_async.models.runs.RunOutcome`, one
per input item, that is also an async context manager.

How it runs
-----------
One background asyncio task per fan-out owns an anyio task group holding a *pump* and
``concurrency`` long-lived workers (a task per item would cost more CPU than the request):

* The pump pulls the source one item at a time, and only while fewer items are unfinished
  than the current concurrency limit (``concurrency``, lowered after a 429) and fewer than
  ``max_pending`` finished outcomes wait to be yielded. So at most ``concurrency`` items
  have been pulled and not finished, and at most ``concurrency + max_pending`` have been
  pulled and not yielded, however long the source and even if the consumer stops reading:
  memory stays flat. A sync iterable is pulled with ``next()`` on the event loop, one item
  per step with a checkpoint in between; a sync generator that does blocking I/O blocks
  the loop while it does (wrap it in an async generator that offloads to a thread). The
  source is pulled in the background task and is never closed by the fan-out: wrap it in
  ``contextlib.aclosing`` if it must be closed when the batch stops early.
* The pump hands each pulled item to an idle worker. A worker validates its item
  (:meth:`RunRequest.coerce`, a bad item becomes an error outcome), takes a token of an
  :class:`anyio.CapacityLimiter`, waits for the rate-limit gate to open, and sends
  ``POST /v1/runs``. The token is held from then until the
  response (and given back between attempts), so the limiter alone decides how many
  requests are in flight.
* Finished outcomes are handed to the consumer as they complete, or, with
  ``ordered=True``, through a reorder buffer that releases them in input order.

Retries and rate limits
-----------------------
Each request goes through the transport and its :class:`RetryPolicy` (connection failures
before sending, 503 with ``Retry-After``; a POST that may have reached the server is never
replayed), except 429, which the transport hands back at once
(``retry_rate_limits=False``) so that the fan-out can react as a whole:

The gate and the AIMD controller are in :mod:`crewship_async._ratelimit`; the rich bar of
``progress=True`` is in :mod:`crewship_async._progress_bar`, imported only when asked for.

* **Shared gate.** A 429 closes a gate for its ``Retry-After`` (or the policy's backoff
  when the header is absent). No worker sends a request while the gate is closed, so one
  rate limit pauses the whole batch instead of every worker hammering on its own.
  Requests already on the wire finish normally.
* **AIMD.** The limiter's ``total_tokens`` starts at ``concurrency``. A 429 halves it
  (floor 1), once per congestion event: only a request sent after the last decrease can
  cause the next one, so a burst of 429s from one window halves once. Every
  ``current limit`` successes add one token back, up to ``concurrency`` (additive
  increase, like TCP congestion avoidance).
* A 429 means the server did not act on the request, so the worker sends the same item
  again once the gate opens: at most ``policy.max_retries`` times, never past the item's
  deadline, and not when ``Retry-After`` exceeds ``policy.max_retry_after``. Then the
  :class:`RateLimitError` becomes the item's error outcome.

``timeout`` (default: the client's) is each item's deadline across all of its attempts,
counted from its first send; waiting at the gate between attempts counts, waiting for a
concurrency slot before the first send does not. After a 429 the waits for the gate and
for a concurrency slot end at the deadline: the item's outcome is then an
:class:`~crewship_async.errors.APITimeoutError` saying it was not sent again (so no run
was created), and it is reported as soon as the gate is known to stay closed past the
deadline rather than when it opens. The gate itself only stays closed for the delay of a
429 answer, and no request is sent while it is closed, so no wait lasts forever.

Stopping early
--------------
:meth:`FanOut.stop_feeding` (and :meth:`FanOut.drain`, which also waits) stops the pump:
nothing more is pulled or started, the requests in flight finish and are yielded, and the
iteration ends normally, so a service shutting down records every run it created. With a
grace period, what is still in flight when it runs out is cancelled and reported as
:class:`~crewship_async.errors.APITimeoutError` outcomes: "may or may not exist" for a
request waiting for its response, "no run was created" for an item still waiting to be
sent.

Connection pool
---------------
The fan-out never queues requests inside the connection pool, where waiting would eat
into their deadlines: its concurrency is ``min(concurrency, pool size)`` where the pool
size is the client's ``max_connections`` (or the ``limit`` of a borrowed session's
connector; 0 means unlimited). For more than 100 requests in flight create the client
with ``AsyncCrewship(max_connections=...)`` at least as large as ``concurrency``.

Cleanup
-------
``async with client.runs.create_many(...) as outcomes`` is the deterministic form: leaving
the block, by the end of the iteration, ``break``, an exception or cancellation, cancels
the requests in flight and waits until every task is gone and every connection released.
A bare ``async for`` cleans up the same way when the iteration ends or raises (including
when the consuming task is cancelled while it waits for the next outcome); after a
``break`` call ``await outcomes.aclose()``, or the work is cancelled only when the
iterator is garbage-collected (at once in CPython when nothing else refers to it), the
same guarantee an async generator gives. A cancelled request may or may not have created
its run.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import weakref
from collections.abc import AsyncIterable, Awaitable, Iterable, Mapping, Sized
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import anyio
import anyio.lowlevel

from ._ratelimit import AIMD, RateGate
from ._retry import RetryPolicy
from .errors import APITimeoutError, ClientClosedError, RateLimitError
from .models.runs import RequestItem, RunCreated, RunOutcome, RunRequest

if TYPE_CHECKING:
    from ._progress_bar import RichBar
    from ._transport import Transport

__all__ = ["DEFAULT_CONCURRENCY", "PENDING_PER_SLOT", "FanOut", "collect"]

logger = logging.getLogger("crewship_async")

DEFAULT_CONCURRENCY = 64
#: ``max_pending`` defaults to this many finished outcomes per unit of concurrency.
PENDING_PER_SLOT = 4

Send = Callable[[RunRequest, Optional[float]], Awaitable[RunCreated]]
"""Creates one run: ``(request, timeout) -> RunCreated``; 429 must raise RateLimitError."""
ProgressCallback = Callable[[int, int, int], object]
RequestSource = Union[Iterable[RequestItem], AsyncIterable[RequestItem]]
"""What ``create_many`` takes: any iterable or async iterable of :class:`RunRequest` or
mappings with its fields. Items are still checked at run time: a bad one is an error
outcome whose ``request`` is the item as given."""
Pull = Callable[[], Awaitable[Any]]
"""Returns the source's next item, or ``_END`` when it is exhausted."""

_END: Any = object()


def _puller(requests: RequestSource) -> Pull:
    """A coroutine function pulling one item of ``requests`` per call (``_END`` at the end)."""
    if isinstance(requests, AsyncIterable):
        aiterator = requests.__aiter__()

        async def pull_async() -> Any:
            try:
                return await aiterator.__anext__()
            except StopAsyncIteration:
                return _END

        return pull_async
    iterator = iter(requests)

    async def pull() -> Any:
        return next(iterator, _END)

    return pull


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


class _Signal:
    """Wakes the task waiting on it (one event per wait cycle, created lazily)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: Optional[anyio.Event] = None

    async def wait(self) -> None:
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def notify(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()


_PULLS_PER_CHECKPOINT = 32


class _Engine:
    """The state of one running fan-out, shared by its background task and its consumer.

    It holds no reference to the :class:`FanOut`, so an abandoned iterator can be
    garbage-collected while the engine still runs.
    """

    def __init__(
        self,
        send: Send,
        pull: Pull,
        *,
        loop: asyncio.AbstractEventLoop,
        limit: int,
        ordered: bool,
        fail_fast: bool,
        max_pending: int,
        policy: RetryPolicy,
        timeout: Optional[float],
        feeding: bool = True,
    ) -> None:
        self._send = send
        self._pull = pull
        self._loop = loop
        self.limit = limit
        self._ordered = ordered
        self._fail_fast = fail_fast
        self._max_pending = max_pending
        self._policy = policy
        self._timeout = timeout
        self._limiter = anyio.CapacityLimiter(limit)
        self.rate = AIMD(self._limiter, limit)
        self._gate = RateGate()
        self.alive = 0
        self._ready: collections.deque[RunOutcome] = collections.deque()
        self._held: dict[int, RunOutcome] = {}
        self._next_index = 0
        self._error: Optional[BaseException] = None
        self._source_error: Optional[Exception] = None
        self._failure: Optional[Exception] = None
        self._scope: Optional[anyio.CancelScope] = None
        self.finished = False
        self.closed = False
        self._pump_signal = _Signal()
        self._consumer_signal = _Signal()
        # Pulled items on their way to the `limit` long-lived workers: a task per item
        # would cost more than the request itself. Never longer than `limit`.
        self._queue: asyncio.Queue[Optional[tuple[int, Any]]] = asyncio.Queue()
        # Every item pulled whose outcome is not stored yet, and those of them with a
        # request on the wire: what a cut-short drain must still report, and how.
        self._unfinished: dict[int, Any] = {}
        self._sending: set[int] = set()
        self.feeding = feeding
        self._pump_scope: Optional[anyio.CancelScope] = None
        self._grace: Optional[float] = None
        self._grace_deadline = math.inf
        self._grace_timer: Optional[asyncio.TimerHandle] = None
        self._cut = False
        self.cut_short = 0

    # -- background side ------------------------------------------------------------------

    async def run(self) -> None:
        """Pull, send and collect until the source is exhausted, fail-fast or cancel."""
        try:
            async with anyio.create_task_group() as tg:
                self._scope = tg.cancel_scope
                for _ in range(self.limit):
                    tg.start_soon(self._worker)
                try:
                    with anyio.CancelScope() as self._pump_scope:
                        if self.feeding:
                            await self._pump()
                finally:
                    for _ in range(self.limit):
                        self._queue.put_nowait(None)
        except Exception as exc:  # a bug here must reach the consumer, not vanish
            self._failure = exc
        finally:
            if self._grace_timer is not None:
                self._grace_timer.cancel()
                self._grace_timer = None
            if self._cut and self._error is None:
                self._report_cut_short()
            self.finished = True
            self._consumer_signal.notify()

    def _unyielded(self) -> int:
        return len(self._ready) + len(self._held)

    async def _worker(self) -> None:
        """Send the items the pump hands over, one at a time, until told to stop."""
        queue = self._queue
        while True:
            job = await queue.get()
            if job is None:
                return
            await self._work(*job)

    async def _pump(self) -> None:
        index = 0
        rate = self.rate
        while True:
            # The current limit, not the initial one: after a 429 halved it, no item is
            # pulled that would have to wait for a concurrency slot.
            while self.alive >= rate.limit or self._unyielded() >= self._max_pending:
                await self._pump_signal.wait()
            if not self.feeding:
                return
            try:
                item = await self._pull()
            except Exception as exc:
                self._source_error = exc
                if self._fail_fast:
                    self._fail(exc)
                return
            if item is _END:
                return
            self.alive += 1
            self._unfinished[index] = item
            self._queue.put_nowait((index, item))
            index += 1
            if index % _PULLS_PER_CHECKPOINT == 0:
                # A fast source must not hold the loop; a checkpoint per item would cost a
                # loop iteration per request.
                await anyio.lowlevel.checkpoint()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
            assert self._scope is not None
            self._scope.cancel()
            self._consumer_signal.notify()

    async def _work(self, index: int, item: Any) -> None:
        try:
            outcome = await self._create(index, item)
        finally:
            self.alive -= 1
            self._pump_signal.notify()
        del self._unfinished[index]
        self._sending.discard(index)
        if outcome.error is not None and (
            self._fail_fast or isinstance(outcome.error, ClientClosedError)
        ):
            # A closed client cannot send anything more: stop instead of turning every
            # remaining item (of a source that may never end) into the same error.
            self._fail(outcome.error)
            return
        self._store(index, outcome)
        self._consumer_signal.notify()

    def _store(self, index: int, outcome: RunOutcome) -> None:
        if self._ordered:
            self._held[index] = outcome
            while self._next_index in self._held:
                self._ready.append(self._held.pop(self._next_index))
                self._next_index += 1
        else:
            self._ready.append(outcome)

    async def _acquire(self, deadline: Optional[float] = None) -> bool:
        """Take a limiter token, without a trip through the event loop when one is free.

        ``False`` (no token taken) if ``deadline`` passes first. A worker started just as
        the fan-out was cancelled must not send: the cancellation check comes first.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            self._limiter.acquire_nowait()
        except anyio.WouldBlock:
            if deadline is None:
                await self._limiter.acquire()
            else:
                with anyio.CancelScope(deadline=deadline):
                    await self._limiter.acquire()
                    return True
                return False
        return True

    async def _create(self, index: int, item: Any) -> RunOutcome:
        try:
            request = RunRequest.coerce(item)
        except Exception as exc:
            return RunOutcome(index, item, error=exc)
        policy = self._policy
        deadline: Optional[float] = None
        retries = 0
        while True:
            # Before the first send the item's deadline has not started; after a 429 the
            # waits for a token and for the gate are bounded by it.
            if not await self._acquire(deadline):
                return RunOutcome(index, item, error=_not_sent_again(deadline))
            try:
                if not await self._gate.wait(deadline):
                    return RunOutcome(index, item, error=_not_sent_again(deadline))
                remaining: Optional[float] = None
                if self._timeout is not None:
                    now = anyio.current_time()
                    if deadline is None:
                        deadline = now + self._timeout
                    remaining = max(0.0, deadline - now)
                epoch = self.rate.epoch
                self._sending.add(index)
                try:
                    run = await self._send(request, remaining)
                except RateLimitError as exc:
                    self._sending.discard(index)
                    error = exc
                except Exception as exc:
                    return RunOutcome(index, item, error=exc)
                else:
                    self.rate.on_success()
                    return RunOutcome(index, item, run=run)
            finally:
                self._limiter.release()
            # A 429 is answered before the server acts: sending the item again is safe.
            self.rate.on_rate_limit(epoch)
            delay = policy.delay_for(retries, error.retry_after)
            if delay is not None:
                self._gate.close(delay)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "create_many: 429 on item %d; all requests paused for %.2fs, "
                    "concurrency now %d",
                    index,
                    self._gate.remaining(),
                    self.rate.limit,
                )
            if (
                delay is None
                or retries >= policy.max_retries
                or (
                    deadline is not None
                    and anyio.current_time() + self._gate.remaining() >= deadline
                )
            ):
                return RunOutcome(index, item, error=error)
            retries += 1

    # -- stopping early -------------------------------------------------------------------

    def stop_feeding(self, grace: Optional[float]) -> None:
        """Pull nothing more; with ``grace``, cut what is in flight ``grace`` s from now."""
        if self.feeding:
            self.feeding = False
            self._pump_signal.notify()
            if self._pump_scope is not None:
                self._pump_scope.cancel()
        if grace is None or self.finished:
            return
        deadline = self._loop.time() + grace
        if deadline >= self._grace_deadline:
            return
        self._grace, self._grace_deadline = grace, deadline
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        self._grace_timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._grace_timer = None
        # No scope: the task was cancelled before it ever ran (aclose), nothing to cut.
        if self._scope is not None:
            self._cut = True
            self._scope.cancel()

    def _report_cut_short(self) -> None:
        """Give every item the grace period cut short its outcome: an APITimeoutError."""
        grace = self._grace
        for index in sorted(self._unfinished):
            sent = index in self._sending
            if sent:
                message = (
                    f"{_RUNS}: cancelled {grace:g}s after create_many stopped feeding, "
                    "still waiting for the response; the request may have reached the "
                    "server, so its run may or may not exist. It was not sent again."
                )
            else:
                message = (
                    f"{_RUNS}: not sent: the {grace:g}s grace period after create_many "
                    "stopped feeding ran out while it waited to be sent; no run was "
                    "created for it"
                )
            error = APITimeoutError(message, method="POST", path=_RUNS_PATH, request_sent=sent)
            self._store(index, RunOutcome(index, self._unfinished[index], error=error))
        self.cut_short = len(self._unfinished)
        # Every index below the last one pulled now has its outcome, so in input order
        # nothing is left held back.
        self._unfinished.clear()
        self._sending.clear()

    # -- consumer side --------------------------------------------------------------------

    def stop(self) -> None:
        """Make the consumer's pending and future :meth:`next_outcome` calls end."""
        self.closed = True
        self._consumer_signal.notify()

    async def next_outcome(self) -> RunOutcome:
        """The next outcome to yield.

        Raises ``StopAsyncIteration`` at the end or after :meth:`stop`, the first error
        under fail-fast, or the source's error once everything before it was yielded.
        """
        while True:
            if self.closed:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
            if self._ready:
                outcome = self._ready.popleft()
                self._pump_signal.notify()
                return outcome
            if self.finished:
                if self._failure is not None:
                    raise self._failure
                if self._source_error is not None:
                    raise self._source_error
                raise StopAsyncIteration
            await self._consumer_signal.wait()


_RUNS_PATH = "/v1/runs"
_RUNS = "POST " + _RUNS_PATH


def _not_sent_again(deadline: Optional[float]) -> APITimeoutError:
    """The error of an item whose deadline passed while it waited to be sent after a 429."""
    assert deadline is not None  # only a retry waits with a deadline
    return APITimeoutError(
        f"{_RUNS}: the call's deadline passed while it waited to be sent again after a "
        "429 (rate limited); it was not sent again, so no run was created",
        request_sent=False,
        method="POST",
        path=_RUNS_PATH,
    )


def _cancel_soon(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
    """Finalizer of an abandoned :class:`FanOut`: ask its task to cancel (never awaits)."""
    if not task.done() and not loop.is_closed():
        loop.call_soon_threadsafe(task.cancel)


async def _cancel_and_join(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it is gone, even if the caller is being cancelled."""
    task.cancel()
    interrupted: Optional[BaseException] = None
    while not task.done():
        try:
            with anyio.CancelScope(shield=True):
                await asyncio.wait((task,))
        except asyncio.CancelledError as exc:  # a native cancel of the caller: finish first
            interrupted = exc
    if not task.cancelled():
        task.result()
    if interrupted is not None:
        raise interrupted


class FanOut:
    """Creates a run for every item of ``requests``; iterate it for the outcomes.

    Yields one :class:`RunOutcome` ``(index, request, run, error)`` per input item, as
    each finishes (``ordered=False``) or in input order (``ordered=True``). ``request``
    is the item as given; exactly one of ``run`` (a :class:`RunCreated`) and ``error`` is
    set. An item that is not a valid :class:`RunRequest` (or mapping of its fields) gets
    its ``TypeError``/``ValueError`` as error; an API or connection failure its
    :class:`~crewship_async.errors.CrewshipError`. Errors do not stop the batch.

    Iterating raises:

    * with ``fail_fast=True``, the first error (an item's or the source's): the requests
      in flight are cancelled and nothing more is yielded;
    * the exception the source raised, once the outcomes of the items pulled before it
      were yielded;
    * :class:`~crewship_async.errors.ClientClosedError` if the client is closed;
    * whatever ``on_progress`` raises.

    ``concurrency``: the most requests in flight (see the module notes on the pool and on
    429). ``max_pending`` (default ``4 * concurrency``): when that many finished outcomes
    wait to be yielded, because the consumer is slow or, with ``ordered=True``, because
    an earlier item is still running, no new request starts until the consumer takes
    them; so the reorder buffer holds at most ``max_pending + concurrency - 1`` outcomes.
    ``on_progress(done, failed, in_flight)`` is called in the consumer's task after each
    outcome is produced and before it is yielded: ``done`` outcomes so far, ``failed`` of
    them errors, ``in_flight`` items started and not finished. ``progress=True`` draws a
    live bar on stderr with rich. ``timeout``: each item's deadline in seconds across its
    attempts (default: the client's).

    To stop early and keep every outcome, call :meth:`stop_feeding` (optionally with a
    ``grace`` period) or ``await`` :meth:`drain`: no new item is pulled or sent, what is
    in flight finishes and is yielded, and the iteration then ends normally.
    :attr:`cut_short` counts the requests the grace period cancelled.

    Use ``async with ... as outcomes`` for deterministic cleanup; :meth:`aclose` cancels
    what is in flight and waits for it (those outcomes are lost). See
    :mod:`crewship_async._fanout` for details.
    """

    def __init__(
        self,
        transport: Transport,
        send: Send,
        requests: RequestSource,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        ordered: bool = False,
        fail_fast: bool = False,
        max_pending: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        progress: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        if isinstance(requests, (str, bytes, bytearray, Mapping, RunRequest)) or not isinstance(
            requests, (Iterable, AsyncIterable)
        ):
            raise TypeError(
                "requests must be an iterable or async iterable of RunRequest or mappings, "
                f"got a single {type(requests).__name__}"
            )
        self._concurrency = _check_count("concurrency", concurrency)
        self._max_pending = (
            PENDING_PER_SLOT * concurrency
            if max_pending is None
            else _check_count("max_pending", max_pending)
        )
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not (timeout > 0 and math.isfinite(timeout))
        ):
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be callable")
        if progress:
            from ._progress_bar import require_rich

            require_rich()
        self._transport = transport
        self._send = send
        self._total = len(requests) if isinstance(requests, Sized) else None
        self._pull = _puller(requests)
        self._ordered = bool(ordered)
        self._fail_fast = bool(fail_fast)
        self._timeout = timeout
        self._on_progress = on_progress
        self._progress = bool(progress)
        self._engine: Optional[_Engine] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._finalizer: Optional[weakref.finalize[Any, FanOut]] = None
        self._bar: Optional[RichBar] = None
        self._closed = False
        self._feeding = True
        self._done = 0
        self._failed = 0

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif not self._feeding:
            state = "draining"
        else:
            state = "running" if self._engine else "not started"
        return (
            f"<FanOut {state} concurrency={self.concurrency} done={self._done} "
            f"failed={self._failed}>"
        )

    @property
    def concurrency(self) -> int:
        """How many requests may be in flight now (lowered by 429s, then recovering)."""
        return self._concurrency if self._engine is None else self._engine.rate.limit

    @property
    def in_flight(self) -> int:
        """Items started and not finished yet."""
        return 0 if self._engine is None else self._engine.alive

    @property
    def cut_short(self) -> int:
        """How many requests the grace period of :meth:`stop_feeding` cancelled (so far)."""
        return 0 if self._engine is None else self._engine.cut_short

    def stop_feeding(self, *, grace: Optional[float] = None) -> None:
        """Pull no more items and start no new request; let what is in flight finish.

        The requests in flight go on (a 429 among them is still retried as usual) and
        their outcomes are yielded; the iteration then ends normally, having yielded an
        outcome for every item it pulled. A pull of an async source that is waiting when
        this is called is cancelled (the source sees ``CancelledError`` at its ``await``);
        a sync source is never interrupted mid-item. Call it from the event loop's thread:
        in a task, or in a callback such as a handler of ``loop.add_signal_handler``.

        ``grace``: seconds from now after which whatever is still in flight is cancelled.
        Each of those items is then yielded as an outcome whose error is an
        :class:`~crewship_async.errors.APITimeoutError`: for a request that was waiting
        for its response it says the run may or may not exist (the only outcomes that are
        unknown); for an item not sent yet (waiting for the rate-limit gate or a
        concurrency slot) it says that no run was created. :attr:`cut_short` counts
        them. ``grace=0`` cuts at once and still reports. ``None`` (default): no limit
        beyond each request's own ``timeout``.

        Idempotent; a later call may shorten the grace period, never lengthen it. Calling
        it before the iteration starts makes the fan-out pull nothing; calling it after
        the iteration ended, or after :meth:`aclose`, does nothing.

        Raises ``ValueError`` if ``grace`` is not a finite number of seconds >= 0.
        """
        if grace is not None and (
            isinstance(grace, bool)
            or not isinstance(grace, (int, float))
            or not (grace >= 0 and math.isfinite(grace))
        ):
            raise ValueError(f"grace must be a finite number of seconds >= 0, got {grace!r}")
        self._feeding = False
        if self._engine is not None:
            self._engine.stop_feeding(grace)

    async def drain(self, *, grace: Optional[float] = None) -> int:
        """:meth:`stop_feeding`, then wait until no request is in flight.

        Returns :attr:`cut_short`. The outcomes stay to be yielded: iterate (in this task
        or the one already iterating) to get them; memory is bounded because no new
        request starts. Without ``grace`` this waits as long as the requests in flight
        take (each bounded by its ``timeout``). Cancelling the wait leaves the fan-out
        draining. Returns at once if the fan-out was never started or is closed.

        Raises ``ValueError`` for a bad ``grace``, like :meth:`stop_feeding`; never what
        the iteration raises.
        """
        self.stop_feeding(grace=grace)
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait((task,))
        return self.cut_short

    def _start(self) -> _Engine:
        if self._engine is not None:
            return self._engine
        transport = self._transport
        pool = transport.pool_size()
        limit = self._concurrency if not pool else min(self._concurrency, pool)
        if limit < self._concurrency:
            logger.debug(
                "create_many: concurrency %d capped at the pool size %d (max_connections)",
                self._concurrency,
                limit,
            )
        timeout = self._timeout if self._timeout is not None else transport.timeout
        loop = asyncio.get_running_loop()
        engine = _Engine(
            self._send,
            self._pull,
            loop=loop,
            limit=limit,
            ordered=self._ordered,
            fail_fast=self._fail_fast,
            max_pending=self._max_pending,
            policy=transport.retry_policy,
            timeout=timeout,
            feeding=self._feeding,
        )
        if self._progress:
            from ._progress_bar import RichBar

            self._bar = RichBar(self._total)
        task = loop.create_task(engine.run(), name="crewship_async create_many")
        finalizer = weakref.finalize(self, _cancel_soon, loop, task)
        finalizer.atexit = False
        self._engine, self._task, self._finalizer = engine, task, finalizer
        return engine

    async def __aenter__(self) -> FanOut:
        if self._closed:
            raise RuntimeError("this create_many iterator is closed; create a new one")
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> FanOut:
        return self

    async def __anext__(self) -> RunOutcome:
        if self._closed:
            raise StopAsyncIteration
        engine = self._start()
        try:
            outcome = await engine.next_outcome()
            self._done += 1
            if outcome.error is not None:
                self._failed += 1
            if self._bar is not None:
                self._bar.update(self._done, self._failed, engine.alive)
            if self._on_progress is not None:
                self._on_progress(self._done, self._failed, engine.alive)
        except BaseException:
            await self.aclose()
            raise
        return outcome

    async def aclose(self) -> None:
        """Cancel the requests in flight and wait until every task and connection is gone.

        Idempotent; iterating afterwards ends at once. A cancelled request may or may not
        have created its run.
        """
        if self._closed:
            return
        self._closed = True
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._engine is not None:
            self._engine.stop()
        try:
            if self._task is not None:
                await _cancel_and_join(self._task)
        finally:
            if self._bar is not None:
                self._bar.close()


async def collect(fanout: FanOut) -> list[RunOutcome]:
    """Every outcome of ``fanout``, in input order (for ``create_all``)."""
    async with fanout as outcomes:
        results = [outcome async for outcome in outcomes]
    results.sort(key=_index)
    return results


def _index(outcome: RunOutcome) -> int:
    return outcome.index
