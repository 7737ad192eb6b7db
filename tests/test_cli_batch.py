"""``crewship-async batch``: outcomes as JSON lines, progress, and resuming without repeats."""

from __future__ import annotations

import collections
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import ThreadedEmulator, default_sigint, running_emulator

from crewship_async.cli import _batch, main
from crewship_async.cli._batch import load_done
from crewship_async.cli._errors import UsageError
from crewship_async.cli._progress import ProgressReporter, _duration, choose_mode

ROOT = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-m", "crewship_async.cli")


@pytest.fixture
def server() -> Iterator[ThreadedEmulator]:
    yield from running_emulator()


def write_inputs(path: Path, count: int, *, blank_every: int = 0) -> list[int]:
    """``count`` inputs ``{"n": i}``; returns the line index of each (blank lines skipped)."""
    indices = []
    lines = []
    for n in range(count):
        if blank_every and n and n % blank_every == 0:
            lines.append("")
        indices.append(len(lines))
        lines.append(json.dumps({"n": n}))
    path.write_text("\n".join(lines) + "\n")
    return indices


def records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines() if line]


def sent_inputs(server: ThreadedEmulator) -> list[int]:
    return [body["input"]["n"] for body in server.posts("/v1/runs")]


def created_inputs(server: ThreadedEmulator) -> list[int]:
    return server.call(lambda emu: [run.input["n"] for run in emu.runs.values()])


def test_batch_writes_one_line_per_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    indices = write_inputs(inputs, 25, blank_every=10)
    output = tmp_path / "out.jsonl"
    argv = ["--emulator", "batch", "dep_a", str(inputs), "--output", str(output)]
    assert main([*argv, "--concurrency", "150", "--environment", "staging", "--ordered"]) == 0
    lines = records(output)
    assert [line["index"] for line in lines] == indices  # --ordered: input order
    assert [line["input"]["n"] for line in lines] == list(range(25))
    assert all(line["run_id"].startswith("run_") for line in lines)
    captured = capsys.readouterr()
    assert "25 created, 0 failed, 0 skipped" in captured.out
    assert f"-> {output}" in captured.out
    assert "runs: 25/25 done, 0 failed" in captured.err  # plain progress: not a terminal


def test_batch_json_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"n": 0}\n{"n": 1}\n{"n": 2}\n'))
    assert main(["--emulator", "--json", "batch", "dep_a", "-"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1, 2]
    (summary,) = [json.loads(line) for line in captured.err.splitlines()]
    assert summary["summary"] is True
    assert summary["created"] == 3
    assert summary["output"] == "-"


def test_batch_resume_after_interruption_sends_only_the_rest(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 40)
    output = tmp_path / "out.jsonl"
    # What a killed earlier attempt left: 15 complete lines, then half of the 16th.
    done = "".join(
        json.dumps({"index": i, "input": {"n": i}, "run_id": f"run_old{i}"}) + "\n"
        for i in (3, 0, 1, 2, *range(4, 15))
    )
    output.write_text(done + '{"index": 15, "input": {"n"')
    assert server.cli("batch", "dep_a", str(inputs), "--output", str(output), "--resume") == 0
    assert sorted(sent_inputs(server)) == list(range(15, 40))
    assert collections.Counter(created_inputs(server)) == dict.fromkeys(range(15, 40), 1)
    lines = records(output)  # the cut line is gone; every line is whole
    assert sorted(line["index"] for line in lines) == list(range(40))
    assert [line["run_id"] for line in lines[:15]] == [
        f"run_old{i}" for i in (3, 0, 1, 2, *range(4, 15))
    ]
    captured = capsys.readouterr()
    assert "cut short" in captured.err
    assert "25 created, 0 failed, 15 skipped" in captured.out

    # Resuming a finished batch sends nothing.
    assert server.cli("batch", "dep_a", str(inputs), "--output", str(output), "--resume") == 0
    assert len(sent_inputs(server)) == 25
    assert "0 created, 0 failed, 40 skipped" in capsys.readouterr().out


def test_batch_resume_keeps_a_whole_last_line_without_newline(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 3)
    output = tmp_path / "out.jsonl"
    output.write_text('{"index": 0, "run_id": "run_a"}\n\n{"index": 1, "run_id": "run_b"}')
    assert load_done(str(output)) == ({0, 1}, True)
    assert output.read_text().endswith('"run_b"}\n')
    assert load_done(str(output)) == ({0, 1}, False)
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output), "--resume") == 0
    assert sent_inputs(server) == [2]
    assert sorted(line["index"] for line in records(output)) == [0, 1, 2]
    capsys.readouterr()


def test_batch_refuses_to_repeat_or_guess(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 2)
    output = tmp_path / "out.jsonl"
    output.write_text('{"index": 0}\n')
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output)) == 2
    assert "--resume" in capsys.readouterr().err
    assert server.cli("batch", "dep_a", str(inputs), "--resume") == 2
    assert "--resume needs --output" in capsys.readouterr().err
    for corrupt in ('{"index": 0}\nnot json\n{"index": 1}\n', '["index"]\n', '{"index": "0"}\n'):
        output.write_text(corrupt)
        assert server.cli("batch", "dep_a", str(inputs), "-o", str(output), "--resume") == 2
        assert "is not a batch outcome" in capsys.readouterr().err
    assert server.cli("batch", "dep_a", str(tmp_path / "missing.jsonl"), "-o", "x") == 1
    assert "cannot read" in capsys.readouterr().err
    assert server.cli("batch", "", str(inputs)) == 2
    assert "deployment_id" in capsys.readouterr().err
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(tmp_path)) == 1
    assert "cannot write" in capsys.readouterr().err
    assert sent_inputs(server) == []

    fresh = tmp_path / "fresh.jsonl"  # --resume with no earlier output: start from scratch
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(fresh), "--resume") == 0
    assert sorted(sent_inputs(server)) == [0, 1]
    capsys.readouterr()


def test_batch_failures_are_recorded_and_exit_1(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"n": 0}\nnot json\n[1]\n{"n": 3}\n{"n": 4}\n')
    server.call(lambda emu: emu.faults.fail_next(1, status=400, route="POST /v1/runs"))
    output = tmp_path / "out.jsonl"
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", "1"]
    assert server.cli(*argv) == 1
    captured = capsys.readouterr()
    assert (
        captured.err.strip().splitlines()[-1] == "error: 3 of 5 inputs failed; see the error lines"
    )
    lines = {line["index"]: line for line in records(output)}
    assert sorted(lines) == [0, 1, 2, 3, 4]
    assert "not valid JSON" in lines[1]["error"]
    assert lines[1]["input"] is None
    assert "must be a JSON object" in lines[2]["error"]
    failed = [line for line in lines.values() if line.get("status_code") == 400]
    assert len(failed) == 1
    assert failed[0]["error_type"] == "BadRequestError"
    # Resuming skips every recorded index, failed ones included: nothing is sent twice.
    assert server.cli(*argv, "--resume") == 0
    assert len(sent_inputs(server)) == 3
    capsys.readouterr()


def test_batch_output_stays_strict_json_for_nan_inputs(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python's json.loads takes NaN and Infinity, which JSON has not: echoed back as the
    # record's "input", they made a line no strict JSON reader can parse.
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"x": NaN}\n{"y": [-Infinity]}\n{"n": 2}\n')
    output = tmp_path / "out.jsonl"
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output)) == 1

    def strict(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    lines = output.read_text().splitlines()
    records_read = [json.loads(line, parse_constant=strict) for line in lines]
    parsed = {record["index"]: record for record in records_read}
    assert sorted(parsed) == [0, 1, 2]
    assert "not valid JSON" in parsed[0]["error"]
    assert "not valid JSON" in parsed[1]["error"]
    assert parsed[2]["run_id"].startswith("run_")
    assert sent_inputs(server) == [2]
    capsys.readouterr()


def test_batch_fail_fast_stops_and_resume_finishes_exactly_once(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 12)
    output = tmp_path / "out.jsonl"
    server.call(lambda emu: emu.faults.fail_next(1, status=400, route="POST /v1/runs"))
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", "1"]
    assert server.cli(*argv, "--fail-fast") == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: 1 of ")
    lines = records(output)
    assert lines[0]["index"] == 0
    assert lines[0]["error"].startswith("POST /v1/runs -> 400")
    # At most the one input pulled while the first was answered is sent after it, and
    # everything sent is recorded.
    assert sorted(line["index"] for line in lines) == sent_inputs(server)
    assert len(lines) <= 2
    assert server.cli(*argv, "--resume") == 0
    assert collections.Counter(created_inputs(server)) == dict.fromkeys(range(1, 12), 1)
    assert sorted(line["index"] for line in records(output)) == list(range(12))
    capsys.readouterr()


@pytest.mark.parametrize("ordered", [False, True])
def test_batch_fail_fast_records_every_run_it_created(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], ordered: bool
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 40)
    output = tmp_path / "out.jsonl"

    def faults(emu: Any) -> None:
        emu.faults.latency(0.05, route="POST /v1/runs", count=1)
        emu.faults.fail_next(1, status=400, route="POST /v1/runs")

    server.call(faults)
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", "4"]
    assert server.cli(*argv, "--fail-fast", *(["--ordered"] if ordered else [])) == 1
    lines = records(output)
    recorded_runs = {line["run_id"] for line in lines if "run_id" in line}
    created_runs = set(server.call(lambda emu: list(emu.runs)))
    assert created_runs == recorded_runs
    assert sum("error" in line for line in lines) == 1
    assert len(lines) < 40
    assert server.cli(*argv, "--resume") == 0
    created = collections.Counter(created_inputs(server))
    assert all(count == 1 for count in created.values())
    assert sorted(line["index"] for line in records(output)) == list(range(40))
    capsys.readouterr()


def test_batch_ctrl_c_then_resume(server: ThreadedEmulator, tmp_path: Path) -> None:
    total = 200  # far more than can finish between the 8th line and the interrupt
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, total)
    output = tmp_path / "out.jsonl"
    # Slow POSTs: a request cancelled during its delay never reaches the handler.
    server.call(lambda emu: emu.faults.latency(0.05, route="POST /v1/runs"))
    env = {**os.environ, "CREWSHIP_BASE_URL": server.url, "CREWSHIP_API_KEY": server.api_key}
    argv = [*CLI, "batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", "4"]
    # `with` closes the pipes even when an assertion fails (no ResourceWarning later).
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=default_sigint,
    ) as process:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if output.exists() and output.read_text().count("\n") >= 8:
                    break
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in err
    assert "--resume" in err
    written = len(records(output))
    assert 8 <= written < total
    server.call(lambda emu: emu.faults.reset())
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output), "--resume") == 0
    assert sorted(line["index"] for line in records(output)) == list(range(total))
    created = collections.Counter(created_inputs(server))
    assert set(created) == set(range(total))
    # At most once per recorded index; only a request in flight at the kill could repeat.
    assert sum(created.values()) - total <= 4


def test_batch_rich_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_batch, "choose_mode", lambda **kwargs: "rich")
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 5)
    assert main(["--emulator", "batch", "dep_a", str(inputs), "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "5/5" in err
    assert "0 failed" in err


def test_batch_works_without_rich(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 3)
    assert main(["--emulator", "batch", "dep_a", str(inputs), "-o", str(tmp_path / "o")]) == 0
    assert "3 created" in capsys.readouterr().out


# -- progress ----------------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_choose_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_mode(json_mode=True, stream=FakeTerminal()) == "off"
    assert choose_mode(json_mode=False, stream=io.StringIO()) == "plain"
    assert choose_mode(json_mode=False, stream=FakeTerminal()) == "rich"
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    assert choose_mode(json_mode=False, stream=FakeTerminal()) == "plain"


def test_progress_reporter_modes() -> None:
    with pytest.raises(ValueError, match="mode"):
        ProgressReporter("x", 1, mode="fancy", stream=io.StringIO())

    plain = io.StringIO()
    with ProgressReporter("runs", 10, mode="plain", stream=plain, interval=0) as bar:
        bar.skip(2)
        bar.advance()
        bar.advance(ok=False)
        assert bar.total == 8
        assert "ETA" in bar.status()
    bar.stop()  # idempotent
    lines = plain.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("runs: 2/8 done, 1 failed")

    unknown = ProgressReporter("runs", None, mode="plain", stream=io.StringIO())
    unknown.skip(3)
    unknown.advance()
    assert unknown.status().startswith("runs: 1 done, 0 failed")

    silent = io.StringIO()
    with ProgressReporter("runs", 3, mode="off", stream=silent) as bar:
        bar.advance()
    assert silent.getvalue() == ""

    drawn = io.StringIO()
    with ProgressReporter("runs", 4, mode="rich", stream=drawn) as bar:
        bar.skip(1)
        bar.advance()
        bar.advance(ok=False)
    assert "2/3" in drawn.getvalue()
    assert "1 failed" in drawn.getvalue()


def test_duration() -> None:
    assert _duration(-1) == "0s"
    assert _duration(59.4) == "59s"
    assert _duration(61) == "1m01s"
    assert _duration(3 * 3600 + 120) == "3h02m"


def test_load_done_rejects_a_bad_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"index": 1}\n{"index": true}\n')
    with pytest.raises(UsageError, match="line 2"):
        load_done(str(path))
