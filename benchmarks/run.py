"""Run the benchmark suite and print one results table.

``python -m benchmarks`` (or ``python benchmarks/run.py``) starts the canned upstream
(:mod:`benchmarks.upstream`) in a process of its own, runs each selected case, prints the
table on stdout (progress goes to stderr), and writes the results as JSON to
``benchmarks/results/<UTC timestamp>.json`` and ``benchmarks/results/latest.json``.

Every client runs in a subprocess of its own (:mod:`benchmarks._harness`); the
repetitions of a case are interleaved across its clients (A B C, A B C, ...) so slow
drifts of a shared machine hit all of them alike, and each figure is the median over
``--repeat`` repetitions. Only ratios between figures of the same run are meaningful.

Exit status: 0 when every row was measured or skipped (a FAIL is a finding, not an
error; ``--strict`` turns FAILs into exit status 1); 2 when a client failed (ERROR rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import REPO_ROOT, run_worker
from benchmarks._report import TABLE_HEADER, Figure, Row, render_table

__all__ = ["CASES", "Context", "Sizes", "main"]

CASES = {
    "trigger": "trigger",
    "sse": "stream",
    "decode": "decode",
    "import": "import_time",
    "fanout-memory": "fanout_memory",
    "open-streams": "open_streams",
}
ALIASES = {
    "stream": "sse",
    "events": "sse",
    "list": "decode",
    "fanout": "fanout-memory",
    "memory": "fanout-memory",
    "streams": "open-streams",
}
RESULTS_DIR = Path(__file__).resolve().parent / "results"
LIBRARIES = (
    "aiohttp",
    "attrs",
    "cattrs",
    "anyio",
    "orjson",
    "httpx",
    "httpx-sse",
    "pydantic",
    "pydantic-core",
    "aiohttp-sse-client",
    "openai",
    "crewship-async",
)


@dataclass
class Sizes:
    """How big each case is."""

    trigger_requests: int = 20_000
    trigger_warmup: int = 500
    httpx_requests: int = 3_000
    sequential_requests: int = 5_000
    concurrency: int = 100
    events: int = 200_000
    warm_events: int = 500
    growth_events: tuple[int, int] = (10_000, 1_000_000)
    decode_threads: int = 1_000
    decode_iterations: int = 100
    import_runs: int = 10
    fanout_sizes: tuple[int, int] = (10_000, 1_000_000)
    fanout_concurrency: int = 100
    fanout_repeat: int = 1
    streams: int = 1_000

    @classmethod
    def smoke(cls) -> Sizes:
        """Tiny sizes: checks that everything runs, measures nothing meaningful."""
        return cls(
            trigger_requests=300,
            trigger_warmup=100,
            httpx_requests=200,
            sequential_requests=100,
            events=2_000,
            warm_events=50,
            growth_events=(500, 5_000),
            decode_iterations=3,
            import_runs=2,
            fanout_sizes=(500, 2_000),
            streams=20,
        )


class Upstream:
    """The canned upstream in its own process; ``port`` is known once started."""

    def __init__(self, event_sizes: list[int], threads: int) -> None:
        self.event_sizes = event_sizes
        self.threads = threads
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.port = 0

    def __enter__(self) -> Upstream:
        command = [sys.executable, "-m", "benchmarks.upstream", "--threads", str(self.threads)]
        for size in self.event_sizes:
            command += ["--events", str(size)]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the upstream did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class Context:
    """What a case's ``run(ctx)`` gets: sizes, the upstream address, and :meth:`measure`."""

    def __init__(
        self,
        *,
        sizes: Sizes,
        repeat: int,
        smoke: bool,
        port: int,
        profile: Optional[str],
        results_dir: Path,
        stamp: str,
    ) -> None:
        self.sizes = sizes
        self.repeat = repeat
        self.smoke = smoke
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.profile = profile
        self.results_dir = results_dir
        self.stamp = stamp
        self.figures: dict[str, dict[str, Any]] = {}
        self.profiles: list[str] = []
        self.timeout = 300.0 if smoke else 1800.0

    def log(self, message: str) -> None:
        """A progress line on stderr."""
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def measure(
        self,
        module: str,
        clients: dict[str, tuple[str, dict[str, Any]]],
        *,
        repeat: Optional[int] = None,
        profile: Sequence[str] = (),
    ) -> dict[str, Figure]:
        """Run each client ``repeat`` times (interleaved) and return a Figure per label.

        ``clients`` maps a label to ``(variant, params)``. A client that skips or fails
        is not run again. With ``--profile``, the variants named in ``profile`` run once
        more under the profiler (that run is not counted) and the report is saved.
        """
        repeat = self.repeat if repeat is None else repeat
        figures = {label: Figure(label) for label in clients}
        for rep in range(repeat):
            for label, (variant, params) in clients.items():
                figure = figures[label]
                if figure.skip is not None or figure.error is not None:
                    continue
                self.log(f"{module}: {label} ({rep + 1}/{repeat})")
                figure.add(run_worker(module, variant, params, timeout=self.timeout))
        if self.profile:
            for label, (variant, params) in clients.items():
                if variant not in profile or not figures[label].ok:
                    continue
                path = self.results_dir / f"profile-{module}-{variant}-{self.profile}.txt"
                self.log(f"{module}: {label} under {self.profile} -> {path.name}")
                spec = {"kind": self.profile, "path": str(path)}
                result = run_worker(
                    module, variant, {**params, "profile": spec}, timeout=self.timeout
                )
                if "error" in result:
                    self.log(f"profiling {label} failed: {result['error']}")
                else:
                    self.profiles.append(str(path))
        for label, figure in figures.items():
            self.figures[f"{module}/{label}"] = figure.summary()
        return figures


def _versions() -> dict[str, Optional[str]]:
    from importlib import metadata

    out: dict[str, Optional[str]] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def _parse_cases(values: list[str]) -> list[str]:
    chosen: list[str] = []
    for value in values:
        for name in value.split(","):
            name = ALIASES.get(name.strip(), name.strip())
            if not name:
                continue
            if name not in CASES:
                known = ", ".join([*CASES, *ALIASES])
                raise SystemExit(f"unknown case {name!r}; known: {known}")
            if name not in chosen:
                chosen.append(name)
    return chosen


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="crewship_async benchmarks: client CPU per operation against baselines.",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="CASE[,CASE]",
        help=f"run only these cases: {', '.join(CASES)} (repeatable)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--repeat", type=int, help="repetitions per client (default 5; smoke 1)")
    parser.add_argument(
        "--profile",
        choices=("pyinstrument", "cprofile"),
        help="also run the SDK clients once under this profiler; reports go to results/",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--no-save", action="store_true", help="do not write JSON results")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    sizes = parser.add_argument_group("sizes (defaults: full run; --smoke shrinks them)")
    sizes.add_argument("--requests", type=int, help="trigger: requests per client (20000)")
    sizes.add_argument("--httpx-requests", type=int, help="trigger: requests for httpx (3000)")
    sizes.add_argument(
        "--sequential-requests", type=int, help="trigger: one-at-a-time requests (5000)"
    )
    sizes.add_argument("--concurrency", type=int, help="trigger: requests in flight (100)")
    sizes.add_argument("--events", type=int, help="sse: events per stream (200000)")
    sizes.add_argument(
        "--growth-events", help="sse: SMALL,LARGE stream lengths of the growth row (10000,1000000)"
    )
    sizes.add_argument("--decode-iterations", type=int, help="decode: pages per client (100)")
    sizes.add_argument("--import-runs", type=int, help="import: fresh interpreters (10)")
    sizes.add_argument(
        "--fanout-sizes",
        help="fanout-memory: SMALL,LARGE request counts (10000,1000000)",
    )
    sizes.add_argument("--fanout-repeat", type=int, help="fanout-memory: runs per size (1)")
    sizes.add_argument("--streams", type=int, help="open-streams: concurrent streams (1000)")
    return parser


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.smoke() if args.smoke else Sizes()
    if args.requests:
        sizes.trigger_requests = args.requests
        sizes.trigger_warmup = min(sizes.trigger_warmup, args.requests)
    if args.httpx_requests:
        sizes.httpx_requests = args.httpx_requests
    if args.sequential_requests:
        sizes.sequential_requests = args.sequential_requests
    if args.concurrency:
        sizes.concurrency = args.concurrency
    if args.events:
        sizes.events = args.events
    if args.growth_events:
        small, large = (int(v) for v in args.growth_events.split(","))
        sizes.growth_events = (small, large)
    if args.decode_iterations:
        sizes.decode_iterations = args.decode_iterations
    if args.import_runs:
        sizes.import_runs = args.import_runs
    if args.fanout_sizes:
        small, large = (int(v) for v in args.fanout_sizes.split(","))
        sizes.fanout_sizes = (small, large)
    if args.fanout_repeat:
        sizes.fanout_repeat = args.fanout_repeat
    if args.streams:
        sizes.streams = args.streams
    return sizes


def main(argv: Optional[list[str]] = None) -> int:
    """Run the selected cases; print the table; save the JSON. Returns the exit status."""
    args = build_parser().parse_args(argv)
    chosen = _parse_cases(args.only) or list(CASES)
    sizes = _sizes(args)
    repeat = args.repeat or (1 if args.smoke else 5)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    modules: dict[str, ModuleType] = {
        name: import_module(f"benchmarks.{CASES[name]}") for name in chosen
    }
    needs_upstream = any(getattr(m, "NEEDS_UPSTREAM", False) for m in modules.values())
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    event_sizes = [sizes.events, sizes.warm_events, *sizes.growth_events]
    upstream = Upstream(event_sizes, sizes.decode_threads)
    context: Optional[Context] = None
    try:
        if needs_upstream:
            upstream.__enter__()
        context = Context(
            sizes=sizes,
            repeat=repeat,
            smoke=args.smoke,
            port=upstream.port,
            profile=args.profile,
            results_dir=results_dir,
            stamp=stamp,
        )
        for name, module in modules.items():
            context.log(f"case {name}")
            try:
                rows.extend(module.run(context))
            except Exception as exc:  # a broken case must not hide the others
                rows.append(
                    Row(name, "-", "-", None, "-", None, "", result="ERROR", note=repr(exc))
                )
    finally:
        upstream.__exit__(None, None, None)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    machine = _machine()
    print(
        f"crewship_async benchmarks, {started:%Y-%m-%d %H:%M} UTC, {machine['cpus']} CPUs "
        f"({machine['cpu_model']}), Python {machine['python']}, repeat={repeat}"
        f"{', smoke sizes' if args.smoke else ''}; medians of client CPU per operation "
        "unless the metric says otherwise"
    )
    print(render_table(rows))
    print(f"\n(total {elapsed:.0f}s)")
    if not args.no_save and context is not None:
        report = {
            "date": started.isoformat(),
            "elapsed_s": elapsed,
            "argv": sys.argv[1:] if argv is None else argv,
            "smoke": args.smoke,
            "repeat": repeat,
            "sizes": asdict(sizes),
            "machine": machine,
            "versions": _versions(),
            "table_header": list(TABLE_HEADER),
            "rows": [row.as_dict() for row in rows],
            "figures": context.figures,
            "profiles": context.profiles,
        }
        text = json.dumps(report, indent=2, default=str)
        (results_dir / f"{stamp}.json").write_text(text)
        (results_dir / "latest.json").write_text(text)
        print(f"results: {results_dir / (stamp + '.json')}", file=sys.stderr)
    if any(row.result == "ERROR" for row in rows):
        return 2
    if args.strict and any(row.result == "FAIL" for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
