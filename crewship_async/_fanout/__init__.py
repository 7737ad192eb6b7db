"""Bounded fan-out: create many runs concurrently from any (async) iterable.

The package, one concern per module: :mod:`.handle` (:class:`FanOut`, the object
``create_many`` returns), :mod:`.engine` (the pump, the workers, the consumer's side),
:mod:`.input` (what may be given and how it is pulled), :mod:`.sending` (one item's
request: concurrency token, rate-limit gate, 429 retries), :mod:`.ordering` (the outcomes
waiting to be yielded), :mod:`.grace` (stopping early), :mod:`.progress` (the stats
snapshot and the reporter protocol) and :mod:`.tasks` (ending the background task).

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

The gate and the AIMD controller are in :mod:`crewship_async._ratelimit`; whether a 429 is
sent again is :meth:`RetryPolicy.gives_up <crewship_async._retry.RetryPolicy.gives_up>`'s
decision. The rich bar of ``progress=True`` is in :mod:`crewship_async._progress_bar`,
imported only when asked for: it is one :class:`~.progress.ProgressReporter`, and any other
can be passed as ``progress=``.

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

from .handle import DEFAULT_CONCURRENCY, PENDING_PER_SLOT, FanOut, collect
from .input import RequestSource
from .progress import FanOutStats, ProgressCallback, ProgressOption, ProgressReporter
from .sending import Send

__all__ = [
    "DEFAULT_CONCURRENCY",
    "PENDING_PER_SLOT",
    "FanOut",
    "FanOutStats",
    "ProgressCallback",
    "ProgressOption",
    "ProgressReporter",
    "RequestSource",
    "Send",
    "collect",
]
