"""Case ``open-streams``: the memory one open event stream costs.

The canned upstream answers ``GET /v1/runs/hold<n>/events`` with one event and then holds
the connection open. A client process opens ``S`` streams at once (default 1,000), waits
until each has delivered its first event, and records its peak resident set size
(``ru_maxrss``) and current RSS while all are open; then it closes them. The baseline is
the same process with 0 streams held (after opening and closing one, so the same code is
loaded). The figure is ``(peak RSS with S streams - peak RSS with 0) / S``, reported, in
KiB per stream.

* ``SDK runs.stream``: ``async with client.runs.stream(run_id)`` + one ``__anext__`` per
  stream, on a client with ``max_connections=S + 10``.
* ``raw aiohttp``: ``session.get`` + reading until the first event, per stream
  (informational: what a bare aiohttp response costs).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks._harness import Meter, current_rss_kb, peak_rss_kb
from benchmarks._report import Figure, Row, compare

NAME = "open-streams"
MODULE = __name__.rpartition(".")[2]
TITLE = "open streams"
NEEDS_UPSTREAM = True
API_KEY = "bench-key"


async def _hold_all(meter: Meter, count: int, open_one: Any) -> None:
    """Open ``count`` streams via ``open_one(i, opened, release)``; measure while held."""
    opened = asyncio.Semaphore(0)
    release = asyncio.Event()
    await open_one(-1, asyncio.Semaphore(0), None)
    with meter.measure(max(count, 1)):
        tasks = [asyncio.create_task(open_one(i, opened, release)) for i in range(count)]
        for _ in range(count):
            await opened.acquire()
        meter.extra["held_rss_kb"] = current_rss_kb()
        meter.extra["held_peak_kb"] = peak_rss_kb()
        release.set()
        await asyncio.gather(*tasks)
    meter.extra["streams"] = count


async def sdk_stream(meter: Meter, params: dict[str, Any]) -> None:
    """Hold ``params["streams"]`` SDK event streams open."""
    from crewship_async import AsyncCrewship

    count = params["streams"]
    async with AsyncCrewship(
        api_key=API_KEY, base_url=params["base_url"], max_connections=count + 10
    ) as client:

        async def open_one(index: int, opened: Any, release: Any) -> None:
            async with client.runs.stream(f"hold{index}") as events:
                await events.__anext__()
                opened.release()
                if release is not None:
                    await release.wait()

        await _hold_all(meter, count, open_one)


async def raw_aiohttp(meter: Meter, params: dict[str, Any]) -> None:
    """Hold ``params["streams"]`` bare aiohttp responses open."""
    import aiohttp

    count = params["streams"]
    url = params["base_url"] + "/v1/runs/hold{}/events"
    connector = aiohttp.TCPConnector(limit=count + 10)
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def open_one(index: int, opened: Any, release: Any) -> None:
            async with session.get(url.format(index)) as response:
                buffer = b""
                while b"\n\n" not in buffer:
                    chunk = await response.content.readany()
                    if not chunk:
                        raise RuntimeError("the stream ended before its first event")
                    buffer += chunk
                opened.release()
                if release is not None:
                    await release.wait()

        await _hold_all(meter, count, open_one)


VARIANTS = {"sdk_stream": sdk_stream, "raw_aiohttp": raw_aiohttp}


def run(ctx: Any) -> list[Row]:
    """Measure each client with S and with 0 streams; report KiB per stream."""
    count = ctx.sizes.streams
    base = {"base_url": ctx.base_url}
    clients = {
        "SDK, 0 streams": ("sdk_stream", {**base, "streams": 0}),
        f"SDK, {count:,} streams": ("sdk_stream", {**base, "streams": count}),
        "raw aiohttp, 0 streams": ("raw_aiohttp", {**base, "streams": 0}),
        f"raw aiohttp, {count:,} streams": ("raw_aiohttp", {**base, "streams": count}),
    }
    figures: dict[str, Figure] = ctx.measure(MODULE, clients)
    rows = []
    for who in ("SDK", "raw aiohttp"):
        held, idle = figures[f"{who}, {count:,} streams"], figures[f"{who}, 0 streams"]
        rows.append(
            compare(
                TITLE,
                "peak RSS",
                held,
                idle,
                value=lambda f: f.median("held_peak_kb") / 1024,
                unit="MB",
            )
        )
        per_stream = Figure(f"{who}, per stream")
        if held.ok and idle.ok:
            growth = held.median("held_peak_kb") - idle.median("held_peak_kb")
            per_stream.samples.append({"kb": growth / count, "ops": 1})
        else:
            per_stream.skip, per_stream.error = held.skip or idle.skip, held.error or idle.error
        rows.append(_per_stream_row(per_stream, count))
    return rows


def _per_stream_row(figure: Figure, count: int) -> Row:
    row = Row(
        case=TITLE,
        metric=f"KiB per open stream ({count:,})",
        client=figure.label,
        value=figure.samples[0]["kb"] if figure.ok else None,
        baseline="0 streams",
        baseline_value=None,
        unit="KiB",
    )
    if figure.error is not None:
        row.result, row.note = "ERROR", figure.error
    elif figure.skip is not None:
        row.result, row.note = "SKIP", figure.skip
    return row
