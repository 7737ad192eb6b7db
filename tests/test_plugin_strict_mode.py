"""The pytest plugin's fixtures under pytest-asyncio's strict mode (its default).

The README's example (read from README.md) runs in a pytest session of its own, in strict
mode and in auto mode, with the plugin loaded by ``-p``; every warning is an error there,
as in this suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first Python block of the README's section on testing with the emulator."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Testing your code: the emulator", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


MORE_TESTS = """

@pytest.mark.asyncio
@pytest.mark.crewship_emulator(step_delay=0.25)
async def test_marker(crewship_emulator):
    assert crewship_emulator.step_delay == 0.25

async def test_unmarked(crewship_client):
    raise AssertionError("strict mode does not run an unmarked async test")
"""


def test_the_readme_example_is_marked_for_strict_mode() -> None:
    example = readme_example()
    assert example.startswith("import pytest\n\n@pytest.mark.asyncio\nasync def test_")
    assert "asyncio_mode = auto" in (ROOT / "README.md").read_text()


def run_session(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_service.py").write_text(readme_example() + textwrap.dedent(MORE_TESTS))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            # The entry point is turned off so that -p loads the plugin by its module name.
            "-p",
            "no:crewship_async",
            "-p",
            "crewship_async.testing.pytest_plugin",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-W",
            "error",
            *options,
            str(tmp_path / "test_service.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_example_passes_in_strict_mode(tmp_path: Path) -> None:
    result = run_session(tmp_path, "-o", "asyncio_mode=strict", "-k", "not unmarked")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_strict_mode_needs_the_asyncio_mark(tmp_path: Path) -> None:
    result = run_session(tmp_path, "-o", "asyncio_mode=strict", "-k", "unmarked")
    assert result.returncode != 0
    assert "async def functions are not natively supported" in result.stdout


def test_the_readme_example_passes_in_auto_mode(tmp_path: Path) -> None:
    result = run_session(tmp_path, "-o", "asyncio_mode=auto", "-k", "not unmarked")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
