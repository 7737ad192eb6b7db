"""Typed choices at run time, the two spellings of every model's id, and the DEBUG line of
each stream open attempt.

Arguments that take one of a few words are ``Literal`` types derived from the models'
enums; a wrong word still fails at run time, before anything is sent, with a message
naming the argument and the words it takes. The enum members are accepted and sent as
their plain values.
"""

from __future__ import annotations

import enum
import logging
import socket
from typing import Any, Callable, Literal, get_args

import pytest

from crewship_async import (
    AsyncCrewship,
    Checkpoint,
    Column,
    ColumnType,
    ColumnTypeName,
    Environment,
    EnvironmentName,
    OnBusy,
    ResponseError,
    RetryPolicy,
    Row,
    Run,
    RunCreated,
    RunRequest,
    RunStatus,
    RunStatusName,
    Table,
    Thread,
    ThreadStatus,
    ThreadStatusName,
)
from crewship_async._convert import structure
from crewship_async._transport import Transport
from crewship_async.models._choices import check_choice, describe_choices, literal_values
from crewship_async.models.runs import ENVIRONMENTS, RUN_STATUSES
from crewship_async.models.tables import COLUMN_TYPES
from crewship_async.models.threads import ON_BUSY_CHOICES, THREAD_STATUSES
from crewship_async.testing import CrewshipEmulator

# -- one source for each set of words -----------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "members", "values"),
    [
        (EnvironmentName, Environment, ENVIRONMENTS),
        (RunStatusName, RunStatus, RUN_STATUSES),
        (ThreadStatusName, ThreadStatus, THREAD_STATUSES),
        (ColumnTypeName, ColumnType, COLUMN_TYPES),
    ],
)
def test_each_literal_lists_exactly_its_enum_values(
    literal: Any, members: type[enum.Enum], values: tuple[str, ...]
) -> None:
    assert get_args(literal) == tuple(member.value for member in members) == values


def test_a_literal_that_drifted_from_its_enum_is_refused() -> None:
    with pytest.raises(TypeError, match="differ from those of Environment"):
        literal_values(Literal["production", "staging", "qa"], Environment)
    with pytest.raises(TypeError, match="differ"):
        literal_values(Literal["staging", "production"], Environment)  # the order too


def test_on_busy_choices() -> None:
    assert ON_BUSY_CHOICES == get_args(OnBusy) == ("raise", "wait")


def test_check_choice_messages() -> None:
    assert describe_choices(("a", "b")) == "'a' or 'b'"
    assert describe_choices(("a", "b", "c")) == "one of 'a', 'b', 'c'"
    assert check_choice("x", Environment.STAGING, ENVIRONMENTS) == "staging"
    assert type(check_choice("x", Environment.STAGING, ENVIRONMENTS)) is str
    with pytest.raises(ValueError, match=r"^x must be 'production' or 'staging', got 3$"):
        check_choice("x", 3, ENVIRONMENTS)


# -- the run-time check: a clear error, nothing sent ----------------------------------------------


async def test_a_wrong_word_fails_before_anything_is_sent(
    crewship_client: AsyncCrewship, crewship_emulator: CrewshipEmulator
) -> None:
    client: Any = crewship_client  # the mistakes the type checkers catch, made anyway
    with pytest.raises(ValueError, match=r"^on_busy must be 'raise' or 'wait', got 'wiat'$"):
        await client.threads.runs.create("thr_1", input={}, on_busy="wiat")
    with pytest.raises(ValueError, match="on_busy must be 'raise' or 'wait'"):
        await client.threads.runs.create_and_wait("thr_1", on_busy="retry")
    message = r"^environment must be 'production' or 'staging', got 'prod'$"
    with pytest.raises(ValueError, match=message):
        await client.runs.create("dep_a", environment="prod")
    with pytest.raises(ValueError, match=message):
        await client.threads.runs.create("thr_1", environment="prod")
    with pytest.raises(ValueError, match=message):
        RunRequest("dep_a", None, "prod")  # type: ignore[arg-type]
    statuses = "'pending', 'running', 'succeeded', 'failed', 'canceled'"
    with pytest.raises(ValueError, match=rf"^status must be one of {statuses}, got 'runing'$"):
        client.runs.list(status="runing")
    with pytest.raises(TypeError, match="status must be a string, got int"):
        client.runs.list(status=3)
    with pytest.raises(ValueError, match=r"status must be one of 'idle', .*, got 'bussy'"):
        client.threads.list("dep_a", status="bussy")
    with pytest.raises(TypeError, match="status must be a string"):
        client.threads.list("dep_a", status=["idle"])
    types = "'text', 'number', 'boolean', 'json', 'datetime'"
    with pytest.raises(ValueError, match=rf"^Column\.type must be one of {types}, got 'txt'$"):
        Column("company", "txt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Column\.type must be one of"):
        await client.tables.create("t", columns=[{"name": "a", "type": "money"}])
    assert crewship_emulator.requests == []


async def test_enum_members_are_sent_as_their_values(
    crewship_client: AsyncCrewship, crewship_emulator: CrewshipEmulator
) -> None:
    created = await crewship_client.runs.create("dep_a", environment=Environment.STAGING)
    await crewship_client.runs.create("dep_a", environment="staging")
    await crewship_client.runs.list(status=RunStatus.RUNNING).to_list()
    await crewship_client.runs.list(status="succeeded").to_list()
    await crewship_client.threads.list("dep_a", status=ThreadStatus.IDLE).to_list()
    thread = await crewship_client.threads.create("dep_a")
    await crewship_client.threads.runs.create(
        thread.thread_id, environment=Environment.PRODUCTION, on_busy="raise"
    )
    table = await crewship_client.tables.create(
        "t", columns=[Column("a", ColumnType.NUMBER), Column("b", "datetime")]
    )
    requests = crewship_emulator.requests
    posts = [r.body for r in requests if r.method == "POST" and r.path == "/v1/runs"]
    assert posts == [
        {"deployment_id": "dep_a", "environment": "staging"},
        {"deployment_id": "dep_a", "environment": "staging"},
    ]
    lists = [r.query.get("status") for r in requests if r.method == "GET"]
    assert lists == ["running", "succeeded", "idle"]
    thread_run = next(r for r in requests if r.path.endswith("/runs") and r.path != "/v1/runs")
    assert thread_run.body == {"environment": "production"}
    assert [c.name for c in table.columns] == ["a", "b"]
    assert table.columns[0].type is ColumnType.NUMBER
    assert created.run_id


def test_a_column_given_an_enum_member_equals_one_given_its_value() -> None:
    column = Column("a", ColumnType.NUMBER)
    assert column == Column("a", "number")
    sent = column.to_json()
    assert sent == {"name": "a", "type": "number", "required": False}
    assert type(sent["type"]) is str
    assert Column.coerce({"name": "a", "type": "json"}).type == "json"


def test_a_run_request_keeps_the_environment_as_given() -> None:
    assert RunRequest("dep_a", environment=Environment.STAGING) == RunRequest(
        "dep_a", environment="staging"
    )
    assert RunRequest.coerce({"deployment_id": "dep_a", "environment": "staging"}).environment == (
        "staging"
    )


# -- columns read from the server keep types this SDK does not know --------------------------------


def table_json(*columns: Any) -> dict[str, Any]:
    return {"id": "tbl_1", "name": "leads", "columns": list(columns)}


def test_a_server_column_of_an_unknown_type_is_kept_as_a_plain_string() -> None:
    table = structure(
        table_json(
            {"name": "a", "type": "money", "unique": True},
            {"name": "b", "type": "text", "required": True},
        ),
        Table,
        method="GET",
        path="/v1/tables/tbl_1",
    )
    money, text = table.columns
    assert money.type == "money"
    assert type(money.type) is str
    assert money.extra == {"unique": True}
    assert money.to_json() == {"unique": True, "name": "a", "type": "money", "required": False}
    assert text.type is ColumnType.TEXT
    assert text.required is True


@pytest.mark.parametrize(
    "column",
    [
        {"name": "a"},
        {"name": "a", "type": 3},
        {"name": "a", "type": ""},
        {"name": "", "type": "text"},
        {"name": "a", "type": "money", "required": "yes"},
        ["a", "text"],
    ],
)
def test_a_malformed_server_column_is_a_response_error(column: Any) -> None:
    with pytest.raises(ResponseError, match="columns"):
        structure(table_json(column), Table, method="GET", path="/v1/tables/tbl_1")


# -- ids: .id everywhere, <kind>_id as its alias ---------------------------------------------------


def test_every_model_offers_id_and_its_kind_id() -> None:
    run = Run("run_1", "running")
    created = RunCreated("run_2")
    thread = Thread("thr_1", "idle")
    table = Table("tbl_1", "leads")
    row = Row("row_1")
    checkpoint = Checkpoint(checkpoint_id="cp_1", run_id="run_9")
    assert (run.id, run.run_id) == ("run_1", "run_1")
    assert (created.id, created.run_id) == ("run_2", "run_2")
    assert (thread.id, thread.thread_id) == ("thr_1", "thr_1")
    assert (table.id, table.table_id) == ("tbl_1", "tbl_1")
    assert (row.id, row.row_id) == ("row_1", "row_1")
    assert (checkpoint.id, checkpoint.checkpoint_id) == ("cp_1", "cp_1")
    assert checkpoint.run_id == "run_9"  # names the run that recorded it, not the checkpoint
    assert Checkpoint().id is None
    for model in (Run, RunCreated, Thread, Table, Row, Checkpoint):
        assert "id" in (model.__doc__ or "")


def test_the_alias_is_not_a_field() -> None:
    import attrs

    assert "run_id" not in attrs.fields_dict(Run)
    assert "id" not in attrs.fields_dict(RunCreated)
    assert "id" not in attrs.fields_dict(Thread)


# -- fan-out items -----------------------------------------------------------------------------


async def test_an_outcome_holds_the_item_as_given(crewship_client: AsyncCrewship) -> None:
    good = {"deployment_id": "dep_a", "input": {"n": 1}}
    bad: Any = {"deployment_id": "dep_a", "environment": "prod"}
    request = RunRequest("dep_a")
    outcomes = await crewship_client.runs.create_all([good, bad, request], ordered=True)
    assert [outcome.request for outcome in outcomes] == [good, bad, request]
    assert outcomes[0].request is good
    assert outcomes[1].request is bad
    assert isinstance(outcomes[1].error, ValueError)
    assert "environment must be" in str(outcomes[1].error)
    assert outcomes[2].ok


# -- the DEBUG line of each stream open attempt ----------------------------------------------------


def attempt_lines(caplog: pytest.LogCaptureFixture, run_id: str) -> list[str]:
    """The attempt lines of the stream of ``run_id`` (they name the path template and the
    run id)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "crewship_async"
        and record.getMessage().startswith("GET /v1/runs/{run_id}/events -> ")
        and record.getMessage().endswith(f", runs.stream, run_id={run_id})")
    ]


async def test_each_stream_open_is_logged_like_every_other_request(
    crewship_emulator: CrewshipEmulator,
    crewship_client: AsyncCrewship,
    make_transport: Callable[..., Transport],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    created = await crewship_client.runs.create("dep_a")
    path = f"/v1/runs/{created.run_id}/events"
    async with crewship_client.runs.stream(created.run_id) as events:
        async for _ in events:
            pass
    (line,) = attempt_lines(caplog, created.run_id)
    assert line.startswith("GET /v1/runs/{run_id}/events -> 200 in ")
    assert "s (attempt 1, runs.stream" in line
    assert any(m.getMessage().startswith("POST /v1/runs -> 202 in ") for m in caplog.records)

    # A reconnect's attempt number, as the stream passes it when it opens again.
    transport = make_transport(crewship_emulator.url, api_key=crewship_emulator.api_key)
    connection = await transport.open_stream(path, attempt=3)
    connection.close()
    assert "(attempt 3, " in attempt_lines(caplog, created.run_id)[-1]

    missing = "/v1/runs/run_missing/events"
    with pytest.raises(Exception, match="404"):
        await transport.open_stream(missing)
    (line,) = attempt_lines(caplog, "run_missing")
    assert line.startswith("GET /v1/runs/{run_id}/events -> 404 in ")
    assert "Authorization" not in " ".join(r.getMessage() for r in caplog.records)


async def test_a_stream_open_that_gets_no_response_is_logged_with_the_exception_name(
    make_transport: Callable[..., Transport], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = make_transport(
        f"http://127.0.0.1:{port}", api_key="sk_test", retry_policy=RetryPolicy(max_retries=0)
    )
    with pytest.raises(Exception, match="could not open the stream"):
        await transport.open_stream("/v1/runs/run_1/events", attempt=2)
    (line,) = attempt_lines(caplog, "run_1")
    assert line.startswith("GET /v1/runs/{run_id}/events -> ClientConnectorError in ")
    assert "(attempt 2, " in line
    assert "sk_test" not in line


def test_enum_members_print_as_their_values() -> None:
    assert str(Environment.STAGING) == "staging"
    assert str(ColumnType.DATETIME) == "datetime"
    assert f"{RunStatus.RUNNING}/{ThreadStatus.IDLE}" == "running/idle"


async def test_a_reconnect_is_logged_as_the_next_attempt(
    crewship_client: AsyncCrewship,
    crewship_emulator: CrewshipEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="crewship_async")
    created = await crewship_client.runs.create("dep_a")
    path = f"/v1/runs/{created.run_id}/events"
    crewship_emulator.faults.fail_next(1, status=503, route=f"GET {path}")
    async with crewship_client.runs.stream(created.run_id) as events:
        async for _ in events:
            pass
    lines = attempt_lines(caplog, created.run_id)
    assert [line.split(" -> ")[1].split(" ")[0] for line in lines] == ["503", "200"]
    assert [line.rsplit("(", 1)[1].split(",")[0] for line in lines] == ["attempt 1", "attempt 2"]
