"""Thread models: a thread's state, its checkpoints, and the result of a thread run."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Optional, Union

import attrs

from .runs import Run

__all__ = ["Checkpoint", "Thread", "ThreadRunResult", "ThreadStatus"]


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


def _frozen_extra() -> Mapping[str, Any]:
    return {}


@attrs.frozen(slots=True)
class Thread:
    """A thread as ``GET /v1/threads/{id}`` reports it (note: its id is ``thread_id``).

    ``values`` is the thread's current state (``None`` until set), ``metadata`` what the
    caller attached. Fields the model does not know are in ``extra``.
    """

    thread_id: str
    status: Union[ThreadStatus, str]
    deployment_id: Optional[str] = None
    metadata: Optional[Mapping[str, Any]] = None
    values: Optional[Mapping[str, Any]] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)

    @property
    def is_idle(self) -> bool:
        """Whether the thread is ready for a new run."""
        return self.status == ThreadStatus.IDLE

    @property
    def is_busy(self) -> bool:
        """Whether a run is executing in the thread."""
        return self.status == ThreadStatus.BUSY


@attrs.frozen(slots=True)
class Checkpoint:
    """One entry of a thread's history: the state recorded after a run.

    The API does not document this shape, so every field is optional and anything else
    the server sends is kept in ``extra``.
    """

    checkpoint_id: Optional[str] = None
    run_id: Optional[str] = None
    values: Any = None
    created_at: Optional[datetime] = None
    extra: Mapping[str, Any] = attrs.field(factory=_frozen_extra, repr=False)


class ThreadRunResult(NamedTuple):
    """What :meth:`~crewship_async.resources.threads.ThreadRuns.create_and_wait` returns:
    the terminal run and the thread read again after it. Unpacks as ``run, thread``."""

    run: Run
    thread: Thread
