"""RetryPolicy (what is retried, backoff with full jitter) and Retry-After parsing."""

from __future__ import annotations

import email.utils
import math
import random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from multidict import CIMultiDict

from crewship_async import RetryPolicy
from crewship_async._retry import parse_retry_after

NOW = 1_700_000_000.0


# --- the policy -------------------------------------------------------------------------


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.initial_delay, policy.max_delay) == (2, 0.5, 8.0)
    assert policy.max_retry_after == 60.0


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"initial_delay": -0.1},
        {"max_delay": float("inf")},
        {"max_retry_after": float("nan")},
        {"initial_delay": "1"},
    ],
)
def test_invalid_policy(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        RetryPolicy(**options)  # type: ignore[arg-type]


def test_policy_is_frozen() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]


def test_backoff_is_full_jitter_within_bounds() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0)
    rng = random.Random(1234)
    for retry_number, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        delays = [policy.backoff(retry_number, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: the whole range is used, not just the top of it.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    policy = RetryPolicy()
    first = [policy.backoff(n, random.Random(7)) for n in range(5)]
    second = [policy.backoff(n, random.Random(7)) for n in range(5)]
    assert first == second


def test_backoff_of_huge_retry_numbers_stays_capped() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=3.0)
    assert 0 <= policy.backoff(10_000, random.Random(0)) <= 3.0
    assert RetryPolicy(initial_delay=0, max_delay=5).backoff(3) == 0.0
    assert 0 <= policy.backoff(2) <= 3.0


@given(
    retry_number=st.integers(min_value=0, max_value=10_000),
    initial=st.floats(min_value=0, max_value=100),
    cap=st.floats(min_value=0, max_value=100),
    seed=st.integers(),
)
def test_backoff_bounds_property(retry_number: int, initial: float, cap: float, seed: int) -> None:
    policy = RetryPolicy(initial_delay=initial, max_delay=cap)
    delay = policy.backoff(retry_number, random.Random(seed))
    assert 0.0 <= delay <= min(cap, initial * 2 ** min(retry_number, 62))


def test_delay_for_prefers_retry_after_within_the_cap() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=2.0, max_retry_after=10.0)
    rng = random.Random(3)
    assert policy.delay_for(0, 7.0, rng) == 7.0
    assert policy.delay_for(0, 10.0, rng) == 10.0
    assert policy.delay_for(0, 0.0, rng) == 0.0
    assert policy.delay_for(0, 10.5, rng) is None
    backoff = policy.delay_for(1, None, rng)
    assert backoff is not None
    assert 0 <= backoff <= 2.0


@pytest.mark.parametrize(
    ("method", "status", "retried"),
    [
        ("GET", 429, True),
        ("POST", 429, True),
        ("PATCH", 429, True),
        ("DELETE", 429, True),
        ("GET", 503, True),
        ("POST", 503, True),
        ("PATCH", 503, True),
        ("GET", 500, True),
        ("GET", 502, True),
        ("GET", 504, True),
        ("DELETE", 500, True),
        ("PUT", 502, True),
        ("POST", 500, False),
        ("POST", 502, False),
        ("POST", 504, False),
        ("PATCH", 500, False),
        ("GET", 400, False),
        ("GET", 404, False),
        ("GET", 409, False),
        ("POST", 409, False),
        ("DELETE", 409, False),
        ("GET", 401, False),
        ("GET", 301, False),
    ],
)
def test_status_matrix(method: str, status: int, retried: bool) -> None:
    assert RetryPolicy().retries_status(method, status) is retried


@pytest.mark.parametrize(
    ("method", "sent", "retried"),
    [
        ("GET", False, True),
        ("POST", False, True),
        ("PATCH", False, True),
        ("DELETE", False, True),
        ("GET", True, True),
        ("DELETE", True, True),
        ("POST", True, False),
        ("PATCH", True, False),
    ],
)
def test_connection_error_matrix(method: str, sent: bool, retried: bool) -> None:
    assert RetryPolicy().retries_connection_error(method, request_sent=sent) is retried


# --- Retry-After ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 12 "}, 12.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "1e999"}, None),
        ({"retry-after": "9" * 400}, None),
        ({"retry-after": "\u00b2"}, None),
        ({"retry-after": "\u0661"}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "bogus", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
        ({"Retry-After": "4"}, None),  # a plain dict is case-sensitive ...
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_is_case_insensitive_on_real_headers() -> None:
    assert parse_retry_after(CIMultiDict({"Retry-After": "4"})) == 4.0  # ... a response's is not


def test_parse_retry_after_http_date() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == pytest.approx(30.0)
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=NOW) == 0.0
    # RFC 850 and asctime forms, and "-0000" (a date whose zone is unknown: taken as UTC).
    when = email.utils.formatdate(NOW + 60, usegmt=True)
    assert parse_retry_after({"retry-after": when.replace("GMT", "-0000")}, now=NOW) == (
        pytest.approx(60.0)
    )
    asctime = "Tue Nov 14 22:14:20 2023"  # NOW is 22:13:20 that day, UTC
    assert parse_retry_after({"retry-after": asctime}, now=NOW) == pytest.approx(60.0)
    assert parse_retry_after({"retry-after": "Tue, 99 Foo 2023 99:99:99 GMT"}, now=NOW) is None


def test_parse_retry_after_date_uses_the_clock() -> None:
    date = email.utils.formatdate(usegmt=True)
    value = parse_retry_after({"retry-after": date})
    assert value is not None
    assert 0.0 <= value <= 1.0


@given(st.text(max_size=60), st.text(max_size=20))
@example("\u00b2", "")
@example("1" * 5000, "")
@example("Mon, 01 Jan 0001 00:00:00 -0000", "")
@example("Fri, 31 Dec 9999 23:59:59 -1200", "")
@example("", "1e400")
def test_parse_retry_after_never_raises(value: str, millis: str) -> None:
    for headers in ({"retry-after": value}, {"retry-after-ms": millis, "retry-after": value}):
        result = parse_retry_after(headers, now=NOW)
        assert result is None or (math.isfinite(result) and result >= 0)


@given(st.integers(min_value=0, max_value=10**12))
def test_parse_retry_after_digits_round_trip(seconds: int) -> None:
    assert parse_retry_after({"retry-after": str(seconds)}) == float(seconds)


@given(st.integers(min_value=0, max_value=10**7))
def test_parse_retry_after_dates_round_trip(offset: int) -> None:
    date = email.utils.formatdate(NOW + offset, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == pytest.approx(offset)
