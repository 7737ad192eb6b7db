"""verify(), the signature parser, the delivery store and the framework-neutral receiver."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from starlette.datastructures import Headers

import crewship_async
from crewship_async import RunStatus, WebhookVerificationError
from crewship_async.webhooks import (
    MemoryDeliveryStore,
    WebhookEvent,
    WebhookEventType,
    WebhookReceiver,
    compute_signature,
    delivery_headers,
    signed_payload,
    verify,
)
from crewship_async.webhooks._signature import parse_signatures

SECRET = "whsec_SUPERSECRET_0123456789abcdef"
NOW = 1_800_000_000


def payload(**changes: Any) -> bytes:
    document: dict[str, Any] = {
        "event": "run.succeeded",
        "delivery_id": "dlv_1",
        "run": {"id": "run_1", "status": "succeeded", "output": {"answer": 42}, "new": 1},
        "attempt": 1,
    }
    document.update(changes)
    return json.dumps(document).encode()


def signed(body: bytes, *, secret: str = SECRET, **overrides: str) -> dict[str, str]:
    headers = delivery_headers(
        body, secret, event="run.succeeded", delivery_id="dlv_1", timestamp=NOW
    )
    headers.update(overrides)
    return headers


def refused(body: bytes, headers: Any, secret: Any = SECRET, **kwargs: Any) -> str:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, headers, secret, now=NOW, **kwargs)
    text = f"{caught.value} {caught.value!r}"
    assert SECRET not in text
    assert "SUPERSECRET" not in text
    assert isinstance(caught.value, crewship_async.CrewshipError)
    return caught.value.reason


def test_a_good_delivery_becomes_a_typed_event() -> None:
    body = payload()
    event = verify(body, signed(body), SECRET, now=NOW)
    assert isinstance(event, WebhookEvent)
    assert event.type is WebhookEventType.RUN_SUCCEEDED
    assert event.succeeded
    assert not event.failed
    assert event.error_message is None
    assert event.delivery_id == "dlv_1"
    assert event.timestamp.timestamp() == NOW
    assert event.timestamp.tzinfo is not None
    assert event.run_id == "run_1"
    assert event.status is RunStatus.SUCCEEDED
    assert event.run.output == {"answer": 42}
    assert event.run.extra == {"new": 1}
    assert event.extra == {"attempt": 1}
    assert event.body == body
    assert "SUPERSECRET" not in repr(event)
    assert "answer" not in repr(event.extra.keys())


def test_the_top_level_is_exported() -> None:
    assert crewship_async.verify is verify
    assert crewship_async.WebhookEvent is WebhookEvent
    assert crewship_async.WebhookVerificationError is WebhookVerificationError


def test_the_signed_string_is_timestamp_dot_raw_body() -> None:
    assert signed_payload("123", b'{"a": 1}') == b'123.{"a": 1}'
    import hashlib
    import hmac

    expected = hmac.new(b"k", b'123.{"a": 1}', hashlib.sha256).hexdigest()
    assert compute_signature(b"k", "123", b'{"a": 1}') == expected


@pytest.mark.parametrize(
    "header",
    [
        "{sig}",
        "sha256={sig}",
        "v1={sig}",
        "SHA256={SIG}",
        "t=1800000000,v1={sig}",
        "v1=" + "0" * 64 + ",v1={sig}",
        "sha256=" + "f" * 64 + " sha256={sig}",
        "v0=abc; {sig}",
    ],
)
def test_signature_header_forms(header: str) -> None:
    body = payload()
    digest = compute_signature(SECRET.encode(), str(NOW), body)
    headers = signed(body)
    headers["X-Crewship-Signature"] = header.format(sig=digest, SIG=digest.upper())
    assert verify(body, headers, SECRET, now=NOW).delivery_id == "dlv_1"


def test_several_signature_headers_are_all_considered() -> None:
    body = payload()
    good = signed(body)["X-Crewship-Signature"]
    headers = CIMultiDict(signed(body))
    headers["X-Crewship-Signature"] = "sha256=" + "0" * 64
    headers.add("X-Crewship-Signature", good)
    assert verify(body, headers, SECRET, now=NOW).run_id == "run_1"


def test_rotation_accepts_any_of_several_secrets() -> None:
    body = payload()
    old = signed(body, secret="whsec_old")
    new = signed(body, secret="whsec_new")
    secrets = ["whsec_new", b"whsec_old"]
    assert verify(body, old, secrets, now=NOW).run_id == "run_1"
    assert verify(body, new, (s for s in secrets), now=NOW).run_id == "run_1"
    assert refused(body, signed(body, secret="whsec_other"), secrets) == "bad_signature"


@pytest.mark.parametrize("kind", [dict, CIMultiDict, "lower", "starlette"])
def test_headers_are_matched_case_insensitively(kind: Any) -> None:
    body = payload()
    headers: Any = signed(body)
    if kind == "lower":
        headers = {k.lower(): v for k, v in headers.items()}
    elif kind == "starlette":
        headers = Headers(headers={k.lower(): v for k, v in headers.items()})
    else:
        headers = kind(headers)
    assert verify(body, headers, SECRET, now=NOW).delivery_id == "dlv_1"


@pytest.mark.parametrize(
    "header",
    ["X-Crewship-Event", "X-Crewship-Delivery", "X-Crewship-Timestamp", "X-Crewship-Signature"],
)
def test_each_missing_header_is_named(header: str) -> None:
    body = payload()
    headers = signed(body)
    del headers[header]
    with pytest.raises(WebhookVerificationError, match=header) as caught:
        verify(body, headers, SECRET, now=NOW)
    assert caught.value.reason == "missing_header"
    headers[header] = "  "
    assert refused(body, headers) == "missing_header"


@pytest.mark.parametrize("stamp", ["abc", "-5", "1.5", "1e9", "١٢٣", "9" * 13, ""])
def test_a_timestamp_that_is_not_unix_seconds(stamp: str) -> None:
    body = payload()
    reason = refused(body, signed(body, **{"X-Crewship-Timestamp": stamp}))
    assert reason == ("missing_header" if not stamp else "bad_timestamp")


def test_timestamp_tolerance_both_ways() -> None:
    body = payload()
    headers = signed(body)
    assert verify(body, headers, SECRET, now=NOW + 300).run_id == "run_1"
    assert verify(body, headers, SECRET, now=NOW - 300).run_id == "run_1"
    with pytest.raises(WebhookVerificationError, match="301s ago") as old:
        verify(body, headers, SECRET, now=NOW + 301)
    assert old.value.reason == "timestamp_too_old"
    with pytest.raises(WebhookVerificationError, match="in the future") as future:
        verify(body, headers, SECRET, now=NOW - 301)
    assert future.value.reason == "timestamp_in_future"
    assert verify(body, headers, SECRET, now=NOW + 3000, tolerance=3600).run_id == "run_1"


def test_the_clock_is_this_machines_by_default() -> None:
    body = payload()
    fresh = delivery_headers(body, SECRET, event="run.succeeded", delivery_id="dlv_1")
    assert verify(body, fresh, SECRET).run_id == "run_1"
    assert abs(int(fresh["X-Crewship-Timestamp"]) - time.time()) < 5
    with pytest.raises(WebhookVerificationError):
        verify(body, signed(body), SECRET)  # signed in 2027


def test_a_wrong_secret_a_tampered_body_or_a_changed_timestamp_fail() -> None:
    body = payload()
    headers = signed(body)
    assert refused(body, headers, "whsec_wrong") == "bad_signature"
    assert refused(body + b" ", headers) == "bad_signature"
    assert refused(body[:-1], headers) == "bad_signature"
    moved = dict(headers, **{"X-Crewship-Timestamp": str(NOW + 1)})
    assert refused(body, moved) == "bad_signature"
    for junk in ["sha256=xyz", "not a signature", "v2=" + "a" * 64, "a" * 63]:
        with pytest.raises(WebhookVerificationError, match="holds no HMAC") as caught:
            verify(body, dict(headers, **{"X-Crewship-Signature": junk}), SECRET, now=NOW)
        assert caught.value.reason == "bad_signature"


def test_reserialised_json_does_not_verify() -> None:
    body = payload()
    again = json.dumps(json.loads(body), indent=2).encode()
    assert refused(again, signed(body)) == "bad_signature"


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{}", b'{"a": NaN}']
)
def test_a_body_that_is_not_a_json_object(body: bytes) -> None:
    assert refused(body, signed(body)) == "not_json"


@pytest.mark.parametrize(
    "document",
    [
        {"event": "run.succeeded", "run": {"status": "succeeded"}},
        {"event": "run.succeeded", "run": {"id": 5, "status": "succeeded"}},
        {"event": "run.failed", "run": {"id": "run_1", "status": "failed"}},
        {"delivery_id": "dlv_other", "run": {"id": "run_1", "status": "succeeded"}},
        {"event": "run.succeeded"},
    ],
)
def test_a_payload_that_is_no_run_or_contradicts_the_headers(document: Any) -> None:
    body = json.dumps(document).encode()
    assert refused(body, signed(body)) == "bad_payload"


def test_payload_shapes_run_under_data_or_at_the_top() -> None:
    for document in (
        {"data": {"run_id": "run_9", "error_message": "boom"}, "source": "x"},
        {"run_id": "run_9", "error_message": "boom", "event": "run.failed"},
    ):
        body = json.dumps(document).encode()
        headers = signed(body, **{"X-Crewship-Event": "run.failed"})
        event = verify(body, headers, SECRET, now=NOW)
        assert event.run_id == "run_9"
        assert event.status is RunStatus.FAILED
        assert event.failed
        assert event.error_message == "boom"
    assert event.extra == {}


def test_an_unknown_event_type_stays_a_string() -> None:
    body = json.dumps({"run": {"id": "run_1", "status": "canceled"}}).encode()
    event = verify(body, signed(body, **{"X-Crewship-Event": "run.canceled"}), SECRET, now=NOW)
    assert event.type == "run.canceled"
    assert not isinstance(event.type, WebhookEventType)
    assert str(WebhookEventType.RUN_FAILED) == "run.failed"


@pytest.mark.parametrize(
    ("secret", "error"),
    [("", ValueError), ([], ValueError), ([b""], ValueError), (5, TypeError), ([None], TypeError)],
)
def test_bad_secret_arguments(secret: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify(b"{}", {}, secret)


@pytest.mark.parametrize("tolerance", [-1, True, "300", float("nan")])
def test_bad_tolerance(tolerance: Any) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        verify(b"{}", {}, SECRET, tolerance=tolerance)


def test_the_body_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="raw request bytes"):
        verify("{}", {}, SECRET)  # type: ignore[arg-type]
    body = payload()
    assert verify(bytearray(body), signed(body), SECRET, now=NOW).body == body


@given(st.lists(st.text(max_size=200), max_size=4))
def test_parse_signatures_takes_any_text(values: list[str]) -> None:
    for candidate in parse_signatures(values):
        assert len(candidate) == 64
        assert set(candidate) <= set("0123456789abcdef")


@settings(max_examples=200)
@given(
    body=st.binary(max_size=300),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "X-Crewship-Event",
                "X-Crewship-Delivery",
                "X-Crewship-Timestamp",
                "X-Crewship-Signature",
                "Other",
            ]
        ),
        st.text(max_size=80),
    ),
)
def test_verify_raises_only_its_own_error(body: bytes, headers: dict[str, str]) -> None:
    reason = ""
    try:
        verify(body, headers, SECRET, now=NOW)
    except WebhookVerificationError as exc:
        reason = f"{exc} {exc.reason}"
    assert SECRET not in reason


@given(st.binary(max_size=500))
def test_any_signed_body_verifies_or_is_refused_for_its_content(body: bytes) -> None:
    try:
        event = verify(body, signed(body), SECRET, now=NOW)
    except WebhookVerificationError as exc:
        reason = exc.reason
    else:
        reason = "verified"
        assert event.body == body
    assert reason in ("not_json", "bad_payload", "verified")


# -- the delivery store -----------------------------------------------------------------


async def test_memory_store_claims_completes_and_releases() -> None:
    store = MemoryDeliveryStore()
    assert await store.claim("a") == "claimed"
    assert await store.claim("a") == "in_progress"
    await store.release("a")
    assert await store.claim("a") == "claimed"
    await store.complete("a")
    assert await store.claim("a") == "done"
    assert len(store) == 1
    assert repr(store) == "<MemoryDeliveryStore 1/10000>"


async def test_memory_store_is_bounded_and_forgets_after_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryDeliveryStore(max_entries=3, ttl=10)
    for name in "abcde":
        assert await store.claim(name) == "claimed"
        await store.complete(name)
    assert len(store) == 3
    assert await store.claim("a") == "claimed"  # the oldest were forgotten
    assert await store.claim("e") == "done"
    later = time.monotonic() + 11
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert await store.claim("e") == "claimed"
    assert len(store) == 1


@pytest.mark.parametrize(
    "options", [{"max_entries": 0}, {"max_entries": True}, {"ttl": 0}, {"ttl": "1"}]
)
def test_memory_store_refuses_bad_bounds(options: Any) -> None:
    with pytest.raises(ValueError, match=r"max_entries|ttl"):
        MemoryDeliveryStore(**options)


# -- the receiver -----------------------------------------------------------------------


async def test_receiver_answers_and_deduplicates() -> None:
    seen: list[WebhookEvent] = []

    async def on_event(event: WebhookEvent) -> None:
        seen.append(event)

    receiver = WebhookReceiver(SECRET, on_event, tolerance=10**9)
    assert "SUPERSECRET" not in repr(receiver)
    body = payload()
    first = await receiver.handle(body, signed(body))
    assert (first.status, first.text) == (200, "ok")
    assert first.event is seen[0]
    again = await receiver.handle(body, signed(body))
    assert again.status == 200
    assert again.text.startswith("duplicate")
    assert len(seen) == 1
    bad = await receiver.handle(body, signed(body, secret="nope"))
    assert bad.status == 400
    assert bad.text.startswith("bad_signature: ")
    assert bad.event is None
    big = await WebhookReceiver(SECRET, on_event, max_body_size=10).handle(body, signed(body))
    assert big.status == 413
    assert big.text.startswith("too_large")


async def test_a_failing_handler_gets_the_delivery_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def on_event(event: WebhookEvent) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError(f"database down while handling with {SECRET}")

    receiver = WebhookReceiver(SECRET, on_event, tolerance=10**9)
    body = payload()
    with caplog.at_level(logging.DEBUG, logger="crewship_async"):
        failed = await receiver.handle(body, signed(body))
    assert failed.status == 500
    assert "database" not in failed.text
    assert "handler failed" in caplog.text
    assert SECRET not in caplog.text
    assert "SUPERSECRET" not in caplog.text
    retried = await receiver.handle(body, signed(body))
    assert (retried.status, calls) == (200, 2)


async def test_a_delivery_in_progress_is_answered_409() -> None:
    entered, leave = asyncio.Event(), asyncio.Event()

    async def on_event(event: WebhookEvent) -> None:
        entered.set()
        await leave.wait()

    receiver = WebhookReceiver(SECRET, on_event, tolerance=10**9)
    body = payload()
    first = asyncio.create_task(receiver.handle(body, signed(body)))
    await entered.wait()
    second = await receiver.handle(body, signed(body))
    assert second.status == 409
    leave.set()
    assert (await first).status == 200


async def test_a_cancelled_handler_releases_its_claim() -> None:
    entered = asyncio.Event()

    async def on_event(event: WebhookEvent) -> None:
        entered.set()
        await asyncio.Event().wait()

    store = MemoryDeliveryStore()
    receiver = WebhookReceiver(SECRET, on_event, store=store, tolerance=10**9)
    body = payload()
    task = asyncio.create_task(receiver.handle(body, signed(body)))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.claim("dlv_1") == "claimed"


def test_receiver_refuses_bad_arguments() -> None:
    async def on_event(event: WebhookEvent) -> None:
        return None

    with pytest.raises(TypeError, match="on_event"):
        WebhookReceiver(SECRET, "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_body_size"):
        WebhookReceiver(SECRET, on_event, max_body_size=0)
    with pytest.raises(TypeError, match="store"):
        WebhookReceiver(SECRET, on_event, store=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance"):
        WebhookReceiver(SECRET, on_event, tolerance=-1)
