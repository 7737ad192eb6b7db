"""Threads: the records, their checkpoints, and the busy/idle rules of thread runs.

A thread is ``busy`` while one of its runs is unfinished (a second run gets 409). When the
run ends the thread settles: ``error`` after a failure, else ``idle``; a success appends the
exchange to ``values["messages"]`` and writes a checkpoint.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Optional

import attrs

from .._common import ApiError, IdFactory, isoformat, utcnow
from ._bodies import optional_object
from .runs import RunRecord

__all__ = ["THREAD_STATUSES", "Checkpoint", "ThreadRecord", "Threads", "user_content"]

THREAD_STATUSES = ("idle", "busy", "interrupted", "error")


def user_content(run_input: Any) -> Any:
    """What a thread run's input says, for the conversation log."""
    if isinstance(run_input, dict):
        for key in ("message", "content", "prompt", "text", "question"):
            value = run_input.get(key)
            if isinstance(value, str):
                return value
    return copy.deepcopy(run_input)


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


class Threads:
    """Every thread by id, in creation order, and the rules that change them."""

    def __init__(self, *, ids: IdFactory, sequence: Iterator[int]) -> None:
        self._ids = ids
        self._sequence = sequence
        self.by_id: dict[str, ThreadRecord] = {}

    def get(self, thread_id: str) -> ThreadRecord:
        """The thread ``thread_id``; 404 if there is none."""
        thread = self.by_id.get(thread_id)
        if thread is None:
            raise ApiError(404, f"Thread not found: {thread_id}")
        return thread

    def create(self, deployment_id: str, body: Mapping[str, Any]) -> ThreadRecord:
        """A new idle thread with the body's ``metadata`` and ``values`` (400 if not objects)."""
        now = utcnow()
        thread = ThreadRecord(
            thread_id=self._ids.new("thr"),
            seq=next(self._sequence),
            deployment_id=deployment_id,
            metadata=optional_object(body, "metadata", {}),
            values=optional_object(body, "values", None),
            created_at=now,
            updated_at=now,
        )
        self.by_id[thread.thread_id] = thread
        return thread

    def matching(
        self, *, deployment_id: Optional[str], status: Optional[str]
    ) -> list[ThreadRecord]:
        """The deployment's threads (``deployment_id`` is required), newest first."""
        if not deployment_id:
            raise ApiError(400, "deployment_id is required")
        if status is not None and status not in THREAD_STATUSES:
            raise ApiError(400, f"status must be one of: {', '.join(THREAD_STATUSES)}")
        return [
            thread
            for thread in reversed(self.by_id.values())
            if thread.deployment_id == deployment_id and (status is None or thread.status == status)
        ]

    def delete(self, thread_id: str) -> None:
        """Forget the thread; 409 while one of its runs is executing."""
        thread = self.get(thread_id)
        if thread.status == "busy":
            raise ApiError(
                409,
                f"Thread is busy: run {thread.active_run_id} is executing; cancel it first",
                run_id=thread.active_run_id,
            )
        del self.by_id[thread_id]

    def copy(self, thread_id: str) -> ThreadRecord:
        """A new idle thread with the source's metadata, values and history."""
        source = self.get(thread_id)
        now = utcnow()
        thread = ThreadRecord(
            thread_id=self._ids.new("thr"),
            seq=next(self._sequence),
            deployment_id=source.deployment_id,
            metadata=copy.deepcopy(source.metadata),
            values=copy.deepcopy(source.values),
            created_at=now,
            updated_at=now,
            history=list(source.history),
        )
        self.by_id[thread.thread_id] = thread
        return thread

    @staticmethod
    def check_idle(thread: ThreadRecord) -> None:
        """409 while the thread has a run executing."""
        if thread.status == "busy":
            raise ApiError(
                409,
                f"Thread is busy: run {thread.active_run_id} is still executing",
                run_id=thread.active_run_id,
            )

    @staticmethod
    def occupy(thread: ThreadRecord, run: RunRecord) -> None:
        """Mark the thread busy with ``run``."""
        thread.status = "busy"
        thread.active_run_id = run.id
        thread.updated_at = utcnow()

    def release(self, run: RunRecord) -> None:
        """Settle the thread ``run`` kept busy, now that ``run`` has its terminal status."""
        thread = self.by_id.get(run.thread_id) if run.thread_id else None
        if thread is None or thread.active_run_id != run.id:
            return
        thread.active_run_id = None
        thread.updated_at = utcnow()
        if run.status == "failed":
            thread.status = "error"
            return
        thread.status = "idle"
        if run.status == "succeeded":
            self._append_exchange(thread, run)

    def _append_exchange(self, thread: ThreadRecord, run: RunRecord) -> None:
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
                checkpoint_id=self._ids.new("ckpt"),
                run_id=run.id,
                values=copy.deepcopy(values),
                created_at=thread.updated_at,
            )
        )

    def history(self, thread_id: str) -> list[Checkpoint]:
        """The thread's checkpoints, newest first."""
        return list(reversed(self.get(thread_id).history))
