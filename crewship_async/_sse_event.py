"""What an event stream decoder gives: :class:`ServerSentEvent`, runs of them, and its
size error."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Optional, Union, overload

from .errors import StreamError

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "EventRun",
    "EventTooLargeError",
    "MessageRun",
    "ServerSentEvent",
    "flatten",
]

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


class MessageRun(Sequence[ServerSentEvent]):
    """Consecutive events of the form nearly every server sends, kept as two columns.

    Event ``i`` is ``ServerSentEvent("message", datas[i], ids[i], ids[i], None)``: a block
    of one ``id`` and one ``data`` line. Keeping the columns instead of an event tuple
    each lets a reader work on whole columns, and leaves the garbage collector fewer
    objects to track. ``ids`` and ``datas`` have the same length and are not modified.
    Slicing gives a MessageRun; indexing and iterating give ServerSentEvents.
    """

    __slots__ = ("datas", "ids")

    def __init__(self, ids: list[str], datas: list[str]) -> None:
        self.ids = ids
        self.datas = datas

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> ServerSentEvent: ...

    @overload
    def __getitem__(self, index: slice) -> MessageRun: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[ServerSentEvent, MessageRun]:
        if isinstance(index, slice):
            return MessageRun(self.ids[index], self.datas[index])
        own_id = self.ids[index]
        return ServerSentEvent("message", self.datas[index], own_id, own_id, None)

    def __iter__(self) -> Iterator[ServerSentEvent]:
        for own_id, data in zip(self.ids, self.datas, strict=True):
            yield ServerSentEvent("message", data, own_id, own_id, None)

    def __repr__(self) -> str:
        return f"<MessageRun of {len(self.ids)} events>"


EventRun = Union[list[ServerSentEvent], MessageRun]
"""Consecutive events as a decoder returns them: a list, or a :class:`MessageRun`."""


def flatten(runs: list[EventRun]) -> list[ServerSentEvent]:
    """The events of ``runs``, in order, as one list."""
    if len(runs) == 1 and type(runs[0]) is list:
        return runs[0]
    return [event for run in runs for event in run]
