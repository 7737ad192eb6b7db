"""Case ``sse``: the client cost of reading a run's event stream.

The canned upstream sends ``N`` ``log`` events (default 200,000; each ``id: n`` plus a
JSON ``data`` line) and a final ``run.completed`` as one ``text/event-stream`` body. Each
client reads it to the terminal event, decoding every event's JSON, after a warm-up
stream of a few hundred events on the same client. Figures are client CPU (and wall) time
per event. Each JSON back-end is compared with the raw loop on the same back-end:

* ``SDK runs.stream (orjson)``: ``async with client.runs.stream(run_id) as events: async
  for ...`` (SSE decoding, dedupe by id, idle timeout, ``RunEvent`` per event) with the
  ``orjson`` extra installed, against ``raw aiohttp + orjson``: ``resp.content.iter_any()``,
  split on ``b"\n\n"``, ``orjson.loads`` of each ``data`` line (<= 1.5x).
* ``SDK runs.stream (json)`` against ``raw aiohttp + json``: the same two clients in
  processes where ``orjson`` cannot be imported (a plain ``pip install``), so both use the
  stdlib ``json`` (<= 1.15x).
* ``httpx-sse``: ``aconnect_sse(httpx.AsyncClient, "GET", url)`` + ``aiter_sse()`` +
  ``json.loads``, and ``aiohttp-sse-client``: ``EventSource(url, session=...)`` +
  ``json.loads``: peers, both on stdlib json; the SDK on stdlib json must be faster.
* cost growth: the SDK (orjson) reading one stream of ``--growth-events`` LARGE events
  (default 1,000,000) against streams of SMALL events (default 10,000; read several
  times in the measured block so that it lasts long enough to time): CPU per event must
  stay flat (<= 1.10x).
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks._harness import Meter, Unavailable
from benchmarks._report import Figure, Row, Target, compare

NAME = "sse"
MODULE = __name__.rpartition(".")[2]
TITLE = "event stream"
NEEDS_UPSTREAM = True
API_KEY = "bench-key"
TERMINAL = "run.completed"


def _url(params: dict[str, Any], size: int) -> str:
    return f"{params['base_url']}/v1/runs/ev{size}/events"


async def sdk_stream(meter: Meter, params: dict[str, Any]) -> None:
    """``client.runs.stream`` read to its terminal event ``params["reads"]`` times (1 by
    default) over a stream of ``params["size"]`` events (default ``params["events"]``).

    ``params["json"]`` names the JSON back-end the SDK must be using ("orjson" or
    "json"), so that a figure is never filed under the wrong one.
    """
    from crewship_async import AsyncCrewship, _json

    backend = "json" if _json.loads is _json.stdlib_loads else "orjson"
    if backend != params.get("json", backend):
        raise Unavailable(f"the SDK uses {backend}, not {params['json']}")
    size = params.get("size", params["events"])
    reads = params.get("reads", 1)
    async with AsyncCrewship(api_key=API_KEY, base_url=params["base_url"]) as client:

        async def read(size: int) -> int:
            count = 0
            async with client.runs.stream(f"ev{size}") as events:
                async for event in events:
                    count += 1
                    if event.type == TERMINAL:
                        break
            return count

        await read(params["warm_events"])
        with meter.measure((size + 1) * reads) as m:
            m.ops = 0
            for _ in range(reads):
                count = await read(size)
                _check(count, size)
                m.ops += count


def _raw_loop(loads: Any) -> Any:
    async def variant(meter: Meter, params: dict[str, Any]) -> None:
        import aiohttp

        headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def read(size: int) -> int:
                count = 0
                buffer = b""
                async with session.get(_url(params, size)) as response:
                    async for chunk in response.content.iter_any():
                        buffer += chunk
                        blocks = buffer.split(b"\n\n")
                        buffer = blocks.pop()
                        for block in blocks:
                            for line in block.split(b"\n"):
                                if line.startswith(b"data:"):
                                    event = loads(line[5:])
                                    count += 1
                                    if event["type"] == TERMINAL:
                                        return count
                return count

            await read(params["warm_events"])
            with meter.measure(params["events"] + 1) as m:
                m.ops = await read(params["events"])
            _check(m.ops, params["events"])

    return variant


async def raw_aiohttp(meter: Meter, params: dict[str, Any]) -> None:
    """``iter_any`` + split on blank lines + stdlib ``json.loads``."""
    await _raw_loop(json.loads)(meter, params)


async def raw_aiohttp_orjson(meter: Meter, params: dict[str, Any]) -> None:
    """``iter_any`` + split on blank lines + ``orjson.loads``."""
    try:
        import orjson
    except ImportError:
        raise Unavailable("orjson is not installed (pip install -e '.[bench]')") from None
    await _raw_loop(orjson.loads)(meter, params)


async def httpx_sse(meter: Meter, params: dict[str, Any]) -> None:
    """``httpx_sse.aconnect_sse`` + ``aiter_sse`` + ``json.loads``."""
    try:
        import httpx
        from httpx_sse import aconnect_sse
    except ImportError as exc:
        raise Unavailable(f"{exc.name} is not installed (pip install -e '.[bench]')") from None

    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60.0
    ) as client:

        async def read(size: int) -> int:
            count = 0
            async with aconnect_sse(client, "GET", _url(params, size)) as source:
                async for sse in source.aiter_sse():
                    event = json.loads(sse.data)
                    count += 1
                    if event["type"] == TERMINAL:
                        break
            return count

        await read(params["warm_events"])
        with meter.measure(params["events"] + 1) as m:
            m.ops = await read(params["events"])
        _check(m.ops, params["events"])


async def aiohttp_sse_client(meter: Meter, params: dict[str, Any]) -> None:
    """``aiohttp_sse_client.client.EventSource`` + ``json.loads``."""
    try:
        import aiohttp
        from aiohttp_sse_client.client import EventSource
    except ImportError as exc:
        raise Unavailable(f"{exc.name} is not installed (pip install -e '.[bench]')") from None

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def read(size: int) -> int:
            count = 0
            async with EventSource(_url(params, size), session=session) as source:
                async for message in source:
                    event = json.loads(message.data)
                    count += 1
                    if event["type"] == TERMINAL:
                        break
            return count

        await read(params["warm_events"])
        with meter.measure(params["events"] + 1) as m:
            m.ops = await read(params["events"])
        _check(m.ops, params["events"])


def _check(count: int, events: int) -> None:
    if count != events + 1:
        raise RuntimeError(f"read {count} events, expected {events + 1}")


VARIANTS = {
    "sdk_stream": sdk_stream,
    "raw_aiohttp": raw_aiohttp,
    "raw_aiohttp_orjson": raw_aiohttp_orjson,
    "httpx_sse": httpx_sse,
    "aiohttp_sse_client": aiohttp_sse_client,
}

SDK_ORJSON = "SDK runs.stream (orjson)"
SDK_JSON = "SDK runs.stream (json)"
RAW_ORJSON = "raw aiohttp + orjson"
RAW_JSON = "raw aiohttp + json"
NO_ORJSON = {"block_imports": ["orjson"]}


def growth_reads(small: int, large: int) -> int:
    """How many SMALL streams the growth row reads in one block: about a tenth of LARGE's
    events in all, at least one stream and at most 20."""
    return max(1, min(20, large // (10 * small)))


def run(ctx: Any) -> list[Row]:
    """Measure every client and compare them."""
    params = {
        "base_url": ctx.base_url,
        "events": ctx.sizes.events,
        "warm_events": ctx.sizes.warm_events,
    }
    small, large = ctx.sizes.growth_events
    clients = {
        SDK_ORJSON: ("sdk_stream", {**params, "json": "orjson"}),
        RAW_ORJSON: ("raw_aiohttp_orjson", params),
        SDK_JSON: ("sdk_stream", {**params, **NO_ORJSON, "json": "json"}),
        RAW_JSON: ("raw_aiohttp", {**params, **NO_ORJSON}),
        "httpx-sse": ("httpx_sse", params),
        "aiohttp-sse-client": ("aiohttp_sse_client", params),
        f"SDK, streams of {small:,}": (
            "sdk_stream",
            {**params, "size": small, "reads": growth_reads(small, large)},
        ),
        f"SDK, a stream of {large:,}": ("sdk_stream", {**params, "size": large}),
    }
    figures: dict[str, Figure] = ctx.measure(MODULE, clients, profile=["sdk_stream"])
    sdk, sdk_json = figures[SDK_ORJSON], figures[SDK_JSON]

    def cpu(figure: Figure) -> float:
        return figure.per_op("cpu") * 1e6

    def wall(figure: Figure) -> float:
        return figure.per_op("wall") * 1e6

    metric = f"CPU/event ({params['events']:,})"
    faster = Target(1.0, strict=True)
    return [
        compare(TITLE, metric, sdk, figures[RAW_ORJSON], value=cpu, unit="us", target=Target(1.5)),
        compare(
            TITLE, metric, sdk_json, figures[RAW_JSON], value=cpu, unit="us", target=Target(1.15)
        ),
        compare(TITLE, metric, sdk_json, figures["httpx-sse"], value=cpu, unit="us", target=faster),
        compare(
            TITLE,
            metric,
            sdk_json,
            figures["aiohttp-sse-client"],
            value=cpu,
            unit="us",
            target=faster,
        ),
        compare(
            TITLE,
            "CPU/event, cost growth",
            figures[f"SDK, a stream of {large:,}"],
            figures[f"SDK, streams of {small:,}"],
            value=cpu,
            unit="us",
            target=Target(1.1),
        ),
        compare(TITLE, "wall/event", sdk, figures[RAW_ORJSON], value=wall, unit="us"),
    ]
