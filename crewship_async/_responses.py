"""From an HTTP response to a value or an error: capped body reads, JSON decoding of a 2xx
body, and the :class:`~crewship_async.errors.APIError` of an error status.

Imports aiohttp only to read a body; everything else works on status, headers and bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import aiohttp

from . import _json
from ._retry import parse_retry_after
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServiceUnavailableError,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_SIZE",
    "ERROR_BODY_LIMIT",
    "decode_success",
    "make_api_error",
    "read_capped",
]

_ERROR_BODY_SNIPPET = 200
#: Default cap on the decoded size of one response body: a page of 1,000 table rows of
#: about 30 KB each. ``AsyncCrewship(max_response_size=...)`` changes it.
DEFAULT_MAX_RESPONSE_SIZE = 32 * 1024 * 1024
#: How much of an error response's body is read for its message; the rest is dropped.
ERROR_BODY_LIMIT = 64 * 1024


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read the decoded body, stopping once it passes ``limit`` bytes.

    Returns ``(body, complete)``: ``complete`` is false when the body was longer than
    ``limit``, and ``body`` then holds its first ``limit`` bytes; the rest is never read
    (nor decompressed: aiohttp inflates a compressed body only as it is read), so memory
    stays within about twice the limit whatever the server sends.
    """
    length = response.content_length
    if length is not None and length <= limit and "Content-Encoding" not in response.headers:
        return await response.read(), True
    content = response.content
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.readany()
        if not chunk:
            return b"".join(chunks), True
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: len(chunk) - (size - limit)])
            return b"".join(chunks), False
        chunks.append(chunk)


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def _describe_body(body: bytes, content_type: str) -> tuple[Any, Optional[str], Optional[str]]:
    """Decode an error body: ``(body, message, code)``; message/code are None if absent."""
    try:
        decoded = _json.loads(body) if body else None
    except _json.JSONDecodeError:
        text = body.decode("utf-8", "replace")
        snippet = " ".join(text.split())[:_ERROR_BODY_SNIPPET]
        kind = content_type or "no content type"
        return text, f"non-JSON error body ({kind}): {snippet!r}", None
    if isinstance(decoded, dict):
        error = decoded.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            return (
                decoded,
                message if isinstance(message, str) else None,
                code if isinstance(code, str) else None,
            )
        if isinstance(error, str):
            return decoded, error, None
        message = decoded.get("message")
        if isinstance(message, str):
            return decoded, message, None
    return decoded, None, None


def make_api_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str,
    path: str,
) -> APIError:
    """Build the :class:`APIError` subclass for an HTTP error response."""
    decoded, message, code = _describe_body(body, headers.get("Content-Type", ""))
    request_id = headers.get("x-request-id")
    if message is None:
        message = f"HTTP {status} with no error message"
    common: dict[str, Any] = {
        "status_code": status,
        "method": method,
        "path": path,
        "code": code,
        "body": decoded,
        "request_id": request_id,
    }
    if status == 429:
        return RateLimitError(message, retry_after=parse_retry_after(headers), **common)
    if status == 503:
        return ServiceUnavailableError(message, retry_after=parse_retry_after(headers), **common)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIError
    return cls(message, **common)


def decode_success(
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    complete: bool,
    max_size: int,
    method: str,
    path: str,
) -> Any:
    """The decoded JSON of a 2xx body read by :func:`read_capped` (``None`` for a 204 or
    an empty body).

    Raises :class:`ResponseError` for a body past ``max_size`` (``complete`` false) and
    for one that is not JSON, whatever the decoder choked on.
    """
    if not complete:
        raise ResponseError(
            f"{method} {path} -> {status}: the response body is larger than "
            f"max_response_size ({max_size} bytes); raise it with "
            "AsyncCrewship(max_response_size=...) if such a body is expected",
            method=method,
            path=path,
        )
    if status == 204 or not raw:
        return None
    try:
        return _json.loads(raw)
    except _json.JSONDecodeError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    # Raised outside the handler: the decoder's exception is described, not chained.
    snippet = raw[:_ERROR_BODY_SNIPPET].decode("utf-8", "replace")
    raise ResponseError(
        f"{method} {path} -> {status}: the body is not JSON "
        f"({headers.get('Content-Type', 'no content type')}; {reason}): {snippet!r}",
        method=method,
        path=path,
    )
