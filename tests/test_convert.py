"""The converter: aware datetimes, extra fields, open enums, errors naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Union

import attrs
import pytest
from conftest import RUN
from hypothesis import given
from hypothesis import strategies as st

from crewship_async import CancelResult, ResponseError, Run, RunCreated, RunStatus
from crewship_async._convert import converter, parse_datetime, structure, structure_list

UTC = timezone.utc


def make_run(**changes: Any) -> Run:
    return structure({**RUN, **changes}, Run, method="GET", path="/v1/runs/run_1")


# --- datetimes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15T10:35:00Z", datetime(2024, 1, 15, 10, 35, tzinfo=UTC)),
        ("2024-01-15T10:35:00z", datetime(2024, 1, 15, 10, 35, tzinfo=UTC)),
        ("2024-01-15T10:35:00+00:00", datetime(2024, 1, 15, 10, 35, tzinfo=UTC)),
        (
            "2024-01-15T12:35:00.123456+02:00",
            datetime(2024, 1, 15, 10, 35, 0, 123456, tzinfo=UTC),
        ),
        ("2024-01-15T10:35:00", datetime(2024, 1, 15, 10, 35, tzinfo=UTC)),
        ("2024-01-15", datetime(2024, 1, 15, tzinfo=UTC)),
    ],
)
def test_parse_datetime_is_aware(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed.tzinfo is not None
    assert parsed == expected


def test_parse_datetime_accepts_datetimes() -> None:
    naive = datetime(2024, 1, 1, 12)
    assert parse_datetime(naive) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    aware = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    assert parse_datetime(aware) is aware


@pytest.mark.parametrize(("value", "error"), [(1705314900, TypeError), ("yesterday", ValueError)])
def test_parse_datetime_refuses(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_datetime(value)


@given(st.datetimes(timezones=st.timezones()))
def test_parse_datetime_round_trips_isoformat(moment: datetime) -> None:
    parsed = parse_datetime(moment.isoformat())
    # Same wall time and offset (comparing across zones is undefined for folded times).
    assert parsed.utcoffset() == moment.utcoffset()
    assert parsed.replace(tzinfo=None) == moment.replace(tzinfo=None)


@given(st.datetimes())
def test_parse_datetime_takes_naive_as_utc(moment: datetime) -> None:
    assert parse_datetime(moment.isoformat()) == moment.replace(tzinfo=UTC)


@given(st.text(max_size=40))
def test_parse_datetime_fails_only_with_value_error(text: str) -> None:
    try:
        parsed = parse_datetime(text)
    except ValueError:
        return
    assert parsed.tzinfo is not None


# --- models -----------------------------------------------------------------------------


def test_run_structured() -> None:
    run = make_run()
    assert run.id == "run_1"
    assert run.status is RunStatus.RUNNING
    assert run.deployment_id == "dep_1"
    assert run.input == {"topic": "AI"}
    assert run.created_at == datetime(2024, 1, 15, 10, 35, tzinfo=UTC)
    assert run.started_at is not None
    assert run.started_at.tzinfo is not None
    assert run.completed_at is None
    assert run.extra == {}
    assert not run.is_terminal


def test_unknown_fields_kept_in_extra() -> None:
    run = make_run(duration_ms=1200, project={"name": "p"}, extra="a field named extra")
    assert run.extra == {
        "duration_ms": 1200,
        "project": {"name": "p"},
        "extra": "a field named extra",
    }
    assert "duration_ms" not in repr(run)


def test_unknown_status_stays_a_string() -> None:
    run = make_run(status="paused")
    assert run.status == "paused"
    assert type(run.status) is str
    assert not run.is_terminal


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        ("pending", False),
        ("running", False),
        ("succeeded", True),
        ("failed", True),
        ("canceled", True),
        ("cancelled", False),
    ],
)
def test_run_is_terminal(status: str, terminal: bool) -> None:
    assert make_run(status=status).is_terminal is terminal
    assert Run(id="r", status=status).is_terminal is terminal


def test_output_may_be_any_json() -> None:
    assert make_run(status="succeeded", output=[1, "two"]).output == [1, "two"]
    assert make_run(status="succeeded", output="text").output == "text"


def test_models_are_frozen_with_slots() -> None:
    run = make_run()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        run.status = "x"  # type: ignore[misc]
    assert not hasattr(run, "__dict__")


def test_run_created_and_cancel_result() -> None:
    created = structure(
        {"run_id": "run_9", "status": "pending", "version_id": "ver_1", "version_number": 3},
        RunCreated,
        method="POST",
        path="/v1/runs",
    )
    assert created.run_id == "run_9"
    assert created.status is RunStatus.PENDING
    assert created.version_number == 3
    assert structure({"run_id": "r"}, RunCreated, method="POST", path="/").status == "running"
    cancel = structure({"success": True}, CancelResult, method="POST", path="/")
    assert cancel.success is True
    assert cancel.status is RunStatus.CANCELED


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"id": 5}, "id", "expected a string, got int"),
        ({"status": None}, "status", "expected a string, got NoneType"),
        ({"created_at": "not a date"}, "created_at", "Invalid isoformat"),
        ({"created_at": 1705314900}, "created_at", "expected an ISO-8601 string"),
        ({"input": ["a"]}, "input", "expected a JSON object, got list"),
        ({"error_message": {"x": 1}}, "error_message", "expected a string, got dict"),
    ],
)
def test_wrong_shape_names_the_field(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ResponseError) as info:
        make_run(**changes)
    error = info.value
    assert error.field == field
    assert reason in str(error)
    assert str(error).startswith(f"GET /v1/runs/run_1: the response field '{field}' does not")
    assert (error.method, error.path) == ("GET", "/v1/runs/run_1")


def test_missing_required_field_is_named() -> None:
    data = {k: v for k, v in RUN.items() if k != "status"}
    with pytest.raises(ResponseError, match=r"'status'.*required field is missing") as info:
        structure(data, Run, method="GET", path="/v1/runs/run_1")
    assert info.value.field == "status"


def test_not_an_object() -> None:
    with pytest.raises(ResponseError, match="expected a JSON object, got list") as info:
        structure([RUN], Run, method="GET", path="/v1/runs/run_1")
    assert info.value.field is None


@pytest.mark.parametrize(
    ("value", "error"),
    [(True, "expected an integer, got bool"), ("3", "expected an integer, got str")],
)
def test_ints_and_bools_are_strict(value: Any, error: str) -> None:
    with pytest.raises(ResponseError, match=error):
        structure({"run_id": "r", "version_number": value}, RunCreated, method="P", path="/")
    with pytest.raises(ResponseError, match="expected a boolean, got str"):
        structure({"success": "yes"}, CancelResult, method="P", path="/")


def test_structure_list() -> None:
    runs = structure_list({"runs": [RUN, RUN]}, "runs", Run, method="GET", path="/v1/runs")
    assert [r.id for r in runs] == ["run_1", "run_1"]
    bare = structure_list([RUN], "runs", Run, method="GET", path="/v1/runs")
    assert len(bare) == 1
    with pytest.raises(ResponseError, match="expected a list under 'runs', got dict") as info:
        structure_list({"items": []}, "runs", Run, method="GET", path="/v1/runs")
    assert info.value.field == "runs"
    with pytest.raises(ResponseError, match=r"runs\[1\]\.status does not match Run") as info:
        structure_list({"runs": [RUN, {**RUN, "status": 3}]}, "runs", Run, method="G", path="/")
    assert info.value.field == "runs[1].status"
    with pytest.raises(ResponseError) as info:
        structure_list({"runs": [RUN, "x"]}, "runs", Run, method="G", path="/")
    assert info.value.field == "runs[1]"


# --- hooks on other shapes (renamed keys, nested models, open enums) ---------------------


@attrs.frozen(slots=True)
class Inner:
    name: str
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class Outer:
    meta: Mapping[str, Any] = attrs.field(metadata={"key": "_meta"})
    inner: Optional[Inner] = None
    status: Union[RunStatus, str] = "pending"
    tags: Optional[dict[str, Any]] = None


def test_renamed_key_nested_model_and_extra() -> None:
    outer = structure(
        {"_meta": {"a": 1}, "inner": {"name": "n", "more": True}, "other": 2},
        Outer,
        method="GET",
        path="/x",
    )
    assert outer.meta == {"a": 1}
    assert outer.inner == Inner(name="n", extra={"more": True})
    assert outer.status == "pending"
    assert not hasattr(outer, "extra")


def test_nested_error_names_the_path() -> None:
    with pytest.raises(ResponseError) as info:
        structure({"_meta": {}, "inner": {"name": 1}}, Outer, method="GET", path="/x")
    assert info.value.field == "inner.name"
    with pytest.raises(ResponseError) as info:
        structure({"_meta": {}, "status": 5}, Outer, method="GET", path="/x")
    assert info.value.field == "status"
    with pytest.raises(ResponseError) as info:
        structure({}, Outer, method="GET", path="/x")
    assert info.value.field == "_meta"


def test_mapping_hooks_and_any() -> None:
    assert converter.structure({"a": 1}, dict) == {"a": 1}
    assert converter.structure({"a": 1}, dict[str, int]) == {"a": 1}
    assert converter.structure([1], Any) == [1]
    assert converter.structure(None, object) is None
