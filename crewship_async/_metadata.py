"""What a response was, kept next to what it became: :class:`ResponseInfo`.

Every model a call returns, and every :class:`~crewship_async.errors.APIError`, carries the
:class:`ResponseInfo` of the response it came from (``.response_info``) and its
``.request_id`` (scrubbed of secrets, like an error's headers; a model's headers are the
server's, as sent). They are kept out of ``==``, ``hash`` and ``repr``: two runs are equal
when their fields are, whichever response brought them. A pickled model does not keep it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._redact import scrub

__all__ = ["RateLimit", "ResponseInfo", "ResponseMetadata", "attach"]


def _scrubbed(value: Optional[str]) -> Optional[str]:
    return None if value is None else scrub(value)


def _header_number(headers: Mapping[str, str], name: str) -> Optional[float]:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


@attrs.frozen(slots=True)
class RateLimit:
    """The ``X-RateLimit-*`` headers of a response (``RateLimit-*`` also understood).

    ``limit`` and ``remaining`` are request counts; ``reset`` is the header's number as
    sent (the API does not say whether it counts seconds from now or from the epoch).
    A header that is missing or not a non-negative number gives ``None``.
    """

    limit: Optional[int]
    remaining: Optional[int]
    reset: Optional[float]

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Optional[RateLimit]:
        """The rate limit the headers state, or ``None`` when they state none."""
        found: list[Optional[float]] = []
        for suffix in ("limit", "remaining", "reset"):
            value = _header_number(headers, f"x-ratelimit-{suffix}")
            if value is None:
                value = _header_number(headers, f"ratelimit-{suffix}")
            found.append(value)
        limit, remaining, reset = found
        if limit is None and remaining is None and reset is None:
            return None
        return cls(
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset=reset,
        )


@attrs.frozen(slots=True, repr=False)
class ResponseInfo:
    """One HTTP response of a call.

    ``status`` and ``headers`` (read-only, case-insensitive; not in ``repr``); ``elapsed``:
    seconds from the start of the call (its first attempt) to this response; ``attempts``:
    which attempt this response answered (1 without retries); ``operation``: the API
    operation (``runs.create``, ...); ``request_id``: the ``x-request-id`` header;
    ``rate_limit``: the parsed rate-limit headers, when present. The last two are read
    from the headers when asked for: every call makes one of these, few read them.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(eq=False)
    elapsed: float
    attempts: int
    operation: str

    @property
    def request_id(self) -> Optional[str]:
        """The ``x-request-id`` header (through the redaction step), or ``None``."""
        return _scrubbed(self.headers.get("x-request-id"))

    @property
    def rate_limit(self) -> Optional[RateLimit]:
        """The ``X-RateLimit-*`` (or ``RateLimit-*``) headers, or ``None`` without them."""
        return RateLimit.from_headers(self.headers)

    def __repr__(self) -> str:
        return (
            f"ResponseInfo(status={self.status}, elapsed={self.elapsed:.3f}, "
            f"attempts={self.attempts}, operation={self.operation!r}, "
            f"request_id={self.request_id!r})"
        )

    def scrubbed(self) -> ResponseInfo:
        """A copy whose headers passed the redaction step, as errors carry it (an error's
        text, repr and pickle never hold a secret a gateway echoed back)."""
        clean = CIMultiDict((name, scrub(value)) for name, value in self.headers.items())
        return attrs.evolve(self, headers=CIMultiDictProxy(clean))

    def __reduce__(self) -> tuple[Any, ...]:
        # aiohttp's read-only header view cannot be pickled; a copy of it can.
        return (
            type(self),
            (self.status, CIMultiDict(self.headers), self.elapsed, self.attempts, self.operation),
        )


class ResponseMetadata:
    """Mixed into every model: ``response_info`` and ``request_id`` of its response.

    A slot outside the attrs fields, so equality, hashing, ``repr`` and conversion back to
    JSON never see it. ``None`` for a model built by hand.
    """

    __slots__ = ("_response_info",)

    @property
    def response_info(self) -> Optional[ResponseInfo]:
        """The response this model came from, or ``None`` when it was built by hand."""
        return getattr(self, "_response_info", None)

    @property
    def request_id(self) -> Optional[str]:
        """The ``x-request-id`` of the response this model came from, when it had one."""
        info = getattr(self, "_response_info", None)
        return None if info is None else info.request_id


def attach(value: object, info: Optional[ResponseInfo]) -> None:
    """Record ``info`` on ``value`` when it is a model (models are frozen: set directly)."""
    if info is not None and isinstance(value, ResponseMetadata):
        object.__setattr__(value, "_response_info", info)
