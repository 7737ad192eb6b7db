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

from ._sse_event import (
    DEFAULT_MAX_EVENT_SIZE,
    EventRun,
    EventTooLargeError,
    MessageRun,
    ServerSentEvent,
    flatten,
)
from ._sse_fields import EventAssembler

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "EventRun",
    "EventTooLargeError",
    "MessageRun",
    "SSEDecoder",
    "ServerSentEvent",
]

_BOM = b"\xef\xbb\xbf"


class SSEDecoder(EventAssembler):
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

    __slots__ = ("_at_start", "_closed", "_head", "_pending", "_pending_size", "_skip_lf")

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be positive, got {max_event_size}")
        super().__init__(max_event_size)
        self._closed = False
        # Stream start: up to two bytes that may begin a BOM are held in _head.
        self._at_start = True
        self._head = b""
        # The previous chunk ended with CR, so an LF opening this one ends no new line.
        self._skip_lf = False
        # Bytes of the current line, not yet terminated, and their total length.
        self._pending: list[bytes] = []
        self._pending_size = 0

    @property
    def max_event_size(self) -> int:
        """The cap, in bytes, on the size of one event."""
        return self._max_event_size

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called or an :class:`EventTooLargeError` was raised."""
        return self._closed

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of the stream and return the events it completes, in order.

        Raises :class:`EventTooLargeError` if an event exceeds ``max_event_size``, after
        which the decoder is closed, and ``ValueError`` if the decoder is closed.
        """
        return flatten(self.feed_runs(chunk))

    def feed_runs(self, chunk: bytes) -> list[EventRun]:
        """:meth:`feed`, with the events returned as runs (lists of events, and
        :class:`MessageRun` columns for runs of common blocks), in order; the same
        errors. Some runs may be empty."""
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
            return [self._feed_lines(chunk)]
        runs: list[EventRun] = []
        chunk = self._take_common_blocks(chunk, runs)
        if not chunk:
            return runs
        try:
            runs.append(self._feed_lines(chunk))
        except EventTooLargeError as exc:
            exc.events[:0] = flatten(runs)  # the events before the oversized one come first
            raise
        return runs

    def _take_common_blocks(self, chunk: bytes, runs: list[EventRun]) -> bytes:
        """Decode the run of whole blocks in a chunk without CR through the fast path,
        appending their runs to ``runs``; return the rest of the chunk to decode line
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
            runs.append(self._feed_lines(chunk[:start]))
        common = self._common_blocks(chunk, start, end)
        if common is None:
            return chunk[start:]
        runs.append(common)
        return chunk[end:]

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
        super().close()
