"""From a failed attempt to the SDK error it becomes, and whether the retry loop may retry.

aiohttp's own exception text is never shown as is: a connector error names ``ssl:default``
even for ``http://``, and other errors may quote server bytes. The messages say what
failed, and whether the request may have taken effect.
"""

from __future__ import annotations

import asyncio
from typing import Optional

import aiohttp

from .._deadline import Deadline
from ..errors import APIConnectionError, APITimeoutError

__all__ = ["AttemptFailed", "connection_error", "describe_exception", "failed_without_response"]


class AttemptFailed(Exception):
    """One attempt failed in a way the retry loop may act on (internal)."""

    def __init__(self, error: Exception, *, retryable: bool, retry_after: Optional[float]) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after


def describe_exception(exc: BaseException) -> str:
    """``Name: what happened`` for an aiohttp/OS exception, without aiohttp's TLS noise."""
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
        exc, aiohttp.ClientConnectorCertificateError
    ):
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        where = "the proxy" if isinstance(exc, aiohttp.ClientProxyConnectionError) else "host"
        return f"{type(exc).__name__}: cannot connect to {where} {exc.host}:{exc.port} ({reason})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def maybe_applied(method: str) -> str:
    """The note for a request that may have reached the server and was not sent again."""
    if method in ("GET", "HEAD"):
        return ""
    return (
        "; the request may have reached the server, so it may or may not have taken "
        "effect (for a run: it may or may not exist). It was not sent again."
    )


def connection_error(exc: BaseException, method: str, shown: str, what: str) -> APIConnectionError:
    return APIConnectionError(
        f"{method} {shown}: {what} ({describe_exception(exc)})", method=method, path=shown
    )


# uvloop's clock is read once per loop pass, in whole milliseconds: a timer set for the
# deadline can fire while loop.time() still reads a little before it.
CLOCK_SLACK = 0.005


def failed_without_response(
    exc: BaseException,
    method: str,
    shown: str,
    deadline: Deadline,
    *,
    sent: bool,
    retryable: bool,
) -> AttemptFailed:
    """The failure of an attempt that got no response. ``sent``: the request may have left
    this process; ``retryable``: the policy's verdict for that case."""
    timed_out = isinstance(exc, asyncio.TimeoutError)
    left = deadline.remaining() if timed_out else None
    if left is not None and left <= CLOCK_SLACK:
        error: APIConnectionError = APITimeoutError(
            f"{method} {shown}: no response before the call's deadline"
            + (maybe_applied(method) if sent else ""),
            method=method,
            path=shown,
            request_sent=sent,
        )
        return AttemptFailed(error, retryable=False, retry_after=None)
    what = "could not connect" if not sent else "the connection failed before a response"
    message = f"{method} {shown}: {what} ({describe_exception(exc)})"
    if sent and not retryable:
        message += maybe_applied(method)
    cls = APITimeoutError if timed_out else APIConnectionError
    return AttemptFailed(
        cls(message, method=method, path=shown, request_sent=sent),
        retryable=retryable,
        retry_after=None,
    )
