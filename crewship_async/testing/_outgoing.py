"""The emulator's outgoing webhooks: signed deliveries POSTed when a run ends.

A deployment can have outgoing webhooks (:meth:`CrewshipEmulator.add_outgoing_webhook` or
``POST /_emulator/deployments/{id}/outgoing-webhooks``). When one of its runs succeeds or
fails, each webhook subscribed to that event gets a POST with the headers Crewship
documents (``X-Crewship-Event``, ``-Delivery``, ``-Timestamp``, ``-Signature``), signed as
:mod:`crewship_async.webhooks` verifies, retried on 5xx, 409, 429 and connection errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import aiohttp
import attrs

from ._state import RunRecord

__all__ = ["OUTGOING_EVENTS", "OutgoingWebhook", "OutgoingWebhooks", "WebhookDelivery"]

logger = logging.getLogger("crewship_async.testing")

OUTGOING_EVENTS = ("run.succeeded", "run.failed")
_EVENT_OF_STATUS = {"succeeded": "run.succeeded", "failed": "run.failed"}
_RETRY_STATUSES = frozenset({409, 429})


@attrs.frozen
class OutgoingWebhook:
    """An outgoing webhook of a deployment (the ``secret`` is not in ``repr``)."""

    id: str
    deployment_id: str
    url: str
    events: frozenset[str]
    secret: str = attrs.field(repr=False)


@attrs.define
class WebhookDelivery:
    """One delivery and how it went: ``statuses`` holds each attempt's HTTP status
    (``None`` for a connection error or timeout); ``delivered`` is set once one was 2xx;
    ``finished`` once no attempt is left to make."""

    delivery_id: str
    webhook_id: str
    event: str
    run_id: str
    url: str
    body: bytes = attrs.field(repr=False)
    statuses: list[Optional[int]] = attrs.field(factory=list)
    delivered: bool = False
    finished: bool = False

    @property
    def attempts(self) -> int:
        return len(self.statuses)


def _signed_headers(hook: OutgoingWebhook, record: WebhookDelivery) -> dict[str, str]:
    # Written here rather than imported from crewship_async.webhooks: the emulator plays
    # Crewship, so the SDK's verifier is tested against a sender it does not share code with.
    stamp = str(int(time.time()))
    digest = hmac.new(
        hook.secret.encode(), stamp.encode() + b"." + record.body, hashlib.sha256
    ).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "Crewship-Webhooks (emulator)",
        "X-Crewship-Event": record.event,
        "X-Crewship-Delivery": record.delivery_id,
        "X-Crewship-Timestamp": stamp,
        "X-Crewship-Signature": f"sha256={digest}",
    }


def _check_url(url: object) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("an outgoing webhook url must be an http:// or https:// URL")
    return url


class OutgoingWebhooks:
    """Subscriptions, the delivery tasks and the log of deliveries (newest last)."""

    def __init__(
        self,
        *,
        retry_delays: Sequence[float] = (0.05, 0.25, 1.0),
        timeout: float = 10.0,
        max_recorded: int = 10_000,
    ) -> None:
        self.retry_delays: tuple[float, ...] = tuple(retry_delays)
        self.timeout = timeout
        self._hooks: dict[str, list[OutgoingWebhook]] = {}
        self._log: deque[WebhookDelivery] = deque(maxlen=max_recorded)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: Optional[aiohttp.ClientSession] = None
        self._changed = asyncio.Event()
        self.closing: bool = False

    def add(
        self,
        deployment_id: str,
        url: object,
        *,
        events: Iterable[str] = OUTGOING_EVENTS,
        secret: Optional[str] = None,
    ) -> OutgoingWebhook:
        wanted = frozenset(events)
        unknown = wanted - set(OUTGOING_EVENTS)
        if not wanted or unknown:
            raise ValueError(f"events must be some of {', '.join(OUTGOING_EVENTS)}")
        hook = OutgoingWebhook(
            id="owh_" + secrets.token_hex(6),
            deployment_id=deployment_id,
            url=_check_url(url),
            events=wanted,
            secret=secret if secret else "whsec_" + secrets.token_urlsafe(24),
        )
        self._hooks.setdefault(deployment_id, []).append(hook)
        return hook

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        return list(self._log)

    def run_finished(self, run: RunRecord) -> None:
        """Schedule the deliveries for ``run``'s end (called by the store)."""
        event = _EVENT_OF_STATUS.get(run.status)
        hooks = self._hooks.get(run.deployment_id, ())
        if event is None or self.closing:
            return
        for hook in hooks:
            if event not in hook.events:
                continue
            delivery_id = "dlv_" + secrets.token_hex(10)
            payload: dict[str, Any] = {
                "event": event,
                "delivery_id": delivery_id,
                "run": run.to_json(),
            }
            record = WebhookDelivery(
                delivery_id=delivery_id,
                webhook_id=hook.id,
                event=event,
                run_id=run.id,
                url=hook.url,
                body=json.dumps(payload, separators=(",", ":")).encode(),
            )
            self._log.append(record)
            task = asyncio.get_running_loop().create_task(self._deliver(hook, record))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Outgoing webhook delivery crashed", exc_info=task.exception())
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _deliver(self, hook: OutgoingWebhook, record: WebhookDelivery) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        session = self._session
        try:
            for delay in (*self.retry_delays, None):
                # Signed at each attempt, as a real sender does: the timestamp is fresh.
                headers = _signed_headers(hook, record)
                status: Optional[int] = None
                try:
                    async with session.post(hook.url, data=record.body, headers=headers) as resp:
                        status = resp.status
                        await resp.read()
                except (TimeoutError, aiohttp.ClientError):
                    status = None
                record.statuses.append(status)
                self._notify()
                if status is not None and 200 <= status < 300:
                    record.delivered = True
                    return
                if status is not None and status < 500 and status not in _RETRY_STATUSES:
                    return
                if delay is None:
                    return
                await asyncio.sleep(delay)
        finally:
            record.finished = True

    async def wait(self, count: int = 1, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Wait until at least ``count`` deliveries are recorded and none is in flight;
        returns the log. ``TimeoutError`` after ``timeout`` seconds."""

        async def settled() -> None:
            while len(self._log) < count or self._tasks:
                await self._changed.wait()

        await asyncio.wait_for(settled(), timeout)
        return self.deliveries

    async def aclose(self) -> None:
        """Cancel the deliveries in flight and close the sender's session."""
        self.closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
