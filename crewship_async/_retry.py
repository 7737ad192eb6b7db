"""The retry policy: which failures are retried, how long to wait, and Retry-After.

The policy is pure: it decides, the transport acts. What is retried:

=========================================  ======================  ====================
failure                                    GET / DELETE            POST / PATCH
=========================================  ======================  ====================
connection refused / DNS / connect timeout yes                     yes (never sent)
connection dropped after sending, read     yes                     no: may have arrived
timeout, truncated body
429, 503                                   yes (Retry-After)       yes (Retry-After)
other 5xx                                  yes                     no
409 and every other 4xx                    no                      no
=========================================  ======================  ====================

A 429/503 is answered before the server acts, so replaying the POST cannot duplicate it.
Backoff is exponential with full jitter, capped at ``max_delay``; a ``Retry-After`` header
(seconds or an HTTP date) replaces the backoff when present, and a value above
``max_retry_after`` stops the retries instead of sleeping that long.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import re
import time
from collections.abc import Iterator, Mapping
from typing import Optional

import attrs

from ._checks import check_count, check_non_negative_seconds

__all__ = ["RetryPolicy", "is_transient_status", "parse_retry_after", "poll_delays"]

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
_ALWAYS_RETRIED_STATUSES = frozenset({429, 503})


def is_transient_status(status: int) -> bool:
    """Whether an error status says "try again later" (429 or any 5xx) rather than "no".

    The stream reconnect and ``runs.wait``'s fallback to polling use this; the retry of a
    single call also weighs the method (:meth:`RetryPolicy.retries_status`).
    """
    return status == 429 or status >= 500


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_non_negative_seconds(attribute.name, value)


def _non_negative_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    check_count(attribute.name, value, minimum=0)


#: A poll interval is drawn from ``[0.8, 1.2]`` times its nominal value, so that many
#: callers polling the same thing spread out instead of arriving together.
_POLL_JITTER = (0.8, 1.2)


def poll_delays(
    initial: float, *, growth: float, ceiling: float, rng: Optional[random.Random] = None
) -> Iterator[float]:
    """The waits between polls: ``initial`` seconds, growing by ``growth`` up to ``ceiling``.

    Each value yielded is the nominal interval times a uniform jitter in ``[0.8, 1.2]``;
    the nominal interval never exceeds ``max(initial, ceiling)``. Endless: take one per
    poll. ``runs.wait`` and ``threads.runs.create(on_busy="wait")`` poll with it.
    """
    interval = initial
    top = max(initial, ceiling)
    low, high = _POLL_JITTER
    while True:
        yield interval * (rng or random).uniform(low, high)
        interval = min(interval * growth, top)


@attrs.frozen(slots=True)
class RetryPolicy:
    """How a call is retried.

    ``max_retries``: attempts after the first (0 disables retries). ``initial_delay`` and
    ``max_delay``: the backoff before retry *n* (0-based) is a uniform random value in
    ``[0, min(max_delay, initial_delay * 2**n)]`` ("full jitter"). ``max_retry_after``: the
    longest server-requested ``Retry-After`` honoured; a longer one ends the retries and the
    error is raised at once. Raises ``ValueError`` for negative or non-finite values.
    """

    max_retries: int = attrs.field(default=2, validator=_non_negative_int)
    initial_delay: float = attrs.field(default=0.5, validator=_non_negative)
    max_delay: float = attrs.field(default=8.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)

    def backoff(self, retry_number: int, rng: Optional[random.Random] = None) -> float:
        """Seconds to wait before retry ``retry_number`` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.initial_delay * (2 ** min(retry_number, 62)))
        return (rng or random).uniform(0.0, ceiling)

    def retries_status(self, method: str, status: int) -> bool:
        """Whether a response with ``status`` to ``method`` may be retried."""
        if status in _ALWAYS_RETRIED_STATUSES:
            return True
        return status >= 500 and method in _IDEMPOTENT_METHODS

    def retries_connection_error(self, method: str, *, request_sent: bool) -> bool:
        """Whether a failure without a response may be retried.

        A request that never left (connection refused, DNS, connect timeout) is always safe
        to send again. One that may have reached the server is retried only for
        idempotent methods.
        """
        return not request_sent or method in _IDEMPOTENT_METHODS

    def delay_for(
        self, retry_number: int, retry_after: Optional[float], rng: Optional[random.Random] = None
    ) -> Optional[float]:
        """The wait before the next attempt, or ``None`` when ``retry_after`` is too long."""
        if retry_after is None:
            return self.backoff(retry_number, rng)
        if retry_after > self.max_retry_after:
            return None
        return retry_after

    def gives_up(
        self, retries_done: int, delay: Optional[float], *, time_left: Optional[float] = None
    ) -> bool:
        """Whether to stop retrying a retryable failure after ``retries_done`` retries.

        ``delay`` is the wait before the next attempt (as :meth:`delay_for` gives it:
        ``None`` when the server asked for longer than ``max_retry_after``), and
        ``time_left`` the seconds until the call's deadline (``None``: no deadline). Gives
        up when the retries are used up, when there is no acceptable delay, or when the
        next attempt could not start before the deadline.
        """
        if retries_done >= self.max_retries or delay is None:
            return True
        return time_left is not None and delay >= time_left


def parse_retry_after(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    """Seconds asked by ``Retry-After`` (delta-seconds or HTTP date), else ``None``.

    ``retry-after-ms`` is also understood. Negative, non-finite and unparseable values give
    ``None``; a date in the past gives 0.
    """
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _seconds(raw)
    if seconds is not None or _NUMBER.match(raw.strip()):
        return seconds
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        # "-0000": the zone is not known; HTTP dates are always GMT.
        moment = moment.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


_NUMBER = re.compile(r"[+-]?[0-9]")


def _seconds(value: Optional[str]) -> Optional[float]:
    """A finite number >= 0 written in ASCII (``float`` alone would also take other
    scripts' digits, ``inf`` and ``nan``), else ``None``."""
    if value is None or not value.isascii():
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
