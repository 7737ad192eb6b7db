"""Measurement plumbing shared by the cases: the client worker and its subprocess launcher.

Every client runs in a subprocess of its own: ``python -m benchmarks._worker <module>
<variant> <params-json>``. The worker imports ``benchmarks.<module>``, looks the variant up
in its ``VARIANTS`` mapping, and runs it (a coroutine function gets its own event loop via
:func:`asyncio.run`). The variant does its set-up and warm-up, then wraps the measured work
in ``meter.measure(ops)``; the worker prints one line ``RESULT <json>`` with

* ``cpu``: process CPU seconds (user + system, all threads: :func:`time.process_time`)
  spent inside the measured block, and its split ``cpu_user``/``cpu_sys``
  (:func:`os.times`, 10 ms resolution);
* ``wall``: wall-clock seconds of the same block;
* ``ops``: the operations the block performed (requests, events, pages ...);
* ``maxrss_kb``: the process's peak resident set size (``ru_maxrss``) at the end;
* anything the variant put in ``meter.extra``.

``params["block_imports"]``, a list of module names, makes those modules unimportable in
the worker (``sys.modules[name] = None``) before anything else is imported: the ``sse``
case runs the SDK and the raw loop without orjson that way, as after a plain install.

A variant that cannot run here (an SDK feature not built yet, a baseline library not
installed) raises :class:`Unavailable`; the result is then ``{"skip": reason}``. With
``params["profile"]`` set to ``{"kind": "cprofile" | "pyinstrument", "path": ...}`` the
measured block runs under that profiler and its report is written to ``path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

__all__ = [
    "REPO_ROOT",
    "Meter",
    "Unavailable",
    "current_rss_kb",
    "raise_fd_limit",
    "run_worker",
    "worker_main",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "RESULT "


class Unavailable(Exception):
    """The variant cannot run in this environment; the message says why."""


def current_rss_kb() -> Optional[int]:
    """The process's current resident set size in KiB (Linux ``/proc``), else None."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kb() -> int:
    """The process's peak resident set size in KiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard limit (many sockets are opened)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Meter:
    """Measures one block of work: process CPU time and wall time, once per worker."""

    def __init__(self, profile: Optional[dict[str, str]] = None) -> None:
        self.cpu: Optional[float] = None
        self.wall: Optional[float] = None
        self.ops = 0
        self.extra: dict[str, Any] = {}
        self._profile = profile

    @contextlib.contextmanager
    def measure(self, ops: int) -> Iterator[Meter]:
        """Time the block; ``ops`` is how many operations it performs (may be updated
        through ``meter.ops`` inside the block). Only one block per worker counts."""
        if self.cpu is not None:
            raise RuntimeError("a worker measures exactly one block")
        self.ops = ops
        with self._profiling():
            times0 = os.times()
            cpu0 = time.process_time()
            wall0 = time.perf_counter()
            yield self
            self.wall = time.perf_counter() - wall0
            self.cpu = time.process_time() - cpu0
            times1 = os.times()
        self.extra["cpu_user"] = times1.user - times0.user
        self.extra["cpu_sys"] = times1.system - times0.system

    @contextlib.contextmanager
    def _profiling(self) -> Iterator[None]:
        if not self._profile:
            yield
            return
        kind, path = self._profile["kind"], self._profile["path"]
        if kind == "pyinstrument":
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            try:
                yield
            finally:
                profiler.stop()
                Path(path).write_text(profiler.output_text(unicode=True, show_all=False))
            return
        import cProfile
        import io
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        try:
            yield
        finally:
            profile.disable()
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("tottime").print_stats(35)
            stats.sort_stats("cumulative").print_stats(45)
            Path(path).write_text(out.getvalue())


def worker_main(argv: list[str]) -> int:
    """Run ``<module> <variant> <params-json>`` and print its ``RESULT`` line."""
    module_name, variant, params_json = argv
    params = json.loads(params_json)
    for name in params.get("block_imports", ()):
        sys.modules[name] = None  # type: ignore[assignment]  # import now raises ImportError
    meter = Meter(params.get("profile"))
    try:
        module = importlib.import_module(f"benchmarks.{module_name}")
        func = module.VARIANTS[variant]
        if inspect.iscoroutinefunction(func):
            asyncio.run(func(meter, params))
        else:
            func(meter, params)
    except Unavailable as exc:
        result: dict[str, Any] = {"skip": str(exc)}
    else:
        if meter.cpu is None:
            raise RuntimeError(f"{module_name}.{variant} measured nothing")
        result = {
            "cpu": meter.cpu,
            "wall": meter.wall,
            "ops": meter.ops,
            "maxrss_kb": peak_rss_kb(),
            **meter.extra,
        }
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def run_worker(
    module: str, variant: str, params: dict[str, Any], *, timeout: float
) -> dict[str, Any]:
    """Run one variant in a fresh interpreter and return its result.

    The result is the worker's ``RESULT`` mapping (``{"skip": reason}`` when unavailable)
    or ``{"error": message}`` when the worker failed, timed out or printed no result.
    """
    command = [sys.executable, "-m", "benchmarks._worker", module, variant, json.dumps(params)]
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{module}.{variant} did not finish within {timeout:.0f}s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])  # type: ignore[no-any-return]
    tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
    return {"error": f"{module}.{variant} exited {done.returncode}: {tail[-400:]}"}
