"""Outgoing webhooks: verify Crewship's deliveries and receive them in a web app.

Crewship POSTs ``run.succeeded`` and ``run.failed`` to a URL configured per deployment,
signed with a secret shown once at creation. :func:`verify` checks one delivery and returns
a :class:`WebhookEvent`; :class:`WebhookReceiver` adds deduplication by delivery id and the
HTTP answers, and :mod:`crewship_async.integrations.aiohttp` /
:mod:`crewship_async.integrations.starlette` wire it into a route.

The exact signed string is not in Crewship's public reference [inferred]; see
:func:`signed_payload`.
"""

from ..errors import WebhookVerificationError
from ._event import WebhookEvent, WebhookEventType
from ._receiver import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    EventHandler,
    WebhookReceiver,
    WebhookReply,
)
from ._signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_signature,
    delivery_headers,
    signed_payload,
)
from ._store import Claim, DeliveryStore, MemoryDeliveryStore
from ._verify import DEFAULT_TOLERANCE, SecretInput, verify

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_TOLERANCE",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Claim",
    "DeliveryStore",
    "EventHandler",
    "MemoryDeliveryStore",
    "SecretInput",
    "WebhookEvent",
    "WebhookEventType",
    "WebhookReceiver",
    "WebhookReply",
    "WebhookVerificationError",
    "compute_signature",
    "delivery_headers",
    "signed_payload",
    "verify",
]
