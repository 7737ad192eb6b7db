"""Case ``fanout-memory``: does ``create_many`` keep memory flat however long its input?

The same client code runs in two fresh processes, one per input size (default 10,000 and
1,000,000 requests): ``client.runs.create_many(<lazy generator of RunRequest>,
concurrency=100)`` against the canned upstream, consuming every outcome. The figure is
the process's peak resident set size (``ru_maxrss``) at the end. The large run's peak
may be at most 1.2x the small run's. Client CPU per request of both runs is reported as
well (a long batch should not get slower per request either).

Each size runs once by default (``--fanout-repeat`` for more; the figure is then the
median): peak RSS is far less noisy than CPU time, and the large run takes minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from benchmarks._harness import Meter, Unavailable
from benchmarks._report import Figure, Row, Target, compare
from benchmarks.trigger import API_KEY, consume_fanout

NAME = "fanout-memory"
MODULE = __name__.rpartition(".")[2]
TITLE = "fan-out memory"
NEEDS_UPSTREAM = True


async def sdk_create_many(meter: Meter, params: dict[str, Any]) -> None:
    """``create_many`` over ``params["requests"]`` generated requests; peak RSS at the end."""
    from crewship_async import AsyncCrewship, RunRequest

    concurrency = params["concurrency"]
    async with AsyncCrewship(
        api_key=API_KEY, base_url=params["base_url"], max_connections=concurrency
    ) as client:
        if not hasattr(client.runs, "create_many"):
            raise Unavailable("client.runs.create_many is not available")

        def requests(count: int) -> Iterator[RunRequest]:
            for index in range(count):
                yield RunRequest("dep_abc123", input={"topic": "AI agents", "index": index})

        count = params["requests"]
        with meter.measure(count) as m:
            m.ops = await consume_fanout(
                client.runs.create_many(requests(count), concurrency=concurrency), count
            )


VARIANTS = {"sdk_create_many": sdk_create_many}


def run(ctx: Any) -> list[Row]:
    """Run both sizes and compare their peak RSS."""
    small, large = ctx.sizes.fanout_sizes
    common = {"base_url": ctx.base_url, "concurrency": ctx.sizes.fanout_concurrency}
    labels = {small: f"SDK create_many x {small:,}", large: f"SDK create_many x {large:,}"}
    figures: dict[str, Figure] = ctx.measure(
        MODULE,
        {labels[n]: ("sdk_create_many", {**common, "requests": n}) for n in (small, large)},
        repeat=ctx.sizes.fanout_repeat,
    )
    big, little = figures[labels[large]], figures[labels[small]]

    def peak_mb(figure: Figure) -> float:
        return figure.median("maxrss_kb") / 1024

    def cpu(figure: Figure) -> float:
        return figure.per_op("cpu") * 1e6

    return [
        compare(TITLE, "peak RSS", big, little, value=peak_mb, unit="MB", target=Target(1.2)),
        compare(TITLE, "CPU/request", big, little, value=cpu, unit="us"),
    ]
