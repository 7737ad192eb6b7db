"""WebhookEvent: one verified delivery of an outgoing webhook."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Optional, Union

import attrs

from ..models.runs import Run, RunStatus

__all__ = ["WebhookEvent", "WebhookEventType"]


class WebhookEventType(str, enum.Enum):
    """The events Crewship documents for outgoing webhooks (others stay plain strings)."""

    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"

    def __str__(self) -> str:
        return self.value


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@attrs.frozen(slots=True)
class WebhookEvent:
    """A delivery that passed :func:`~crewship_async.webhooks.verify`.

    ``type`` is the event (a :class:`WebhookEventType`, or the plain string of an event
    this SDK does not know); ``delivery_id`` is unique per delivery and stays the same when
    Crewship redelivers it (what receivers deduplicate on); ``timestamp`` is when Crewship
    signed it (UTC); ``run`` is the run the event is about, as :class:`~crewship_async.Run`
    (its unknown fields in ``run.extra``); ``extra`` holds the payload's other top-level
    fields; ``body`` is the raw body as received (not in ``repr``).
    """

    type: Union[WebhookEventType, str]
    delivery_id: str
    timestamp: datetime
    run: Run
    extra: Mapping[str, Any] = attrs.field(factory=_empty, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)

    @property
    def run_id(self) -> str:
        """The id of the run the event is about."""
        return self.run.id

    @property
    def status(self) -> Union[RunStatus, str]:
        """The run's status as the delivery reports it."""
        return self.run.status

    @property
    def succeeded(self) -> bool:
        """Whether this is a ``run.succeeded`` event."""
        return self.type == WebhookEventType.RUN_SUCCEEDED

    @property
    def failed(self) -> bool:
        """Whether this is a ``run.failed`` event."""
        return self.type == WebhookEventType.RUN_FAILED

    @property
    def error_message(self) -> Optional[str]:
        """The run's error message (set for ``run.failed``)."""
        return self.run.error_message


def event_type(value: str) -> Union[WebhookEventType, str]:
    """``value`` as a :class:`WebhookEventType` when it is one, else as it is."""
    try:
        return WebhookEventType(value)
    except ValueError:
        return value
