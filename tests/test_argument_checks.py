"""Every seconds or count argument of the public API is refused alike.

One table lists each entry point that takes such an argument, with its kind; every bad
value is tried on every one, so that the checks cannot drift apart again: a wrong type
(``bool`` included) is a ``TypeError``, a value out of range a ``ValueError``, and nothing
is sent.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterator
from typing import Any, Callable

import pytest
from aioresponses import aioresponses

from crewship_async import AsyncCrewship, RetryPolicy
from crewship_async._checks import (
    ArgumentTypeError,
    check_count,
    check_non_negative_seconds,
    check_optional_count,
    check_optional_seconds,
    check_seconds,
)
from crewship_async._pagination import AsyncPager

Call = Callable[[AsyncCrewship, Any], Any]


async def _no_page(offset: int, size: int) -> list[int]:
    return []


def _stop_feeding(client: AsyncCrewship, value: Any) -> None:
    client.runs.create_many([]).stop_feeding(grace=value)


async def _drain(client: AsyncCrewship, value: Any) -> int:
    return await client.runs.create_many([]).drain(grace=value)


# (entry point, call with the value, kind): "seconds" is finite > 0, "seconds>=0" finite
# >= 0, "count" an int >= 1 and "count>=0" an int >= 0.
ENTRY_POINTS: list[tuple[str, Call, str]] = [
    ("runs.wait(timeout)", lambda c, v: c.runs.wait("run_1", timeout=v), "seconds"),
    ("runs.wait(poll_interval)", lambda c, v: c.runs.wait("run_1", poll_interval=v), "seconds"),
    ("runs.list(limit)", lambda c, v: c.runs.list(limit=v), "count"),
    ("runs.list(max_items)", lambda c, v: c.runs.list(max_items=v), "count>=0"),
    ("runs.create_many(concurrency)", lambda c, v: c.runs.create_many([], concurrency=v), "count"),
    ("runs.create_many(max_pending)", lambda c, v: c.runs.create_many([], max_pending=v), "count"),
    ("runs.create_many(timeout)", lambda c, v: c.runs.create_many([], timeout=v), "seconds"),
    ("runs.create_all(concurrency)", lambda c, v: c.runs.create_all([], concurrency=v), "count"),
    ("FanOut.stop_feeding(grace)", _stop_feeding, "seconds>=0"),
    ("FanOut.drain(grace)", _drain, "seconds>=0"),
    (
        "threads.runs.create(timeout)",
        lambda c, v: c.threads.runs.create("thr_1", timeout=v),
        "seconds",
    ),
    (
        "threads.runs.create(busy_timeout)",
        lambda c, v: c.threads.runs.create("thr_1", busy_timeout=v),
        "seconds",
    ),
    (
        "threads.runs.create_and_wait(timeout)",
        lambda c, v: c.threads.runs.create_and_wait("thr_1", timeout=v),
        "seconds",
    ),
    (
        "threads.runs.create_and_wait(poll_interval)",
        lambda c, v: c.threads.runs.create_and_wait("thr_1", poll_interval=v),
        "seconds",
    ),
    ("threads.list(limit)", lambda c, v: c.threads.list("dep_1", limit=v), "count"),
    ("threads.list(max_items)", lambda c, v: c.threads.list("dep_1", max_items=v), "count>=0"),
    ("threads.history(limit)", lambda c, v: c.threads.history("thr_1", limit=v), "count"),
    ("tables.list(limit)", lambda c, v: c.tables.list(limit=v), "count"),
    ("tables.rows.list(limit)", lambda c, v: c.tables.rows.list("tbl_1", limit=v), "count"),
    (
        "tables.rows.insert(concurrency)",
        lambda c, v: c.tables.rows.insert("tbl_1", [{"a": 1}], concurrency=v),
        "count",
    ),
    (
        "tables.rows.insert(timeout)",
        lambda c, v: c.tables.rows.insert("tbl_1", [{"a": 1}], timeout=v),
        "seconds",
    ),
    ("AsyncPager(page_size)", lambda c, v: AsyncPager(_no_page, page_size=v), "count"),
    ("RetryPolicy(max_retries)", lambda c, v: RetryPolicy(max_retries=v), "count>=0"),
    ("RetryPolicy(initial_delay)", lambda c, v: RetryPolicy(initial_delay=v), "seconds>=0"),
    ("RetryPolicy(max_delay)", lambda c, v: RetryPolicy(max_delay=v), "seconds>=0"),
    ("RetryPolicy(max_retry_after)", lambda c, v: RetryPolicy(max_retry_after=v), "seconds>=0"),
]

# (bad value, error for a seconds argument, error for a count argument)
BAD_VALUES: list[tuple[object, type[Exception], type[Exception]]] = [
    (True, TypeError, TypeError),
    (False, TypeError, TypeError),
    (-1, ValueError, ValueError),
    (math.nan, ValueError, TypeError),
    (math.inf, ValueError, TypeError),
    (-math.inf, ValueError, TypeError),
    ("1", TypeError, TypeError),
    ([1], TypeError, TypeError),
]


@pytest.fixture
async def client() -> AsyncIterator[AsyncCrewship]:
    async with AsyncCrewship(api_key="sk_test_checks", base_url="https://api.test") as client:
        yield client


def _argument(entry_point: str) -> str:
    """The name the error message gives: the argument's, except that the pager's page size
    is named as the listings' ``limit`` it comes from."""
    name = entry_point.rsplit("(", 1)[1].rstrip(")")
    return "limit" if name == "page_size" else name


async def _invoke(call: Call, client: AsyncCrewship, value: object) -> None:
    result = call(client, value)
    if inspect.isawaitable(result):
        await result


@pytest.mark.parametrize(("value", "seconds_error", "count_error"), BAD_VALUES)
@pytest.mark.parametrize(("entry_point", "call", "kind"), ENTRY_POINTS, ids=lambda v: str(v))
async def test_every_entry_point_refuses_the_same_bad_values(
    client: AsyncCrewship,
    entry_point: str,
    call: Call,
    kind: str,
    value: object,
    seconds_error: type[Exception],
    count_error: type[Exception],
) -> None:
    error = seconds_error if kind.startswith("seconds") else count_error
    with aioresponses() as mocked:
        with pytest.raises(error, match=_argument(entry_point)) as info:
            await _invoke(call, client, value)
        assert not mocked.requests
    if error is TypeError:
        # Also a ValueError, as several of these checks raised before they were unified.
        assert isinstance(info.value, ArgumentTypeError)


@pytest.mark.parametrize(("entry_point", "call", "kind"), ENTRY_POINTS, ids=lambda v: str(v))
async def test_zero_is_refused_only_where_it_means_nothing(
    client: AsyncCrewship, entry_point: str, call: Call, kind: str
) -> None:
    if kind.endswith(">=0"):
        await _invoke(call, client, 0)
        return
    with aioresponses() as mocked:
        with pytest.raises(ValueError, match=_argument(entry_point)):
            await _invoke(call, client, 0)
        assert not mocked.requests


def test_the_checks_word_their_errors_once() -> None:
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds or None, got bool$"):
        check_optional_seconds("timeout", True)
    with pytest.raises(TypeError, match=r"^poll_interval must be a number of seconds, got str$"):
        check_seconds("poll_interval", "2")
    with pytest.raises(
        ValueError, match=r"^grace must be a finite number of seconds >= 0, got -1$"
    ):
        check_non_negative_seconds("grace", -1)
    with pytest.raises(ValueError, match=r"^limit must be an int >= 1, got 0$"):
        check_count("limit", 0)
    with pytest.raises(TypeError, match=r"^max_items must be an int, got float$"):
        check_optional_count("max_items", 1.0, minimum=0)


def test_good_values_come_back_as_given_or_as_floats() -> None:
    assert check_seconds("timeout", 2) == 2.0
    assert isinstance(check_seconds("timeout", 2), float)
    assert check_optional_seconds("timeout", None) is None
    assert check_non_negative_seconds("grace", 0) == 0.0
    assert check_count("limit", 5) == 5
    assert check_optional_count("max_items", None) is None
    assert check_optional_count("max_items", 0, minimum=0) == 0
