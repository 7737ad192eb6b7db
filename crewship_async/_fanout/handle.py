"""The public face of a fan-out: :class:`FanOut`, what ``runs.create_many`` returns."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sized
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional

from .._checks import check_count, check_non_negative_seconds, check_optional_seconds
from ..models.runs import RunOutcome
from .engine import Engine, capped_limit
from .input import RequestSource, check_source, puller
from .progress import (
    FanOutStats,
    ProgressCallback,
    ProgressOption,
    ProgressReporter,
    check_progress,
    open_reporter,
)
from .sending import Send
from .tasks import cancel_and_join, cancel_soon

if TYPE_CHECKING:
    from .._transport import Transport

__all__ = ["DEFAULT_CONCURRENCY", "PENDING_PER_SLOT", "FanOut", "collect"]

DEFAULT_CONCURRENCY = 64
#: ``max_pending`` defaults to this many finished outcomes per unit of concurrency.
PENDING_PER_SLOT = 4


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
    * whatever ``on_progress`` or the progress reporter raises.

    ``concurrency``: the most requests in flight (see the package notes on the pool and
    on 429). ``max_pending`` (default ``4 * concurrency``): when that many finished
    outcomes wait to be yielded, because the consumer is slow or, with ``ordered=True``,
    because an earlier item is still running, no new request starts until the consumer
    takes them; so the reorder buffer holds at most ``max_pending + concurrency - 1``
    outcomes. ``on_progress(done, failed, in_flight)`` is called in the consumer's task
    after each outcome is produced and before it is yielded: ``done`` outcomes so far,
    ``failed`` of them errors, ``in_flight`` items started and not finished.
    ``progress``: ``True`` draws a live bar on stderr with rich (the ``cli`` extra); a
    :class:`~crewship_async._fanout.progress.ProgressReporter` is given :attr:`stats`
    after each outcome instead. ``timeout``: each item's deadline in seconds across its
    attempts (default: the client's).

    To stop early and keep every outcome, call :meth:`stop_feeding` (optionally with a
    ``grace`` period) or ``await`` :meth:`drain`: no new item is pulled or sent, what is
    in flight finishes and is yielded, and the iteration then ends normally.
    :attr:`cut_short` counts the requests the grace period cancelled.

    Use ``async with ... as outcomes`` for deterministic cleanup; :meth:`aclose` cancels
    what is in flight and waits for it (those outcomes are lost). See
    :mod:`crewship_async._fanout` for details. Invalid arguments raise
    ``TypeError``/``ValueError`` here.
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
        progress: ProgressOption = False,
        timeout: Optional[float] = None,
    ) -> None:
        check_source(requests)
        self._concurrency = check_count("concurrency", concurrency)
        self._max_pending = (
            PENDING_PER_SLOT * concurrency
            if max_pending is None
            else check_count("max_pending", max_pending)
        )
        self._timeout = check_optional_seconds("timeout", timeout)
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be callable")
        check_progress(progress)
        self._transport = transport
        self._send = send
        self._total = len(requests) if isinstance(requests, Sized) else None
        self._pull = puller(requests)
        self._ordered = bool(ordered)
        self._fail_fast = bool(fail_fast)
        self._on_progress = on_progress
        self._progress = progress
        self._engine: Optional[Engine] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._finalizer: Optional[weakref.finalize[Any, FanOut]] = None
        self._reporter: Optional[ProgressReporter] = None
        self._closed = False
        self._feeding = True
        self._done = 0
        self._failed = 0

    def __repr__(self) -> str:
        running = "running" if self._engine else "not started"
        state = "closed" if self._closed else running if self._feeding else "draining"
        return (
            f"<FanOut {state} concurrency={self.concurrency} done={self._done} "
            f"failed={self._failed}>"
        )

    @property
    def concurrency(self) -> int:
        """How many requests may be in flight now (lowered by 429s, then recovering)."""
        return self._concurrency if self._engine is None else self._engine.sender.rate.limit

    @property
    def in_flight(self) -> int:
        """Items started and not finished yet."""
        return 0 if self._engine is None else self._engine.alive

    @property
    def cut_short(self) -> int:
        """How many requests the grace period of :meth:`stop_feeding` cancelled (so far)."""
        return 0 if self._engine is None else self._engine.cut_short

    @property
    def stats(self) -> FanOutStats:
        """A :class:`~crewship_async._fanout.progress.FanOutStats` snapshot, taken now.

        Before the iteration starts, the concurrency figures are the requested ones.
        """
        if self._engine is None:
            limit = self._concurrency
            return FanOutStats(concurrency=limit, lowest_concurrency=limit, total=self._total)
        return self._engine.stats(self._done, self._failed, self._total)

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

        Raises ``TypeError`` (also a ``ValueError``) for a ``grace`` that is not a number
        and ``ValueError`` for one that is not finite and >= 0.
        """
        if grace is not None:
            grace = check_non_negative_seconds("grace", grace)
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

        Raises what :meth:`stop_feeding` raises for a bad ``grace``; never what the
        iteration raises.
        """
        self.stop_feeding(grace=grace)
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait((task,))
        return self.cut_short

    def _start(self) -> Engine:
        if self._engine is not None:
            return self._engine
        transport = self._transport
        loop = asyncio.get_running_loop()
        engine = Engine(
            self._send,
            self._pull,
            loop=loop,
            limit=capped_limit(self._concurrency, transport.pool_size()),
            ordered=self._ordered,
            fail_fast=self._fail_fast,
            max_pending=self._max_pending,
            policy=transport.retry_policy,
            timeout=self._timeout if self._timeout is not None else transport.timeout,
            feeding=self._feeding,
        )
        self._reporter = open_reporter(self._progress, self._total)
        task = loop.create_task(engine.run(), name="crewship_async create_many")
        finalizer = weakref.finalize(self, cancel_soon, loop, task)
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
            if self._reporter is not None:
                self._reporter.update(self.stats)
            if self._on_progress is not None:
                self._on_progress(self._done, self._failed, engine.alive)
        except BaseException:
            await self.aclose()
            raise
        return outcome

    async def aclose(self) -> None:
        """Cancel the requests in flight and wait until every task and connection is gone.

        Idempotent; iterating afterwards ends at once. A cancelled request may or may not
        have created its run. Then the progress reporter, if any, is closed.
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
                await cancel_and_join(self._task)
        finally:
            if self._reporter is not None:
                self._reporter.close()


async def collect(fanout: FanOut) -> list[RunOutcome]:
    """Every outcome of ``fanout``, in input order (for ``create_all``)."""
    async with fanout as outcomes:
        results = [outcome async for outcome in outcomes]
    results.sort(key=_index)
    return results


def _index(outcome: RunOutcome) -> int:
    return outcome.index
