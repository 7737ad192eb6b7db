"""What an event stream decoder gives: :class:`ServerSentEvent`, and its size error."""

from __future__ import annotations

from typing import NamedTuple, Optional

from .errors import StreamError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventTooLargeError", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
"""Default cap, in bytes, on the size of one event (16 MiB)."""


class EventTooLargeError(StreamError):
    """An event grew past the decoder's ``max_event_size``.

    ``limit`` is the cap in bytes. ``events`` holds the events that the same
    :meth:`SSEDecoder.feed` call completed before the cap was hit, in order, so that none
    is lost. The decoder that raised it cannot be fed again.
    """

    def __init__(self, limit: int, events: Optional[list[ServerSentEvent]] = None) -> None:
        self.limit = limit
        self.events: list[ServerSentEvent] = [] if events is None else events
        super().__init__(
            f"server-sent event exceeds the maximum event size of {limit} bytes (max_event_size)"
        )


class ServerSentEvent(NamedTuple):
    """One dispatched event.

    ``event`` is the event type (``"message"`` unless the block set a non-empty one).
    ``data`` is the block's ``data`` lines joined with LF. ``id`` is the value of the last
    valid ``id`` field inside this block, ``None`` if there was none (``""`` for an empty
    ``id:``). ``last_event_id`` is the stream's last event ID at dispatch, which persists
    from earlier blocks (the standard's ``lastEventId``). ``retry`` is the last valid
    reconnection time in milliseconds given inside this block, ``None`` if there was none.
    """

    event: str = "message"
    data: str = ""
    id: Optional[str] = None
    last_event_id: str = ""
    retry: Optional[int] = None
