"""The CLI's exit code for I/O errors, the resume line after Ctrl-C on a stream, and
``batch --retry-failed``.

The Ctrl-C tests run ``crewship-async`` in a subprocess against an emulator on a
background thread of the test process, and interrupt it with a real SIGINT once the
events they wait for have been printed (never after a fixed sleep alone).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from test_cli_support import ThreadedEmulator, default_sigint, running_emulator

from crewship_async.cli import main
from crewship_async.cli._app import build_parser
from crewship_async.cli._commands_runs import resume_command, resume_options

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120.0  # the bound of every wait: generous, for a loaded machine


@pytest.fixture
def server() -> Iterator[ThreadedEmulator]:
    yield from running_emulator()


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error: ")]


# -- one rule: I/O errors exit 1 ---------------------------------------------------------------


def test_the_help_states_that_io_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "1 API/network/I-O error (a file that cannot be read or written)" in help_text
    assert "2 usage error" in help_text
    assert "I-O error" in " ".join((build_parser().epilog or "").split())


def test_a_missing_input_file_exits_1(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert server.cli("tables", "insert", "tbl_1", str(missing)) == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert f"cannot read {missing}" in lines[0]

    assert server.cli("batch", "dep_a", str(missing), "-o", str(tmp_path / "out.jsonl")) == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "cannot read" in lines[0]
    assert server.posts("/v1/runs") == []


def test_an_unreadable_at_file_exits_1_without_a_usage_message(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "input.json"
    assert server.cli("runs", "create", "dep_a", "--input", f"@{missing}") == 1
    err = capsys.readouterr().err
    assert "usage:" not in err
    lines = error_lines(err)
    assert len(lines) == 1
    assert f"cannot read value from {missing}" in lines[0]
    assert server.posts("/v1/runs") == []


def test_bad_json_in_an_at_file_is_still_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "input.json"
    bad.write_text("{not json")
    assert main(["--emulator", "runs", "create", "dep_a", "--input", f"@{bad}"]) == 2
    assert "usage:" in capsys.readouterr().err


# -- Ctrl-C on a stream: where to resume ---------------------------------------------------------


def test_resume_command_quotes_its_parts() -> None:
    assert resume_command("run_1", "7") == "crewship-async runs events run_1 --last-event-id 7"
    assert resume_command("run 1", None) == "crewship-async runs events 'run 1'"
    assert (
        resume_command("run_1", "a;b", ["--json"])
        == "crewship-async runs events run_1 --last-event-id 'a;b' --json"
    )


def test_resume_options_keep_the_base_url_and_json_never_the_key() -> None:
    args = build_parser().parse_args(
        ["--api-key", "sk_secret", "--base-url", "http://127.0.0.1:1", "runs", "events", "r"]
    )
    assert resume_options(args) == ["--base-url", "http://127.0.0.1:1"]
    args = build_parser().parse_args(["runs", "events", "r", "--json"])
    assert resume_options(args) == ["--json"]


def spawn(server: ThreadedEmulator, *argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CREWSHIP_BASE_URL": server.url, "CREWSHIP_API_KEY": server.api_key}
    return subprocess.Popen(
        [sys.executable, "-m", "crewship_async.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=default_sigint,
    )


def read_events(stream: IO[str], count: int) -> list[dict[str, Any]]:
    """Read JSON lines until ``count`` events with an id have been printed."""
    events: list[dict[str, Any]] = []
    while sum(1 for event in events if event.get("id")) < count:
        line = stream.readline()
        if not line:
            raise AssertionError(f"stdout ended after {events}")
        record = json.loads(line)
        if "type" in record:
            events.append(record)
    return events


def interrupt(process: subprocess.Popen[str], events: int) -> tuple[list[dict[str, Any]], str]:
    """Wait for ``events`` events with ids, send SIGINT; return every event and stderr."""
    try:
        assert process.stdout is not None
        seen = read_events(process.stdout, events)
        process.send_signal(signal.SIGINT)
        # Read through the same buffered readers: communicate() would read the pipes'
        # descriptors and miss the lines readline() has already buffered. stderr holds
        # a few lines only, so reading stdout to its end first cannot block the child.
        out = process.stdout.read()
        assert process.stderr is not None
        err = process.stderr.read()
        process.wait(timeout=WAIT)
    finally:
        process.kill()
        process.wait()
    rest = [json.loads(line) for line in out.splitlines() if line.strip()]
    return seen + [record for record in rest if "type" in record], err


def assert_resume_line(err: str, run_id: str, last_id: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1] == "interrupted"
    assert lines[-2] == (
        f"last event id: {last_id}; resume after it with: "
        f"crewship-async runs events {run_id} --last-event-id {last_id} --json"
    )


def created_run_id(server: ThreadedEmulator) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        runs = server.call(lambda emu: list(emu.runs))
        if runs:
            return str(runs[0])
        assert time.monotonic() < deadline, "no run was created"
        time.sleep(0.01)


def test_ctrl_c_on_runs_events_prints_where_to_resume_and_the_command_resumes(
    server: ThreadedEmulator,
) -> None:
    server.call(lambda emu: emu.script_runs("forever", count=1))
    assert server.cli("--json", "runs", "create", "dep_a") == 0
    run_id = created_run_id(server)
    with spawn(server, "runs", "events", run_id, "--json") as process:
        events, err = interrupt(process, 3)
    assert process.returncode == 130
    last_id = [event["id"] for event in events if event.get("id")][-1]
    assert_resume_line(err, run_id, last_id)

    # The printed command resumes after that event: nothing already printed comes again.
    assert server.cli("runs", "cancel", run_id) == 0
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "crewship_async.cli",
            "runs",
            "events",
            run_id,
            "--last-event-id",
            last_id,
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CREWSHIP_BASE_URL": server.url, "CREWSHIP_API_KEY": server.api_key},
        cwd=ROOT,
        timeout=WAIT,
    )
    assert resumed.returncode == 0, resumed.stderr
    again = [json.loads(line) for line in resumed.stdout.splitlines() if line.strip()]
    seen_ids = {event["id"] for event in events if event.get("id")}
    assert again
    assert not seen_ids & {event.get("id") for event in again}
    assert again[-1]["type"] in ("run.failed", "run.completed", "complete")


def test_ctrl_c_on_runs_create_stream_prints_where_to_resume(server: ThreadedEmulator) -> None:
    server.call(lambda emu: emu.script_runs("forever", count=1))
    with spawn(server, "--json", "runs", "create", "dep_a", "--stream") as process:
        events, err = interrupt(process, 2)
    assert process.returncode == 130
    run_id = created_run_id(server)
    last_id = [event["id"] for event in events if event.get("id")][-1]
    assert_resume_line(err, run_id, last_id)


def test_ctrl_c_before_any_event_id_says_to_follow_from_the_start(
    server: ThreadedEmulator,
) -> None:
    server.call(lambda emu: emu.script_runs("forever", count=1))
    assert server.cli("--json", "runs", "create", "dep_a") == 0
    run_id = created_run_id(server)
    # Every new stream waits a minute before it answers: no event can arrive.
    server.call(lambda emu: emu.faults.latency(60, route=f"GET /v1/runs/{run_id}/events"))
    with spawn(server, "runs", "events", run_id) as process:
        try:
            deadline = time.monotonic() + WAIT
            while not server.call(lambda emu: emu.stats.in_flight):
                assert process.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=WAIT)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130
    lines = err.strip().splitlines()
    assert lines[-2:] == [
        "no event id received yet; follow the run from the start with: "
        f"crewship-async runs events {run_id}",
        "interrupted",
    ]


# -- batch --retry-failed ----------------------------------------------------------------------


def records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines() if line]


def sent_inputs(server: ThreadedEmulator) -> list[int]:
    return [body["input"]["n"] for body in server.posts("/v1/runs")]


def test_retry_failed_resends_exactly_the_failures_and_resume_sees_the_latest(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    lines = [json.dumps({"n": n}) for n in range(8)]
    lines[5] = "not json"
    inputs.write_text("\n".join(lines) + "\n")
    output = tmp_path / "out.jsonl"
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", "1"]
    server.call(lambda emu: emu.faults.fail_next(3, status=400, route="POST /v1/runs"))
    assert server.cli(*argv) == 1
    first = records(output)
    failed = sorted(record["index"] for record in first if "error" in record)
    assert failed == [0, 1, 2, 5]
    assert sorted(sent_inputs(server)) == [0, 1, 2, 3, 4, 6, 7]
    capsys.readouterr()

    lines[5] = json.dumps({"n": 5})  # the malformed line was fixed meanwhile
    inputs.write_text("\n".join(lines) + "\n")
    assert server.cli(*argv, "--retry-failed") == 0
    out = capsys.readouterr().out
    assert "4 created, 0 failed, 4 skipped (not recorded as failed)" in out
    assert sorted(sent_inputs(server)) == [0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7]
    after = records(output)
    assert after[: len(first)] == first  # appended, nothing rewritten
    appended = after[len(first) :]
    assert sorted(record["index"] for record in appended) == [0, 1, 2, 5]
    assert all("run_id" in record for record in appended)
    assert all(record["input"] == {"n": record["index"]} for record in appended)

    # The latest record of every index is a success now: nothing left to send.
    assert server.cli(*argv, "--retry-failed") == 0
    assert server.cli(*argv, "--resume") == 0
    assert server.cli(*argv, "--resume", "--retry-failed") == 0
    assert len(sent_inputs(server)) == 11
    capsys.readouterr()


def test_retry_failed_with_resume_also_sends_the_inputs_not_recorded(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(4)))
    output = tmp_path / "out.jsonl"
    output.write_text(
        json.dumps({"index": 0, "input": {"n": 0}, "run_id": "run_x", "status": "running"})
        + "\n"
        + json.dumps({"index": 1, "input": {"n": 1}, "error": "boom", "error_type": "APIError"})
        + "\n"
    )
    argv = ["batch", "dep_a", str(inputs), "-o", str(output)]
    assert server.cli(*argv, "--retry-failed") == 0
    assert sent_inputs(server) == [1]
    assert server.cli(*argv, "--retry-failed", "--resume") == 0
    assert sorted(sent_inputs(server)) == [1, 2, 3]
    out = capsys.readouterr().out
    assert "1 created, 0 failed, 3 skipped (not recorded as failed)" in out
    assert "2 created, 0 failed, 2 skipped (already recorded)" in out


def test_retry_failed_warns_about_failures_whose_run_may_exist(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(3)))
    output = tmp_path / "out.jsonl"
    cut = {"error": "cut short", "error_type": "APITimeoutError"}
    output.write_text(
        json.dumps({"index": 0, "input": {"n": 0}, **cut, "request_sent": True})
        + "\n"
        + json.dumps({"index": 1, "input": {"n": 1}, **cut, "request_sent": False})
        + "\n"
        + json.dumps({"index": 2, "input": {"n": 2}, **cut})  # an older record: unknown
    )  # no newline at the end: a complete record, kept
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output), "--retry-failed") == 0
    err = capsys.readouterr().err
    assert (
        "note: 2 of the 3 failures to retry were cut short after their request may have "
        "reached the server: their runs may exist, and sending them again may create a "
        "second run"
    ) in err
    assert sorted(sent_inputs(server)) == [0, 1, 2]


def test_retry_failed_records_whether_a_failed_request_was_sent(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps({"n": 0}) + "\n")
    output = tmp_path / "out.jsonl"
    # The answer is lost after the request was read: the run may exist.
    server.call(lambda emu: emu.faults.close_connection_next(route="POST /v1/runs"))
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output)) == 1
    (record,) = records(output)
    assert record["error_type"] == "APIConnectionError"
    assert record["request_sent"] is True
    capsys.readouterr()
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output), "--retry-failed") == 0
    assert "note: 1 of the 1 failures to retry" in capsys.readouterr().err
    assert "run_id" in records(output)[-1]


def test_retry_failed_needs_earlier_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps({"n": 0}) + "\n")
    base = ["--emulator", "batch", "dep_a", str(inputs)]
    assert main([*base, "--retry-failed"]) == 2
    assert "--retry-failed needs --output FILE" in capsys.readouterr().err
    missing = tmp_path / "none.jsonl"
    assert main([*base, "-o", str(missing), "--retry-failed"]) == 2
    assert "holds no results of an earlier attempt" in capsys.readouterr().err
    held = tmp_path / "held.jsonl"
    held.write_text(json.dumps({"index": 0, "input": {}, "error": "x"}) + "\n")
    assert main([*base, "-o", str(held)]) == 2
    assert "--retry-failed to send its failures again" in capsys.readouterr().err


def test_interrupted_line_of_a_retry() -> None:
    import argparse
    import io

    from crewship_async.cli import _batch
    from crewship_async.cli._batch_attempt import BatchAttempt, interrupted_line

    args = argparse.Namespace(output="o.jsonl", grace=10.0, retry_failed=True, resume=False)
    batch = BatchAttempt(args, io.StringIO(), None, set(), frozenset({1, 2, 3}))  # type: ignore[arg-type]
    batch.written = 1
    line = interrupted_line(batch, signal.SIGINT, 3)
    assert line.endswith(
        "; run the same command again to retry the 2 failures not retried yet "
        "(and those that failed again)"
    )
    line = interrupted_line(batch, signal.SIGINT, None)
    assert "retry the failures not retried yet" in line
    assert _batch.load_outcomes  # the latest outcome per index: see the tests above


def test_an_unknown_column_type_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from crewship_async.cli._args import parse_columns
    from crewship_async.cli._errors import UsageError

    with pytest.raises(UsageError, match=r"unknown column type 'txt' \(known: text, number"):
        parse_columns("company:txt")
    with pytest.raises(UsageError, match=r"--columns\[0\]: unknown column type 'money'"):
        parse_columns('[{"name": "a", "type": "money"}]')
    assert [c.type for c in parse_columns("a:datetime,b")] == ["datetime", "text"]
    assert main(["--emulator", "tables", "create", "t", "--columns", "a:txt"]) == 2
    assert "unknown column type 'txt'" in capsys.readouterr().err


async def test_print_events_cancelled_notes_where_to_resume() -> None:
    import asyncio
    import io

    from crewship_async.cli._commands_runs import print_events
    from crewship_async.cli._output import Output
    from crewship_async.testing import CrewshipEmulator

    async with CrewshipEmulator(step_delay=0.005) as emulator, emulator.client() as client:
        emulator.script_runs("forever")
        for resume, expected in ((["--json"], "resume after it with: "), (None, None)):
            created = await client.runs.create("dep_a")
            stdout, stderr = io.StringIO(), io.StringIO()
            out = Output(json_mode=True, stdout=stdout, stderr=stderr)
            task = asyncio.ensure_future(print_events(client, created.run_id, out, resume=resume))
            deadline = time.monotonic() + WAIT
            while stdout.getvalue().count("\n") < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            printed = [json.loads(line) for line in stdout.getvalue().splitlines()]
            last_id = [event["id"] for event in printed if event.get("id")][-1]
            if expected is None:
                assert stderr.getvalue() == ""
            else:
                assert stderr.getvalue() == (
                    f"last event id: {last_id}; {expected}crewship-async runs events "
                    f"{created.run_id} --last-event-id {last_id} --json\n"
                )
            await client.runs.cancel(created.run_id)
