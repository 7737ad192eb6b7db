"""``crewship-async`` as a new user runs it: a closed pipe, plain http, help that explains.

Each test runs the CLI in a subprocess (``python -m crewship_async.cli``), as a shell does.
"""

from __future__ import annotations

import asyncio
import errno
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from test_cli_support import ThreadedEmulator, running_emulator

from crewship_async.cli._errors import is_broken_pipe
from crewship_async.cli._output import Output
from crewship_async.cli._progress import ProgressReporter

ROOT = Path(__file__).resolve().parents[1]

#: Runs in the listing: their JSON lines (with a padded input) overflow any pipe buffer.
LISTED_RUNS = 100


@pytest.fixture
def server() -> Iterator[ThreadedEmulator]:
    yield from running_emulator()


def cli_env(server: Optional[ThreadedEmulator] = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CREWSHIP_BASE_URL", "CREWSHIP_API_KEY")
    }
    if server is not None:
        env.update(CREWSHIP_BASE_URL=server.url, CREWSHIP_API_KEY=server.api_key)
    return env


def run_cli(*argv: str, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crewship_async.cli", *argv],
        capture_output=True,
        text=True,
        env=cli_env() if env is None else env,
        cwd=ROOT,
        timeout=120,
    )


def create_runs(server: ThreadedEmulator, count: int) -> None:
    async def create() -> None:
        async with server.emulator.client() as client:
            for number in range(count):
                await client.runs.create("dep_pipe", input={"n": number, "pad": "x" * 4000})

    asyncio.run_coroutine_threadsafe(create(), server.loop).result(120)


# -- 1. a reader that goes away ----------------------------------------------------------------


def test_a_closed_stdout_ends_quietly_with_141(server: ThreadedEmulator) -> None:
    create_runs(server, LISTED_RUNS)
    argv = ["--json", "runs", "list", "--limit", str(LISTED_RUNS)]
    process = subprocess.Popen(
        [sys.executable, "-m", "crewship_async.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(server),
        cwd=ROOT,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        first = process.stdout.readline()  # like `| head -1`
        assert first.endswith(b"\n")
        process.stdout.close()
        code = process.wait(timeout=120)
        err = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert err == ""
    assert code == 141


def test_the_help_documents_the_closed_stdout_exit_code() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "141 stdout closed early" in " ".join(result.stdout.split())


def pipe_into_head(argv: list[str], env: dict[str, str]) -> tuple[bytes, int, str]:
    """``crewship-async ARGV | head -1`` through a real pipe: head's output, the CLI's exit
    status and its stderr."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "crewship_async.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert cli.stdout is not None
    assert cli.stderr is not None
    try:
        head = subprocess.run(["head", "-1"], stdin=cli.stdout, capture_output=True, timeout=120)
        cli.stdout.close()  # only head reads the pipe: its end closes it
        code = cli.wait(timeout=120)
        err = cli.stderr.read().decode()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        cli.stderr.close()
    return head.stdout, code, err


def test_the_demo_piped_into_head_ends_quietly_with_141() -> None:
    # Human output goes through rich, whose own answer to a closed pipe is exit 1.
    first, code, err = pipe_into_head(["demo", "--quick"], cli_env())
    assert first.startswith(b"crewship-async demo: 20 runs")
    assert err == ""
    assert code == 141


def test_a_batch_piped_into_head_ends_quietly_with_141(
    server: ThreadedEmulator, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"n": n, "pad": "x" * 4000}) + "\n" for n in range(200)))
    first, code, err = pipe_into_head(["batch", "dep_pipe", str(inputs)], cli_env(server))
    assert json.loads(first)["index"] >= 0
    assert err == ""  # no progress line either
    assert code == 141


# -- 2. plain http names the CLI's flag --------------------------------------------------------


def test_plain_http_names_the_cli_flag() -> None:
    result = run_cli("--base-url", "http://example.invalid", "--api-key", "k", "runs", "list")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: refusing plain http://")
    assert "--allow-insecure-http" in lines[0]
    assert "allow_insecure_http" not in lines[0]


def test_the_flag_lets_plain_http_through(server: ThreadedEmulator) -> None:
    # 127.0.0.1 is allowed anyway; the flag must be accepted and the command still work.
    env = cli_env(server)
    result = run_cli("--allow-insecure-http", "--json", "runs", "list", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


# -- 3. and 4. help that explains --------------------------------------------------------------


def test_the_emulator_help_says_each_command_gets_a_fresh_one() -> None:
    result = run_cli("--help")
    text = " ".join(result.stdout.split())
    assert "fresh, empty" in text
    assert "--emulator run against an in-process Crewship emulator" in text
    assert "crewship-async emulator" in text


def test_an_id_not_found_under_emulator_says_why() -> None:
    result = run_cli("--emulator", "runs", "events", "run_made_earlier")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "404: Run not found: run_made_earlier" in lines[0]
    assert "--emulator starts a fresh, empty emulator for each command" in lines[0]
    assert "serve one with `crewship-async emulator`" in lines[0]


def test_runs_events_help_says_last_event_id_replays() -> None:
    result = run_cli("runs", "events", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "holds only one `complete` event with the final status" in text
    assert "--last-event-id 0 to replay its whole log" in text
    assert "--last-event-id ID for the events after that id" in text


def test_last_event_id_replays_a_finished_run(server: ThreadedEmulator) -> None:
    env = cli_env(server)
    created = run_cli("--json", "runs", "create", "dep_x", "--wait", env=env)
    assert created.returncode == 0, created.stderr
    run_id = json.loads(created.stdout.splitlines()[0])["run_id"]
    final = run_cli("--json", "runs", "events", run_id, env=env)
    replay = run_cli("--json", "runs", "events", run_id, "--last-event-id", "1", env=env)
    assert final.returncode == replay.returncode == 0
    final_events = [json.loads(line) for line in final.stdout.splitlines()]
    replayed = [json.loads(line) for line in replay.stdout.splitlines()]
    whole = run_cli("--json", "runs", "events", run_id, "--last-event-id", "0", env=env)
    past_the_end = run_cli("--json", "runs", "events", run_id, "--last-event-id", "99", env=env)
    assert final_events == [
        {"type": "complete", "data": {"status": "succeeded"}, "id": None},
    ]
    assert len(replayed) > 1
    assert replayed[0]["id"] == "2"
    logged = [json.loads(line) for line in whole.stdout.splitlines()]
    assert [event["id"] for event in logged] == [str(n) for n in range(1, len(logged) + 1)]
    assert logged[-1]["type"] == "run.completed"
    assert logged[1:] == replayed
    assert [json.loads(line)["type"] for line in past_the_end.stdout.splitlines()] == ["complete"]


# -- 5. emulator and demo take only the options that mean something to them -------------------


@pytest.mark.parametrize(
    ("command", "hidden", "kept"),
    [
        (
            ["emulator"],
            ["--base-url", "--emulator", "--request-timeout", "--json", "--allow-insecure-http"],
            ["--api-key"],
        ),
        (
            ["demo"],
            ["--base-url", "--emulator", "--api-key", "--request-timeout", "--allow-insecure-http"],
            ["--json"],
        ),
        (
            ["webhook", "listen"],
            ["--base-url", "--emulator", "--api-key", "--request-timeout", "--allow-insecure-http"],
            ["--json"],
        ),
        (
            ["webhook", "trigger"],
            ["--api-key", "--emulator"],
            ["--base-url", "--json", "--request-timeout", "--allow-insecure-http"],
        ),
    ],
)
def test_narrowed_commands_show_only_their_options(
    command: list[str], hidden: list[str], kept: list[str]
) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    for option in hidden:
        assert option not in result.stdout
    for option in kept:
        assert option in result.stdout


def test_the_emulator_says_what_its_api_key_is() -> None:
    text = " ".join(run_cli("emulator", "--help").stdout.split())
    assert "--api-key KEY the key the emulator accepts (default: a random one" in text
    assert "CREWSHIP_API_KEY" not in text.split("global options:")[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["emulator", "--emulator"],
        ["emulator", "--base-url", "https://api.example.com"],
        ["--emulator", "emulator"],
        ["demo", "--base-url", "https://api.example.com"],
        ["--api-key", "k", "demo", "--quick"],
        ["demo", "--allow-insecure-http"],
        ["webhook", "trigger", "whk_x", "--emulator"],
        ["--emulator", "webhook", "trigger", "whk_x"],
        ["--api-key", "k", "webhooks", "trigger", "whk_x"],
    ],
)
def test_narrowed_commands_refuse_the_other_options(argv: list[str]) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_an_option_before_the_name_is_refused_by_name() -> None:
    result = run_cli("--api-key", "k", "webhook", "trigger", "whk_x")
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("error: --api-key means nothing for webhook trigger")
    )


def test_other_commands_keep_every_global_option() -> None:
    result = run_cli("runs", "list", "--help")
    for option in ("--api-key", "--base-url", "--emulator", "--json", "--request-timeout"):
        assert option in result.stdout
    assert "--allow-insecure-http" in result.stdout


# -- the pieces behind a quiet end, in process ------------------------------------------------


class ClosedPipe(io.StringIO):
    """A stdout whose reader went away."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_rich_output_to_a_closed_pipe_raises_broken_pipe_not_exit_1() -> None:
    out = Output(json_mode=False, stdout=ClosedPipe())
    with pytest.raises(BrokenPipeError, match="went away"):
        out.record({"id": "run_1"})


def test_progress_ends_without_its_last_line_when_the_pipe_closed() -> None:
    stream = io.StringIO()
    reporter = ProgressReporter("runs", 3, mode="plain", stream=stream, interval=60.0)
    with pytest.raises(ExceptionGroup), reporter:
        raise ExceptionGroup("batch", [BrokenPipeError(errno.EPIPE, "Broken pipe")])
    assert stream.getvalue() == ""


def test_progress_prints_its_last_line_after_another_error() -> None:
    stream = io.StringIO()
    reporter = ProgressReporter("runs", 3, mode="plain", stream=stream, interval=60.0)
    reporter.start()
    reporter.advance()
    reporter.__exit__(OSError, OSError("disk full"), None)
    assert stream.getvalue().startswith("runs: 1/3 done")


def test_is_broken_pipe_looks_inside_exception_groups() -> None:
    assert is_broken_pipe(BrokenPipeError())
    assert is_broken_pipe(ExceptionGroup("outer", [ExceptionGroup("inner", [BrokenPipeError()])]))
    assert not is_broken_pipe(ExceptionGroup("outer", [ValueError("x"), BrokenPipeError()]))
    assert not is_broken_pipe(OSError(errno.EIO, "I/O error"))
