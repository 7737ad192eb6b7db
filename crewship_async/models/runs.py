"""Run models: what ``POST /v1/runs`` answers, a run's state, and fan-out requests."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Optional, Union

import attrs

__all__ = [
    "TERMINAL_RUN_STATUSES",
    "check_environment",
    "CancelResult",
    "Environment",
    "Run",
    "RunCreated",
    "RunOutcome",
    "RunRequest",
    "RunStatus",
]


class RunStatus(str, enum.Enum):
    """Known run statuses. Unknown values from a newer server stay plain strings."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value


class Environment(str, enum.Enum):
    """Deployment environments a run can target."""

    PRODUCTION = "production"
    STAGING = "staging"

    def __str__(self) -> str:
        return self.value


TERMINAL_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED})


def _frozen_extra() -> Mapping[str, Any]:
    return {}


@attrs.frozen(slots=True)
class RunCreated:
    """The API's answer to creating a run (202): the run id and the version that serves it.

    ``thread_id`` is set for thread runs.
    """

    run_id: str
    status: Union[RunStatus, str] = RunStatus.RUNNING
    version_id: Optional[str] = None
    version_number: Optional[int] = None
    thread_id: Optional[str] = None
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)


@attrs.frozen(slots=True)
class Run:
    """A run's state as ``GET /v1/runs/{id}`` reports it.

    ``output`` is set when the run succeeded, ``error_message`` when it failed. Fields the
    model does not know are in ``extra``.
    """

    id: str
    status: Union[RunStatus, str]
    deployment_id: Optional[str] = None
    version_id: Optional[str] = None
    input: Optional[Mapping[str, Any]] = None
    output: Any = None
    error_message: Optional[str] = None
    created_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished (succeeded, failed or canceled)."""
        return self.status in TERMINAL_RUN_STATUSES


@attrs.frozen(slots=True)
class CancelResult:
    """The answer to ``POST /v1/runs/{id}/cancel``."""

    success: bool
    status: Union[RunStatus, str] = RunStatus.CANCELED
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)


_ENVIRONMENTS = frozenset(e.value for e in Environment)


def check_environment(value: object) -> str:
    """Return ``value`` if it is ``"production"`` or ``"staging"``, else raise ``ValueError``."""
    if isinstance(value, str) and value in _ENVIRONMENTS:
        return str(value)
    raise ValueError(f"environment must be 'production' or 'staging', got {value!r}")


def _validate_environment(instance: Any, attribute: Any, value: Any) -> None:
    check_environment(value)


def _validate_deployment_id(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"deployment_id must be a non-empty string, got {value!r}")


def _validate_input(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"input must be a mapping (a JSON object), got {type(value).__name__}")


@attrs.frozen(slots=True)
class RunRequest:
    """One run to create: the unit of :meth:`~crewship_async.resources.runs.Runs.create_many`.

    Validated on construction: ``deployment_id`` a non-empty string, ``input`` a mapping or
    ``None``, ``environment`` ``"production"`` or ``"staging"``.
    """

    deployment_id: str = attrs.field(validator=_validate_deployment_id)
    input: Optional[Mapping[str, Any]] = attrs.field(default=None, validator=_validate_input)
    environment: str = attrs.field(
        default="production", converter=str, validator=_validate_environment
    )

    @classmethod
    def coerce(cls, item: Any) -> RunRequest:
        """A :class:`RunRequest` from itself or a mapping with the same keys.

        Raises ``TypeError`` / ``ValueError`` saying what is wrong with ``item``.
        """
        if isinstance(item, RunRequest):
            return item
        if isinstance(item, Mapping):
            unknown = set(item) - {"deployment_id", "input", "environment"}
            if unknown:
                raise TypeError(f"unknown RunRequest keys: {sorted(unknown)}")
            if "deployment_id" not in item:
                raise ValueError("deployment_id is required")
            return cls(**item)
        raise TypeError(f"expected a RunRequest or a mapping, got {type(item).__name__}")


@attrs.frozen(slots=True)
class RunOutcome:
    """The result of one request of a fan-out.

    ``index`` is the request's position in the input, ``request`` the item as the caller
    gave it; exactly one of ``run`` and ``error`` is set.
    """

    index: int
    request: Any
    run: Optional[RunCreated] = None
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        """Whether the run was created."""
        return self.error is None
