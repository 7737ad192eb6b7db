"""The data the API returns, as frozen attrs classes."""

from .events import TERMINAL_EVENT_TYPES, EventType, RunEvent
from .runs import (
    TERMINAL_RUN_STATUSES,
    CancelResult,
    Environment,
    Run,
    RunCreated,
    RunOutcome,
    RunRequest,
    RunStatus,
)
from .tables import Column, Row, RowMeta, Table
from .threads import Checkpoint, Thread, ThreadRunResult, ThreadStatus

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_RUN_STATUSES",
    "CancelResult",
    "Checkpoint",
    "Column",
    "Environment",
    "EventType",
    "Run",
    "RunCreated",
    "RunEvent",
    "RunOutcome",
    "RunRequest",
    "RunStatus",
    "Row",
    "RowMeta",
    "Table",
    "Thread",
    "ThreadRunResult",
    "ThreadStatus",
]
