"""The exception tree of crewship_async.

Every error the SDK raises on purpose is a :class:`CrewshipError`. Errors that come from
an HTTP response are :class:`APIError` subclasses chosen by status code; errors where no
usable response arrived are :class:`APIConnectionError` (and :class:`APITimeoutError`).
Messages always name the request (method and path, ids included) and never the API key.
Every error pickles: the constructor arguments are kept as attributes and restored by
``__reduce__``.

Server text reaches the user only through these constructors, and :class:`CrewshipError`
passes the message and every attribute through :func:`crewship_async._redact.scrub`: the
API key of any live client and any webhook token in use are masked (whole, or any 8 or
more characters of them in a row), and control characters are escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from ._metadata import ResponseInfo
from ._redact import scrub, scrub_value

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "CrewshipError",
    "InternalServerError",
    "NotFoundError",
    "PartialInsertError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseError",
    "ServiceUnavailableError",
    "StreamError",
    "ThreadBusyError",
    "WebhookVerificationError",
]


class CrewshipError(Exception):
    """Base class of every error raised by crewship_async.

    Subclasses set their attributes before calling this constructor, which scrubs them and
    the message of secrets (see the module docstring).
    """

    def __init__(self, message: str) -> None:
        state = self.__dict__
        for name, value in state.items():
            state[name] = scrub_value(value)
        message = scrub(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[CrewshipError], state: dict[str, Any]) -> CrewshipError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ClientClosedError(CrewshipError, RuntimeError):
    """The client was used after ``aclose()``, or from an event loop other than its own."""


class APIError(CrewshipError):
    """The API answered with an HTTP error status.

    Attributes: ``status_code``; ``message`` (the server's ``error.message``, or a summary of
    the body when it has none); ``code`` (``error.code`` when given); ``body`` (the decoded
    JSON body, or the text when it was not JSON); ``request_id`` (the ``x-request-id``
    header); ``method`` and ``path`` of the request; ``response_info``: the
    :class:`~crewship_async.ResponseInfo` of the response (status, headers, elapsed,
    attempts), when the error came from a call's response.
    """

    response_info: Optional[ResponseInfo] = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str,
        path: str,
        code: Optional[str] = None,
        body: Any = None,
        request_id: Optional[str] = None,
    ) -> None:
        self.status_code = status_code
        self.method = method
        self.path = path
        self.code = code
        self.body = body
        self.request_id = request_id
        super().__init__(message)

    def __str__(self) -> str:
        text = f"{self.method} {self.path} -> {self.status_code}: {self.message}"
        if self.code:
            text += f" (code={self.code})"
        if self.request_id:
            text += f" [request_id={self.request_id}]"
        return text


class BadRequestError(APIError):
    """400: the request was malformed or refused by validation."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIError):
    """403: the key may not do this."""


class NotFoundError(APIError):
    """404: the run, thread, table, row or deployment does not exist."""


class ConflictError(APIError):
    """409: the resource is in a state that forbids the request. Never retried blindly."""


class ThreadBusyError(ConflictError):
    """409 from creating a thread run: the thread is already running one.

    ``thread_id`` names the busy thread; ``message`` is the server's text; ``run_id`` is the
    run holding the thread when the server names it (``error.run_id``), else ``None``.
    """

    def __init__(
        self, message: str, *, thread_id: str, run_id: Optional[str] = None, **kwargs: Any
    ) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        super().__init__(message, **kwargs)


class RateLimitError(APIError):
    """429: too many requests. ``retry_after`` is the server's delay in seconds, if given."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class InternalServerError(APIError):
    """A 5xx status other than 503 (which is :class:`ServiceUnavailableError`)."""


class ServiceUnavailableError(APIError):
    """503: the service is temporarily unavailable. ``retry_after``: the server's delay in
    seconds, if it sent ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class APIConnectionError(CrewshipError):
    """No usable HTTP response: the connection failed, dropped, or the body was cut short.

    ``method`` and ``path`` name the request. For a POST whose body may have reached the
    server, the message says that the operation may or may not have happened: it is never
    replayed automatically. ``request_sent`` says which: ``False`` when the request never
    left this process (sending it again cannot duplicate anything), ``True`` when it may
    have reached the server, ``None`` when that is not known.
    """

    def __init__(
        self, message: str, *, method: str, path: str, request_sent: Optional[bool] = None
    ) -> None:
        self.method = method
        self.path = path
        self.request_sent = request_sent
        super().__init__(message)


class APITimeoutError(APIConnectionError, TimeoutError):
    """The call's deadline passed before the API answered (also a ``TimeoutError``)."""


class StreamError(CrewshipError):
    """An event stream failed: an ``error`` event, an idle timeout, or too many reconnects."""


class ResponseError(CrewshipError):
    """A 2xx response whose body is not what the API promises (not JSON, or the wrong shape).

    ``method`` and ``path`` name the request; ``field`` names the offending field when known.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", field: Optional[str] = None
    ) -> None:
        self.method = method
        self.path = path
        self.field = field
        super().__init__(message)


class PartialInsertError(CrewshipError):
    """A batched row insert failed part-way.

    ``inserted`` holds the rows the API stored, ``inserted_indices`` their positions in the
    caller's input, ``failed_indices`` the positions that were not stored (the failed batch
    and every batch not sent), and ``__cause__``/``cause`` the error that stopped the insert.
    Re-sending exactly ``failed_indices`` completes the insert without duplicates.
    """

    def __init__(
        self,
        message: str,
        *,
        inserted: Sequence[Any],
        inserted_indices: Sequence[int],
        failed_indices: Sequence[int],
        cause: Optional[BaseException] = None,
    ) -> None:
        self.inserted: list[Any] = list(inserted)
        self.inserted_indices: list[int] = list(inserted_indices)
        self.failed_indices: list[int] = list(failed_indices)
        self.cause: Optional[BaseException] = cause
        super().__init__(message)


class WebhookVerificationError(CrewshipError, ValueError):
    """A delivery of an outgoing webhook that must not be trusted.

    ``reason`` says what failed, as one of: ``missing_header`` (which one is in the
    message), ``bad_timestamp`` (not Unix seconds), ``timestamp_too_old``,
    ``timestamp_in_future``, ``bad_signature`` (none of the signatures matches any of the
    secrets), ``not_json`` (the body is not a UTF-8 JSON object), ``bad_payload`` (the JSON
    does not describe a run, or contradicts the headers). The message never quotes a
    secret, a signature or the body.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)
