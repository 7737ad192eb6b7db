"""Run models: what ``POST /v1/runs`` answers, a run's state, and fan-out requests."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Optional, Union

import attrs

from .._metadata import ResponseMetadata
from ._choices import check_choice, literal_values

__all__ = [
    "ENVIRONMENTS",
    "RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "check_environment",
    "check_run_status",
    "CancelResult",
    "Environment",
    "EnvironmentName",
    "Run",
    "RunCreated",
    "RequestItem",
    "RunOutcome",
    "RunRequest",
    "RunStatus",
    "RunStatusName",
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


#: The values of :class:`RunStatus`, as a type: what the ``status`` filter of
#: ``runs.list`` takes (the enum members are accepted too).
RunStatusName = Literal["pending", "running", "succeeded", "failed", "canceled"]

#: The values of :class:`Environment`, as a type: what every ``environment=`` argument
#: takes (the enum members are accepted too).
EnvironmentName = Literal["production", "staging"]

#: The values of :data:`RunStatusName` (checked equal to :class:`RunStatus` on import).
RUN_STATUSES = literal_values(RunStatusName, RunStatus)
#: The values of :data:`EnvironmentName` (checked equal to :class:`Environment` on import).
ENVIRONMENTS = literal_values(EnvironmentName, Environment)

TERMINAL_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED})


def _frozen_extra() -> Mapping[str, Any]:
    return {}


@attrs.frozen(slots=True)
class RunCreated(ResponseMetadata):
    """The API's answer to creating a run (202): the run id and the version that serves it.

    ``thread_id`` is set for thread runs (it names the thread, not this object).

    Ids: the API calls this run's id ``run_id`` here, and the model keeps that field;
    :attr:`id` is the same value. On every model ``.id`` is the object's own id, and
    ``<kind>_id`` (``run_id``, ``thread_id``, ``table_id``, ``row_id``,
    ``checkpoint_id``) is the same value under the name the API gives it elsewhere.
    """

    run_id: str
    status: Union[RunStatus, str] = RunStatus.RUNNING
    version_id: Optional[str] = None
    version_number: Optional[int] = None
    thread_id: Optional[str] = None
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)

    @property
    def id(self) -> str:
        """The run's id: the same as :attr:`run_id`."""
        return self.run_id


@attrs.frozen(slots=True)
class Run(ResponseMetadata):
    """A run's state as ``GET /v1/runs/{id}`` reports it.

    ``output`` is set when the run succeeded, ``error_message`` when it failed. Fields the
    model does not know are in ``extra``. The run's id is :attr:`id`, also readable as
    :attr:`run_id` (the name :class:`RunCreated` gives it).
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
    def run_id(self) -> str:
        """The run's id: the same as :attr:`id`."""
        return self.id

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished (succeeded, failed or canceled)."""
        return self.status in TERMINAL_RUN_STATUSES


@attrs.frozen(slots=True)
class CancelResult(ResponseMetadata):
    """The answer to ``POST /v1/runs/{id}/cancel``."""

    success: bool
    status: Union[RunStatus, str] = RunStatus.CANCELED
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)


def check_environment(value: object) -> str:
    """``value`` as a plain string if it is ``"production"`` or ``"staging"`` (or an
    :class:`Environment`), else ``ValueError``."""
    return check_choice("environment", value, ENVIRONMENTS)


def check_run_status(value: object) -> str:
    """``value`` as a plain string if it is a :data:`RunStatusName` (or a
    :class:`RunStatus`); ``TypeError`` for a non-string, else ``ValueError``."""
    if not isinstance(value, str):
        raise TypeError(f"status must be a string, got {type(value).__name__}")
    return check_choice("status", value, RUN_STATUSES)


def _validate_environment(instance: Any, attribute: Any, value: Any) -> None:
    check_environment(value)


def _validate_deployment_id(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"deployment_id must be a non-empty string, got {value!r}")


def _validate_input(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"input must be a mapping (a JSON object), got {type(value).__name__}")


_REQUEST_KEYS = frozenset(("deployment_id", "input", "environment"))


@attrs.frozen(slots=True)
class RunRequest:
    """One run to create: the unit of :meth:`~crewship_async.resources.runs.Runs.create_many`.

    Validated on construction: ``deployment_id`` a non-empty string, ``input`` a mapping or
    ``None``, ``environment`` ``"production"`` or ``"staging"``.
    """

    deployment_id: str = attrs.field(validator=_validate_deployment_id)
    input: Optional[Mapping[str, Any]] = attrs.field(default=None, validator=_validate_input)
    environment: Union[Environment, EnvironmentName] = attrs.field(
        default="production", validator=_validate_environment
    )

    @classmethod
    def coerce(cls, item: object) -> RunRequest:
        """A :class:`RunRequest` from itself or a mapping with the same keys.

        Raises ``TypeError`` / ``ValueError`` saying what is wrong with ``item``.
        """
        if isinstance(item, RunRequest):
            return item
        if isinstance(item, Mapping):
            if not item.keys() <= _REQUEST_KEYS:
                unknown = sorted(map(repr, item.keys() - _REQUEST_KEYS))
                raise TypeError(f"unknown RunRequest keys: [{', '.join(unknown)}]")
            if "deployment_id" not in item:
                raise ValueError("deployment_id is required")
            return cls(
                item["deployment_id"],
                item.get("input"),
                item.get("environment", "production"),
            )
        raise TypeError(f"expected a RunRequest or a mapping, got {type(item).__name__}")


#: One item of what ``runs.create_many``/``create_all`` take: a :class:`RunRequest` or a
#: mapping with its fields (``deployment_id``, and optionally ``input``, ``environment``).
RequestItem = Union[RunRequest, Mapping[str, Any]]


@attrs.frozen(slots=True)
class RunOutcome:
    """The result of one request of a fan-out.

    ``index`` is the request's position in the input, ``request`` the item as the caller
    gave it (a :class:`RunRequest` or a mapping, unchecked when it was a bad item: its
    error says why); exactly one of ``run`` and ``error`` is set.
    """

    index: int
    request: RequestItem
    run: Optional[RunCreated] = None
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        """Whether the run was created."""
        return self.error is None
