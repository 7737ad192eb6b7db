"""Thread models: a thread's state, its checkpoints, and the result of a thread run."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple, Optional, Union, get_args

import attrs

from .._metadata import ResponseMetadata
from ._choices import check_choice, literal_values
from .runs import Run

__all__ = [
    "ON_BUSY_CHOICES",
    "THREAD_STATUSES",
    "OnBusy",
    "Checkpoint",
    "Thread",
    "ThreadRunResult",
    "ThreadStatus",
    "ThreadStatusName",
    "check_thread_status",
]


class ThreadStatus(str, enum.Enum):
    """Known thread statuses. Unknown values from a newer server stay plain strings.

    ``idle``: ready for a run; ``busy``: a run is executing (a new thread run gets 409);
    ``interrupted`` and ``error``: listed by the API, their causes and recovery undocumented
    (``error`` follows a failed run).
    """

    IDLE = "idle"
    BUSY = "busy"
    INTERRUPTED = "interrupted"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


#: The values of :class:`ThreadStatus`, as a type: what the ``status`` filter of
#: ``threads.list`` takes (the enum members are accepted too).
ThreadStatusName = Literal["idle", "busy", "interrupted", "error"]

#: The values of :data:`ThreadStatusName` (checked equal to :class:`ThreadStatus` on import).
THREAD_STATUSES = literal_values(ThreadStatusName, ThreadStatus)


#: What ``threads.runs.create(on_busy=...)`` takes: ``"raise"`` (a 409 raises
#: ``ThreadBusyError``) or ``"wait"`` (wait until the thread is idle, then send once more).
OnBusy = Literal["raise", "wait"]
#: The values of :data:`OnBusy`.
ON_BUSY_CHOICES: tuple[str, ...] = get_args(OnBusy)


def check_thread_status(value: object) -> str:
    """``value`` as a plain string if it is a :data:`ThreadStatusName` (or a
    :class:`ThreadStatus`); ``TypeError`` for a non-string, else ``ValueError``."""
    if not isinstance(value, str):
        raise TypeError(f"status must be a string, got {type(value).__name__}")
    return check_choice("status", value, THREAD_STATUSES)


@attrs.frozen(slots=True)
class Thread(ResponseMetadata):
    """A thread as ``GET /v1/threads/{id}`` reports it.

    ``values`` is the thread's current state (``None`` until set), ``metadata`` what the
    caller attached. Fields the model does not know are in ``extra``. The API names the
    thread's id ``thread_id``, and so does this model; :attr:`id` is the same value (on
    every model ``.id`` is the object's own id).
    """

    thread_id: str
    status: Union[ThreadStatus, str]
    deployment_id: Optional[str] = None
    metadata: Optional[Mapping[str, Any]] = None
    values: Optional[Mapping[str, Any]] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def id(self) -> str:
        """The thread's id: the same as :attr:`thread_id`."""
        return self.thread_id

    @property
    def is_idle(self) -> bool:
        """Whether the thread is ready for a new run."""
        return self.status == ThreadStatus.IDLE

    @property
    def is_busy(self) -> bool:
        """Whether a run is executing in the thread."""
        return self.status == ThreadStatus.BUSY


@attrs.frozen(slots=True)
class Checkpoint(ResponseMetadata):
    """One entry of a thread's history: the state recorded after a run.

    The API does not document this shape, so every field is optional and anything else
    the server sends is kept in ``extra``. The checkpoint's own id is ``checkpoint_id``,
    also readable as :attr:`id`; ``run_id`` names the run that recorded it.
    """

    checkpoint_id: Optional[str] = None
    run_id: Optional[str] = None
    values: Any = None
    created_at: Optional[datetime] = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def id(self) -> Optional[str]:
        """The checkpoint's id: the same as :attr:`checkpoint_id` (``None`` if unknown)."""
        return self.checkpoint_id


class ThreadRunResult(NamedTuple):
    """What :meth:`~crewship_async.resources.threads.ThreadRuns.create_and_wait` returns:
    the terminal run and the thread read again after it. Unpacks as ``run, thread``."""

    run: Run
    thread: Thread
