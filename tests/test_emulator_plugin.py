"""The emulator's pytest plugin and its standalone server entry point."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_cli_support import default_sigint

from crewship_async.testing import CrewshipEmulator, pytest_plugin
from crewship_async.testing.__main__ import build_parser, main, serve_forever

REPO_ROOT = Path(__file__).resolve().parents[1]

# The plugin's fixtures, used here without registering the plugin a second time.
crewship_emulator = pytest_plugin.crewship_emulator
crewship_client = pytest_plugin.crewship_client


async def test_emulator_fixture_is_running(crewship_emulator: CrewshipEmulator) -> None:
    assert crewship_emulator.running
    assert crewship_emulator.step_delay == pytest_plugin.DEFAULT_OPTIONS["step_delay"]
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {crewship_emulator.api_key}"}
        async with session.get(f"{crewship_emulator.url}/v1/runs", headers=headers) as response:
            assert response.status == 200


async def test_client_fixture_targets_the_emulator(
    crewship_emulator: CrewshipEmulator, crewship_client: Any
) -> None:
    assert type(crewship_client).__name__ == "AsyncCrewship"
    assert crewship_emulator.running


def test_marker_options_override_the_defaults() -> None:
    marker = types.SimpleNamespace(kwargs={"strict_deployments": True, "step_delay": 0.5})
    request: Any = types.SimpleNamespace(
        node=types.SimpleNamespace(get_closest_marker=lambda name: marker)
    )
    assert pytest_plugin.emulator_options(request) == {
        "step_delay": 0.5,
        "strict_deployments": True,
    }
    request.node.get_closest_marker = lambda name: None
    assert pytest_plugin.emulator_options(request) == pytest_plugin.DEFAULT_OPTIONS


def test_configure_registers_the_marker() -> None:
    lines: list[tuple[str, str]] = []
    config: Any = types.SimpleNamespace(addinivalue_line=lambda *args: lines.append(args))
    pytest_plugin.pytest_configure(config)
    assert lines[0][0] == "markers"
    assert lines[0][1].startswith("crewship_emulator(")


def test_plugin_imports_without_pytest_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytest_asyncio", None)
    spec = importlib.util.spec_from_file_location(
        "crewship_async.testing._plugin_without_pytest_asyncio", pytest_plugin.__file__
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert module._PYTEST_ASYNCIO is False
    assert module.crewship_emulator.__class__ is pytest_plugin.crewship_emulator.__class__


def test_plugin_loads_in_a_real_pytest_session(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import pytest

            async def test_fixtures(crewship_emulator, crewship_client):
                assert crewship_emulator.running
                assert type(crewship_client).__name__ == "AsyncCrewship"

            @pytest.mark.crewship_emulator(strict_deployments=True, step_delay=0.25)
            async def test_marker(crewship_emulator):
                assert crewship_emulator.step_delay == 0.25
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "asyncio",
            "-p",
            "crewship_async.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


# -- python -m crewship_async.testing -----------------------------------------------------------


def test_parser_defaults() -> None:
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.step_delay, args.strict) == ("127.0.0.1", 8080, 0.5, False)
    args = build_parser().parse_args(["--deployment", "dep_a", "--deployment", "dep_b"])
    assert args.deployment == ["dep_a", "dep_b"]


async def test_serve_forever_until_sigterm(capsys: pytest.CaptureFixture[str]) -> None:
    server = asyncio.ensure_future(serve_forever("127.0.0.1", 0, api_key="cs_test_k"))
    output = ""
    while "Press Ctrl-C" not in output:
        assert not server.done()
        await asyncio.sleep(0.005)
        output += capsys.readouterr().out
    url = output.split("listening on ", 1)[1].split()[0]
    assert "API key: cs_test_k" in output
    assert f"export CREWSHIP_BASE_URL={url}" in output
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer cs_test_k"}
        async with session.get(f"{url}/v1/runs", headers=headers) as response:
            assert response.status == 200
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(server, 5)


def test_main_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    assert "error:" in capsys.readouterr().err


async def test_module_runs_as_a_script() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crewship_async.testing",
        "--port",
        "0",
        "--strict",
        "--deployment",
        "dep_cli",
        "--step-delay",
        "0.001",
        stdout=asyncio.subprocess.PIPE,
        env=env,
        preexec_fn=default_sigint,
    )
    assert process.stdout is not None
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        key_line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        url = first.split("listening on ", 1)[1].strip()
        key = key_line.split("API key: ", 1)[1].strip()
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {key}"}
            for deployment_id, expected in (("dep_cli", 202), ("dep_other", 400)):
                async with session.post(
                    f"{url}/v1/runs", json={"deployment_id": deployment_id}, headers=headers
                ) as response:
                    assert response.status == expected
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 10) == 0
        await process.stdout.read()
    finally:
        if process.returncode is None:  # pragma: no cover - only when the test fails
            process.kill()
            await process.wait()
