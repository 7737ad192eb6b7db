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
    assert set(steps["summary"]["timings"]) == {
        "trigger runs",
        "wait for runs",
        "stream events",
        "thread conversation",
        "table write + read",
    }
    events = [line for line in lines if "type" in line]
    assert events[-1]["type"] == "run.completed"
