"""The examples that run to completion, run as the README says: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_webhook_receiver_example() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREWSHIP_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "webhook_receiver.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("received run.failed") for line in lines)
    assert any("the search tool timed out" in line for line in lines)
    assert any(line.startswith("received run.succeeded") for line in lines)
    assert any("200 duplicate" in line for line in lines)
    assert lines[-1] == "events processed: 2 (the redelivery was not)"
    assert done.stderr == ""
