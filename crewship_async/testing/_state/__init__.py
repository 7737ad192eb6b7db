"""The emulator's in-memory state, one module per resource, composed by :class:`Store`.

- :mod:`.deployments`: deployments, their running versions, incoming webhook tokens;
- :mod:`.runs`: runs and their append-only event logs;
- :mod:`.threads`: threads, checkpoints and the busy/idle rules of thread runs;
- :mod:`.tables` and :mod:`.columns`: tables, rows and their validation;
- :mod:`.store`: :class:`Store`, what the routes, the simulation and the server call.

The resource modules import nothing above them; only the store joins them.
"""

from .deployments import ENVIRONMENTS, Deployment
from .runs import RUN_STATUSES, TERMINAL_EVENT_TYPES, TERMINAL_RUN_STATUSES, RunEvent, RunRecord
from .store import Store
from .tables import ROW_AUTHOR, RowRecord, TableRecord
from .threads import THREAD_STATUSES, Checkpoint, ThreadRecord, user_content

__all__ = [
    "ENVIRONMENTS",
    "ROW_AUTHOR",
    "RUN_STATUSES",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_RUN_STATUSES",
    "THREAD_STATUSES",
    "Checkpoint",
    "Deployment",
    "RowRecord",
    "RunEvent",
    "RunRecord",
    "Store",
    "TableRecord",
    "ThreadRecord",
    "user_content",
]
