"""The converter: aware datetimes, extra fields, open enums, errors naming the field."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Optional, Union

import attrs
import pytest
from conftest import RUN
from hypothesis import given
from hypothesis import strategies as st

from crewship_async import (
    CancelResult,
    ResponseError,
    Run,
    RunCreated,
    RunStatus,
    Thread,
    ThreadStatus,
)
from crewship_async._convert import (
    _optional_of,
    converter,
    parse_datetime,
    structure,
    structure_list,
)

UTC = UTC


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


# --- generated structure functions --------------------------------------------------------


def test_structured_model_is_the_constructed_one() -> None:
    run = make_run(duration_ms=5)
    built = Run(
        id="run_1",
        status=RunStatus.RUNNING,
        deployment_id="dep_1",
        input={"topic": "AI"},
        created_at=datetime(2024, 1, 15, 10, 35, tzinfo=UTC),
        started_at=datetime(2024, 1, 15, 10, 35, 2, tzinfo=UTC),
        extra={"duration_ms": 5},
    )
    assert run == built
    assert repr(run) == repr(built)
    assert attrs.evolve(run, status="failed").status == "failed"
    first, second = (structure({"run_id": "r"}, RunCreated, method="P", path="/") for _ in "12")
    assert first.extra == {}
    assert first.extra is not second.extra


def test_enum_members_and_str_subclasses_are_accepted() -> None:
    assert make_run(status=RunStatus.FAILED).status is RunStatus.FAILED
    assert make_run(deployment_id=RunStatus.FAILED).deployment_id == "failed"


THREAD = {"thread_id": "thr_1", "status": "busy"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"thread_id": None}, "expected a string, got NoneType"),
        ({"deployment_id": 5}, "expected a string, got int"),
        ({"metadata": [1]}, "expected a JSON object, got list"),
        ({"values": "x"}, "expected a JSON object, got str"),
        ({"created_at": 3}, "expected an ISO-8601 string, got int"),
        ({"updated_at": "nope"}, "Invalid isoformat"),
    ],
)
def test_thread_fields_are_checked(changes: dict[str, Any], reason: str) -> None:
    (field,) = changes
    with pytest.raises(ResponseError, match=reason) as info:
        structure({**THREAD, **changes}, Thread, method="GET", path="/t")
    assert info.value.field == field
    with pytest.raises(ResponseError, match=reason) as info:
        structure_list([THREAD, {**THREAD, **changes}], "threads", Thread, method="G", path="/")
    assert info.value.field == f"threads[1].{field}"


def test_thread_fields_may_be_null_or_absent() -> None:
    nulls = dict.fromkeys(("deployment_id", "metadata", "values", "created_at", "updated_at"))
    for data in (THREAD, {**THREAD, **nulls}):
        thread = structure(data, Thread, method="GET", path="/t")
        assert thread == Thread(thread_id="thr_1", status=ThreadStatus.BUSY)
        assert thread.is_busy


_ISO_TEXTS = st.one_of(
    st.text(max_size=30),
    st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat),
    st.datetimes(timezones=st.just(UTC)).map(lambda m: m.isoformat().replace("+00:00", "Z")),
    st.datetimes(timezones=st.just(UTC)).map(lambda m: m.isoformat().replace("+00:00", "z")),
    st.dates().map(lambda d: f"{d.isoformat()}Z"),
)


@given(_ISO_TEXTS)
def test_model_datetimes_are_parse_datetime(text: str) -> None:
    data = {**THREAD, "created_at": text}
    try:
        expected = parse_datetime(text)
    except ValueError:
        with pytest.raises(ResponseError) as info:
            structure(data, Thread, method="GET", path="/t")
        assert info.value.field == "created_at"
        return
    moment = structure(data, Thread, method="GET", path="/t").created_at
    assert moment is not None
    assert moment.utcoffset() == expected.utcoffset()
    assert moment.replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_model_datetimes_from_datetime_objects() -> None:
    naive = datetime(2024, 1, 1, 12)
    aware = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    data = {**THREAD, "created_at": naive, "updated_at": aware}
    thread = structure(data, Thread, method="GET", path="/t")
    assert thread.created_at == naive.replace(tzinfo=UTC)
    assert thread.updated_at is aware


def test_standalone_hooks() -> None:
    assert converter.structure("s", str) == "s"
    assert converter.structure(3, int) == 3
    assert converter.structure(False, bool) is False
    assert converter.structure(None, Optional[int]) is None
    assert converter.structure(4, Optional[int]) == 4
    assert converter.structure("idle", Union[ThreadStatus, str]) is ThreadStatus.IDLE
    for value, tp in [(1, str), (True, int), (1, bool), ("x", Optional[int])]:
        with pytest.raises(TypeError, match="expected"):
            converter.structure(value, tp)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="X | None needs Python 3.10")
def test_pep604_optionals() -> None:
    tp: Any = eval("int | None")  # an annotation string on 3.9
    assert converter.structure(None, tp) is None
    assert converter.structure(2, tp) == 2


@pytest.mark.parametrize(
    ("tp", "inner"),
    [
        (Optional[int], int),
        (Union[None, str], str),
        (Union[int, str], None),
        (Union[int, str, None], None),
        (int, None),
    ],
)
def test_optional_of(tp: Any, inner: Any) -> None:
    assert _optional_of(tp) is inner


def _upper(value: str) -> str:
    return value.upper()


@attrs.frozen(slots=True)
class Plain:
    name: str
    count: int = 0
    tags: list[str] = attrs.field(factory=list)
    label: Optional[Any] = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define(slots=True)
class Mutable:
    name: str
    count: int = 0
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(slots=False)
class NoSlots:
    name: str
    count: int = 0
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(slots=True, cache_hash=True)
class Hashed:
    name: str
    count: int = 0


@attrs.frozen(slots=True)
class Checked:
    name: str = attrs.field(converter=_upper)
    count: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    note: str = attrs.field(default="-", init=False)
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class PostInit:
    name: str
    count: int = 0
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must be >= 0")


@attrs.frozen(slots=True, init=False)
class OwnInit:
    name: str
    count: int = 0

    def __init__(self, name: str, count: int = 0) -> None:
        self.__attrs_init__(name.strip(), count)


@attrs.frozen(slots=True)
class Derived:
    name: str
    label: str = attrs.field(default=attrs.Factory(lambda self: self.name.title(), takes_self=True))


Made = attrs.make_class(
    "Made",
    {
        "name": attrs.field(type=str),
        "extra": attrs.field(type=Mapping[str, Any], factory=dict),
    },
    frozen=True,
    slots=True,
)


@pytest.mark.parametrize("cls", [Plain, Mutable, NoSlots, Hashed, Checked, PostInit, Made])
def test_models_built_with_or_without_init_agree(cls: Any) -> None:
    fields = attrs.fields_dict(cls)
    data = {"name": "n", "count": 2} if "count" in fields else {"name": "n"}
    model = structure(data, cls, method="G", path="/")
    assert model.name == ("N" if cls is Checked else "n")
    assert getattr(model, "count", 2) == 2
    if "extra" in fields:
        assert model.extra == {}
        unknown = {"zz": 1, "extra": 2}
        model = structure({"name": "n", **unknown}, cls, method="G", path="/")
        assert model.extra == unknown
        assert getattr(model, "count", 0) == 0
    with pytest.raises(ResponseError, match=r"'name'.*expected a string, got int"):
        structure({"name": 1}, cls, method="G", path="/")


def test_model_defaults_and_hooks_run() -> None:
    plain = structure({"name": "n", "tags": ["a"], "label": [1]}, Plain, method="G", path="/")
    assert plain == Plain("n", tags=["a"], label=[1])
    assert structure({"name": "n"}, Plain, method="G", path="/").tags == []
    mutable = structure({"name": "n"}, Mutable, method="G", path="/")
    mutable.count = 3
    assert mutable == Mutable("n", 3)
    assert hash(structure({"name": "n"}, Hashed, method="G", path="/")) == hash(Hashed("n"))
    checked = structure({"name": "n", "note": "x"}, Checked, method="G", path="/")
    assert (checked.name, checked.note, checked.extra) == ("N", "-", {})
    for cls in (Checked, PostInit):
        with pytest.raises(ResponseError, match=f"does not match {cls.__name__}"):
            structure({"name": "n", "count": -1}, cls, method="G", path="/")
    assert structure({"name": " n "}, OwnInit, method="G", path="/") == OwnInit("n")
    assert structure({"name": "ann"}, Derived, method="G", path="/").label == "Ann"
    derived = structure({"name": "ann", "label": "x", "other": 1}, Derived, method="G", path="/")
    assert derived == Derived("ann", "x")


@attrs.frozen(slots=True)
class Aliased:
    id: str
    ident: Optional[str] = attrs.field(default=None, metadata={"key": "id"})
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def test_two_fields_may_read_one_key() -> None:
    aliased = structure({"id": "x"}, Aliased, method="G", path="/")
    assert (aliased.id, aliased.ident, aliased.extra) == ("x", "x", {})
    assert structure({"id": "x", "y": 1}, Aliased, method="G", path="/").extra == {"y": 1}


@attrs.frozen(slots=True)
class Node:
    name: str
    child: Optional[Node] = None
    kids: list[Node] = attrs.field(factory=list)
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def test_recursive_model() -> None:
    data = {"name": "a", "child": {"name": "b", "x": 1}, "kids": [{"name": "c"}]}
    node = structure(data, Node, method="G", path="/")
    assert node == Node("a", Node("b", extra={"x": 1}), [Node("c")])
    with pytest.raises(ResponseError) as info:
        structure({"name": "a", "child": {"name": 3}}, Node, method="G", path="/")
    assert info.value.field == "child.name"
    with pytest.raises(ResponseError) as info:
        structure({"name": "a", "kids": [{"name": 3}]}, Node, method="G", path="/")
    assert info.value.field == "kids"
