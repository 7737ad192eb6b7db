"""Tests of the sans-I/O Server-Sent Events decoder against the WHATWG parsing rules."""

from __future__ import annotations

import pickle
import re
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crewship_async._sse import (
    DEFAULT_MAX_EVENT_SIZE,
    EventTooLargeError,
    ServerSentEvent,
    SSEDecoder,
)
from crewship_async.errors import CrewshipError, StreamError

E = ServerSentEvent
BOM = b"\xef\xbb\xbf"


def feed_all(chunks: Sequence[bytes], decoder: Optional[SSEDecoder] = None) -> list[E]:
    """Feed every chunk, close, and return all the events in order."""
    decoder = decoder if decoder is not None else SSEDecoder()
    events: list[E] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    decoder.close()
    return events


def state(decoder: SSEDecoder) -> tuple[str, Optional[int], int]:
    return decoder.last_event_id, decoder.retry, decoder.comments_seen


def byte_by_byte(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


# --- reference implementation: the standard's steps, written as plainly as possible ---


class Reference(NamedTuple):
    events: list[E]
    last_event_id: str
    retry: Optional[int]
    comments_seen: int


def reference_decode(raw: bytes) -> Reference:
    """Decode a whole stream with the standard's algorithm, one character string at a time."""
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    lines = re.split("\r\n|\r|\n", raw.decode("utf-8", "replace"))
    lines.pop()  # not followed by a line end: discarded at the end of the stream
    events: list[E] = []
    data = event_type = id_buffer = last_event_id = ""
    block_id: Optional[str] = None
    block_retry: Optional[int] = None
    retry: Optional[int] = None
    comments = 0
    for line in lines:
        if line == "":
            last_event_id = id_buffer
            if data:
                event = E(event_type or "message", data[:-1], block_id, last_event_id, block_retry)
                events.append(event)
            data = event_type = ""
            block_id = block_retry = None
            continue
        if line.startswith(":"):
            comments += 1
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\x00" not in value:
                id_buffer = block_id = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            digits = value.lstrip("0") or "0"
            if len(digits) <= 20 and int(digits) < 2**64:
                retry = block_retry = int(digits)
    return Reference(events, last_event_id, retry, comments)


# --- conformance table ---


class Case(NamedTuple):
    chunks: list[bytes]
    events: list[E]
    last_event_id: str = ""
    retry: Optional[int] = None
    comments_seen: int = 0


def case(
    chunks: Any,
    events: list[E],
    *,
    last_event_id: str = "",
    retry: Optional[int] = None,
    comments: int = 0,
    id: str,
) -> Any:
    if isinstance(chunks, bytes):
        chunks = [chunks]
    return pytest.param(Case(chunks, events, last_event_id, retry, comments), id=id)


CASES = [
    # line ends
    case(b"data: a\r\ndata: b\r\n\r\n", [E(data="a\nb")], id="crlf"),
    case(b"data: a\rdata: b\r\r", [E(data="a\nb")], id="lone-cr"),
    case(b"data: a\ndata: b\n\n", [E(data="a\nb")], id="lone-lf"),
    case(b"data: a\r\ndata: b\rdata: c\n\r\n", [E(data="a\nb\nc")], id="mixed-line-ends"),
    case(b"data: a\r\rdata: b\n\r", [E(data="a"), E(data="b")], id="cr-cr-is-two-line-ends"),
    case(b"data: a\n\rdata: b\n\n", [E(data="a"), E(data="b")], id="lf-cr-is-two-line-ends"),
    case(
        [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        [E(data="a\nb")],
        id="cr-at-chunk-end-then-lf-is-one-line-end",
    ),
    case(
        [b"data: a\r", b"", b"\n", b"\n"],
        [E(data="a")],
        id="cr-at-chunk-end-then-empty-chunk-then-lf",
    ),
    case(
        [b"data: a\r", b"data: b\r", b"\r"],
        [E(data="a\nb")],
        id="cr-at-chunk-end-then-other-data",
    ),
    case([b"data: a\r", b"\r"], [E(data="a")], id="cr-at-chunk-end-then-cr"),
    case([b"data: a\r\n", b"\r\n"], [E(data="a")], id="crlf-at-chunk-end"),
    case([b"data: a\r\n\r", b"\n"], [E(data="a")], id="crlf-then-cr-at-chunk-end"),
    case(
        b"data: a\x0bb\x0cc\xc2\x85d\xe2\x80\xa8e\xe2\x80\xa9f\n\n",
        [E(data="a\x0bb\x0cc\x85d\u2028e\u2029f")],
        id="vt-ff-nel-ls-ps-are-not-line-ends",
    ),
    # byte order mark
    case(BOM + b"data: a\n\n", [E(data="a")], id="bom-stripped"),
    case([b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [E(data="a")], id="bom-split-across-chunks"),
    case([b"", b"\xef\xbb", b"", b"\xbf", b"data: a\n\n"], [E(data="a")], id="bom-empty-chunks"),
    case(BOM + b"data: \xef\xbb\xbfa\n\n", [E(data="\ufeffa")], id="second-bom-kept-in-data"),
    case(
        BOM + BOM + b"data: a\n\ndata: b\n\n",
        [E(data="b")],
        id="second-bom-at-start-kept-so-field-name-unknown",
    ),
    case(b"data: a\n\n" + BOM + b"data: b\n\n", [E(data="a")], id="bom-after-start-kept"),
    case(
        [b"\xef\xbb", b"\n\ndata: a\n\n"],
        [E(data="a")],
        id="bom-prefix-that-is-not-a-bom",
    ),
    case([b"\xef\xbb"], [], id="stream-of-a-bom-prefix-only"),
    # field parsing
    case(b"data:a\n\n", [E(data="a")], id="no-space-after-colon"),
    case(b"data:  a \n\n", [E(data=" a ")], id="one-leading-space-removed-only"),
    case(b"data:\ta\n\n", [E(data="\ta")], id="tab-after-colon-kept"),
    case(b"data: a:b: c\n\n", [E(data="a:b: c")], id="split-at-first-colon"),
    case(b"data : a\n\n", [], id="space-before-colon-is-part-of-field-name"),
    case(b"Data: a\n\n", [], id="field-names-are-case-sensitive"),
    case(b"data\n\n", [E(data="")], id="no-colon-data-line-dispatches-empty-data"),
    case(b"data:\n\n", [E(data="")], id="empty-data-value-dispatches-empty-data"),
    case(b"data\ndata\n\n", [E(data="\n")], id="two-empty-data-lines"),
    case(b"data: a\ndata\ndata: b\n\n", [E(data="a\n\nb")], id="multi-line-data-joined-with-lf"),
    case(b"data: a\n\n\n\ndata: b\n\n", [E(data="a"), E(data="b")], id="extra-blank-lines"),
    case(b"foo: bar\nfoo\ndata: a\n\n", [E(data="a")], id="unknown-field-ignored"),
    # comments
    case(
        b": hello\ndata: a\n:\n: x\n\n",
        [E(data="a")],
        comments=3,
        id="comments-ignored-and-counted",
    ),
    case(b": keepalive\n\n", [], comments=1, id="comment-only-block-not-dispatched"),
    case(b":data: a\n\n", [], comments=1, id="comment-that-looks-like-a-field"),
    # dispatch
    case(b"event: x\n\n", [], id="empty-data-not-dispatched"),
    case(
        b"event: x\n\ndata: a\n\n",
        [E(data="a")],
        id="event-type-reset-by-undispatched-block",
    ),
    case(b"data: a\n\n", [E("message", "a")], id="event-type-defaults-to-message"),
    case(b"event: log\ndata: a\n\n", [E("log", "a")], id="event-type-set"),
    case(b"event:\ndata: a\n\n", [E("message", "a")], id="empty-event-type-is-message"),
    case(b"event\ndata: a\n\n", [E("message", "a")], id="no-colon-event-type-is-message"),
    case(b"event: a\nevent: b\ndata: x\n\n", [E("b", "x")], id="last-event-type-wins"),
    case(
        b"event: log\ndata: 1\n\ndata: 2\n\n",
        [E("log", "1"), E("message", "2")],
        id="event-type-reset-after-dispatch",
    ),
    # id
    case(
        b"id: 1\ndata: a\n\n",
        [E(data="a", id="1", last_event_id="1")],
        last_event_id="1",
        id="id-set",
    ),
    case(
        b"id:1\ndata: a\n\n",
        [E(data="a", id="1", last_event_id="1")],
        last_event_id="1",
        id="id-without-space",
    ),
    case(
        b"id: 1\n\nid: 2\x00\ndata: a\n\n",
        [E(data="a", id=None, last_event_id="1")],
        last_event_id="1",
        id="id-with-nul-ignored",
    ),
    case(
        b"id: 1\n\nid:2\x00\ndata: a\n\n",
        [E(data="a", id=None, last_event_id="1")],
        last_event_id="1",
        id="id-with-nul-and-no-space-ignored",
    ),
    case(
        b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n",
        [
            E(data="a", id="1", last_event_id="1"),
            E(data="b", id="", last_event_id=""),
            E(data="c", id="2", last_event_id="2"),
            E(data="d", id="", last_event_id=""),
        ],
        id="empty-id-resets-last-event-id",
    ),
    case(
        b"id: 7\ndata: a\n\ndata: b\n\n",
        [E(data="a", id="7", last_event_id="7"), E(data="b", id=None, last_event_id="7")],
        last_event_id="7",
        id="id-persists-across-events",
    ),
    case(b"id: 9\n\n", [], last_event_id="9", id="id-without-data-sets-last-event-id"),
    case(
        b"data: a\nid: 1\nid: 2\n\n",
        [E(data="a", id="2", last_event_id="2")],
        last_event_id="2",
        id="last-id-in-block-wins",
    ),
    case(
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n",
        [E(data="a", id="1", last_event_id="1")],
        last_event_id="1",
        id="id-of-unterminated-block-not-committed",
    ),
    case(
        b"id: 1\n\nid: 2\ndata: a\n",
        [],
        last_event_id="1",
        id="unterminated-block-at-close-keeps-previous-id",
    ),
    # retry
    case(b"retry: 1500\ndata: a\n\n", [E(data="a", retry=1500)], retry=1500, id="retry-set"),
    case(b"retry: 0010\n\n", [], retry=10, id="retry-leading-zeros"),
    case(b"retry: 0\n\n", [], retry=0, id="retry-zero"),
    case(
        b"retry: 5\nretry: x\ndata: a\n\n",
        [E(data="a", retry=5)],
        retry=5,
        id="retry-invalid-keeps-previous",
    ),
    case(
        b"retry: 5\ndata: a\n\ndata: b\n\n",
        [E(data="a", retry=5), E(data="b")],
        retry=5,
        id="retry-reported-in-its-block-only",
    ),
    case(b"retry: 10a\n\n", [], id="retry-10a-ignored"),
    case(b"retry: -1\n\n", [], id="retry-negative-ignored"),
    case(b"retry: +1\n\n", [], id="retry-plus-sign-ignored"),
    case(b"retry: 1_0\n\n", [], id="retry-underscore-ignored"),
    case(b"retry: 1.5\n\n", [], id="retry-decimal-ignored"),
    case(b"retry:  10\n\n", [], id="retry-two-spaces-before-digits-ignored"),
    case(b"retry: 10 \n\n", [], id="retry-trailing-space-ignored"),
    case(b" retry: 10\n\n", [], id="retry-space-before-field-name-ignored"),
    case(b"retry:\n\n", [], id="retry-empty-ignored"),
    case(b"retry\n\n", [], id="retry-no-colon-ignored"),
    case("retry: \u0663\u00b2\n\n".encode(), [], id="retry-non-ascii-digits-ignored"),
    case(b"retry: 18446744073709551615\n\n", [], retry=2**64 - 1, id="retry-largest-accepted"),
    case(b"retry: 18446744073709551616\n\n", [], id="retry-overflow-ignored"),
    case(b"retry: " + b"0" * 5000 + b"7\n\n", [], retry=7, id="retry-5000-leading-zeros"),
    case(b"retry: " + b"9" * 5000 + b"\n\n", [], id="retry-5000-digits-ignored"),
    # UTF-8
    case(
        b"event: \xffx\nid: \xc3\ndata: a\xffb\xc3\n\n",
        [E("\ufffdx", "a\ufffdb\ufffd", "\ufffd", "\ufffd")],
        last_event_id="\ufffd",
        id="invalid-utf8-replaced",
    ),
    case(
        b"data: \xe2\x82\ndata: \xed\xa0\x80\ndata: \xf0\x80\x80\n\n",
        [E(data="\ufffd\n\ufffd\ufffd\ufffd\n\ufffd\ufffd\ufffd")],
        id="invalid-utf8-maximal-subparts",
    ),
    case([b"data: \xc3", b"\xa9\n\n"], [E(data="\xe9")], id="multibyte-char-split-across-chunks"),
    case(
        [b"data: \xf0", b"\x9f", b"\x98", b"\x80\n\n"],
        [E(data="\U0001f600")],
        id="four-byte-char-split-in-four-chunks",
    ),
    case(
        [b"da", b"ta: x\xc3", b"\xa9y\r", b"\n", b"\r\n"],
        [E(data="x\xe9y")],
        id="line-split-across-chunks",
    ),
    # end of stream
    case(b"data: a\n\ndata: b\n", [E(data="a")], id="unterminated-last-event-discarded"),
    case([b"data: a\n\ndata: b"], [E(data="a")], id="unterminated-last-line-discarded"),
    case([b"data: a\r"], [], id="line-ended-by-cr-at-stream-end-discarded"),
    case([], [], id="empty-stream"),
]


@pytest.mark.parametrize("expected", CASES)
def test_conformance(expected: Case) -> None:
    raw = b"".join(expected.chunks)
    for chunks in (expected.chunks, [raw], byte_by_byte(raw)):
        decoder = SSEDecoder()
        assert feed_all(chunks, decoder) == expected.events
        assert state(decoder) == (expected.last_event_id, expected.retry, expected.comments_seen)
    assert reference_decode(raw) == (
        expected.events,
        expected.last_event_id,
        expected.retry,
        expected.comments_seen,
    )


def test_events_returned_by_the_chunk_that_completes_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n\ndata: c\n\nda") == [E(data="a"), E(data="b"), E(data="c")]
    assert decoder.feed(b"ta: d\n") == []
    assert decoder.feed(b"\n") == [E(data="d")]


def test_last_event_id_changes_only_at_blank_lines() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\n")
    assert decoder.last_event_id == ""
    decoder.feed(b"\n")
    assert decoder.last_event_id == "1"


def test_retry_applies_without_waiting_for_a_blank_line() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 250\n")
    assert decoder.retry == 250


# --- size cap ---


def test_default_cap() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 16 * 1024 * 1024
    assert SSEDecoder().max_event_size == DEFAULT_MAX_EVENT_SIZE


@pytest.mark.parametrize("bad", [0, -1])
def test_cap_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_event_size"):
        SSEDecoder(max_event_size=bad)


@pytest.mark.parametrize("prefix", [b"data: ", b"data:"], ids=["with-space", "without-space"])
def test_cap_counts_data_value_plus_lf(prefix: bytes) -> None:
    assert SSEDecoder(max_event_size=100).feed(prefix + b"x" * 99 + b"\n\n") == [E(data="x" * 99)]
    decoder = SSEDecoder(max_event_size=100)
    with pytest.raises(EventTooLargeError, match="maximum event size of 100 bytes"):
        decoder.feed(prefix + b"x" * 100 + b"\n\n")


def test_cap_on_data_spread_over_many_lines() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    line = b"data: " + b"x" * 99 + b"\n"  # 100 bytes of data buffer each
    for _ in range(10):
        assert decoder.feed(line) == []
    with pytest.raises(EventTooLargeError) as info:
        decoder.feed(line)
    assert info.value.limit == 1000
    assert "1000" in str(info.value)
    assert decoder.closed


def test_cap_is_per_event() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    event = b"data: " + b"x" * 900 + b"\n\n"
    assert feed_all([event] * 50, decoder) == [E(data="x" * 900)] * 50


def test_cap_on_one_endless_line() -> None:
    decoder = SSEDecoder(max_event_size=10_000)
    decoder.feed(b"data: ")
    with pytest.raises(EventTooLargeError, match="10000"):  # noqa: PT012
        for _ in range(100):
            decoder.feed(b"x" * 1000)
    assert decoder.closed


@pytest.mark.parametrize("line", [b"x" * 20_000, b":" + b"x" * 20_000], ids=["field", "comment"])
def test_cap_on_endless_line_in_one_chunk(line: bytes) -> None:
    with pytest.raises(EventTooLargeError):
        SSEDecoder(max_event_size=10_000).feed(line)


def test_cap_counts_pending_line_plus_data() -> None:
    decoder = SSEDecoder(max_event_size=100)
    assert decoder.feed(b"data: " + b"x" * 59 + b"\n") == []  # 60 bytes of data
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"data: " + b"y" * 40 + b"\ndata: " + b"z" * 10)  # 41 + 16 pending


def test_events_before_the_oversized_one_are_kept_on_the_error() -> None:
    decoder = SSEDecoder(max_event_size=100)
    with pytest.raises(EventTooLargeError) as info:
        decoder.feed(b"data: a\n\nid: 1\ndata: b\n\ndata: " + b"x" * 200 + b"\n\n")
    assert info.value.events == [E(data="a"), E(data="b", id="1", last_event_id="1")]
    with pytest.raises(EventTooLargeError) as info:
        SSEDecoder(max_event_size=100).feed(b"data: a\n\ndata: " + b"x" * 200)
    assert info.value.events == [E(data="a")]


def test_decoder_unusable_after_cap_error() -> None:
    decoder = SSEDecoder(max_event_size=10)
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"data: 0123456789\n\n")
    with pytest.raises(ValueError, match="closed"):
        decoder.feed(b"data: a\n\n")


def test_cap_error_is_a_stream_error_and_pickles() -> None:
    error = EventTooLargeError(42, [E(data="a")])
    assert isinstance(error, StreamError)
    assert isinstance(error, CrewshipError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is EventTooLargeError
    assert (copy.limit, copy.events, str(copy)) == (42, [E(data="a")], str(error))
    assert EventTooLargeError(1).events == []


@pytest.mark.parametrize("line_size", [10 * 1024 * 1024, 1000], ids=["one-line", "many-lines"])
def test_ten_megabyte_event_in_4k_chunks(line_size: int) -> None:
    size = 10 * 1024 * 1024
    line = b"data: " + b"x" * (line_size - 7) + b"\n"
    raw = line * (size // line_size) + b"\n"
    chunks = [raw[i : i + 4096] for i in range(0, len(raw), 4096)]
    start = time.perf_counter()
    events = feed_all(chunks)
    elapsed = time.perf_counter() - start
    assert len(events) == 1
    assert len(events[0].data) == len(raw) - 6 * (size // line_size) - 2
    assert elapsed < 2.0  # quadratic buffering would take far longer


# --- lifecycle and the event type ---


def test_feed_after_close_raises() -> None:
    assert not SSEDecoder().closed
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n")
    decoder.close()
    decoder.close()
    assert decoder.closed
    with pytest.raises(ValueError, match="closed"):
        decoder.feed(b"\n")
    with pytest.raises(ValueError, match="closed"):
        decoder.feed(b"")


def test_close_keeps_stream_state_readable() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 3\nretry: 9\n: c\n\ndata: pending")
    decoder.close()
    assert state(decoder) == ("3", 9, 1)


def test_server_sent_event_value_type() -> None:
    event = E(data="a")
    assert event == E("message", "a", None, "", None)
    assert hash(event) == hash(E(data="a"))
    assert repr(event) == (
        "ServerSentEvent(event='message', data='a', id=None, last_event_id='', retry=None)"
    )
    with pytest.raises(AttributeError):
        event.data = "b"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


# --- properties ---

TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(["a", ":", " ", "\r", "\n", "\u2028", "\u2029", "\x85", "\ufeff", "\xe9"]),
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    ),
    max_size=12,
)
LINE_TEXT = TEXT.map(lambda text: re.sub("[\r\n]", "", text))


class Spec(NamedTuple):
    event: Optional[str]
    data: str
    id: Optional[str]
    retry: Optional[int]
    comment: Optional[str]


SPECS = st.lists(
    st.builds(
        Spec,
        event=st.none() | LINE_TEXT,
        data=TEXT,
        id=st.none() | LINE_TEXT,
        retry=st.none() | st.integers(0, 2**64 - 1),
        comment=st.none() | LINE_TEXT,
    ),
    max_size=6,
)
LINE_ENDS = st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1)
PROPERTY_SETTINGS = settings(derandomize=True, deadline=None, database=None, max_examples=300)


def encode(specs: Sequence[Spec], line_ends: Sequence[str], bom: bool) -> bytes:
    """Write events as an event stream, cycling through the given line ends."""
    lines: list[str] = []
    for spec in specs:
        if spec.comment is not None:
            lines.append(":" + spec.comment)
        if spec.event is not None:
            lines.append("event: " + spec.event)
        if spec.id is not None:
            lines.append("id: " + spec.id)
        if spec.retry is not None:
            lines.append(f"retry: {spec.retry}")
        lines.extend("data: " + part for part in re.split("\r\n|\r|\n", spec.data))
        lines.append("")
    out: list[str] = []
    previous = ""
    for index, line in enumerate(lines):
        end = line_ends[index % len(line_ends)]
        if previous == "\r" and not line and end == "\n":
            end = "\r"  # CR then an LF alone would read as one CRLF
        out.append(line + end)
        previous = end
    return (BOM if bom else b"") + "".join(out).encode()


def split_at(raw: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({min(cut, len(raw)) for cut in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]


@PROPERTY_SETTINGS
@given(specs=SPECS, line_ends=LINE_ENDS, bom=st.booleans(), data=st.data())
def test_any_chunking_of_encoded_events_decodes_alike(
    specs: list[Spec], line_ends: list[str], bom: bool, data: st.DataObject
) -> None:
    raw = encode(specs, line_ends, bom)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    whole = SSEDecoder()
    expected = feed_all([raw], whole)
    chunked = SSEDecoder()
    assert feed_all(split_at(raw, cuts), chunked) == expected
    assert state(chunked) == state(whole)


@PROPERTY_SETTINGS
@given(specs=SPECS, line_ends=LINE_ENDS, bom=st.booleans())
def test_round_trip(specs: list[Spec], line_ends: list[str], bom: bool) -> None:
    decoder = SSEDecoder()
    events = feed_all([encode(specs, line_ends, bom)], decoder)
    assert len(events) == len(specs)
    last_event_id = ""
    for spec, event in zip(specs, events, strict=True):
        last_event_id = last_event_id if spec.id is None else spec.id
        assert event.event == (spec.event or "message")
        assert event.data == re.sub("\r\n|\r", "\n", spec.data)
        assert event.id == spec.id
        assert event.last_event_id == last_event_id
        assert event.retry == spec.retry
    assert decoder.last_event_id == last_event_id
    assert decoder.comments_seen == sum(spec.comment is not None for spec in specs)


TOKENS = st.sampled_from(
    [
        b"data",
        b"event",
        b"id",
        b"retry",
        b":",
        b" ",
        b"\r",
        b"\n",
        b"\r\n",
        b"\x00",
        b"7",
        b"x",
        BOM,
        b"\xef",
        b"\xc3",
        b"\xa9",
        b"\xff",
        b"\xe2\x80\xa8",
    ]
)
ARBITRARY_BYTES = st.binary(max_size=200) | st.lists(TOKENS, max_size=60).map(b"".join)


@PROPERTY_SETTINGS
@given(raw=ARBITRARY_BYTES, data=st.data())
def test_arbitrary_bytes_never_raise_and_match_the_reference(
    raw: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    expected = reference_decode(raw)
    for chunks in ([raw], split_at(raw, cuts)):
        decoder = SSEDecoder()
        assert feed_all(chunks, decoder) == expected.events
        assert state(decoder) == expected[1:]


# --- the fast path for common blocks (id + data + blank line, LF line ends) ---

VALUE_BYTES = st.lists(
    st.sampled_from(
        # Whole, invalid and cut-short UTF-8 sequences: the fast path decodes a run of
        # blocks at once, and must cut its values exactly where one-by-one decoding would.
        [
            *(b"a", b"7", b" ", b":", b"\x00", b"\xe9", b"\xc3\xa9", b"\xff", b"{}"),
            *(b"\xe2\x80", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\x80", b"\xed\xa0\x80"),
        ]
    ),
    max_size=4,
).map(b"".join)
COMMON_BLOCK = st.builds(
    lambda i, d: b"id: " + i + b"\ndata: " + d + b"\n\n", VALUE_BYTES, VALUE_BYTES
)
# Lines that break the common shape or leave a block under way.
OTHER_LINES = st.sampled_from(
    [
        b"data: x\n",
        b"id: 5\n",
        b"id:\n",
        b"event: e\n",
        b"retry: 10\n",
        b": comment\n",
        b"\n",
        b"data:x\n\n",
        b"id: 1\r\ndata: y\r\n\r\n",
        b"junk\n",
        b"id: 2\ndata: 3\n",
    ]
)
MIXED_STREAMS = st.lists(st.one_of(COMMON_BLOCK, COMMON_BLOCK, OTHER_LINES), max_size=12).map(
    b"".join
)


@PROPERTY_SETTINGS
@given(raw=MIXED_STREAMS, bom=st.booleans(), data=st.data())
def test_common_blocks_decode_as_the_standard_says(
    raw: bytes, bom: bool, data: st.DataObject
) -> None:
    raw = (BOM if bom else b"") + raw
    reference = reference_decode(raw)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    for chunks in ([raw], split_at(raw, cuts), byte_by_byte(raw)):
        decoder = SSEDecoder()
        assert feed_all(chunks, decoder) == reference.events
        assert state(decoder) == (
            reference.last_event_id,
            reference.retry,
            reference.comments_seen,
        )


def test_common_blocks_respect_the_size_cap() -> None:
    decoder = SSEDecoder(max_event_size=10)
    chunk = b"id: 1\ndata: 123456789\n\nid: 2\ndata: 1234567890\n\nid: 3\ndata: x\n\n"
    with pytest.raises(EventTooLargeError) as info:
        decoder.feed(chunk)
    assert info.value.events == [E("message", "123456789", "1", "1")]


def test_events_before_a_cap_error_keep_the_common_blocks_first() -> None:
    decoder = SSEDecoder(max_event_size=10)
    with pytest.raises(EventTooLargeError) as info:
        decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nevent: e\ndata: 1234567890\n")
    assert [event.data for event in info.value.events] == ["a", "b"]


def feed_or_fail(chunks: Sequence[bytes], decoder: SSEDecoder) -> tuple[list[E], Optional[list[E]]]:
    """The events fed chunks give, and the events a size-cap error carried (or None)."""
    events: list[E] = []
    try:
        for chunk in chunks:
            events.extend(decoder.feed(chunk))
    except EventTooLargeError as exc:
        return events, exc.events
    return events, None


class LineByLine(SSEDecoder):
    """The decoder with its fast path for common blocks turned off: the reference path."""

    __slots__ = ()

    def _common_blocks(self, chunk: bytes, start: int, end: int) -> None:
        return None


@PROPERTY_SETTINGS
@given(raw=MIXED_STREAMS, cap=st.integers(1, 40), data=st.data())
def test_common_blocks_meet_the_size_cap_as_line_by_line_decoding_does(
    raw: bytes, cap: int, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=4))
    for chunks in ([raw], split_at(raw, cuts)):
        fast = feed_or_fail(chunks, SSEDecoder(max_event_size=cap))
        assert fast == feed_or_fail(chunks, LineByLine(max_event_size=cap))
