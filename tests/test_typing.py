"""The public API's types: mypy (strict) and pyright (strict) accept the correct uses in
``tests/typing/good.py`` and report every mistake marked in ``tests/typing/bad.py``.

Both checkers run in a subprocess against the package in this tree. The pyright half is
skipped only when no ``pyright`` executable is installed (``pip install pyright``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "typing"
GOOD = FIXTURES / "good.py"
BAD = FIXTURES / "bad.py"
TIMEOUT = 600  # pyright may fetch its node package on first use


def marked_lines(path: Path) -> set[int]:
    """The 1-based numbers of the lines of ``path`` that end with ``# error``."""
    lines = path.read_text().splitlines()
    return {number for number, line in enumerate(lines, start=1) if line.endswith("# error")}


def test_the_bad_fixture_marks_one_mistake_per_choice() -> None:
    text = BAD.read_text()
    for mistake in ('on_busy="wiat"', 'environment="prod"', 'status="runing"', '"txt"'):
        assert mistake in text
    assert len(marked_lines(BAD)) >= 10


def run_mypy(path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(cache),
            "--no-pretty",
            "--show-error-codes",
            str(path.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def mypy_error_lines(output: str, path: Path) -> set[int]:
    name = re.escape(str(path.relative_to(ROOT)))
    return {int(m.group(1)) for m in re.finditer(rf"^{name}:(\d+): error:", output, re.M)}


def test_mypy_accepts_the_correct_uses(tmp_path: Path) -> None:
    result = run_mypy(GOOD, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_mypy_reports_each_mistake(tmp_path: Path) -> None:
    result = run_mypy(BAD, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert mypy_error_lines(result.stdout, BAD) == marked_lines(BAD), result.stdout


def pyright_executable() -> str:
    beside = Path(sys.executable).with_name("pyright")
    found = str(beside) if beside.exists() else shutil.which("pyright")
    if found is None:
        pytest.skip("pyright is not installed (pip install pyright): its half of the check")
    return found


def run_pyright(path: Path) -> tuple[dict[str, object], set[int]]:
    """pyright's JSON report on ``path`` (strict: the file says so), and its error lines."""
    result = subprocess.run(
        [pyright_executable(), "--outputjson", "--pythonpath", sys.executable, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    report = json.loads(result.stdout)
    errors = {
        diagnostic["range"]["start"]["line"] + 1
        for diagnostic in report["generalDiagnostics"]
        if diagnostic["severity"] == "error" and Path(diagnostic["file"]) == path
    }
    return report, errors


def test_pyright_accepts_the_correct_uses() -> None:
    report, errors = run_pyright(GOOD)
    assert GOOD.read_text().startswith("# pyright: strict\n")
    assert errors == set(), report["generalDiagnostics"]
    assert report["summary"]["errorCount"] == 0  # type: ignore[index]


def test_pyright_reports_each_mistake() -> None:
    report, errors = run_pyright(BAD)
    assert BAD.read_text().startswith("# pyright: strict\n")
    assert errors == marked_lines(BAD), report["generalDiagnostics"]
