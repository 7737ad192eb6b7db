"""The data the API returns, as frozen attrs classes."""

from .events import TERMINAL_EVENT_TYPES, EventType, RunEvent
from .runs import (
    TERMINAL_RUN_STATUSES,
    CancelResult,
    Environment,
    EnvironmentName,
    RequestItem,
    Run,
    RunCreated,
    RunOutcome,
    RunRequest,
    RunStatus,
    RunStatusName,
)
from .tables import Column, ColumnType, ColumnTypeName, Row, RowMeta, Table
from .threads import (
    Checkpoint,
    OnBusy,
    Thread,
    ThreadRunResult,
    ThreadStatus,
    ThreadStatusName,
)

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_RUN_STATUSES",
    "CancelResult",
    "Checkpoint",
    "Column",
    "ColumnType",
    "ColumnTypeName",
    "Environment",
    "EnvironmentName",
    "EventType",
    "RequestItem",
    "Run",
    "RunCreated",
    "RunEvent",
    "RunOutcome",
    "RunRequest",
    "RunStatus",
    "RunStatusName",
    "OnBusy",
    "Row",
    "RowMeta",
    "Table",
    "Thread",
    "ThreadRunResult",
    "ThreadStatus",
    "ThreadStatusName",
]
