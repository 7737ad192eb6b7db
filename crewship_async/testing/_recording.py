"""What the emulator saw: the request log and the concurrency counters."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["EmulatorStats", "RecordedRequest", "RequestLog", "redact_headers"]

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credentials replaced by ``Bearer ***``."""
    return {
        name: "Bearer ***" if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }


@attrs.frozen
class RecordedRequest:
    """One request as the emulator received it.

    ``query`` holds the query parameters (the last value wins when one repeats), ``body``
    the decoded JSON body (``None`` when empty; the raw text when it is not JSON), and
    ``headers`` the request headers with ``Authorization`` shown as ``Bearer ***``.
    ``request_id`` is the ``x-request-id`` the emulator answered with.
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    request_id: str = ""


class RequestLog:
    """The most recent requests, oldest first, up to ``maxlen`` of them."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._entries: deque[RecordedRequest] = deque(maxlen=maxlen)

    def append(self, entry: RecordedRequest) -> None:
        self._entries.append(entry)

    def snapshot(self) -> list[RecordedRequest]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()


@attrs.define
class EmulatorStats:
    """Request counters (``emu.stats``).

    ``in_flight``: requests being handled right now (open event streams included);
    ``peak_in_flight``: the highest ``in_flight`` seen since start or :meth:`reset`;
    ``requests_total``: requests received since start or :meth:`reset`.
    """

    in_flight: int = 0
    peak_in_flight: int = 0
    requests_total: int = 0

    def enter(self) -> None:
        self.in_flight += 1
        self.requests_total += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def reset(self) -> None:
        """Zero the total and lower the peak to what is in flight now."""
        self.requests_total = 0
        self.peak_in_flight = self.in_flight
