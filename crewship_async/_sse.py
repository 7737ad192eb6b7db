"""A sans-I/O decoder for Server-Sent Events (``text/event-stream``).

:class:`SSEDecoder` turns the raw bytes of an event stream, fed in chunks of any size, into
:class:`ServerSentEvent` objects. It follows the parsing and interpretation rules of the
WHATWG HTML standard, section "Server-sent events" (event stream parsing and interpretation):

* the stream is UTF-8; invalid sequences become U+FFFD, and exactly one leading U+FEFF BOM
  is dropped;
* lines end with CRLF, a lone LF or a lone CR, and nothing else;
* a blank line dispatches the pending event, a line starting with ``:`` is a comment;
* ``field:value`` splits at the first colon and one leading space of the value is removed;
* ``event``, ``data``, ``id`` and ``retry`` are interpreted as the standard says, any other
  field is ignored (one bound the standard leaves open: a ``retry`` value above
  2**64 - 1 ms is ignored);
* an event not terminated by a blank line when the stream ends is discarded.

The decoder does no I/O: the caller reads bytes from wherever they come from and passes
them to :meth:`SSEDecoder.feed`.
"""

from __future__ import annotations

import re
from typing import NamedTuple, NoReturn, Optional

from .errors import StreamError

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "EventTooLargeError",
    "SSEDecoder",
    "ServerSentEvent",
]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
"""Default cap, in bytes, on the size of one event (16 MiB)."""

_BOM = b"\xef\xbb\xbf"
# The standard puts no bound on retry values. Capping them at 2**64 - 1 keeps absurd delays
# out and int() clear of Python's limit on the length of digit strings (ValueError).
_MAX_RETRY = 2**64 - 1
_MAX_RETRY_DIGITS = len(str(_MAX_RETRY))
# The block nearly every server sends: one id, one data line, a blank line, LF line ends.
# A run of chunk text made of these blocks alone is decoded at C speed (see _common_blocks).
_COMMON_BLOCK = re.compile(rb"id: ([^\n\x00]*)\ndata: ([^\n]*)\n\n")
# The bytes of one such block besides its id and data values.
_COMMON_BLOCK_FRAME = len(b"id: \ndata: \n\n")


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


class SSEDecoder:
    """Incremental decoder of a single event stream (one HTTP response).

    Feed it the response body with :meth:`feed`, in chunks split anywhere (inside a line,
    a CRLF pair, a multi-byte character or the BOM); it returns the events each chunk
    completes. Call :meth:`close` when the body ends: the unterminated tail, if any, is
    discarded as the standard requires.

    ``max_event_size`` caps the bytes of one event: its data buffer (the raw bytes of each
    ``data`` value plus one LF per ``data`` line) plus the bytes of the line still waiting
    for its line end. Going past it raises :class:`EventTooLargeError`, so a line that
    never ends cannot grow without bound either. It must be at least 1, else
    ``ValueError`` is raised.

    A new stream (a reconnection) needs a new decoder: per the standard every stream
    starts with an empty last event ID buffer.
    """

    __slots__ = (
        "_at_start",
        "_block_id",
        "_block_retry",
        "_closed",
        "_comments",
        "_data",
        "_data_size",
        "_event_type",
        "_head",
        "_id_buffer",
        "_last_event_id",
        "_max_event_size",
        "_pending",
        "_pending_size",
        "_retry",
        "_skip_lf",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be positive, got {max_event_size}")
        self._max_event_size = max_event_size
        self._closed = False
        # Stream start: up to two bytes that may begin a BOM are held in _head.
        self._at_start = True
        self._head = b""
        # The previous chunk ended with CR, so an LF opening this one ends no new line.
        self._skip_lf = False
        # Bytes of the current line, not yet terminated, and their total length.
        self._pending: list[bytes] = []
        self._pending_size = 0
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
    def max_event_size(self) -> int:
        """The cap, in bytes, on the size of one event."""
        return self._max_event_size

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

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called or an :class:`EventTooLargeError` was raised."""
        return self._closed

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of the stream and return the events it completes, in order.

        Raises :class:`EventTooLargeError` if an event exceeds ``max_event_size``, after
        which the decoder is closed, and ``ValueError`` if the decoder is closed.
        """
        if self._closed:
            raise ValueError("cannot feed a closed SSEDecoder")
        if self._at_start:
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return []
            self._at_start = False
            self._head = b""
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        # Byte membership tests use int operands (13 is CR): much faster than b"\r".
        if 13 in chunk:
            return self._feed_lines(chunk)
        events: list[ServerSentEvent] = []
        chunk = self._take_common_blocks(chunk, events)
        if not chunk:
            return events
        if not events:
            return self._feed_lines(chunk)
        try:
            events.extend(self._feed_lines(chunk))
        except EventTooLargeError as exc:
            exc.events[:0] = events  # the events before the oversized one come first
            raise
        return events

    def _between_blocks(self) -> bool:
        """Whether the last line read was blank (or none was): no field of a block set."""
        return (
            not self._data
            and not self._event_type
            and self._block_id is None
            and self._block_retry is None
        )

    def _take_common_blocks(self, chunk: bytes, events: list[ServerSentEvent]) -> bytes:
        """Decode the run of whole blocks in a chunk without CR through the fast path,
        appending their events to ``events``; return the rest of the chunk to decode line
        by line (the whole chunk when the fast path does not apply).

        The text up to the chunk's first blank line, which finishes the line and block
        under way, goes line by line first; the text from there up to its last blank line
        goes through :meth:`_common_blocks`.
        """
        end = chunk.rfind(b"\n\n") + 2
        if end < 2:
            return chunk
        start = 0
        if self._pending or not self._between_blocks():
            start = chunk.find(b"\n\n") + 2
            if start == end:
                return chunk
            events.extend(self._feed_lines(chunk[:start]))
        common = self._common_blocks(chunk, start, end)
        if common is None:
            return chunk[start:]
        events.extend(common)
        return chunk[end:]

    def _common_blocks(self, chunk: bytes, start: int, end: int) -> Optional[list[ServerSentEvent]]:
        """The events of ``chunk[start:end]`` when it is made of common blocks alone, else
        None.

        Called between blocks, at the start of a line (``start``), for a chunk without CR: each
        ``id: X`` + ``data: Y`` + blank line block then dispatches exactly what the line
        by line path would (X holds no NULL; Y fits the size cap), as a
        ``("message", Y, X, X, None)`` event. The matches tile ``chunk[:end]`` exactly
        when their lengths add up to ``end - start``: matches never overlap, so nothing is
        left between them.
        """
        pairs = _COMMON_BLOCK.findall(chunk, start, end)
        if not pairs:
            return None
        ids = [pair[0] for pair in pairs]
        values = [pair[1] for pair in pairs]
        size = sum(map(len, ids)) + sum(map(len, values)) + _COMMON_BLOCK_FRAME * len(pairs)
        if size != end - start or max(map(len, values)) + 1 > self._max_event_size:
            return None
        new_event = tuple.__new__
        cls = ServerSentEvent
        events: list[ServerSentEvent] = []
        append = events.append
        event_id = ""
        for raw_id, value in pairs:
            event_id = raw_id.decode("utf-8", "replace")
            text = value.decode("utf-8", "replace")
            append(new_event(cls, ("message", text, event_id, event_id, None)))
        self._id_buffer = self._last_event_id = event_id
        return events

    def _feed_lines(self, chunk: bytes) -> list[ServerSentEvent]:
        """Split a non-empty chunk (BOM and a leading LF after CR already handled) into
        lines and interpret the complete ones."""
        if 13 in chunk:
            # A CR ends a line at once; an LF right after it, even in the next chunk,
            # belongs to the same line end.
            self._skip_lf = chunk[-1] == 0x0D
            lines = chunk.split(b"\r\n")
            crlf = len(lines) - 1
            if chunk.count(13) != crlf or chunk.count(10) != crlf:
                # Not CRLF alone: lone CRs or LFs too. Make every line end one LF.
                lines = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        else:
            lines = chunk.split(b"\n")
        tail = lines.pop()
        if not lines:
            self._pending.append(tail)
            self._pending_size += len(tail)
            if self._pending_size + self._data_size > self._max_event_size:
                self._fail([])
            return []
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending = [tail] if tail else []
        elif tail:
            self._pending.append(tail)
        self._pending_size = len(tail)
        events = self._process(lines)
        if self._pending_size + self._data_size > self._max_event_size:
            self._fail(events)
        return events

    def close(self) -> None:
        """End the stream: discard the unterminated event and line, if any.

        Returns nothing: per the standard a pending event is never dispatched at the end of
        the stream. ``last_event_id``, ``retry`` and ``comments_seen`` stay readable.
        Closing twice is allowed; feeding after closing raises ``ValueError``.
        """
        self._closed = True
        self._head = b""
        self._pending = []
        self._pending_size = 0
        self._data = []
        self._data_size = 0
        self._event_type = ""
        self._block_id = None
        self._block_retry = None

    def _fail(self, events: list[ServerSentEvent]) -> NoReturn:
        self.close()
        raise EventTooLargeError(self._max_event_size, events)

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
