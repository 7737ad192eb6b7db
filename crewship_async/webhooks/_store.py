"""Delivery stores: how a receiver remembers which deliveries it has processed."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Claim", "DeliveryStore", "MemoryDeliveryStore"]

#: What :meth:`DeliveryStore.claim` answers: ``"claimed"`` (process it now),
#: ``"in_progress"`` (another request is processing it) or ``"done"`` (already processed).
Claim = Literal["claimed", "in_progress", "done"]


@runtime_checkable
class DeliveryStore(Protocol):
    """Remembers deliveries by ``X-Crewship-Delivery`` id so a redelivery is not processed
    twice, and a delivery whose processing failed is processed when it comes again.

    Three atomic steps; each maps onto one Redis command, for example:
    ``claim`` is ``SET <id> processing NX EX <ttl>`` (on failure, ``GET`` tells
    ``in_progress`` from ``done``), ``complete`` is ``SET <id> done EX <ttl>`` and
    ``release`` is ``DEL <id>``.
    """

    async def claim(self, delivery_id: str) -> Claim:
        """Mark ``delivery_id`` as being processed, unless it already is or was."""
        ...

    async def complete(self, delivery_id: str) -> None:
        """Mark a claimed delivery as processed."""
        ...

    async def release(self, delivery_id: str) -> None:
        """Forget a claim whose processing failed, so a redelivery is processed."""
        ...


class MemoryDeliveryStore:
    """A bounded in-process :class:`DeliveryStore` (one receiver process).

    Remembers at most ``max_entries`` deliveries, each for ``ttl`` seconds (the oldest are
    forgotten first), which bounds memory whatever arrives. With several receiver
    processes, use a shared store (Redis) instead.
    """

    def __init__(self, *, max_entries: int = 10_000, ttl: float = 3 * 24 * 3600.0) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an int >= 1, got {max_entries!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValueError(f"ttl must be a number of seconds > 0, got {ttl!r}")
        self.max_entries: int = max_entries
        self.ttl: float = float(ttl)
        # id -> (done, expires at), oldest first.
        self._entries: OrderedDict[str, tuple[bool, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<MemoryDeliveryStore {len(self._entries)}/{self.max_entries}>"

    def _forget_expired(self, now: float) -> None:
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if entries[oldest][1] > now and len(entries) <= self.max_entries:
                break
            del entries[oldest]

    async def claim(self, delivery_id: str) -> Claim:
        """Claim ``delivery_id``; see :meth:`DeliveryStore.claim`."""
        now = time.monotonic()
        self._forget_expired(now)
        entry = self._entries.get(delivery_id)
        if entry is not None:
            return "done" if entry[0] else "in_progress"
        self._entries[delivery_id] = (False, now + self.ttl)
        self._forget_expired(now)
        return "claimed"

    async def complete(self, delivery_id: str) -> None:
        """Remember ``delivery_id`` as processed for ``ttl`` seconds from now."""
        self._entries.pop(delivery_id, None)
        self._entries[delivery_id] = (True, time.monotonic() + self.ttl)
        self._forget_expired(time.monotonic())

    async def release(self, delivery_id: str) -> None:
        """Forget ``delivery_id``, so that its redelivery is claimed again."""
        self._entries.pop(delivery_id, None)
