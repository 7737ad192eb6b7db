"""The field and event half of the SSE decoder: complete lines in, events out.

:class:`EventAssembler` interprets lines (without their line ends) as the WHATWG standard
says: a blank line dispatches the pending event, ``:`` starts a comment, ``field:value``
splits at the first colon with one leading space of the value removed, and ``event``,
``data``, ``id`` and ``retry`` set the block's fields (an ``id`` holding U+0000 and an
invalid ``retry`` are ignored). It keeps the stream's last event ID, the data size cap
and the reconnection time. Splitting bytes into lines is
:class:`crewship_async._sse.SSEDecoder`'s part.
"""

from __future__ import annotations

import re
from typing import NoReturn, Optional

from ._sse_event import EventTooLargeError, MessageRun, ServerSentEvent

__all__ = ["EventAssembler"]

# The standard puts no bound on retry values. Capping them at 2**64 - 1 keeps absurd delays
# out and int() clear of Python's limit on the length of digit strings (ValueError).
_MAX_RETRY = 2**64 - 1
_MAX_RETRY_DIGITS = len(str(_MAX_RETRY))
# The block nearly every server sends: one id, one data line, a blank line, LF line ends.
# A run of chunk text made of these blocks alone is decoded at C speed (see common_blocks).
_COMMON_BLOCK = re.compile(r"id: ([^\n\x00]*)\ndata: ([^\n]*)\n\n")


def _parse_retry(value: bytes) -> Optional[int]:
    """Return the reconnection time a ``retry`` value sets, or ``None`` if it is ignored.

    A value counts only if it is non-empty and made of ASCII digits 0-9 alone (no sign,
    space or underscore), and fits an unsigned 64-bit integer.
    """
    if not value.isdigit():  # bytes.isdigit(): non-empty and ASCII 0-9 only
        return None
    digits = value.lstrip(b"0") or b"0"
    if len(digits) > _MAX_RETRY_DIGITS:
        return None
    number = int(digits)
    return number if number <= _MAX_RETRY else None


class EventAssembler:
    """The standard's event state of one stream, fed complete lines.

    ``max_event_size`` caps the data buffer of one event (the raw bytes of each ``data``
    value plus one LF per ``data`` line); going past it closes the assembler and raises
    :class:`EventTooLargeError` carrying the events completed before.
    """

    __slots__ = (
        "_block_id",
        "_block_retry",
        "_comments",
        "_data",
        "_data_size",
        "_event_type",
        "_id_buffer",
        "_last_event_id",
        "_max_event_size",
        "_retry",
    )

    def __init__(self, max_event_size: int) -> None:
        self._max_event_size = max_event_size
        # The standard's data buffer, kept as the raw values of the block's data lines.
        self._data: list[bytes] = []
        self._data_size = 0
        self._event_type = ""
        self._id_buffer = ""
        self._last_event_id = ""
        self._block_id: Optional[str] = None
        self._block_retry: Optional[int] = None
        self._retry: Optional[int] = None
        self._comments = 0

    @property
    def last_event_id(self) -> str:
        """The stream's last event ID: the id buffer as of the last blank line.

        It persists across events until an ``id`` field changes it; ``""`` initially and
        after an empty ``id:`` field. This is the value to send as ``Last-Event-ID`` when
        reconnecting.
        """
        return self._last_event_id

    @property
    def retry(self) -> Optional[int]:
        """The latest valid reconnection time in milliseconds, ``None`` if never set."""
        return self._retry

    @property
    def comments_seen(self) -> int:
        """How many comment lines (lines starting with ``:``) have been read."""
        return self._comments

    def close(self) -> None:
        """Discard the block under way (its data, type, id and retry)."""
        self._data = []
        self._data_size = 0
        self._event_type = ""
        self._block_id = None
        self._block_retry = None

    def _fail(self, events: list[ServerSentEvent]) -> NoReturn:
        self.close()
        raise EventTooLargeError(self._max_event_size, events)

    def _between_blocks(self) -> bool:
        """Whether the last line read was blank (or none was): no field of a block set."""
        return (
            not self._data
            and not self._event_type
            and self._block_id is None
            and self._block_retry is None
        )

    def _common_blocks(self, chunk: bytes, start: int, end: int) -> Optional[MessageRun]:
        """The events of ``chunk[start:end]`` when it is made of common blocks alone, else
        None.

        Called between blocks, at the start of a line (``start``), for a chunk without CR: each
        ``id: X`` + ``data: Y`` + blank line block then dispatches exactly what the line
        by line path would (X holds no NULL; Y fits the size cap), a
        ``("message", Y, X, X, None)`` event, kept in a :class:`MessageRun`.

        The text is decoded once, as a whole: that gives the same values as decoding each
        one apart, because they are cut at ASCII bytes, which never belong to a multi-byte
        sequence (an invalid sequence ends at one, and U+0000 comes only from a NULL
        byte). Splitting the text at the blocks leaves ``["", id, data] * n + [""]`` when
        the blocks tile it, and some text between them otherwise. A text longer than the
        size cap goes line by line, which checks each value against it.
        """
        if end - start > self._max_event_size:
            return None
        parts = _COMMON_BLOCK.split(chunk[start:end].decode("utf-8", "replace"))
        if len(parts) == 1 or any(parts[0::3]):
            return None
        self._id_buffer = self._last_event_id = parts[-3]
        return MessageRun(parts[1::3], parts[2::3])

    def _process(self, lines: list[bytes]) -> list[ServerSentEvent]:
        """Interpret complete lines (without their line ends) and return the dispatched events."""
        events: list[ServerSentEvent] = []
        append = events.append
        # Building the tuple directly skips the NamedTuple's Python-level __new__.
        new_event = tuple.__new__
        cls = ServerSentEvent
        data = self._data
        data_size = self._data_size
        event_type = self._event_type
        id_buffer = self._id_buffer
        last_event_id = self._last_event_id
        block_id = self._block_id
        block_retry = self._block_retry
        limit = self._max_event_size
        for line in lines:
            if not line:
                last_event_id = id_buffer
                if data:
                    if len(data) == 1:
                        text = data[0].decode("utf-8", "replace")
                    else:
                        text = b"\n".join(data).decode("utf-8", "replace")
                    append(
                        new_event(
                            cls,
                            (event_type or "message", text, block_id, last_event_id, block_retry),
                        )
                    )
                    data = []
                    data_size = 0
                event_type = ""
                block_id = None
                block_retry = None
                continue
            # Fast paths for the common spellings of the common fields; the general
            # branch below gives the same result for them.
            if line[:6] == b"data: ":
                data_size += len(line) - 5
                if data_size > limit:
                    self._fail(events)
                data.append(line[6:])
                continue
            if line[:4] == b"id: ":
                value = line[4:]
                if 0 not in value:  # no U+0000 NULL
                    id_buffer = block_id = value.decode("utf-8", "replace")
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data_size += len(value) + 1
                if data_size > limit:
                    self._fail(events)
                data.append(value)
            elif name == b"id":
                if 0 not in value:  # no U+0000 NULL
                    id_buffer = block_id = value.decode("utf-8", "replace")
            elif name == b"event":
                event_type = value.decode("utf-8", "replace")
            elif not name:
                self._comments += 1
            elif name == b"retry":
                retry = _parse_retry(value)
                if retry is not None:
                    self._retry = block_retry = retry
        self._last_event_id = last_event_id
        self._data = data
        self._data_size = data_size
        self._event_type = event_type
        self._id_buffer = id_buffer
        self._block_id = block_id
        self._block_retry = block_retry
        return events
