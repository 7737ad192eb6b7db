"""DeliveryQueue: the dedupe window over batches of any size, RunEvents as built, and
runs of messages (MessageRun columns) queued exactly as the same events in a list."""

from __future__ import annotations

from typing import Any, Callable, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crewship_async import RunEvent
from crewship_async._sse import EventRun, MessageRun, ServerSentEvent
from crewship_async._stream_delivery import CONVERT_BATCH, DEDUPE_WINDOW, DeliveryQueue

Form = Callable[[list[str], list[str]], EventRun]


def as_list(ids: list[str], datas: list[str]) -> EventRun:
    return [
        ServerSentEvent("message", data, id_, id_, None)
        for id_, data in zip(ids, datas, strict=True)
    ]


def as_messages(ids: list[str], datas: list[str]) -> EventRun:
    return MessageRun(ids, datas)


FORMS = pytest.mark.parametrize("form", [as_list, as_messages])


def logs(ids: range, form: Form = as_list) -> EventRun:
    return form([str(n) for n in ids], [f'{{"type":"log","data":{{"n":{n}}}}}' for n in ids])


def delivered_events(queue: DeliveryQueue) -> list[RunEvent]:
    """Every event the queue delivers, converting the pending ones as needed."""
    events: list[RunEvent] = []
    while True:
        events.extend(reversed(queue.ready))  # the next event is the last
        queue.ready.clear()
        if not queue.pending:
            return events
        queue.convert_more()


def delivered(queue: DeliveryQueue) -> list[str]:
    """The ids of every event the queue delivers."""
    return [event.id or "" for event in delivered_events(queue)]


@FORMS
def test_a_batch_longer_than_the_window_leaves_its_last_ids_in_it(form: Form) -> None:
    queue = DeliveryQueue("/p")
    queue.add([logs(range(1, 3001), form)])
    assert len(queue.ready) == CONVERT_BATCH
    assert delivered(queue) == [str(n) for n in range(1, 3001)]
    queue.expect_replays()
    oldest_kept = 3001 - DEDUPE_WINDOW
    queue.add([logs(range(oldest_kept, oldest_kept - 2, -1), form)])
    assert delivered(queue) == [str(oldest_kept - 1)]


@FORMS
def test_the_window_keeps_forgetting_after_a_long_batch(form: Form) -> None:
    queue = DeliveryQueue("/p")
    queue.expect_replays()
    queue.add([logs(range(1, DEDUPE_WINDOW + 1), form)])
    queue.add([logs(range(DEDUPE_WINDOW + 1, DEDUPE_WINDOW + 3), form)])
    queue.add([logs(range(1, 4), form)])
    assert delivered(queue)[-3:] == ["1", "2", "3"]
    queue.add([logs(range(3, 5), form)])
    assert delivered(queue) == ["4"]


def test_run_events_equal_the_constructed_ones() -> None:
    queue = DeliveryQueue("/p")
    raw_text = ServerSentEvent(event="note", data="plain text", id=None)
    no_data = ServerSentEvent(data='{"type":"log","payload":[1]}', id="")
    empty = ServerSentEvent(data='{"type":"log"}', id="7")
    queue.add([[raw_text, no_data, empty], logs(range(1, 2), as_messages)])
    assert delivered_events(queue) == [
        RunEvent("note", "plain text", None, "plain text"),
        RunEvent("log", [1], "", '{"type":"log","payload":[1]}'),
        RunEvent("log", {}, "7", '{"type":"log"}'),
        RunEvent("log", {"n": 1}, "1", '{"type":"log","data":{"n":1}}'),
    ]
    assert queue.active


@FORMS
def test_a_note_drops_the_pending_events_after_it(form: Form) -> None:
    queue = DeliveryQueue("/p")
    timeout = form(["t"], ['{"type":"timeout"}'])
    queue.add([logs(range(1, 201), form), timeout, logs(range(201, 301), form)])
    assert len(delivered(queue)) == 200
    assert (queue.timed_out, queue.resume_id, queue.pending) == (True, "t", False)
    queue.timed_out = False
    queue.expect_replays()
    queue.add([logs(range(199, 203), form)])
    assert delivered(queue) == ["201", "202"]


@FORMS
def test_replays_are_dropped_only_once_expected(form: Form) -> None:
    queue = DeliveryQueue("/p")
    queue.add([logs(range(1, 4), form), logs(range(3, 5), form)])
    assert delivered(queue) == ["1", "2", "3", "3", "4"]  # one connection: nothing to drop
    queue.expect_replays()
    queue.expect_replays()  # a second reconnect changes nothing
    queue.add([logs(range(4, 7), form), logs(range(6, 8), form)])
    assert delivered(queue) == ["5", "6", "7"]


def test_a_run_of_messages_reads_as_its_events() -> None:
    run = MessageRun(["1", ""], ["a", "b"])
    assert list(run) == [run[0], run[1]] == as_list(["1", ""], ["a", "b"])
    assert list(run[1:]) == [ServerSentEvent("message", "b", "", "", None)]
    assert repr(run) == "<MessageRun of 2 events>"


def test_clear_forgets_the_pending_events() -> None:
    queue = DeliveryQueue("/p")
    queue.add([logs(range(1, 301))])
    queue.clear()
    assert not queue.ready
    assert not queue.pending


# Data texts that exercise every branch of the conversion: envelopes with data, payload or
# neither, the types that stop a batch or leave the idle clock alone, other JSON, not JSON.
_TYPES = st.sampled_from(["log", "heartbeat", "run.completed", "error", "timeout", "task.started"])
_ENVELOPES = st.builds(
    lambda kind, key, value: (
        f'{{"type":"{kind}"}}' if key is None else f'{{"type":"{kind}","{key}":{value}}}'
    ),
    _TYPES,
    st.sampled_from([None, "data", "payload"]),
    st.sampled_from(["{}", "[1]", "null", '"text"', '{"message":"boom"}']),
)
_TEXTS = st.one_of(
    _ENVELOPES,
    st.sampled_from(['{"type":5}', "[1,2]", "7", "not json", "", '{"kind":"log"}']),
)
_IDS = st.one_of(st.sampled_from(["", "1", "2", "3"]), st.text(min_size=30, max_size=40))


def outcome(queue: DeliveryQueue) -> tuple[Any, ...]:
    events = delivered_events(queue)
    error: Optional[str] = None if queue.error is None else str(queue.error)
    notes = (error, queue.ended, queue.timed_out, queue.resume_id, queue.active)
    return events, notes, queue._order, queue._seen


@given(
    st.lists(st.tuples(st.booleans(), st.lists(st.tuples(_IDS, _TEXTS), max_size=6)), max_size=4)
)
def test_runs_of_messages_queue_as_the_same_events_in_lists(
    chunks: list[tuple[bool, list[tuple[str, str]]]],
) -> None:
    by_list, by_messages = DeliveryQueue("/p"), DeliveryQueue("/p")
    for reconnect, chunk in chunks:
        if reconnect:
            by_list.expect_replays()
            by_messages.expect_replays()
        ids, datas = [id_ for id_, _ in chunk], [data for _, data in chunk]
        by_list.add([as_list(ids, datas)])
        by_messages.add([as_messages(ids, datas)])
    assert outcome(by_messages) == outcome(by_list)
