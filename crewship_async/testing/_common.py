"""Small pieces shared by the emulator modules: the API error, timestamps, ids, JSON."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any, Optional

__all__ = [
    "ApiError",
    "IdFactory",
    "dumps",
    "error_body",
    "error_code",
    "isoformat",
    "utcnow",
]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable_entity",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def error_code(status: int) -> str:
    """The envelope ``code`` used for an HTTP status (``"error"`` for unlisted ones)."""
    return _CODES.get(status, "error")


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """The documented error envelope: ``{"error": {"message": ..., "code": ...}}``."""
    return {"error": {"message": message, "code": error_code(status), **extra}}


class ApiError(Exception):
    """Raised by the store and the handlers; the server turns it into the error envelope."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, **self.extra)


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: Optional[datetime]) -> Optional[str]:
    """ISO 8601 in UTC with a ``Z`` suffix and microseconds, or ``None``."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(value: Any) -> str:
    """Compact JSON; non-ASCII text is kept as UTF-8, as most real servers send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class IdFactory:
    """Makes prefixed ids (``run_3f9a...``) from a seeded generator, never the same twice."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._issued: set[str] = set()

    def new(self, prefix: str) -> str:
        while True:
            candidate = f"{prefix}_{self._random.getrandbits(48):012x}"
            if candidate not in self._issued:
                self._issued.add(candidate)
                return candidate
