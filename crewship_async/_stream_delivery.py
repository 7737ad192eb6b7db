"""What an event stream has yet to deliver: decoded events turned into RunEvents, in bulk.

:class:`DeliveryQueue` is the bookkeeping half of :class:`~crewship_async.EventStream`.
Each chunk's decoded events go through :meth:`DeliveryQueue.add` at once: replays of ids
already delivered are dropped, each remaining event becomes a
:class:`~crewship_async.models.events.RunEvent`, and the event types that change the
stream (``error``, ``timeout``, the terminal ones) stop the batch and leave a note for the
stream to act on once the events before them were delivered. Working a batch at a time
(at most :data:`CONVERT_BATCH` events; the stream asks for the next batch with
:meth:`DeliveryQueue.convert_more` once one is delivered) keeps the per-event cost to
what each event needs, and the number of new objects alive at once small.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, Optional, Union

from . import _json
from ._sse import EventRun, MessageRun, ServerSentEvent
from .errors import StreamError
from .models.events import TERMINAL_EVENT_TYPES, EventType, RunEvent

__all__ = ["CONVERT_BATCH", "DEDUPE_WINDOW", "DeliveryQueue", "id_key"]

DEDUPE_WINDOW = 1_024
"""How many recent event ids a stream remembers to drop replays after a reconnect: enough
for a server that resumes a little before ``Last-Event-ID``."""
# How many decoded events become RunEvents at a time. A chunk may hold thousands; turned
# into RunEvents all at once, they (and their data) would all be alive together, and the
# garbage collector would walk them over and over (a fifth of a stream's CPU).
CONVERT_BATCH = 128
# An id longer than this is remembered by a 16-byte digest, so the window holds at most
# ~130 KB whatever the ids.
_SHORT_ID = 32
# How much of an `error` event's text its StreamError quotes.
_ERROR_TEXT_LIMIT = 1_000
# Event types that need more than being queued; one set lookup tells the common ones apart.
_NOTABLE_TYPES = frozenset({EventType.ERROR, EventType.TIMEOUT, *TERMINAL_EVENT_TYPES})

# RunEvent's __init__ only stores its four arguments (attrs, frozen, slots, no validators),
# and it goes through object.__setattr__ for each: building the instance through its slots'
# descriptors gives the same object in under half the time. tests/test_stream_delivery.py
# holds the two ways equal.
_new = object.__new__
_set_type, _set_data, _set_id, _set_raw = (
    inspect.getattr_static(RunEvent, name).__set__ for name in ("type", "data", "id", "raw")
)
# Runs an iterator to its end, keeping nothing: drives the maps that fill RunEvents.
_exhaust: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend


def id_key(event_id: str) -> Union[str, bytes]:
    """What the dedupe window stores for an id: the id itself, or a digest of a long one."""
    if len(event_id) <= _SHORT_ID:
        return event_id
    return hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class DeliveryQueue:
    """The RunEvents a stream has decoded but not yet delivered, and the ids it delivered.

    ``ready`` holds the events to deliver, the next one last (``ready.pop()`` delivers
    it; a list is a tenth of an empty deque's size). After :meth:`add`, at most one of
    these notes is set, and it applies once ``ready`` has been delivered:

    * ``error``: the :class:`StreamError` of an ``error`` event (or an event past the size
      cap, set by the stream) to raise;
    * ``ended``: the terminal event is the last one to deliver (``ready[0]``);
    * ``timed_out``: a ``timeout`` event came, so the connection must be replaced;
      ``resume_id`` is its id when it had one (the stream's new ``last_event_id``).

    ``active`` says whether an event that resets the idle clock (anything but a
    ``heartbeat``) was queued since the stream last cleared it.

    Replays are dropped once :meth:`expect_replays` was called (the stream calls it when
    it reconnects): from then on an event whose id is among the last
    :data:`DEDUPE_WINDOW` delivered ids is skipped. Before, the ids are only recorded:
    a first connection replays nothing, and a list append per id costs far less than
    keeping the window's set up to date.

    Decoded events are turned into RunEvents :data:`CONVERT_BATCH` at a time: ``pending``
    says that some wait for :meth:`convert_more`, to be called once ``ready`` is empty
    and before any note is acted on. The result is the same as converting them all at
    once.
    """

    __slots__ = (
        "_order",
        "_path",
        "_pending",
        "_pending_at",
        "_seen",
        "active",
        "ended",
        "error",
        "ready",
        "resume_id",
        "timed_out",
    )

    def __init__(self, path: str) -> None:
        self._path = path
        self.ready: list[RunEvent] = []
        # Decoded runs not converted yet (a few at most: a list is smaller than a deque),
        # the first one from _pending_at on.
        self._pending: list[EventRun] = []
        self._pending_at = 0
        # The last ids delivered (see id_key), oldest first; once replays are expected,
        # also a set to look them up (None before: an empty set alone is 216 bytes).
        self._seen: Optional[set[Union[str, bytes]]] = None
        self._order: list[Union[str, bytes]] = []
        self.error: Optional[StreamError] = None
        self.ended = False
        self.timed_out = False
        self.resume_id: Optional[str] = None
        self.active = False

    def expect_replays(self) -> None:
        """Drop, from now on, the events whose id is among the last :data:`DEDUPE_WINDOW`
        delivered (a new connection may replay some)."""
        if self._seen is None:
            self._seen = set(self._order)

    def clear(self) -> None:
        """Forget the events not delivered yet (the stream was closed)."""
        self.ready.clear()
        self._pending.clear()

    @property
    def pending(self) -> bool:
        """Whether decoded events wait for :meth:`convert_more`."""
        return bool(self._pending)

    def convert_more(self) -> None:
        """Convert the next :data:`CONVERT_BATCH` pending events (see :meth:`add`)."""
        pending = self._pending
        if not pending:
            return
        run, start = pending[0], self._pending_at
        end = start + CONVERT_BATCH
        if end >= len(run):
            del pending[0]
            self._pending_at = 0
        else:
            self._pending_at = end
        if self._convert(run[start:end]):
            pending.clear()  # the events after an error, timeout or terminal are dropped

    def add(self, runs: list[EventRun]) -> None:
        """Queue the RunEvents of the events in ``runs`` (decoded in this order), skipping
        replays.

        An event is an envelope when its data is a JSON object with a string ``type``: the
        RunEvent takes that type and the envelope's ``data`` (else ``payload``, else
        ``{}``). Other JSON is the data of an event typed by the SSE ``event`` field, and
        text that is not JSON is kept as is.

        Stops at the first ``error``, ``timeout`` or terminal event and sets its note (see
        the class docstring); the events after it are dropped, as the stream ends or
        reconnects there. The first :data:`CONVERT_BATCH` events are converted now, the
        rest by :meth:`convert_more` (runs are converted apart, so a batch may be shorter).
        """
        self._pending.extend(run for run in runs if run)
        self.convert_more()

    def _convert(self, batch: EventRun) -> bool:
        """Queue the RunEvents of ``batch``; return whether a note stopped the batch."""
        if isinstance(batch, MessageRun):
            if self._queue_messages(batch):
                return False
            events = list(batch)
        else:
            events = batch
        # Usually the ids of a batch are all new and distinct: then one check of the whole
        # batch replaces a lookup per event, and the window is updated once at the end.
        ids = [sse[2] for sse in events if sse[2]]
        one_by_one = bool(ids) and (
            max(map(len, ids)) > _SHORT_ID
            or (
                self._seen is not None
                and (len(new_ids := set(ids)) != len(ids) or not self._seen.isdisjoint(new_ids))
            )
        )
        stop = self._queue(events, one_by_one)
        if not one_by_one and ids:
            if stop is not None:  # the events from the error or timeout on were dropped
                index = next(i for i, sse in enumerate(events) if sse is stop)
                ids = [sse[2] for sse in events[:index] if sse[2]]
            self._remember(ids)
        return stop is not None or self.ended

    def _queue_messages(self, run: MessageRun) -> bool:
        """Queue the RunEvents of a plain run of messages, column by column, and return
        True; return False, having queued nothing, when the run is not plain.

        A run is plain when every event's data is JSON, no event's type stops a batch,
        and its ids are short, distinct and not delivered lately: the run of nearly every
        stream. Its RunEvents are then exactly what :meth:`_queue` would make, built with
        C-level passes over whole columns instead of a loop body per event.
        """
        own_ids, texts = run.ids, run.datas
        try:
            parsed = list(map(_json.loads, texts))
        except _json.JSONDecodeError:
            return False
        kinds: list[str] = []
        values: list[Any] = []
        for data in parsed:
            if type(data) is dict:
                envelope_type = data.get("type")
                if type(envelope_type) is str:
                    kinds.append(envelope_type)
                    inner = data.get("data")
                    if inner is None:
                        inner = data.get("payload")
                        if inner is None:
                            inner = {}
                    values.append(inner)
                    continue
            kinds.append("message")
            values.append(data)
        if not _NOTABLE_TYPES.isdisjoint(kinds):
            return False
        ids = own_ids if all(own_ids) else [own_id for own_id in own_ids if own_id]
        if ids and not self._remember_new(ids):
            return False
        built = list(map(_new, repeat(RunEvent, len(kinds))))
        _exhaust(map(_set_type, built, kinds))
        _exhaust(map(_set_data, built, values))
        _exhaust(map(_set_id, built, own_ids))
        _exhaust(map(_set_raw, built, texts))
        self._deliver(built)
        if not self.active:
            self.active = kinds.count(EventType.HEARTBEAT) != len(kinds)
        return True

    def _queue(self, events: list[ServerSentEvent], one_by_one: bool) -> Optional[ServerSentEvent]:
        """Queue the RunEvents; return the ``error`` or ``timeout`` event that stopped the
        batch, if any. ``one_by_one``: look up (when replays are expected) and remember
        each id as it comes."""
        built: list[RunEvent] = []
        append = built.append
        seen = self._seen or ()
        loads = _json.loads
        decode_errors = _json.JSONDecodeError
        notable = _NOTABLE_TYPES
        heartbeat = EventType.HEARTBEAT
        # Locals: one fast load each per event instead of a global lookup.
        new_event, run_event = _new, RunEvent
        set_type, set_data, set_id, set_raw = _set_type, _set_data, _set_id, _set_raw
        active = self.active
        ended = False
        stop: Optional[ServerSentEvent] = None
        for sse in events:
            kind, raw, own_id, _, _ = sse
            key: Union[str, bytes, None] = None
            if one_by_one and own_id:
                key = id_key(own_id)
                if key in seen:
                    continue
            try:
                data: Any = loads(raw)
            except decode_errors:
                data = raw
            else:
                if type(data) is dict:
                    envelope_type = data.get("type")
                    if type(envelope_type) is str:
                        kind = envelope_type
                        inner = data.get("data")
                        if inner is None:
                            inner = data.get("payload")
                            if inner is None:
                                inner = {}
                        data = inner
            if kind in notable:
                if kind == EventType.ERROR:
                    self.error = self._server_error(sse, data)
                    stop = sse
                    break
                if kind == EventType.TIMEOUT:
                    self.timed_out = True
                    self.resume_id = own_id
                    stop = sse
                    break
                self.ended = ended = True
            event = new_event(run_event)
            set_type(event, kind)
            set_data(event, data)
            set_id(event, own_id)
            set_raw(event, raw)
            if key is not None:
                self._remember((key,))
            if not active and kind != heartbeat:
                active = True
            append(event)
            if ended:
                break
        self.active = active
        self._deliver(built)
        return stop

    def _deliver(self, built: list[RunEvent]) -> None:
        """Queue ``built`` (in order) after the events already in ``ready``."""
        built.reverse()
        built += self.ready
        self.ready = built

    def _remember(self, keys: Sequence[Union[str, bytes]]) -> None:
        """Add delivered ids (new and distinct, once replays are expected) to the window,
        forgetting the oldest."""
        seen = self._seen
        if seen is None:
            self._record(keys)
            return
        seen.update(keys)
        self._forget_oldest(seen, keys)

    def _record(self, keys: Sequence[Union[str, bytes]]) -> None:
        """Append keys to the ids delivered, keeping the last :data:`DEDUPE_WINDOW`."""
        order = self._order
        order.extend(keys)
        if len(order) > DEDUPE_WINDOW:
            del order[:-DEDUPE_WINDOW]

    def _remember_new(self, ids: list[str]) -> bool:
        """Remember short ids as delivered and return True; once replays are expected,
        only if they are all distinct and none is in the window yet (the oldest are then
        forgotten), else leave the window as it was and return False.

        One set update both adds the ids and tells whether they were all new: the set
        then grew by exactly their number.
        """
        if max(map(len, ids)) > _SHORT_ID:
            return False
        seen = self._seen
        if seen is None:
            self._record(ids)
            return True
        size = len(seen)
        seen.update(ids)
        if len(seen) - size != len(ids):
            self._seen = set(self._order)  # the window as it was
            return False
        self._forget_oldest(seen, ids)
        return True

    def _forget_oldest(
        self, seen: set[Union[str, bytes]], keys: Sequence[Union[str, bytes]]
    ) -> None:
        """Append keys just added to ``seen`` (the window's set) to the window's order;
        forget the oldest keys past :data:`DEDUPE_WINDOW`."""
        order = self._order
        order.extend(keys)
        excess = len(order) - DEDUPE_WINDOW
        if excess > 0:
            seen.difference_update(order[:excess])
            del order[:excess]

    def _server_error(self, sse: ServerSentEvent, data: Any) -> StreamError:
        """The error an ``error`` event raises: its ``message``, else its text."""
        message = data.get("message") if isinstance(data, dict) else None
        text = message if isinstance(message, str) and message else sse.data
        return StreamError(
            f"GET {self._path}: the server reported an error: {text[:_ERROR_TEXT_LIMIT]}"
        )
