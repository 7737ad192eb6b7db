"""The benchmark suite runs end to end at smoke size and prints its results table.

No performance threshold is checked here: the figures of a smoke run mean nothing. Cases
whose baseline libraries are not installed (the ``bench`` extra) show SKIP rows in the
table instead of failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HEADER = "| Case "


def _run_suite(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--results-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_smoke_run_prints_the_table_and_writes_results(tmp_path: Path) -> None:
    done = _run_suite("--smoke", "--only", "trigger,sse", tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith(HEADER))
    for column in ("Baseline", "Ratio", "Target", "Result"):
        assert column in header
    assert any(line.startswith("| run trigger ") for line in lines)
    assert any(line.startswith("| event stream ") for line in lines)
    assert (tmp_path / "latest.json").is_file()
    assert len(list(tmp_path.glob("2*.json"))) == 1


def test_unknown_case_is_refused(tmp_path: Path) -> None:
    done = _run_suite("--only", "nonsense", tmp_path=tmp_path)
    assert done.returncode != 0
    assert "unknown case" in done.stderr


def test_call_path_prints_the_sdk_share_of_a_call() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.call_path", "--calls", "200"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "runs.create, one at a time",
        "create_many @ 100",
    ]
    assert all(float(line.split(":")[1].split()[0]) > 0 for line in lines)
