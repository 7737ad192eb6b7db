"""The running part of a fan-out: the pump, the workers, and the consumer's side.

One background task runs :meth:`Engine.run`: an anyio task group with a pump pulling the
source and ``limit`` long-lived workers, each handing its item to the shared
:class:`~crewship_async._fanout.sending.ItemSender`. Finished outcomes go to an
:class:`~crewship_async._fanout.ordering.OutcomeBuffer`, which the consumer's task reads
through :meth:`Engine.next_outcome`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import anyio
import anyio.lowlevel

from .. import _tracing
from .._retry import RetryPolicy
from ..errors import ClientClosedError
from ..models.runs import RunOutcome
from .grace import GracePeriod, cut_short_outcomes
from .input import END, Pull
from .ordering import OutcomeBuffer
from .progress import FanOutStats
from .sending import ItemSender, Send

__all__ = ["Engine", "capped_limit"]

logger = logging.getLogger("crewship_async")

_PULLS_PER_CHECKPOINT = 32


def capped_limit(concurrency: int, pool: int) -> int:
    """The most requests in flight: ``concurrency``, but never more than the connection
    pool holds (``pool`` 0: unlimited), so that no request queues inside the pool."""
    limit = concurrency if not pool else min(concurrency, pool)
    if limit < concurrency:
        logger.debug(
            "create_many: concurrency %d capped at the pool size %d (max_connections)",
            concurrency,
            limit,
        )
    return limit


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


class Engine:
    """The state of one running fan-out, shared by its background task and its consumer.

    It holds no reference to the :class:`~crewship_async._fanout.FanOut`, so an abandoned
    iterator can be garbage-collected while the engine still runs.
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
        self._pull = pull
        self.limit = limit
        self._fail_fast = fail_fast
        self._max_pending = max_pending
        self.sender = ItemSender(send, limit=limit, policy=policy, timeout=timeout)
        self.outcomes = OutcomeBuffer(ordered=ordered)
        self.alive = 0
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
        # Every item pulled whose outcome is not stored yet: what a cut-short drain must
        # still report (the sender knows which of them are on the wire).
        self._unfinished: dict[int, Any] = {}
        self.feeding = feeding
        self._pump_scope: Optional[anyio.CancelScope] = None
        self._grace = GracePeriod(loop, self._expire)
        self._cut = False
        self.cut_short = 0
        #: Outcomes stored so far: runs created, and errors (for the batch's span).
        self.created = 0
        self.failed = 0

    # -- background side ------------------------------------------------------------------

    async def run(self) -> None:
        """Pull, send and collect until the source is exhausted, fail-fast or cancel.

        With OpenTelemetry, the batch is one ``runs.create_many`` span, parent of every
        request's span, ending with the batch's counts as attributes.
        """
        attributes = {"crewship.concurrency": self.limit}
        with _tracing.batch_span("runs.create_many", attributes) as span:
            try:
                await self._run()
            finally:
                error = self._error or self._failure
                _tracing.finish_batch(span, self._span_counts(), error)

    def _span_counts(self) -> dict[str, int]:
        sender = self.sender
        return {
            "crewship.requests.created": self.created,
            "crewship.requests.failed": self.failed,
            "crewship.rate_limited": sender.rate_limited,
            "crewship.lowest_concurrency": sender.rate.lowest,
            "crewship.cut_short": self.cut_short,
        }

    async def _run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._scope = self.sender.scope = tg.cancel_scope
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
            self._grace.cancel()
            if self._cut and self._error is None:
                self._report_cut_short()
            self.finished = True
            self._consumer_signal.notify()

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
        rate = self.sender.rate
        outcomes = self.outcomes
        while True:
            # The current limit, not the initial one: after a 429 halved it, no item is
            # pulled that would have to wait for a concurrency slot.
            while self.alive >= rate.limit or len(outcomes) >= self._max_pending:
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
            if item is END:
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
            outcome = await self.sender.create(index, item)
        finally:
            self.alive -= 1
            self._pump_signal.notify()
        del self._unfinished[index]
        self.sender.sending.discard(index)
        if outcome.error is not None and (
            self._fail_fast or isinstance(outcome.error, ClientClosedError)
        ):
            # A closed client cannot send anything more: stop instead of turning every
            # remaining item (of a source that may never end) into the same error.
            self._fail(outcome.error)
            return
        if outcome.error is None:
            self.created += 1
        else:
            self.failed += 1
        self.outcomes.store(outcome)
        self._consumer_signal.notify()

    # -- stopping early -------------------------------------------------------------------

    def stop_feeding(self, grace: Optional[float]) -> None:
        """Pull nothing more; with ``grace``, cut what is in flight ``grace`` s from now."""
        if self.feeding:
            self.feeding = False
            self._pump_signal.notify()
            if self._pump_scope is not None:
                self._pump_scope.cancel()
        if grace is not None and not self.finished:
            self._grace.start(grace)

    def _expire(self) -> None:
        # No scope: the task was cancelled before it ever ran (aclose), nothing to cut.
        if self._scope is not None:
            self._cut = True
            self._scope.cancel()

    def _report_cut_short(self) -> None:
        """Give every item the grace period cut short its outcome: an APITimeoutError."""
        sending = self.sender.sending
        for outcome in cut_short_outcomes(self._unfinished, sending, self._grace.seconds):
            self.outcomes.store(outcome)
        self.cut_short = len(self._unfinished)
        # Every index below the last one pulled now has its outcome, so in input order
        # nothing is left held back.
        self._unfinished.clear()
        sending.clear()

    # -- consumer side --------------------------------------------------------------------

    def stats(self, done: int, failed: int, total: Optional[int]) -> FanOutStats:
        """A snapshot, with the consumer's counts (``done``, ``failed``) and ``total``."""
        sender = self.sender
        return FanOutStats(
            done=done,
            failed=failed,
            in_flight=self.alive,
            pending=len(self.outcomes),
            concurrency=sender.rate.limit,
            lowest_concurrency=sender.rate.lowest,
            rate_limited=sender.rate_limited,
            paused_for=sender.gate.remaining(),
            cut_short=self.cut_short,
            total=total,
        )

    def stop(self) -> None:
        """Make the consumer's pending and future :meth:`next_outcome` calls end."""
        self.closed = True
        self._consumer_signal.notify()

    async def next_outcome(self) -> RunOutcome:
        """The next outcome to yield.

        Raises ``StopAsyncIteration`` at the end or after :meth:`stop`, the first error
        under fail-fast, or the source's error once everything before it was yielded.
        """
        outcomes = self.outcomes
        while True:
            if self.closed:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
            if outcomes.has_ready():
                outcome = outcomes.pop()
                self._pump_signal.notify()
                return outcome
            if self.finished:
                if self._failure is not None:
                    raise self._failure
                if self._source_error is not None:
                    raise self._source_error
                raise StopAsyncIteration
            await self._consumer_signal.wait()
