"""``crewship-async demo --quick``: the end-to-end tour, in human and JSON form."""

from __future__ import annotations

import json

import pytest

from crewship_async.cli import main


def test_demo_quick_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "Traceback" not in captured.err
    for heading in (
        "1. Fan-out: 20 runs",
        "2. Live events of run_",
        "3. A three-turn conversation",
        "4. The 20 results written to table tbl_",
        "5. Summary",
    ):
        assert heading in out
    assert "20 runs created" in out
    assert "triggering: 20/20 done" in out  # plain progress lines when not a terminal
    assert "run.completed" in out
    assert "409 -> ThreadBusyError caught" in out
    assert 'on_busy="wait"' in out
    assert "thread idle, last run succeeded, 3 checkpoints" in out
    assert "inserted 20 rows in 1 batched request(s)" in out
    assert "read back 20 rows; 0 missing" in out
    assert 'scripted to fail 1 of the runs with "Search API quota exceeded"' in out
    assert "first rows, in input order" in out
    assert "failed runs (1, scripted by the emulator)" in out
    assert "every connection closed" in out


def test_demo_quick_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "demo", "--quick"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps = {line["step"]: line for line in lines if "step" in line}
    assert steps["fan_out"]["created"] == 20
    assert sum(steps["wait"]["statuses"].values()) == 20
    assert steps["stream"]["events"] >= 3
    assert steps["conversation"]["busy_error_handled"] is True
    assert steps["conversation"]["messages"] == 6
    assert steps["table"]["read"] == 20
    assert steps["wait"]["scripted_failures"] == 1
    assert steps["wait"]["statuses"]["failed"] == 1
    assert steps["table"]["failed"] == 1
    assert set(steps["summary"]["timings"]) == {
        "trigger runs",
        "wait for runs",
        "stream events",
        "thread conversation",
        "table write + read",
    }
    events = [line for line in lines if "type" in line]
    assert events[-1]["type"] == "run.completed"


def test_demo_rows_are_listed_in_input_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick"]) == 0
    out = capsys.readouterr().out
    first = out.split("first rows, in input order", 1)[1].split("failed runs", 1)[0]
    numbers = [line.split()[1] for line in first.splitlines() if line.strip().startswith("row_")]
    assert numbers == ["0", "1", "2", "3", "4"]
    failed = out.split("failed runs (1, scripted by the emulator)", 1)[1].split("5. Summary")[0]
    failed_rows = [line for line in failed.splitlines() if "row_" in line]
    assert len(failed_rows) == 1
    assert " failed " in failed_rows[0]
    assert " succeeded " not in failed_rows[0]
