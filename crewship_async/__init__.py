"""crewship_async: the async-first Python SDK for the Crewship REST API."""

from ._client import AsyncCrewship
from ._pagination import AsyncPager
from ._retry import RetryPolicy
from ._streams import EventStream
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    CrewshipError,
    InternalServerError,
    NotFoundError,
    PartialInsertError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServiceUnavailableError,
    StreamError,
    ThreadBusyError,
)
from .models import (
    CancelResult,
    Environment,
    EventType,
    Run,
    RunCreated,
    RunEvent,
    RunOutcome,
    RunRequest,
    RunStatus,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncCrewship",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "CancelResult",
    "ClientClosedError",
    "ConflictError",
    "CrewshipError",
    "Environment",
    "EventStream",
    "EventType",
    "InternalServerError",
    "NotFoundError",
    "PartialInsertError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseError",
    "RetryPolicy",
    "Run",
    "RunCreated",
    "RunEvent",
    "RunOutcome",
    "RunRequest",
    "RunStatus",
    "ServiceUnavailableError",
    "StreamError",
    "ThreadBusyError",
    "__version__",
]
