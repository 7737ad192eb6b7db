"""The ``crewship-async`` command: every command group through ``main(argv)``.

Commands run against an in-process emulator (``--emulator``) or against an emulator served
from a background thread (``server`` fixture, ``--base-url``/``--api-key``). These tests are
plain functions: ``main()`` runs its own event loop.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import ThreadedEmulator, default_sigint, running_emulator

from crewship_async import (
    APIConnectionError,
    CrewshipError,
    NotFoundError,
    Run,
    RunCreated,
    RunEvent,
    RunStatus,
)
from crewship_async.cli import _app, _emulator, main
from crewship_async.cli._args import parse_columns
from crewship_async.cli._commands_runs import _created_line, event_line
from crewship_async.cli._commands_tables import ranges, row_cells
from crewship_async.cli._errors import UsageError
from crewship_async.cli._output import Output
from crewship_async.cli._text import dumps_line, short, to_jsonable

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server() -> Iterator[ThreadedEmulator]:
    yield from running_emulator()


def json_lines(text: str) -> list[Any]:
    """Every line of ``text`` parsed as JSON (fails on a line that is not JSON)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# -- parsing and usage errors ----------------------------------------------------------------


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "batch" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "crewship-async" in capsys.readouterr().out
    assert main(["runs", "create", "--help"]) == 0
    assert "--input JSON" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["runs"],
        ["runs", "create"],
        ["runs", "create", "dep_a", "--input", "{not json"],
        ["runs", "create", "dep_a", "--input", "[1, 2]"],
        ["runs", "create", "dep_a", "--environment", "qa"],
        ["runs", "list", "--limit", "0"],
        ["runs", "list", "--limit", "many"],
        ["runs", "wait", "run_1", "--timeout", "-1"],
        ["runs", "wait", "run_1", "--timeout", "soon"],
        ["tables", "create", "t", "--columns", "a:text:maybe"],
        ["tables", "create", "t", "--columns", '[{"type": "text"}]'],
        ["tables", "update", "tbl_1", "--description", "x", "--clear-description"],
        ["emulator", "--port", "70000"],
        ["emulator", "--port", "http"],
        ["emulator", "--step-delay", "-1"],
        ["emulator", "--step-delay", "slow"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "Traceback" not in err


def test_missing_api_key_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CREWSHIP_API_KEY", raising=False)
    assert main(["runs", "get", "run_1"]) == 2
    assert_one_error_line(capsys.readouterr().err, "--api-key", "CREWSHIP_API_KEY", "--emulator")


def test_sdk_argument_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--emulator", "runs", "get", ".."]) == 2
    assert_one_error_line(capsys.readouterr().err, "run_id")
    assert main(["--api-key", "k", "--base-url", "ftp://example.com", "runs", "get", "r"]) == 2
    assert_one_error_line(capsys.readouterr().err, "base_url")


def test_global_options_work_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", "--emulator", "--json"]) == 0
    assert capsys.readouterr().out == ""  # a fresh emulator has no runs
    assert main(["--json", "runs", "list", "--emulator"]) == 0
    assert main(["runs", "list", "--emulator"]) == 0
    assert "no runs found" in capsys.readouterr().out


# -- runs --------------------------------------------------------------------------------------


def test_runs_create_stream_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--emulator", "--json", "runs", "create", "dep_a", "--input", '{"topic": "AI"}']
    assert main([*argv, "--stream", "--wait"]) == 0
    lines = json_lines(capsys.readouterr().out)
    created, *events, final = lines
    assert created["run_id"].startswith("run_")
    assert created["status"] == "running"
    assert events[0]["type"] == "run.started"
    assert events[-1]["type"] == "run.completed"
    assert all("raw" not in e for e in events)
    assert final["id"] == created["run_id"]
    assert final["status"] == "succeeded"
    assert final["input"] == {"topic": "AI"}
    dt.datetime.fromisoformat(final["completed_at"])


def test_runs_create_human(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = tmp_path / "input.json"
    payload.write_text('{"topic": "robots"}')
    argv = ["--emulator", "runs", "create", "dep_a", "--input", f"@{payload}", "--stream"]
    assert main([*argv, "--environment", "staging", "--wait"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("created run_")
    assert "run.started" in out
    assert "Found 15 relevant results" in out  # a log event prints its message
    assert "succeeded" in out


def test_runs_get_list_wait_events_cancel(
    server: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.cli("--json", "runs", "create", "dep_a", "--input", '{"n": 1}') == 0
    run_id = json_lines(capsys.readouterr().out)[0]["run_id"]
    assert server.cli("--json", "runs", "create", "dep_b") == 0
    capsys.readouterr()

    assert server.cli("runs", "wait", run_id, "--timeout", "10") == 0
    assert "succeeded" in capsys.readouterr().out

    assert server.cli("--json", "runs", "get", run_id) == 0
    (run,) = json_lines(capsys.readouterr().out)
    assert run["status"] == "succeeded"

    assert server.cli("runs", "get", run_id) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}" in out
    assert "Z" in out  # datetimes shown in UTC for people

    assert server.cli("--json", "runs", "list", "--deployment", "dep_a") == 0
    assert [r["id"] for r in json_lines(capsys.readouterr().out)] == [run_id]
    assert server.cli("--json", "runs", "list", "--limit", "1") == 0
    assert len(json_lines(capsys.readouterr().out)) == 1
    assert server.cli("runs", "list", "--status", "succeeded") == 0
    assert run_id in capsys.readouterr().out

    assert server.cli("--json", "runs", "events", run_id) == 0
    events = json_lines(capsys.readouterr().out)
    assert events[-1]["type"] in ("complete", "run.completed")
    assert server.cli("runs", "events", run_id, "--last-event-id", "2") == 0
    assert "run.started" not in capsys.readouterr().out

    server.call(lambda emu: emu.script_runs("forever", count=1))
    assert server.cli("--json", "runs", "create", "dep_a") == 0
    forever = json_lines(capsys.readouterr().out)[0]["run_id"]
    assert server.cli("--json", "runs", "cancel", forever) == 0
    (result,) = json_lines(capsys.readouterr().out)
    assert result == {"run_id": forever, "success": True, "status": "canceled", "extra": {}}
    assert server.cli("runs", "cancel", forever) == 1
    assert_one_error_line(capsys.readouterr().err, "400", forever)

    server.call(lambda emu: emu.script_runs("forever", count=1))
    assert server.cli("--json", "runs", "create", "dep_a") == 0
    forever = json_lines(capsys.readouterr().out)[0]["run_id"]
    assert server.cli("runs", "cancel", forever) == 0
    assert f"canceled {forever}" in capsys.readouterr().out
    assert server.cli("runs", "wait", forever, "--poll-interval", "0.05") == 0
    assert "canceled" in capsys.readouterr().out


def test_api_error_exits_1_with_one_line(
    server: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.cli("runs", "get", "run_missing") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(captured.err, "404", "run_missing", "request_id")
    assert server.api_key not in captured.err

    assert server.cli("--json", "runs", "create", "not_a_deployment") == 1
    assert_one_error_line(capsys.readouterr().err, "404", "Deployment not found")

    assert main(["--api-key", "wrong", "--base-url", server.url, "runs", "list"]) == 1
    assert_one_error_line(capsys.readouterr().err, "401")


def test_network_error_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 9 of loopback (discard): the connection is refused.
    argv = ["--api-key", "k", "--base-url", "http://127.0.0.1:9", "--request-timeout", "3"]
    assert main([*argv, "runs", "get", "run_1"]) == 1
    err = capsys.readouterr().err
    assert_one_error_line(err, "GET /v1/runs/run_1")


# -- threads -----------------------------------------------------------------------------------


def release_when(server: ThreadedEmulator, run_id: str, condition: Any) -> None:
    """Wait (bounded) until ``condition()``, then release the held run ``run_id``."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            return  # the command under test then fails on its own busy timeout
        time.sleep(0.005)
    server.call(lambda emu: emu.runs[run_id].release())


def test_threads_commands(server: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert server.cli("--json", "threads", "create", "dep_a", "--metadata", '{"user": "u1"}') == 0
    (thread,) = json_lines(capsys.readouterr().out)
    thread_id = thread["thread_id"]
    assert thread["status"] == "idle"
    assert thread["metadata"] == {"user": "u1"}

    assert server.cli("threads", "run", thread_id, "--input", '{"message": "hi"}', "--wait") == 0
    out = capsys.readouterr().out
    assert "succeeded" in out
    assert "You said: hi" in out

    # A second run while the thread is busy: 409, with a hint. The run is held until this
    # test releases it, so the thread stays busy however slow the machine is.
    server.call(lambda emu: emu.script_runs("held", count=1))
    assert server.cli("--json", "threads", "run", thread_id, "--input", '{"message": "a"}') == 0
    (held,) = json_lines(capsys.readouterr().out)
    assert server.cli("threads", "run", thread_id, "--input", '{"message": "b"}') == 1
    assert_one_error_line(capsys.readouterr().err, "409", "--on-busy wait")
    assert server.cli("threads", "run", thread_id, "--wait") == 1
    assert_one_error_line(capsys.readouterr().err, "409")

    # --on-busy wait: the run is released only once the call has met the busy thread.
    runs_path = f"/v1/threads/{thread_id}/runs"

    def sent_c() -> list[Any]:
        return [b for b in server.posts(runs_path) if b.get("input") == {"message": "c"}]

    releaser = threading.Thread(
        target=release_when, args=(server, held["run_id"], lambda: bool(sent_c()))
    )
    releaser.start()
    try:
        argv = ["threads", "run", thread_id, "--input", '{"message": "c"}', "--on-busy", "wait"]
        assert server.cli(*argv, "--busy-timeout", "30", "--stream", "--wait") == 0
    finally:
        releaser.join(30)
    out = capsys.readouterr().out
    assert "run.completed" in out
    assert "You said: c" in out
    assert len(sent_c()) == 2  # refused while busy, then sent again once idle

    assert server.cli("--json", "threads", "run", thread_id, "--on-busy", "wait", "--wait") == 0
    run, final_thread = json_lines(capsys.readouterr().out)
    assert run["status"] == "succeeded"
    assert final_thread["thread_id"] == thread_id

    assert server.cli("--json", "threads", "list", "dep_a", "--status", "idle") == 0
    assert [t["thread_id"] for t in json_lines(capsys.readouterr().out)] == [thread_id]
    assert server.cli("threads", "list", "dep_a", "--limit", "1") == 0
    assert thread_id in capsys.readouterr().out
    assert server.cli("threads", "list", "dep_none") == 0
    assert "no threads found" in capsys.readouterr().out

    assert server.cli("--json", "threads", "history", thread_id) == 0
    history = json_lines(capsys.readouterr().out)
    assert len(history) == 4
    assert server.cli("threads", "history", thread_id, "--limit", "2") == 0
    assert "history of" in capsys.readouterr().out

    assert server.cli("--json", "threads", "copy", thread_id) == 0
    (copy,) = json_lines(capsys.readouterr().out)
    assert copy["thread_id"] != thread_id
    assert copy["values"] == final_thread["values"]
    assert server.cli("threads", "copy", thread_id) == 0
    assert f"copy of {thread_id}" in capsys.readouterr().out
    assert server.cli("threads", "history", copy["thread_id"]) == 0
    assert "history of" in capsys.readouterr().out

    assert server.cli("threads", "get", thread_id) == 0
    assert "You said: c" in capsys.readouterr().out
    assert server.cli("threads", "delete", thread_id) == 0
    assert f"deleted {thread_id}" in capsys.readouterr().out
    assert server.cli("--json", "threads", "delete", copy["thread_id"]) == 0
    assert json_lines(capsys.readouterr().out) == [
        {"thread_id": copy["thread_id"], "deleted": True}
    ]
    assert server.cli("threads", "get", thread_id) == 1
    assert_one_error_line(capsys.readouterr().err, "404")

    assert main(["--emulator", "threads", "create", "dep_a", "--values", '{"x": 1}']) == 0
    assert "thread thr_" in capsys.readouterr().out
    assert main(["--emulator", "threads", "history", "thr_none"]) == 1
    capsys.readouterr()


def test_threads_history_empty(
    server: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.cli("--json", "threads", "create", "dep_a") == 0
    thread_id = json_lines(capsys.readouterr().out)[0]["thread_id"]
    assert server.cli("threads", "history", thread_id) == 0
    assert "no checkpoints" in capsys.readouterr().out


# -- tables ------------------------------------------------------------------------------------


def test_tables_commands(
    server: ThreadedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    columns = "company:text:required,score:number"
    assert server.cli("--json", "tables", "create", "leads", "--columns", columns) == 0
    (table,) = json_lines(capsys.readouterr().out)
    table_id = table["id"]
    assert table["columns"] == [
        {"name": "company", "type": "text", "required": True, "extra": {}},
        {"name": "score", "type": "number", "required": False, "extra": {}},
    ]

    assert server.cli("tables", "list") == 0
    out = capsys.readouterr().out
    assert "leads" in out
    assert "company:text:required, score:number" in out
    assert server.cli("--json", "tables", "list") == 0
    assert [t["id"] for t in json_lines(capsys.readouterr().out)] == [table_id]

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"company": "Acme", "score": 92}\n\n{"company": "Beta", "score": 70}\n')
    assert server.cli("tables", "insert", table_id, str(rows)) == 0
    assert f"inserted 2 rows into {table_id}" in capsys.readouterr().out

    monkeypatch.setattr(sys, "stdin", io.StringIO('[{"company": "Gamma"}]'))
    assert server.cli("--json", "tables", "insert", table_id, "-") == 0
    (row,) = json_lines(capsys.readouterr().out)
    assert row["values"]["company"] == "Gamma"
    assert row["id"].startswith("row_")

    assert server.cli("tables", "rows", table_id) == 0
    out = capsys.readouterr().out
    assert "Acme" in out
    assert "Gamma" in out
    assert server.cli("--json", "tables", "rows", table_id, "--limit", "2") == 0
    assert [r["values"]["company"] for r in json_lines(capsys.readouterr().out)] == [
        "Acme",
        "Beta",
    ]

    assert server.cli("tables", "get", table_id) == 0
    out = capsys.readouterr().out
    assert "row_count" in out
    assert "3" in out

    new_columns = json.dumps(
        [{"name": "company", "type": "text", "required": True}, {"name": "note", "type": "text"}]
    )
    argv = ["tables", "update", table_id, "--name", "prospects", "--description", "Q3"]
    assert server.cli("--json", *argv, "--columns", new_columns) == 0
    (updated,) = json_lines(capsys.readouterr().out)
    assert updated["name"] == "prospects"
    assert updated["description"] == "Q3"
    assert [c["name"] for c in updated["columns"]] == ["company", "note"]
    assert server.cli("tables", "update", table_id, "--clear-description") == 0
    assert "prospects" in capsys.readouterr().out
    assert server.posts(f"/v1/tables/{table_id}") == []
    bodies = server.call(lambda emu: [r.body for r in emu.requests if r.method == "PATCH"])
    assert bodies[-1] == {"description": None}

    assert server.cli("tables", "update", table_id) == 2
    assert_one_error_line(capsys.readouterr().err, "nothing to change")

    assert server.cli("--json", "tables", "create", "spare", "--columns", "a") == 0
    spare = json_lines(capsys.readouterr().out)[0]["id"]
    assert server.cli("--json", "tables", "delete", spare) == 0
    assert json_lines(capsys.readouterr().out) == [{"table_id": spare, "deleted": True}]
    assert server.cli("tables", "delete", table_id) == 0
    assert f"deleted {table_id}" in capsys.readouterr().out
    assert server.cli("tables", "get", table_id) == 1
    assert_one_error_line(capsys.readouterr().err, "404")
    assert server.cli("tables", "list") == 0
    assert "no tables" in capsys.readouterr().out

    assert main(["--emulator", "--json", "tables", "delete", "tbl_x"]) == 1
    capsys.readouterr()


def test_tables_insert_checks_every_row_before_sending(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.cli("--json", "tables", "create", "t", "--columns", "a:text") == 0
    table_id = json_lines(capsys.readouterr().out)[0]["id"]
    cases = {
        "bad.jsonl": ('{"a": "x"}\n{oops\n', "line 2: not valid JSON"),
        "list.jsonl": ('{"a": "x"}\n[1]\n', "line 2: not a JSON object"),
        "array.json": ('[{"a": "x"}, 3]', "item 2 is not a JSON object"),
        "broken.json": ('[{"a": "x"}', "not valid JSON"),
        "empty.jsonl": ("\n\n", "no rows to insert"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert server.cli("tables", "insert", table_id, str(path)) == 2
        assert_one_error_line(capsys.readouterr().err, message)
    assert server.cli("tables", "insert", table_id, str(tmp_path / "missing.jsonl")) == 1
    assert_one_error_line(capsys.readouterr().err, "cannot read")
    assert server.posts(f"/v1/tables/{table_id}/rows") == []


def test_tables_partial_insert_names_the_rows_not_stored(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.cli("--json", "tables", "create", "t", "--columns", "a:text:required") == 0
    table_id = json_lines(capsys.readouterr().out)[0]["id"]
    lines = [json.dumps({"a": f"r{i}"}) for i in range(150)]
    lines[120] = json.dumps({"b": "no a"})  # fails the second batch (rows 101-150)
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert server.cli("tables", "insert", table_id, str(path)) == 1
    assert_one_error_line(
        capsys.readouterr().err, "100 of 150 rows stored", "lines 101-150", "Cause:"
    )


# -- webhook -----------------------------------------------------------------------------------


def test_webhook_trigger_needs_no_api_key(
    server: ThreadedEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CREWSHIP_API_KEY", raising=False)
    token = server.call(lambda emu: emu.add_webhook("dep_hook"))
    argv = ["--base-url", server.url, "webhook", "trigger", token]
    assert main([*argv, "--input", '{"topic": "AI"}', "--json"]) == 0
    (created,) = json_lines(capsys.readouterr().out)
    assert created["run_id"].startswith("run_")
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("created run_")
    hooks = server.call(lambda emu: [r for r in emu.requests if r.path.startswith("/webhooks/")])
    assert len(hooks) == 2
    assert hooks[0].body == {"topic": "AI"}
    assert all("authorization" not in {k.lower() for k in r.headers} for r in hooks)

    assert main(["--base-url", server.url, "webhook", "trigger", "whk_unknown"]) == 1
    err = capsys.readouterr().err
    assert_one_error_line(err, "404")
    assert "whk_unknown" not in err  # the token is a credential

    url = server.call(lambda emu: emu.webhook_url(emu.add_webhook("dep_hook")))
    assert main(["--base-url", server.url, "webhook", "trigger", url]) == 0
    assert capsys.readouterr().out.startswith("created run_")
    wrong_host = url.replace("127.0.0.1", "localhost")
    assert main(["--base-url", server.url, "webhook", "trigger", wrong_host]) != 0
    err = capsys.readouterr().err
    assert "base_url" in err
    assert url.rsplit("/", 1)[1] not in err


# -- output ------------------------------------------------------------------------------------


def test_to_jsonable_converts_models() -> None:
    when = dt.datetime(2024, 1, 15, 10, 35, tzinfo=dt.UTC)
    run = Run(id="run_1", status=RunStatus.SUCCEEDED, created_at=when, extra={"k": 1})
    data = to_jsonable(run)
    assert data["status"] == "succeeded"
    assert data["created_at"] == "2024-01-15T10:35:00+00:00"
    assert data["extra"] == {"k": 1}
    assert to_jsonable(run, human=True)["created_at"] == "2024-01-15 10:35:00Z"
    naive = Run(id="run_2", status="new", created_at=dt.datetime(2024, 1, 1))
    assert to_jsonable(naive, human=True)["created_at"] == "2024-01-01 00:00:00"
    assert to_jsonable([run])[0]["id"] == "run_1"
    assert to_jsonable({"e": NotFoundError("gone", status_code=404, method="GET", path="/x")}) == {
        "e": "NotFoundError: GET /x -> 404: gone"
    }
    assert to_jsonable({"s": {1}, "t": (1,), "d": dt.date(2024, 1, 2), "o": object}) == {
        "s": [1],
        "t": [1],
        "d": "2024-01-02",
        "o": str(object),
    }
    assert json.loads(dumps_line(RunEvent("log", {"message": "é"}, id="3"))) == {
        "type": "log",
        "data": {"message": "é"},
        "id": "3",
    }
    assert "é" in dumps_line({"x": "é"})
    nested = {"run": run, "status": RunStatus.FAILED, "when": when}
    assert to_jsonable(nested) == {
        "run": data,
        "status": "failed",
        "when": "2024-01-15T10:35:00+00:00",
    }
    proxied = Run(id="run_3", status="running", extra=types.MappingProxyType({"a": 1}))
    assert to_jsonable(proxied)["extra"] == {"a": 1}


def test_short_and_event_line() -> None:
    assert short(None) == ""
    assert short("a\nb") == "a b"
    assert short("x" * 100, 10) == "x" * 9 + "…"
    assert short({"a": 1}) == '{"a":1}'
    started = time.monotonic()
    assert event_line(RunEvent("heartbeat"), started).split()[1:] == ["heartbeat"]
    line = event_line(RunEvent("log", {"message": "hello"}, id="7"), started)
    assert line.endswith("log             #7  hello")
    assert event_line(RunEvent("x", [1, 2]), started).endswith("[1,2]")


def test_output_record_and_table_human(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(json_mode=False)
    out.record("plain text")
    out.table([])
    out.table([{"a": 1, "extra": {}}, {"b": 2, "extra": {}}], title="t")
    text = capsys.readouterr().out
    assert "plain text" in text
    assert "nothing found" in text
    assert "a" in text
    assert "extra" not in text


def test_rich_missing_gives_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    assert main(["--emulator", "runs", "list"]) == 1
    assert_one_error_line(capsys.readouterr().err, "pip install 'crewship-async[cli]'", "--json")
    assert main(["--emulator", "--json", "runs", "list"]) == 0


def test_helpers() -> None:
    assert ranges([1, 2, 3, 6, 8, 9]) == "1-3, 6, 8-9"
    assert ranges([]) == ""
    assert [c.required for c in parse_columns("a, b:number:REQUIRED, c::optional")] == [
        False,
        True,
        False,
    ]
    assert parse_columns("a,b")[1].type == "text"
    with pytest.raises(UsageError, match="name"):
        parse_columns("a,,b")
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_columns("[oops")
    with pytest.raises(UsageError, match="true or false"):
        parse_columns('[{"name": "a", "required": "yes"}]')
    assert row_cells({"id": "row_1", "data": {"a": 1}, "extra": {"b": 2, "_meta": {}}}) == {
        "id": "row_1",
        "a": 1,
        "b": 2,
    }
    assert row_cells("x") == {"value": "x"}
    assert row_cells({"id": "row_2", "_meta": {}, "other": 1}) == {"id": "row_2", "other": 1}
    plain = _created_line(RunCreated(run_id="run_1", status="running", thread_id="thr_1"))
    assert plain == "created run_1 (running) in thread thr_1"


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crewship_async.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "crewship-async" in done.stdout


# -- errors, interrupts, pipes -----------------------------------------------------------------


class TaskErrors(Exception):
    """Shaped like an ``ExceptionGroup`` (which Python 3.9 lacks)."""

    def __init__(self, *errors: BaseException) -> None:
        super().__init__("several errors")
        self.exceptions = errors


def test_error_reporting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(error: BaseException) -> Any:
        async def run(args: Any, out: Any) -> int:
            raise error

        return run

    group = TaskErrors(CrewshipError("first\nline"), TaskErrors(CrewshipError("second")))
    monkeypatch.setattr(_app, "_run", failing(group))
    assert main(["--emulator", "runs", "list"]) == 1
    assert_one_error_line(capsys.readouterr().err, "first line (and 1 more errors)")

    monkeypatch.setattr(_app, "_run", failing(APIConnectionError("", method="GET", path="/")))
    assert main(["--emulator", "runs", "list"]) == 1
    assert_one_error_line(capsys.readouterr().err, "APIConnectionError")

    monkeypatch.setattr(_app, "_run", failing(OSError("disk full")))
    assert main(["--emulator", "runs", "list"]) == 1
    assert_one_error_line(capsys.readouterr().err, "disk full")

    monkeypatch.setattr(_app, "_run", failing(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--emulator", "runs", "list"])

    monkeypatch.setattr(_app, "_run", failing(KeyboardInterrupt()))
    assert main(["--emulator", "runs", "list"]) == 130
    assert capsys.readouterr().err == "interrupted\n"

    monkeypatch.setattr(_app, "_run", failing(BrokenPipeError()))
    assert main(["--emulator", "runs", "list"]) == 141


def test_exit_status_of_system_exit() -> None:
    assert _app._exit_status(None) == 0
    assert _app._exit_status(3) == 3
    assert _app._exit_status("message") == 1


def _spawn(*argv: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crewship_async.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        preexec_fn=default_sigint,
    )


def test_ctrl_c_exits_130_and_closes_the_stream(server: ThreadedEmulator) -> None:
    server.call(lambda emu: emu.script_runs("forever", count=1))
    assert server.cli("--json", "runs", "create", "dep_a") == 0
    run_id = next(iter(server.call(lambda emu: list(emu.runs))))
    env = {"CREWSHIP_BASE_URL": server.url, "CREWSHIP_API_KEY": server.api_key}
    # `with` closes the pipes even when an assertion fails (no ResourceWarning later).
    with _spawn("runs", "events", run_id, env=env) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()  # the first event arrived: the stream is open
            assert "run.started" in first or "heartbeat" in first
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted"
    deadline = time.monotonic() + 30  # the emulator notices the closed stream at once
    while server.call(lambda emu: emu.stats.in_flight) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.call(lambda emu: emu.stats.in_flight) == 0


# -- emulator ----------------------------------------------------------------------------------


def test_emulator_command_serves_until_ctrl_c() -> None:
    with _spawn("emulator", "--port", "0", "--api-key", "emu_key", env={}) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            url = first.strip().rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            assert "emu_key" in process.stdout.readline()
            argv = ["--base-url", url, "--api-key", "emu_key", "--json", "runs", "list"]
            assert main(argv) == 0
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Traceback" not in err
    assert "emulator stopped" in err


def test_emulator_command_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import crewship_async.testing.__main__ as standalone

    seen: dict[str, Any] = {}

    async def fake_serve_forever(host: str, port: int, **options: Any) -> None:
        seen.update(host=host, port=port, **options)

    monkeypatch.setattr(standalone, "serve_forever", fake_serve_forever)
    argv = ["emulator", "--host", "0.0.0.0", "--port", "9000", "--step-delay", "0", "--strict"]
    assert main([*argv, "--deployment", "dep_a", "--seed", "7", "--api-key", "k"]) == 0
    assert seen == {
        "host": "0.0.0.0",
        "port": 9000,
        "api_key": "k",
        "step_delay": 0.0,
        "strict_deployments": True,
        "deployments": ["dep_a"],
        "seed": 7,
    }
    seen.clear()
    assert main(["emulator"]) == 0
    assert seen["port"] == 8080
    assert "seed" not in seen
    assert capsys.readouterr().err.count("emulator stopped") == 2
    assert _emulator.register is not None


def test_emulator_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 1
    assert_one_error_line(capsys.readouterr().err)
