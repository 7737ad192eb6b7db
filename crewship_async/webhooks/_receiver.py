"""WebhookReceiver: the framework-neutral core of the aiohttp and Starlette receivers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Mapping
from typing import Callable, Optional

import anyio
import attrs

from .._redact import Secret
from ..errors import WebhookVerificationError
from ._event import WebhookEvent
from ._store import DeliveryStore, MemoryDeliveryStore
from ._verify import DEFAULT_TOLERANCE, SecretInput, check_tolerance, signing_keys, verify

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "EventHandler",
    "WebhookReceiver",
    "WebhookReply",
    "read_limited",
]

logger = logging.getLogger("crewship_async")

#: The largest delivery body a receiver reads (bytes); a larger one is answered 413.
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
#: Seconds a receiver waits for a delivery's whole body; a slower sender is answered 408.
DEFAULT_BODY_TIMEOUT = 10.0
#: What a receiver calls with each new, verified delivery.
EventHandler = Callable[[WebhookEvent], Awaitable[None]]


async def read_limited(
    chunks: AsyncIterable[bytes], declared_length: Optional[int], limit: int
) -> Optional[bytes]:
    """A request body from its ``chunks``, or ``None`` once it exceeds ``limit`` bytes; a
    declared length (``Content-Length``) over it is refused before anything is read."""
    if declared_length is not None and declared_length > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


@attrs.frozen(slots=True)
class WebhookReply:
    """What to answer a delivery: ``status`` and a short plain-text ``text``; ``event`` is
    the verified delivery (``None`` when verification failed)."""

    status: int
    text: str
    event: Optional[WebhookEvent] = None


class WebhookReceiver:
    """Verifies deliveries, drops redeliveries, and hands each new one to ``on_event``.

    :meth:`handle` answers, for the HTTP framework to send back:

    * 400 with the reason (``bad_signature: ...``) for a delivery that fails
      :func:`~crewship_async.webhooks.verify`; 413 for a body over ``max_body_size``, 408
      for one that takes longer than ``body_timeout`` seconds to arrive (the framework
      helpers read the body within both bounds);
    * 200 ``ok`` once ``on_event`` has returned, and 200 ``duplicate`` for a delivery
      already processed (by ``X-Crewship-Delivery``, through ``store``);
    * 409 while the same delivery is being processed by another request, so the sender
      tries again later;
    * 500 when ``on_event`` raised: the claim is released, so a redelivery is processed
      (nothing is lost); the error is logged on the ``crewship_async`` logger, never sent.

    Keep ``on_event`` quick (hand long work to a queue): the sender waits for the answer.
    The secrets are masked from every error and log line of the SDK while the receiver
    lives.
    """

    def __init__(
        self,
        secret: SecretInput,
        on_event: EventHandler,
        *,
        store: Optional[DeliveryStore] = None,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self._keys = signing_keys(secret)
        if not callable(on_event):
            raise TypeError("on_event must be an async function taking a WebhookEvent")
        if (
            isinstance(max_body_size, bool)
            or not isinstance(max_body_size, int)
            or (max_body_size < 1)
        ):
            raise ValueError(f"max_body_size must be an int >= 1, got {max_body_size!r}")
        if (
            isinstance(body_timeout, bool)
            or not isinstance(body_timeout, (int, float))
            or not (body_timeout > 0)
        ):
            raise ValueError(f"body_timeout must be a number of seconds > 0, got {body_timeout!r}")
        if store is not None and not isinstance(store, DeliveryStore):
            raise TypeError("store must have async claim(), complete() and release() methods")
        self._masks = [Secret(key.decode("utf-8", "replace")) for key in self._keys]
        self._on_event = on_event
        self.store: DeliveryStore = store if store is not None else MemoryDeliveryStore()
        self.tolerance: float = check_tolerance(tolerance)
        self.max_body_size: int = max_body_size
        self.body_timeout: float = float(body_timeout)

    def __repr__(self) -> str:
        return f"<WebhookReceiver secrets=*** store={self.store!r}>"

    def too_large(self) -> WebhookReply:
        """The answer to a body over ``max_body_size``."""
        return WebhookReply(413, f"too_large: the body exceeds {self.max_body_size} bytes")

    def too_slow(self) -> WebhookReply:
        """The answer to a body that did not arrive within ``body_timeout``."""
        return WebhookReply(408, f"too_slow: the body took over {self.body_timeout:g}s")

    async def receive(
        self, read_body: Callable[[int], Awaitable[Optional[bytes]]], headers: Mapping[str, str]
    ) -> WebhookReply:
        """Read the body with ``read_body(limit)`` (``None`` once over ``limit``) within
        ``body_timeout``, then :meth:`handle` it: what the framework helpers call."""
        with anyio.move_on_after(self.body_timeout) as scope:
            body = await read_body(self.max_body_size)
        if scope.cancelled_caught:
            return self.too_slow()
        if body is None:
            return self.too_large()
        return await self.handle(body, headers)

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookReply:
        """Verify, deduplicate and process one delivery; never raises for a bad one."""
        if len(body) > self.max_body_size:
            return self.too_large()
        try:
            event = verify(body, headers, self._keys, tolerance=self.tolerance)
        except WebhookVerificationError as exc:
            logger.info("webhook delivery refused: %s: %s", exc.reason, exc)
            return WebhookReply(400, f"{exc.reason}: {exc}")
        delivery = event.delivery_id
        claim = await self.store.claim(delivery)
        if claim == "done":
            return WebhookReply(200, "duplicate: this delivery was already processed", event)
        if claim == "in_progress":
            return WebhookReply(409, "in_progress: this delivery is being processed", event)
        try:
            await self._on_event(event)
        except Exception:
            await self.store.release(delivery)
            logger.exception("webhook delivery %s: the event handler failed", delivery)
            return WebhookReply(500, "handler_failed: the receiver could not process it", event)
        except BaseException:
            await self.store.release(delivery)
            raise
        await self.store.complete(delivery)
        logger.debug("webhook delivery %s (%s) processed", delivery, event.type)
        return WebhookReply(200, "ok", event)
