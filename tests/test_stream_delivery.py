"""DeliveryQueue: the dedupe window over batches of any size, and RunEvents as built."""

from __future__ import annotations

from crewship_async import RunEvent
from crewship_async._sse import ServerSentEvent
from crewship_async._stream_delivery import CONVERT_BATCH, DEDUPE_WINDOW, DeliveryQueue


def logs(ids: range) -> list[ServerSentEvent]:
    return [
        ServerSentEvent(
            data=f'{{"type":"log","data":{{"n":{n}}}}}', id=str(n), last_event_id=str(n)
        )
        for n in ids
    ]


def delivered(queue: DeliveryQueue) -> list[str]:
    """The ids of every event the queue delivers, converting the pending ones as needed."""
    ids: list[str] = []
    while True:
        ids.extend(event.id or "" for event in queue.ready)
        queue.ready.clear()
        if not queue.pending:
            return ids
        queue.convert_more()


def test_a_batch_longer_than_the_window_leaves_its_last_ids_in_it() -> None:
    queue = DeliveryQueue("/p")
    queue.add(logs(range(1, 3001)))
    assert len(queue.ready) == CONVERT_BATCH
    assert delivered(queue) == [str(n) for n in range(1, 3001)]
    oldest_kept = 3001 - DEDUPE_WINDOW
    queue.add(logs(range(oldest_kept, oldest_kept - 2, -1)))
    assert delivered(queue) == [str(oldest_kept - 1)]


def test_the_window_keeps_forgetting_after_a_long_batch() -> None:
    queue = DeliveryQueue("/p")
    queue.add(logs(range(1, DEDUPE_WINDOW + 1)))
    queue.add(logs(range(DEDUPE_WINDOW + 1, DEDUPE_WINDOW + 3)))
    queue.add(logs(range(1, 4)))
    assert delivered(queue)[-3:] == ["1", "2", "3"]
    queue.add(logs(range(3, 5)))
    assert delivered(queue) == ["4"]


def test_run_events_equal_the_constructed_ones() -> None:
    queue = DeliveryQueue("/p")
    raw_text = ServerSentEvent(event="note", data="plain text", id=None)
    no_data = ServerSentEvent(data='{"type":"log","payload":[1]}', id="")
    empty = ServerSentEvent(data='{"type":"log"}', id="7")
    queue.add([raw_text, no_data, empty, *logs(range(1, 2))])
    assert list(queue.ready) == [
        RunEvent("note", "plain text", None, "plain text"),
        RunEvent("log", [1], "", '{"type":"log","payload":[1]}'),
        RunEvent("log", {}, "7", '{"type":"log"}'),
        RunEvent("log", {"n": 1}, "1", '{"type":"log","data":{"n":1}}'),
    ]
    assert queue.active


def test_a_note_drops_the_pending_events_after_it() -> None:
    queue = DeliveryQueue("/p")
    timeout = ServerSentEvent(data='{"type":"timeout"}', id="t", last_event_id="t")
    queue.add([*logs(range(1, 201)), timeout, *logs(range(201, 301))])
    assert len(delivered(queue)) == 200
    assert (queue.timed_out, queue.resume_id, queue.pending) == (True, "t", False)
    queue.timed_out = False
    queue.add(logs(range(199, 203)))
    assert delivered(queue) == ["201", "202"]


def test_clear_forgets_the_pending_events() -> None:
    queue = DeliveryQueue("/p")
    queue.add(logs(range(1, 301)))
    queue.clear()
    assert not queue.ready
    assert not queue.pending
