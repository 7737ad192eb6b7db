"""Run events as delivered by ``GET /v1/runs/{id}/events``."""

from __future__ import annotations

from typing import Any, Optional

import attrs

__all__ = ["TERMINAL_EVENT_TYPES", "EventType", "RunEvent"]


class EventType:
    """Event type names the API documents (``RunEvent.type`` may hold others)."""

    RUN_STARTED = "run.started"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    TASK_STARTED = "task.started"
    TASK_COMPLETED = "task.completed"
    AGENT_ACTION = "agent.action"
    TOOL_USE = "tool_use"
    LOG = "log"
    ARTIFACT = "artifact"
    HEARTBEAT = "heartbeat"
    COMPLETE = "complete"
    ERROR = "error"
    TIMEOUT = "timeout"


TERMINAL_EVENT_TYPES = frozenset(
    {EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.COMPLETE}
)


@attrs.frozen(slots=True)
class RunEvent:
    """One event of a run.

    ``type`` comes from the JSON envelope's ``type`` (or the SSE ``event`` field when the
    data is not such an envelope); ``data`` is the envelope's ``data`` (or ``payload``)
    object, ``{}`` when absent; ``id`` is the SSE id of this event, if the server sent one;
    ``raw`` is the SSE data text as received.
    """

    type: str
    data: Any = attrs.field(factory=dict)
    id: Optional[str] = None
    raw: str = attrs.field(default="", repr=False)

    @property
    def is_terminal(self) -> bool:
        """Whether this event ends the run's stream (run.completed, run.failed, complete)."""
        return self.type in TERMINAL_EVENT_TYPES
