"""``Store``: the emulator's whole state, composed of one store per resource.

The route handlers, the simulation and the server talk to this one object; it passes each
request to the resource it concerns and does the few things that span resources: a run of
a thread occupies and then settles the thread, and listeners hear of every run that ends.
Every mutation is synchronous, so a request handler never sees a half-applied change.
Methods that take a request body validate it and raise :class:`ApiError` with the status
and message the API would use.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any, Callable, Optional

from .._common import ApiError, IdFactory
from ._bodies import optional_object
from .deployments import Deployment, Deployments, environment_of
from .runs import RunRecord, Runs
from .tables import RowRecord, TableRecord, Tables
from .threads import Checkpoint, ThreadRecord, Threads

__all__ = ["Store"]


class Store:
    """All emulated resources: ``deployment_state``, ``run_state``, ``thread_state`` and
    ``table_state``, plus the operations the routes call by name."""

    def __init__(
        self,
        *,
        ids: IdFactory,
        strict_deployments: bool = False,
        max_rows_per_insert: int = 100,
    ) -> None:
        self.ids = ids
        # One sequence for every resource, so creation order is total across them.
        sequence = itertools.count(1)
        self.deployment_state: Deployments = Deployments(strict=strict_deployments)
        self.run_state: Runs = Runs(ids=ids, sequence=sequence)
        self.thread_state: Threads = Threads(ids=ids, sequence=sequence)
        self.table_state: Tables = Tables(
            ids=ids, sequence=sequence, max_rows_per_insert=max_rows_per_insert
        )
        #: Called with each run that reaches a terminal status (outgoing webhooks).
        self.on_run_finished: list[Callable[[RunRecord], None]] = []

    # -- the records, by id --------------------------------------------------------------

    @property
    def runs(self) -> dict[str, RunRecord]:
        return self.run_state.by_id

    @property
    def threads(self) -> dict[str, ThreadRecord]:
        return self.thread_state.by_id

    @property
    def tables(self) -> dict[str, TableRecord]:
        return self.table_state.by_id

    # -- deployments and incoming webhooks ----------------------------------------------

    def add_deployment(self, deployment_id: str, environments: Mapping[str, int]) -> Deployment:
        return self.deployment_state.add(deployment_id, environments)

    def deployment(self, deployment_id: Any) -> Deployment:
        """Resolve ``deployment_id`` from a request body (400 / 404 as the API answers)."""
        return self.deployment_state.resolve(deployment_id)

    def add_webhook(self, token: str, deployment_id: str, environment: str) -> None:
        self.deployment_state.add_webhook(token, deployment_id, environment)

    # -- runs -----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        return self.run_state.get(run_id)

    def create_run(self, body: Mapping[str, Any]) -> RunRecord:
        """``POST /v1/runs``: validate the body and record a pending run."""
        deployment = self.deployment(body.get("deployment_id"))
        run_input = optional_object(body, "input", {})
        return self.run_state.new(deployment, environment_of(body), run_input)

    def create_webhook_run(self, token: str, body: Any) -> RunRecord:
        """``POST /webhooks/runs/{token}``: the body is the run input."""
        deployment_id, environment = self.deployment_state.webhook_target(token)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(400, "The webhook body must be a JSON object (the run input)")
        deployment = self.deployment(deployment_id)
        return self.run_state.new(deployment, environment, copy.deepcopy(body))

    def list_runs(self, *, deployment_id: Optional[str], status: Optional[str]) -> list[RunRecord]:
        """Matching runs, newest first."""
        return self.run_state.matching(deployment_id=deployment_id, status=status)

    def start_run(self, run: RunRecord) -> None:
        self.run_state.start(run)

    def finish_run(
        self, run: RunRecord, status: str, *, output: Any = None, error: Optional[str] = None
    ) -> None:
        """Move ``run`` to a terminal status, settle its thread, then emit its final event.

        The thread settles first, so whoever sees the final event also sees the thread idle.
        """
        self.run_state.settle(run, status, output=output, error=error)
        self.thread_state.release(run)
        self.run_state.announce(run)
        for listener in self.on_run_finished:
            listener(run)

    def cancel_run(self, run_id: str) -> RunRecord:
        """``POST /v1/runs/{id}/cancel``: only pending and running runs can be canceled."""
        run = self.get_run(run_id)
        if run.terminal:
            raise ApiError(400, f"Cannot cancel run with status: {run.status}")
        self.finish_run(run, "canceled")
        return run

    # -- threads --------------------------------------------------------------------------

    def get_thread(self, thread_id: str) -> ThreadRecord:
        return self.thread_state.get(thread_id)

    def create_thread(self, body: Mapping[str, Any]) -> ThreadRecord:
        deployment = self.deployment(body.get("deployment_id"))
        self.deployment_state.require_registered(deployment)
        return self.thread_state.create(deployment.id, body)

    def list_threads(
        self, *, deployment_id: Optional[str], status: Optional[str]
    ) -> list[ThreadRecord]:
        """The deployment's threads (``deployment_id`` is required), newest first."""
        return self.thread_state.matching(deployment_id=deployment_id, status=status)

    def delete_thread(self, thread_id: str) -> None:
        self.thread_state.delete(thread_id)

    def copy_thread(self, thread_id: str) -> ThreadRecord:
        return self.thread_state.copy(thread_id)

    def create_thread_run(self, thread_id: str, body: Mapping[str, Any]) -> RunRecord:
        """``POST /v1/threads/{id}/runs``: 409 while the thread is busy."""
        thread = self.get_thread(thread_id)
        self.thread_state.check_idle(thread)
        run_input = optional_object(body, "input", {})
        environment = environment_of(body)
        deployment = self.deployment(thread.deployment_id)
        run = self.run_state.new(deployment, environment, run_input, thread.thread_id)
        self.thread_state.occupy(thread, run)
        return run

    def thread_history(self, thread_id: str) -> list[Checkpoint]:
        """The thread's checkpoints, newest first."""
        return self.thread_state.history(thread_id)

    # -- tables ---------------------------------------------------------------------------

    def get_table(self, table_id: str) -> TableRecord:
        return self.table_state.get(table_id)

    def create_table(self, body: Mapping[str, Any]) -> TableRecord:
        return self.table_state.create(body)

    def update_table(self, table_id: str, body: Mapping[str, Any]) -> TableRecord:
        """PATCH: only the fields present change; ``columns`` replaces the whole list."""
        return self.table_state.update(table_id, body)

    def delete_table(self, table_id: str) -> None:
        self.table_state.delete(table_id)

    def insert_rows(self, table_id: str, body: Any) -> list[RowRecord]:
        """Validate every row first, then store them all (a batch is all-or-nothing)."""
        return self.table_state.insert_rows(table_id, body)

    def update_row(self, table_id: str, row_id: str, body: Any) -> RowRecord:
        return self.table_state.update_row(table_id, row_id, body)

    def delete_row(self, table_id: str, row_id: str) -> None:
        self.table_state.delete_row(table_id, row_id)

    # -- lifecycle ------------------------------------------------------------------------

    def wake_all(self) -> None:
        """Wake every event-stream watcher (used when the emulator stops)."""
        self.run_state.wake_all()
