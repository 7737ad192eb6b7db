"""``batch`` stopped by Ctrl-C or SIGTERM: every outcome recorded, resumed exactly once.

The subprocess tests run ``crewship-async batch`` as a user does, against an emulator on
a background thread of the test process (so the test can add latency and count the runs
it created), and interrupt it with real signals. They wait on conditions (lines in the
output file, requests held by the emulator) with generous bounds, never on sleeps alone.
The in-process tests send the signal to the test process itself, while ``main()`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Callable, Optional

import pytest
from test_cli_support import ThreadedEmulator, default_sigint, running_emulator

from crewship_async.cli import _batch
from crewship_async.cli._batch_attempt import BatchAttempt, interrupted_line
from crewship_async.cli._batch_signals import StopOnSignal, uncancel
from crewship_async.cli._progress import ProgressReporter

ROOT = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-m", "crewship_async.cli")
WAIT = 120.0  # the overall bound of every wait: generous, for a loaded machine


@pytest.fixture
def server() -> Iterator[ThreadedEmulator]:
    yield from running_emulator()


def write_inputs(path: Path, count: int) -> None:
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(count)))


def records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")  # every line whole
    return [json.loads(line) for line in text.splitlines() if line]


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def created_inputs(server: ThreadedEmulator) -> collections.Counter[int]:
    """How many runs the emulator created for each input (from its state, not runs.list)."""
    return collections.Counter(
        server.call(lambda emu: [run.input["n"] for run in emu.runs.values()])
    )


def sent_inputs(server: ThreadedEmulator) -> list[int]:
    return [body["input"]["n"] for body in server.posts("/v1/runs")]


def wait_for(check: Callable[[], bool], what: str, process: Optional[Any] = None) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the batch exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def hold_new_posts(server: ThreadedEmulator) -> None:
    """From now on, POST /v1/runs waits a minute before it is handled."""
    server.call(lambda emu: emu.faults.latency(60, route="POST /v1/runs"))


def in_flight(server: ThreadedEmulator) -> int:
    return server.call(lambda emu: emu.stats.in_flight)


def spawn(server: ThreadedEmulator, *argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CREWSHIP_BASE_URL": server.url, "CREWSHIP_API_KEY": server.api_key}
    return subprocess.Popen(
        [*CLI, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=default_sigint,
    )


def read_stderr_until(stream: IO[str], text: str, seen: list[str]) -> None:
    """Read stderr lines (kept in ``seen``) until one contains ``text``."""
    while True:
        line = stream.readline()
        if not line:
            raise AssertionError(f"stderr ended without {text!r}: {seen}")
        seen.append(line)
        if text in line:
            return


def interrupt_then_resume(
    server: ThreadedEmulator, tmp_path: Path, signum: int, total: int, concurrency: int
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, total)
    output = tmp_path / "out.jsonl"
    # Slow POSTs: there are always requests in flight when the signal comes.
    server.call(lambda emu: emu.faults.latency(0.2, route="POST /v1/runs"))
    argv = ["batch", "dep_a", str(inputs), "-o", str(output)]
    with spawn(server, *argv, "--concurrency", str(concurrency)) as process:
        try:
            wait_for(lambda: line_count(output) >= total // 5, "a fifth of the lines", process)
            wait_for(lambda: in_flight(server) > 0, "requests in flight", process)
            process.send_signal(signum)
            _, err = process.communicate(timeout=WAIT)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signum
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    lines = records(output)
    written = len(lines)
    assert total // 5 <= written < total
    last = err.strip().splitlines()[-1]
    assert last == (
        f"{name}: stopped; {written} outcomes recorded in {output}; run the same command "
        f"with --resume to send the {total - written} inputs not recorded yet"
    )
    assert f"{name}: sending no new inputs; waiting up to 10s" in err
    # Every run the interrupted batch created is recorded, and nothing else was sent.
    assert all("run_id" in line for line in lines)
    assert {line["run_id"] for line in lines} == set(server.call(lambda emu: list(emu.runs)))
    assert sorted(sent_inputs(server)) == sorted(line["index"] for line in lines)

    server.call(lambda emu: emu.faults.reset())
    assert server.cli(*argv, "--resume", "--concurrency", str(concurrency)) == 0
    assert created_inputs(server) == dict.fromkeys(range(total), 1)  # exactly one run each
    final = records(output)
    assert len(final) == total
    assert collections.Counter(line["index"] for line in final if "run_id" in line) == (
        dict.fromkeys(range(total), 1)
    )


# -- as a user runs it: subprocesses and real signals -----------------------------------


def test_ctrl_c_records_every_run_and_resume_creates_each_once(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_then_resume(server, tmp_path, signal.SIGINT, total=1000, concurrency=64)
    capsys.readouterr()


def test_sigterm_records_every_run_and_exits_143(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_then_resume(server, tmp_path, signal.SIGTERM, total=300, concurrency=16)
    capsys.readouterr()


def test_a_second_ctrl_c_aborts_at_once(server: ThreadedEmulator, tmp_path: Path) -> None:
    total, concurrency = 200, 8
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, total)
    output = tmp_path / "out.jsonl"
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", str(concurrency)]
    seen: list[str] = []
    with spawn(server, *argv, "--grace", "600") as process:
        try:
            assert process.stderr is not None
            wait_for(lambda: line_count(output) >= 8, "the first lines", process)
            hold_new_posts(server)
            wait_for(lambda: in_flight(server) == concurrency, "requests held", process)
            process.send_signal(signal.SIGINT)
            read_stderr_until(process.stderr, "sending no new inputs", seen)
            started = time.monotonic()
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=WAIT)
            elapsed = time.monotonic() - started
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130
    err = "".join(seen) + err
    assert "Traceback" not in err
    assert elapsed < 60  # far less than the 600 s grace: it did not wait
    assert err.strip().splitlines()[-1] == (
        f"stopped after {line_count(output)} outcomes; run the same command with --resume "
        "to send the inputs not recorded yet (a request in flight when it stopped may "
        "have created a run that is not recorded)"
    )
    assert 8 <= len(records(output)) < total
    wait_for(lambda: in_flight(server) == 0, "the held requests to be dropped")


def test_grace_expiry_records_the_unknown_ones_and_resume_skips_them(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total, concurrency = 200, 8
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, total)
    output = tmp_path / "out.jsonl"
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", str(concurrency)]
    with spawn(server, *argv, "--grace", "0.5") as process:
        try:
            wait_for(lambda: line_count(output) >= 8, "the first lines", process)
            hold_new_posts(server)
            wait_for(lambda: in_flight(server) == concurrency, "requests held", process)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=WAIT)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in err
    lines = records(output)
    cut = [line for line in lines if "error" in line]
    assert len(cut) == concurrency
    assert all(line["error_type"] == "APITimeoutError" for line in cut)
    assert all("may or may not exist" in line["error"] for line in cut)
    last = err.strip().splitlines()[-1]
    assert f"recorded in {output} ({concurrency} of them cut short after the 0.5s grace" in last
    wait_for(lambda: in_flight(server) == 0, "the held requests to be dropped")
    # The emulator never finished them (the connection closed first): no run exists, and
    # every run that does exist is recorded.
    assert {line["run_id"] for line in lines if "run_id" in line} == set(
        server.call(lambda emu: list(emu.runs))
    )
    server.call(lambda emu: emu.faults.reset())
    sent_before = len(sent_inputs(server))
    assert server.cli(*argv, "--resume") == 0
    assert len(sent_inputs(server)) - sent_before == total - len(lines)  # none sent again
    assert sorted(line["index"] for line in records(output)) == list(range(total))
    capsys.readouterr()


def test_inputs_cut_short_before_they_were_sent_are_left_for_resume(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every POST after the first lines is answered 429 with a long Retry-After: the
    # inputs then wait at the rate-limit gate, unsent, when the grace period runs out.
    total = 60
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, total)
    output = tmp_path / "out.jsonl"
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", "4"]
    with spawn(server, *argv, "--grace", "0.5") as process:
        try:
            wait_for(lambda: line_count(output) >= 4, "the first lines", process)
            server.call(
                lambda emu: emu.faults.fail_next(
                    10_000, status=429, headers={"Retry-After": "50"}, route="POST /v1/runs"
                )
            )
            wait_for(
                lambda: len(sent_inputs(server)) > sum(created_inputs(server).values()),
                "a 429",
                process,
            )
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=WAIT)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in err
    lines = records(output)
    assert all("error" not in line for line in lines)  # the unsent ones were not recorded
    assert len(lines) < total
    assert "cut short" not in err.strip().splitlines()[-1]
    server.call(lambda emu: emu.faults.reset())
    assert server.cli(*argv, "--resume") == 0
    assert sorted(line["index"] for line in records(output)) == list(range(total))
    assert all("run_id" in line for line in records(output))
    assert created_inputs(server) == collections.Counter(range(total))  # each run once
    capsys.readouterr()


# -- in process: main() and a signal sent to this process ---------------------------------


def signal_when(check: Callable[[], bool], *signums: int) -> threading.Thread:
    """A thread that sends ``signums`` to this process, one by one, once ``check()`` holds."""

    def run() -> None:
        deadline = time.monotonic() + WAIT
        while not check() and time.monotonic() < deadline:
            time.sleep(0.005)
        for signum in signums:
            os.kill(os.getpid(), signum)
            time.sleep(0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_in_process_sigterm_drain_to_stdout(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total = 60
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, total)
    server.call(lambda emu: emu.faults.latency(0.05, route="POST /v1/runs"))
    previous = signal.getsignal(signal.SIGTERM)
    sender = signal_when(lambda: len(server.posts("/v1/runs")) >= 10, signal.SIGTERM)
    code = server.cli("--json", "batch", "dep_a", str(inputs), "--concurrency", "4")
    sender.join(WAIT)
    assert code == 143
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler was removed
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert 10 <= len(lines) < total
    assert {line["run_id"] for line in lines} == set(server.call(lambda emu: list(emu.runs)))
    assert captured.err.strip().splitlines()[-1] == (
        f"SIGTERM: stopped; {len(lines)} outcomes written to stdout; pass --output FILE "
        "to be able to --resume a batch"
    )


@pytest.mark.parametrize("to_file", [True, False])
def test_in_process_ctrl_c_twice_with_stdin_input(
    server: ThreadedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    to_file: bool,
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 100)
    output = tmp_path / "out.jsonl"
    hold_new_posts(server)
    with inputs.open() as handle:
        monkeypatch.setattr(sys, "stdin", handle)
        sender = signal_when(lambda: in_flight(server) == 4, signal.SIGINT, signal.SIGINT)
        where = ["-o", str(output)] if to_file else []
        code = server.cli("batch", "dep_a", "-", *where, "--concurrency", "4")
        sender.join(WAIT)
    assert code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    captured = capsys.readouterr()
    assert "SIGINT: sending no new inputs; waiting up to 10s for the 4 requests" in captured.err
    if to_file:
        assert records(output) == []
        assert "may have created a run that is not recorded" in captured.err
    else:
        assert captured.out == ""
        assert "--resume" not in captured.err
    server.call(lambda emu: emu.faults.reset())
    wait_for(lambda: in_flight(server) == 0, "the held requests to be dropped")


def test_in_process_ctrl_c_while_the_grace_runs_out_without_a_total(
    server: ThreadedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 100)
    output = tmp_path / "out.jsonl"
    hold_new_posts(server)
    with inputs.open() as handle:
        monkeypatch.setattr(sys, "stdin", handle)
        sender = signal_when(lambda: in_flight(server) == 3, signal.SIGINT)
        argv = ["batch", "dep_a", "-", "-o", str(output), "--concurrency", "3", "--grace", "0.1"]
        code = server.cli(*argv)
        sender.join(WAIT)
    assert code == 130
    assert [line["error_type"] for line in records(output)] == ["APITimeoutError"] * 3
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        f"SIGINT: stopped; 3 outcomes recorded in {output} (3 of them cut short after the "
        "0.1s grace period while waiting for their response, recorded as APITimeoutError "
        "errors: their runs may or may not exist; --resume does not send them again); run "
        "the same command with --resume to send the inputs not recorded yet"
    )
    server.call(lambda emu: emu.faults.reset())
    wait_for(lambda: in_flight(server) == 0, "the held requests to be dropped")


def test_fail_fast_stops_the_feed(
    server: ThreadedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 50)
    output = tmp_path / "out.jsonl"
    server.call(lambda emu: emu.faults.fail_next(1, status=400, route="POST /v1/runs"))
    argv = ["batch", "dep_a", str(inputs), "-o", str(output), "--concurrency", "1"]
    assert server.cli(*argv, "--fail-fast") == 1
    assert len(sent_inputs(server)) <= 2
    assert _batch.DEFAULT_GRACE == 10
    capsys.readouterr()


def test_a_failure_mid_batch_still_says_how_to_resume(
    server: ThreadedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    write_inputs(inputs, 20)
    output = tmp_path / "out.jsonl"
    original = BatchAttempt.write

    def write(self: Any, record: dict[str, Any]) -> None:
        if self.written == 5:
            raise OSError("disk full")
        original(self, record)

    monkeypatch.setattr(BatchAttempt, "write", write)
    assert server.cli("batch", "dep_a", str(inputs), "-o", str(output)) == 1
    err = capsys.readouterr().err
    assert "stopped after 5 outcomes" in err
    assert err.strip().splitlines()[-1] == "error: disk full"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- units ---------------------------------------------------------------------------------


class FakeFanOut:
    def __init__(self) -> None:
        self.stopped: list[Optional[float]] = []
        self.in_flight = 3

    def stop_feeding(self, *, grace: Optional[float] = None) -> None:
        self.stopped.append(grace)


async def test_stop_on_signal_handles_two_signals_then_ignores_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fanout = FakeFanOut()
    calls: list[tuple[int, int]] = []
    stopper = StopOnSignal(fanout, 2.5, lambda *args: calls.append(args))  # type: ignore[arg-type]
    # A handler set outside Python reads as None: there is nothing to put back.
    monkeypatch.setattr(signal, "getsignal", lambda signum: None)
    with stopper:
        assert not stopper.aborted
        stopper._handle(signal.SIGTERM)
        assert fanout.stopped == [2.5]
        assert calls == [(signal.SIGTERM, 3)]
        assert stopper.exit_code() == 143
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    task = asyncio.current_task()
    assert task is not None
    with stopper:
        stopper._handle(signal.SIGINT)  # the second: cancels this task
        stopper._handle(signal.SIGINT)  # a third does nothing more
        assert stopper.aborted
        assert task.cancelling() == 1
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(0)
        task.uncancel()
    assert stopper.exit_code() == 130
    assert fanout.stopped == [2.5]
    uncancel(None)  # Python < 3.11: nothing to take back


def test_interrupted_line_with_and_without_a_total(tmp_path: Path) -> None:
    args = argparse.Namespace(output=str(tmp_path / "o.jsonl"), grace=10.0)
    batch = BatchAttempt(args, io.StringIO(), None, set())  # type: ignore[arg-type]
    batch.written = 7
    line = interrupted_line(batch, signal.SIGINT, 10)
    assert line.endswith("--resume to send the 3 inputs not recorded yet")
    line = interrupted_line(batch, signal.SIGINT, None)
    assert line.endswith("--resume to send the inputs not recorded yet")


def test_progress_note_keeps_a_live_bar_whole() -> None:
    drawn = io.StringIO()
    with ProgressReporter("runs", 4, mode="rich", stream=drawn) as bar:
        bar.advance()
        bar.note("SIGINT: sending no new inputs")
    assert "SIGINT: sending no new inputs" in drawn.getvalue()
    plain = io.StringIO()
    ProgressReporter("runs", 4, mode="off", stream=plain).note("a line")
    assert plain.getvalue() == "a line\n"
