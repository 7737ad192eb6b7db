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
from collections.abc import Mapping
from typing import Optional

import attrs

__all__ = ["RetryPolicy", "is_transient_status", "parse_retry_after"]

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
_ALWAYS_RETRIED_STATUSES = frozenset({429, 503})


def is_transient_status(status: int) -> bool:
    """Whether an error status says "try again later" (429 or any 5xx) rather than "no".

    The stream reconnect and ``runs.wait``'s fallback to polling use this; the retry of a
    single call also weighs the method (:meth:`RetryPolicy.retries_status`).
    """
    return status == 429 or status >= 500


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _non_negative_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0, got {value!r}")


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
