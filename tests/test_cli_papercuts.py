"""``crewship-async`` as a new user runs it: a closed pipe, plain http, help that explains.

Each test runs the CLI in a subprocess (``python -m crewship_async.cli``), as a shell does.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from test_cli_support import ThreadedEmulator, running_emulator

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


def test_runs_events_help_says_last_event_id_replays() -> None:
    result = run_cli("runs", "events", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "only its final event" in text
    assert "--last-event-id ID to replay the events after that id" in text


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
    assert len(final_events) == 1
    assert len(replayed) > 1
    assert replayed[0]["id"] == "2"


# -- 5. emulator and demo take only the options that mean something to them -------------------


@pytest.mark.parametrize(
    ("command", "hidden", "kept"),
    [
        ("emulator", ["--base-url", "--emulator", "--request-timeout", "--json"], ["--api-key"]),
        ("demo", ["--base-url", "--emulator", "--api-key", "--request-timeout"], ["--json"]),
    ],
)
def test_standalone_commands_show_only_their_options(
    command: str, hidden: list[str], kept: list[str]
) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    for option in hidden:
        assert option not in result.stdout
    for option in kept:
        assert option in result.stdout
    assert "--allow-insecure-http" not in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["emulator", "--emulator"],
        ["emulator", "--base-url", "https://api.example.com"],
        ["--emulator", "emulator"],
        ["demo", "--base-url", "https://api.example.com"],
        ["--api-key", "k", "demo", "--quick"],
        ["demo", "--allow-insecure-http"],
    ],
)
def test_standalone_commands_refuse_client_options(argv: list[str]) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_other_commands_keep_every_global_option() -> None:
    result = run_cli("runs", "list", "--help")
    for option in ("--api-key", "--base-url", "--emulator", "--json", "--request-timeout"):
        assert option in result.stdout
    assert "--allow-insecure-http" in result.stdout
