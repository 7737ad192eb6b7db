"""The emulator's in-memory state: deployments, runs and their events, threads, tables.

Every mutation is synchronous, so a request handler never sees a half-applied change.
Runs and threads keep a creation sequence number: lists are ordered by it, newest first,
which keeps pagination stable even when timestamps tie. A run's events live in an
append-only log with increasing integer ids; watchers wait on :meth:`RunRecord.changed`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Callable, Optional

import attrs

from ._common import ApiError, IdFactory, isoformat, utcnow
from ._tables import Column, parse_columns, validate_row

__all__ = [
    "ENVIRONMENTS",
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
]

ENVIRONMENTS = ("production", "staging")
RUN_STATUSES = ("pending", "running", "succeeded", "failed", "canceled")
TERMINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "canceled"})
THREAD_STATUSES = ("idle", "busy", "interrupted", "error")
#: Event types after which the API ends an event stream.
TERMINAL_EVENT_TYPES = frozenset({"run.completed", "run.failed", "complete"})
#: Who a row write is attributed to (the API shows ``api:<key name>``).
ROW_AUTHOR = "api:Emulator Key"


@attrs.frozen
class Deployment:
    """A deployment the emulator knows, with the version each environment runs."""

    id: str
    environments: Mapping[str, int]

    def version(self, environment: str) -> tuple[str, int]:
        """``(version_id, version_number)`` of ``environment``, or 400 like the API."""
        number = self.environments.get(environment)
        if number is None:
            raise ApiError(400, f"No running version found for {environment} environment")
        digest = hashlib.sha1(f"{self.id}:{environment}:{number}".encode()).hexdigest()
        return f"ver_{digest[:12]}", number


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


@attrs.frozen
class Checkpoint:
    """A snapshot of a thread's values, written when a thread run succeeds."""

    checkpoint_id: str
    run_id: str
    values: Any
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint_id": self.checkpoint_id,
            "run_id": self.run_id,
            "values": copy.deepcopy(self.values),
            "created_at": isoformat(self.created_at),
        }


@attrs.define(eq=False)
class ThreadRecord:
    """A thread as the emulator holds it; ``history`` is oldest first."""

    thread_id: str
    seq: int
    deployment_id: str
    metadata: Any
    values: Any
    created_at: datetime
    updated_at: datetime
    status: str = "idle"
    active_run_id: Optional[str] = None
    history: list[Checkpoint] = attrs.field(factory=list)

    def to_json(self) -> dict[str, Any]:
        """The thread as ``GET /v1/threads/{id}`` returns it."""
        return {
            "thread_id": self.thread_id,
            "deployment_id": self.deployment_id,
            "status": self.status,
            "metadata": copy.deepcopy(self.metadata),
            "values": copy.deepcopy(self.values),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@attrs.define(eq=False)
class RowRecord:
    """One stored row: its id, values and write metadata."""

    id: str
    values: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_json(self, columns: Sequence[Column]) -> dict[str, Any]:
        """The row with every current column at top level (``null`` when unset)."""
        body: dict[str, Any] = {"id": self.id}
        for column in columns:
            body[column.name] = copy.deepcopy(self.values.get(column.name))
        body["_meta"] = {
            "created_at": isoformat(self.created_at),
            "created_by": ROW_AUTHOR,
            "updated_at": isoformat(self.updated_at),
            "updated_by": ROW_AUTHOR,
        }
        return body


@attrs.define(eq=False)
class TableRecord:
    """A table and its rows (a dict keeps them in insert order)."""

    id: str
    seq: int
    name: str
    description: Optional[str]
    columns: list[Column]
    created_at: datetime
    updated_at: datetime
    rows: dict[str, RowRecord] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "columns": [column.to_json() for column in self.columns],
            "row_count": len(self.rows),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


def _optional_object(body: Mapping[str, Any], key: str, default: Any) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, dict):
        raise ApiError(400, f"{key} must be an object")
    return copy.deepcopy(value)


def _environment(body: Mapping[str, Any]) -> str:
    environment = body.get("environment")
    if environment is None:
        return "production"
    if environment not in ENVIRONMENTS:
        raise ApiError(400, "environment must be one of: production, staging")
    return str(environment)


def user_content(run_input: Any) -> Any:
    """What a thread run's input says, for the conversation log."""
    if isinstance(run_input, dict):
        for key in ("message", "content", "prompt", "text", "question"):
            value = run_input.get(key)
            if isinstance(value, str):
                return value
    return copy.deepcopy(run_input)


class Store:
    """All emulated resources plus the rules that change them.

    Methods that take a request body validate it and raise :class:`ApiError` with the
    status and message the API would use.
    """

    def __init__(
        self,
        *,
        ids: IdFactory,
        strict_deployments: bool = False,
        max_rows_per_insert: int = 100,
    ) -> None:
        self.ids = ids
        self.strict_deployments = strict_deployments
        self.max_rows_per_insert = max_rows_per_insert
        self.deployments: dict[str, Deployment] = {}
        self.runs: dict[str, RunRecord] = {}
        self.threads: dict[str, ThreadRecord] = {}
        self.tables: dict[str, TableRecord] = {}
        self.webhooks: dict[str, tuple[str, str]] = {}
        #: Called with each run that reaches a terminal status (outgoing webhooks).
        self.on_run_finished: list[Callable[[RunRecord], None]] = []
        self._seq = itertools.count(1)

    # -- deployments ------------------------------------------------------------------

    def add_deployment(self, deployment_id: str, environments: Mapping[str, int]) -> Deployment:
        deployment = Deployment(id=deployment_id, environments=dict(environments))
        self.deployments[deployment_id] = deployment
        return deployment

    def deployment(self, deployment_id: Any) -> Deployment:
        """Resolve ``deployment_id`` from a request body (400 / 404 as the API answers)."""
        if deployment_id is None:
            raise ApiError(400, "deployment_id is required")
        if not isinstance(deployment_id, str) or not deployment_id:
            raise ApiError(400, "deployment_id must be a non-empty string")
        known = self.deployments.get(deployment_id)
        if known is not None:
            return known
        if not deployment_id.startswith("dep_"):
            raise ApiError(404, f"Deployment not found: {deployment_id}")
        if self.strict_deployments:
            # The API knows the deployment exists but has no version running for it.
            return Deployment(id=deployment_id, environments={})
        return Deployment(id=deployment_id, environments={"production": 1, "staging": 1})

    # -- runs ---------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        run = self.runs.get(run_id)
        if run is None:
            raise ApiError(404, f"Run not found: {run_id}")
        return run

    def _new_run(
        self,
        deployment: Deployment,
        environment: str,
        run_input: Any,
        thread_id: Optional[str] = None,
    ) -> RunRecord:
        version_id, version_number = deployment.version(environment)
        run = RunRecord(
            id=self.ids.new("run"),
            seq=next(self._seq),
            deployment_id=deployment.id,
            environment=environment,
            version_id=version_id,
            version_number=version_number,
            input=run_input,
            created_at=utcnow(),
            thread_id=thread_id,
        )
        self.runs[run.id] = run
        return run

    def create_run(self, body: Mapping[str, Any]) -> RunRecord:
        """``POST /v1/runs``: validate the body and record a pending run."""
        deployment = self.deployment(body.get("deployment_id"))
        run_input = _optional_object(body, "input", {})
        return self._new_run(deployment, _environment(body), run_input)

    def create_webhook_run(self, token: str, body: Any) -> RunRecord:
        """``POST /webhooks/runs/{token}``: the body is the run input."""
        target = self.webhooks.get(token)
        if target is None:
            raise ApiError(404, "Webhook not found")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(400, "The webhook body must be a JSON object (the run input)")
        deployment_id, environment = target
        return self._new_run(self.deployment(deployment_id), environment, copy.deepcopy(body))

    def list_runs(self, *, deployment_id: Optional[str], status: Optional[str]) -> list[RunRecord]:
        """Matching runs, newest first."""
        if status is not None and status not in RUN_STATUSES:
            raise ApiError(400, f"status must be one of: {', '.join(RUN_STATUSES)}")
        return [
            run
            for run in reversed(self.runs.values())
            if (deployment_id is None or run.deployment_id == deployment_id)
            and (status is None or run.status == status)
        ]

    def start_run(self, run: RunRecord) -> None:
        run.status = "running"
        run.started_at = utcnow()
        run.emit("run.started", {"entrypoint": "default"})

    def finish_run(
        self, run: RunRecord, status: str, *, output: Any = None, error: Optional[str] = None
    ) -> None:
        """Move ``run`` to a terminal status, emit its final event, settle its thread."""
        run.status = status
        run.completed_at = utcnow()
        if status == "succeeded":
            run.output = output
        elif status == "failed":
            run.error_message = error
        thread = self.threads.get(run.thread_id) if run.thread_id else None
        if thread is not None and thread.active_run_id == run.id:
            self._settle_thread(thread, run)
        if status == "succeeded":
            run.emit("run.completed", {"status": "succeeded"})
        elif status == "failed":
            run.emit("run.failed", {"status": "failed", "error": error})
        else:
            run.emit("complete", {"status": status})
        for listener in self.on_run_finished:
            listener(run)

    def cancel_run(self, run_id: str) -> RunRecord:
        """``POST /v1/runs/{id}/cancel``: only pending and running runs can be canceled."""
        run = self.get_run(run_id)
        if run.terminal:
            raise ApiError(400, f"Cannot cancel run with status: {run.status}")
        self.finish_run(run, "canceled")
        return run

    # -- threads ------------------------------------------------------------------------

    def get_thread(self, thread_id: str) -> ThreadRecord:
        thread = self.threads.get(thread_id)
        if thread is None:
            raise ApiError(404, f"Thread not found: {thread_id}")
        return thread

    def create_thread(self, body: Mapping[str, Any]) -> ThreadRecord:
        deployment = self.deployment(body.get("deployment_id"))
        if self.strict_deployments and deployment.id not in self.deployments:
            raise ApiError(404, f"Deployment not found: {deployment.id}")
        now = utcnow()
        thread = ThreadRecord(
            thread_id=self.ids.new("thr"),
            seq=next(self._seq),
            deployment_id=deployment.id,
            metadata=_optional_object(body, "metadata", {}),
            values=_optional_object(body, "values", None),
            created_at=now,
            updated_at=now,
        )
        self.threads[thread.thread_id] = thread
        return thread

    def list_threads(
        self, *, deployment_id: Optional[str], status: Optional[str]
    ) -> list[ThreadRecord]:
        """The deployment's threads (``deployment_id`` is required), newest first."""
        if not deployment_id:
            raise ApiError(400, "deployment_id is required")
        if status is not None and status not in THREAD_STATUSES:
            raise ApiError(400, f"status must be one of: {', '.join(THREAD_STATUSES)}")
        return [
            thread
            for thread in reversed(self.threads.values())
            if thread.deployment_id == deployment_id and (status is None or thread.status == status)
        ]

    def delete_thread(self, thread_id: str) -> None:
        thread = self.get_thread(thread_id)
        if thread.status == "busy":
            raise ApiError(
                409,
                f"Thread is busy: run {thread.active_run_id} is executing; cancel it first",
                run_id=thread.active_run_id,
            )
        del self.threads[thread_id]

    def copy_thread(self, thread_id: str) -> ThreadRecord:
        source = self.get_thread(thread_id)
        now = utcnow()
        thread = ThreadRecord(
            thread_id=self.ids.new("thr"),
            seq=next(self._seq),
            deployment_id=source.deployment_id,
            metadata=copy.deepcopy(source.metadata),
            values=copy.deepcopy(source.values),
            created_at=now,
            updated_at=now,
            history=list(source.history),
        )
        self.threads[thread.thread_id] = thread
        return thread

    def create_thread_run(self, thread_id: str, body: Mapping[str, Any]) -> RunRecord:
        """``POST /v1/threads/{id}/runs``: 409 while the thread is busy."""
        thread = self.get_thread(thread_id)
        if thread.status == "busy":
            raise ApiError(
                409,
                f"Thread is busy: run {thread.active_run_id} is still executing",
                run_id=thread.active_run_id,
            )
        run_input = _optional_object(body, "input", {})
        environment = _environment(body)
        run = self._new_run(
            self.deployment(thread.deployment_id), environment, run_input, thread.thread_id
        )
        thread.status = "busy"
        thread.active_run_id = run.id
        thread.updated_at = utcnow()
        return run

    def _settle_thread(self, thread: ThreadRecord, run: RunRecord) -> None:
        thread.active_run_id = None
        thread.updated_at = utcnow()
        if run.status == "failed":
            thread.status = "error"
            return
        thread.status = "idle"
        if run.status != "succeeded":
            return
        values = copy.deepcopy(thread.values) if isinstance(thread.values, dict) else {}
        messages = values.get("messages")
        messages = list(messages) if isinstance(messages, list) else []
        messages.append({"role": "user", "content": user_content(run.input)})
        reply = run.output.get("result") if isinstance(run.output, dict) else run.output
        messages.append({"role": "assistant", "content": reply})
        values["messages"] = messages
        thread.values = values
        thread.history.append(
            Checkpoint(
                checkpoint_id=self.ids.new("ckpt"),
                run_id=run.id,
                values=copy.deepcopy(values),
                created_at=thread.updated_at,
            )
        )

    def thread_history(self, thread_id: str) -> list[Checkpoint]:
        """The thread's checkpoints, newest first."""
        return list(reversed(self.get_thread(thread_id).history))

    # -- tables -------------------------------------------------------------------------

    def get_table(self, table_id: str) -> TableRecord:
        table = self.tables.get(table_id)
        if table is None:
            raise ApiError(404, f"Table not found: {table_id}")
        return table

    def create_table(self, body: Mapping[str, Any]) -> TableRecord:
        name = body.get("name")
        if name is None:
            raise ApiError(400, "name is required")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name must be a non-empty string")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise ApiError(400, "description must be a string or null")
        columns = parse_columns(body.get("columns", []))
        now = utcnow()
        table = TableRecord(
            id=self.ids.new("tbl"),
            seq=next(self._seq),
            name=name,
            description=description,
            columns=columns,
            created_at=now,
            updated_at=now,
        )
        self.tables[table.id] = table
        return table

    def update_table(self, table_id: str, body: Mapping[str, Any]) -> TableRecord:
        """PATCH: only the fields present change; ``columns`` replaces the whole list."""
        table = self.get_table(table_id)
        name = table.name
        if "name" in body:
            name = body["name"]
            if not isinstance(name, str) or not name.strip():
                raise ApiError(400, "name must be a non-empty string")
        description = table.description
        if "description" in body:
            description = body["description"]
            if description is not None and not isinstance(description, str):
                raise ApiError(400, "description must be a string or null")
        columns = parse_columns(body["columns"]) if "columns" in body else table.columns
        table.name, table.description, table.columns = name, description, columns
        table.updated_at = utcnow()
        return table

    def delete_table(self, table_id: str) -> None:
        self.get_table(table_id)
        del self.tables[table_id]

    def insert_rows(self, table_id: str, body: Any) -> list[RowRecord]:
        """Validate every row first, then store them all (a batch is all-or-nothing)."""
        table = self.get_table(table_id)
        if isinstance(body, list):
            if not body:
                raise ApiError(400, "at least one row is required")
            if len(body) > self.max_rows_per_insert:
                raise ApiError(400, f"at most {self.max_rows_per_insert} rows per insert")
            checked = [
                validate_row(row, table.columns, position=index) for index, row in enumerate(body)
            ]
        else:
            checked = [validate_row(body, table.columns)]
        now = utcnow()
        rows = [
            RowRecord(
                id=self.ids.new("row"),
                values=copy.deepcopy(values),
                created_at=now,
                updated_at=now,
            )
            for values in checked
        ]
        for row in rows:
            table.rows[row.id] = row
        table.updated_at = now
        return rows

    def get_row(self, table: TableRecord, row_id: str) -> RowRecord:
        row = table.rows.get(row_id)
        if row is None:
            raise ApiError(404, f"Row not found: {row_id}")
        return row

    def update_row(self, table_id: str, row_id: str, body: Any) -> RowRecord:
        table = self.get_table(table_id)
        row = self.get_row(table, row_id)
        changes = validate_row(body, table.columns, partial=True)
        row.values.update(copy.deepcopy(changes))
        row.updated_at = utcnow()
        return row

    def delete_row(self, table_id: str, row_id: str) -> None:
        table = self.get_table(table_id)
        self.get_row(table, row_id)
        del table.rows[row_id]
        table.updated_at = utcnow()

    # -- webhooks -----------------------------------------------------------------------

    def add_webhook(self, token: str, deployment_id: str, environment: str) -> None:
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}, not {environment!r}")
        self.webhooks[token] = (deployment_id, environment)

    # -- lifecycle ----------------------------------------------------------------------

    def wake_all(self) -> None:
        """Wake every event-stream watcher (used when the emulator stops)."""
        for run in self.runs.values():
            run.notify()
