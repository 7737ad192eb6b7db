"""What a test sets up and looks at on an emulator: deployments, webhooks, run scripts,
and the records so far. :class:`~crewship_async.testing.CrewshipEmulator` inherits these;
they work whether or not the emulator is serving."""

from __future__ import annotations

import secrets
import types
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from ._outgoing import OUTGOING_EVENTS, OutgoingWebhooks, WebhookDelivery
from ._recording import RecordedRequest, RequestLog
from ._simulation import RunScripts, Step
from ._state import ENVIRONMENTS, RunRecord, Store, TableRecord, ThreadRecord

__all__ = ["EmulatorControls"]


class EmulatorControls:
    """The setup and inspection API of an emulator, over its state, scripts, outgoing
    webhooks and request log."""

    def __init__(
        self, *, store: Store, scripts: RunScripts, outgoing: OutgoingWebhooks, log: RequestLog
    ) -> None:
        self._store = store
        self._scripts = scripts
        self._outgoing = outgoing
        self._log = log

    # -- setup helpers ------------------------------------------------------------------

    def add_deployment(
        self,
        deployment_id: str,
        *,
        environments: Iterable[str] = ENVIRONMENTS,
        version_number: int = 1,
    ) -> None:
        """Register ``deployment_id`` with a running version in each of ``environments``.

        Needed with ``strict_deployments=True``; without it, registering also lets ids
        that do not start with ``dep_`` work.
        """
        wanted = list(environments)
        for environment in wanted:
            if environment not in ENVIRONMENTS:
                raise ValueError(f"unknown environment {environment!r}")
        self._store.add_deployment(deployment_id, dict.fromkeys(wanted, version_number))

    def add_webhook(self, deployment_id: str, environment: str = "production") -> str:
        """Create an incoming webhook; returns its token (POST to ``webhook_url(token)``)."""
        token = "whk_" + secrets.token_urlsafe(18)
        self._store.add_webhook(token, deployment_id, environment)
        return token

    def add_outgoing_webhook(
        self,
        deployment_id: str,
        url: str,
        *,
        events: Iterable[str] = OUTGOING_EVENTS,
        secret: Optional[str] = None,
    ) -> str:
        """Give ``deployment_id`` an outgoing webhook to ``url``; returns its signing secret.

        When one of the deployment's runs ends with an event in ``events``
        (``run.succeeded``, ``run.failed``), the emulator POSTs a signed delivery to
        ``url``: ``{"event", "delivery_id", "run": <the run as GET /v1/runs/{id}>}`` with
        the ``X-Crewship-*`` headers, retried after 0.05, 0.25 and 1 s on 5xx, 409, 429 and
        connection errors. Also reachable over HTTP (for a test in another process):
        ``POST /_emulator/deployments/{id}/outgoing-webhooks`` with ``{"url", "events"?,
        "secret"?}`` answers 201 with the secret. See :attr:`webhook_deliveries`.
        """
        return self._outgoing.add(deployment_id, url, events=events, secret=secret).secret

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every outgoing-webhook delivery so far, oldest first, with each attempt's status."""
        return self._outgoing.deliveries

    async def wait_for_deliveries(
        self, count: int = 1, *, timeout: float = 10.0
    ) -> list[WebhookDelivery]:
        """Wait until ``count`` deliveries are recorded and none is being attempted (its
        retries included); returns :attr:`webhook_deliveries`. ``TimeoutError`` after
        ``timeout`` seconds."""
        return await self._outgoing.wait(count, timeout)

    def script_runs(
        self,
        outcome: str = "succeeded",
        *,
        count: Optional[int] = None,
        deployment_id: Optional[str] = None,
        error_message: str = "Crew execution failed",
        steps: Optional[Iterable[Step]] = None,
        output: Any = None,
    ) -> None:
        """Decide what the next runs do.

        ``outcome``: ``"succeeded"`` (``run.completed``, ``output`` set), ``"failed"``
        (``run.failed`` with ``error_message``; a thread run leaves its thread in
        ``error``), ``"forever"`` (a ``heartbeat`` every step until canceled) or
        ``"held"`` (heartbeats like ``"forever"`` until the test calls
        ``emulator.runs[run_id].release()``, then ends succeeded, or failed with
        ``release("failed")``: a test controls when a run or its thread stops being busy).
        ``count`` runs are affected (``None``: every later run); ``deployment_id``
        limits it to one deployment. ``steps`` replaces the events emitted between
        ``run.started`` and the end, as ``(type, data)`` pairs; ``output`` replaces the
        default output of a succeeded run.

        Counted scripts apply first, oldest first; then the latest unlimited one.
        """
        self._scripts.add(
            outcome,
            count=count,
            deployment_id=deployment_id,
            error_message=error_message,
            steps=steps,
            output=output,
        )

    def clear_scripts(self) -> None:
        """Forget every script: later runs succeed with the default events."""
        self._scripts.clear()

    # -- inspection ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    @property
    def runs(self) -> Mapping[str, RunRecord]:
        """Every run by id (read-only view; ``run.to_json()`` is the API shape)."""
        return types.MappingProxyType(self._store.runs)

    @property
    def threads(self) -> Mapping[str, ThreadRecord]:
        """Every thread by id (read-only view)."""
        return types.MappingProxyType(self._store.threads)

    @property
    def tables(self) -> Mapping[str, TableRecord]:
        """Every table by id (read-only view); ``table.rows`` holds its rows."""
        return types.MappingProxyType(self._store.tables)
