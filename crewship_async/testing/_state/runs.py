"""Runs and their events: the records, and the rules that create, list and end runs.

A run's events live in an append-only log with increasing integer ids; watchers wait on
:meth:`RunRecord.changed`. Runs keep a creation sequence number, and lists are newest first
by insertion order, which keeps pagination stable even when timestamps tie.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Optional

import attrs

from .._common import ApiError, IdFactory, isoformat, utcnow
from .deployments import Deployment

__all__ = [
    "RUN_STATUSES",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_RUN_STATUSES",
    "RunEvent",
    "RunRecord",
    "Runs",
]

RUN_STATUSES = ("pending", "running", "succeeded", "failed", "canceled")
TERMINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "canceled"})
#: Event types after which the API ends an event stream.
TERMINAL_EVENT_TYPES = frozenset({"run.completed", "run.failed", "complete"})


@attrs.frozen
class RunEvent:
    """One event of a run: ``id`` (per run, increasing), ``type`` and ``data``."""

    id: int
    type: str
    data: Mapping[str, Any]

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENT_TYPES

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data}


@attrs.define(eq=False)
class RunRecord:
    """A run as the emulator holds it. Read it; change it only through the emulator.

    The one exception is :meth:`release`, which lets a run scripted ``"held"`` end.
    """

    id: str
    seq: int
    deployment_id: str
    environment: str
    version_id: str
    version_number: int
    input: Any
    created_at: datetime
    thread_id: Optional[str] = None
    status: str = "pending"
    output: Any = None
    error_message: Optional[str] = None
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None
    events: list[RunEvent] = attrs.field(factory=list)
    _changed: Optional[asyncio.Event] = attrs.field(default=None, init=False)
    #: Set by the simulation for a run scripted ``"held"``; ``_release``: how it ends.
    _held: bool = attrs.field(default=False, init=False)
    _release: Optional[str] = attrs.field(default=None, init=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def held(self) -> bool:
        """Whether this run was scripted ``"held"`` and is still waiting for :meth:`release`."""
        return self._held and self._release is None and not self.terminal

    def hold(self) -> None:
        """Mark this run as scripted ``"held"`` (the simulation calls it when the run starts)."""
        self._held = True

    @property
    def released_as(self) -> Optional[str]:
        """How a held run was told to end (``"succeeded"``/``"failed"``), ``None`` until then."""
        return self._release

    def release(self, outcome: str = "succeeded") -> None:
        """Let a run scripted ``"held"`` end, as ``"succeeded"`` or ``"failed"``.

        A held run heartbeats once its steps are done (like a ``"forever"`` run) until it
        is released; it then ends within two steps, with the script's ``output`` or
        ``error_message``. Releasing it before it reaches that point is remembered, so a
        test can release it at any time after creating it. Call this on the emulator's
        event loop. ``RuntimeError`` if the run is not held (another script, already
        released, canceled or otherwise ended).
        """
        if outcome not in ("succeeded", "failed"):
            raise ValueError(f"outcome must be 'succeeded' or 'failed', not {outcome!r}")
        if not self._held:
            raise RuntimeError(f"run {self.id} is not held: only runs scripted 'held' are")
        if self._release is not None:
            raise RuntimeError(f"run {self.id} was already released")
        if self.terminal:
            raise RuntimeError(f"run {self.id} already ended: {self.status}")
        self._release = outcome

    def to_json(self) -> dict[str, Any]:
        """The run as ``GET /v1/runs/{id}`` returns it."""
        body: dict[str, Any] = {
            "id": self.id,
            "version_id": self.version_id,
            "deployment_id": self.deployment_id,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "error_message": self.error_message,
            "created_at": isoformat(self.created_at),
            "started_at": isoformat(self.started_at),
            "completed_at": isoformat(self.completed_at),
        }
        if self.thread_id is not None:
            body["thread_id"] = self.thread_id
        return body

    def accepted_json(self) -> dict[str, Any]:
        """The 202 body of the requests that start a run."""
        body: dict[str, Any] = {"run_id": self.id}
        if self.thread_id is not None:
            body["thread_id"] = self.thread_id
        body.update(
            version_id=self.version_id, version_number=self.version_number, status="running"
        )
        return body

    def changed(self) -> asyncio.Event:
        """An event set at the next change of this run (take it before checking state)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def notify(self) -> None:
        """Wake everyone waiting on :meth:`changed`."""
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    def events_after(self, event_id: int) -> Sequence[RunEvent]:
        """The logged events whose id is greater than ``event_id``, oldest first."""
        events = self.events
        low, high = 0, len(events)
        while low < high:
            middle = (low + high) // 2
            if events[middle].id <= event_id:
                low = middle + 1
            else:
                high = middle
        return events[low:]

    def emit(self, type: str, data: Mapping[str, Any]) -> RunEvent:
        """Append an event and wake the watchers.

        A heartbeat that follows a heartbeat replaces it (with a new id), so a run that
        never ends keeps a log of bounded size while live watchers still see every beat.
        """
        next_id = self.events[-1].id + 1 if self.events else 1
        event = RunEvent(id=next_id, type=type, data=data)
        if type == "heartbeat" and self.events and self.events[-1].type == "heartbeat":
            self.events[-1] = event
        else:
            self.events.append(event)
        self.notify()
        return event


class Runs:
    """Every run by id, in creation order; the transitions of a run's status."""

    def __init__(self, *, ids: IdFactory, sequence: Iterator[int]) -> None:
        self._ids = ids
        self._sequence = sequence
        self.by_id: dict[str, RunRecord] = {}

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id``; 404 if there is none."""
        run = self.by_id.get(run_id)
        if run is None:
            raise ApiError(404, f"Run not found: {run_id}")
        return run

    def new(
        self,
        deployment: Deployment,
        environment: str,
        run_input: Any,
        thread_id: Optional[str] = None,
    ) -> RunRecord:
        """Record a pending run of ``deployment`` (400 if ``environment`` runs no version)."""
        version_id, version_number = deployment.version(environment)
        run = RunRecord(
            id=self._ids.new("run"),
            seq=next(self._sequence),
            deployment_id=deployment.id,
            environment=environment,
            version_id=version_id,
            version_number=version_number,
            input=run_input,
            created_at=utcnow(),
            thread_id=thread_id,
        )
        self.by_id[run.id] = run
        return run

    def matching(self, *, deployment_id: Optional[str], status: Optional[str]) -> list[RunRecord]:
        """Matching runs, newest first; 400 for an unknown ``status``."""
        if status is not None and status not in RUN_STATUSES:
            raise ApiError(400, f"status must be one of: {', '.join(RUN_STATUSES)}")
        return [
            run
            for run in reversed(self.by_id.values())
            if (deployment_id is None or run.deployment_id == deployment_id)
            and (status is None or run.status == status)
        ]

    @staticmethod
    def start(run: RunRecord) -> None:
        """``pending`` -> ``running``, with the ``run.started`` event."""
        run.status = "running"
        run.started_at = utcnow()
        run.emit("run.started", {"entrypoint": "default"})

    @staticmethod
    def settle(run: RunRecord, status: str, *, output: Any, error: Optional[str]) -> None:
        """Give ``run`` its terminal ``status`` and result (no event yet: see :meth:`announce`)."""
        run.status = status
        run.completed_at = utcnow()
        if status == "succeeded":
            run.output = output
        elif status == "failed":
            run.error_message = error

    @staticmethod
    def announce(run: RunRecord) -> None:
        """Emit the final event of a settled run, which ends its event streams."""
        if run.status == "succeeded":
            run.emit("run.completed", {"status": "succeeded"})
        elif run.status == "failed":
            run.emit("run.failed", {"status": "failed", "error": run.error_message})
        else:
            run.emit("complete", {"status": run.status})

    def wake_all(self) -> None:
        """Wake every event-stream watcher (used when the emulator stops)."""
        for run in self.by_id.values():
            run.notify()
