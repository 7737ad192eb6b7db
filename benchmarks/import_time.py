"""Case ``import``: the cost of ``import crewship_async`` in a fresh interpreter.

Each statement runs as ``python -c "<statement>"`` in a new process, ``R`` times
(default 10) interleaved with the others; the child's CPU time (user + system, from
``os.wait4``) and the wall time around it are recorded. A statement's figure is its best
(smallest) time minus the best time of ``python -c pass``, so interpreter start-up is not
counted.

Bytecode is cached the same way for everyone, as after a normal install: the children
run with ``PYTHONPYCACHEPREFIX`` pointing at a temporary directory (and without
``PYTHONDONTWRITEBYTECODE``), and each statement runs once unmeasured first to fill it.
Otherwise the SDK, imported from a source checkout, would be compiled on every run while
its dependencies load their installed ``.pyc`` files.

* ``SDK``: ``import crewship_async`` (it also imports orjson when installed).
* ``own deps``: ``import aiohttp, attrs, cattrs, anyio``: the SDK may add at most 20 %.
* ``own deps + orjson``: the same plus ``orjson`` (informational).
* ``openai``: ``import openai`` (informational).

With ``--profile``, ``python -X importtime -c "import crewship_async"`` is run once more
and the modules with the largest cumulative import time are written to the results folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks._harness import REPO_ROOT
from benchmarks._report import Figure, Row, Target, compare

NAME = "import"
TITLE = "import"
NEEDS_UPSTREAM = False
VARIANTS: dict[str, Any] = {}

STATEMENTS = {
    "python -c pass": "pass",
    "SDK (crewship_async)": "import crewship_async",
    "own deps": "import aiohttp, attrs, cattrs, anyio",
    "own deps + orjson": "import aiohttp, attrs, cattrs, anyio, orjson",
    "openai": "import openai",
}


def _env(pycache: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONPYCACHEPREFIX": pycache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_statement(statement: str, pycache: str) -> dict[str, Any]:
    """Run ``python -c statement`` once: ``{"cpu", "wall"}`` or ``{"skip": why}``.

    ``pycache`` is the bytecode cache directory (``PYTHONPYCACHEPREFIX``) of the child.
    """
    env = _env(pycache)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", statement],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        failed = subprocess.run(
            [sys.executable, "-c", statement],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        last = (failed.stderr.strip().splitlines() or ["exit status != 0"])[-1]
        return {"skip": f"`{statement}` failed: {last}"}
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "ops": 1}


def import_profile(path: str, pycache: str) -> None:
    """Write the 40 largest cumulative entries of ``-X importtime`` for the SDK to ``path``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import crewship_async"],
        cwd=REPO_ROOT,
        env=_env(pycache),
        capture_output=True,
        text=True,
        check=False,
    )
    entries = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].startswith("import time:") or "self" in parts[0]:
            continue
        own = int(parts[0].split(":")[1])
        entries.append((int(parts[1]), own, parts[2].rstrip()))
    entries.sort(reverse=True)
    lines = ["cumulative_us  self_us  module"]
    lines += [f"{total:>13}  {own:>7}  {name}" for total, own, name in entries[:40]]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def run(ctx: Any) -> list[Row]:
    """Time each statement, subtract interpreter start-up, compare the SDK with the rest."""
    runs = ctx.sizes.import_runs
    raw = {label: Figure(label) for label in STATEMENTS}
    with tempfile.TemporaryDirectory(prefix="crewship-bench-pycache-") as pycache:
        for statement in STATEMENTS.values():  # fill the bytecode cache
            time_statement(statement, pycache)
        for index in range(runs):
            ctx.log(f"import: round {index + 1}/{runs}")
            for label, statement in STATEMENTS.items():
                if raw[label].skip is None:
                    raw[label].add(time_statement(statement, pycache))
        if ctx.profile:
            path = ctx.results_dir / "profile-import-sdk-importtime.txt"
            import_profile(str(path), pycache)
            ctx.profiles.append(str(path))
    base = raw["python -c pass"]
    figures: dict[str, Figure] = {}
    for label, figure in raw.items():
        net = Figure(label, skip=figure.skip)
        if figure.ok and base.ok:
            net.samples.append(
                {
                    "cpu": figure.best("cpu") - base.best("cpu"),
                    "wall": figure.best("wall") - base.best("wall"),
                    "ops": 1,
                }
            )
        figures[label] = net
        ctx.figures[f"{NAME}/{label}"] = {**figure.summary(), "net_best": net.samples}

    def cpu(figure: Figure) -> float:
        return figure.per_op("cpu") * 1e3

    def wall(figure: Figure) -> float:
        return figure.per_op("wall") * 1e3

    sdk = figures["SDK (crewship_async)"]
    metric = f"CPU, best of {runs} - startup"
    return [
        compare(TITLE, metric, sdk, figures["own deps"], value=cpu, unit="ms", target=Target(1.2)),
        compare(TITLE, metric, sdk, figures["own deps + orjson"], value=cpu, unit="ms"),
        compare(TITLE, metric, sdk, figures["openai"], value=cpu, unit="ms"),
        compare(
            TITLE,
            f"wall, best of {runs} - startup",
            sdk,
            figures["own deps"],
            value=wall,
            unit="ms",
        ),
    ]
