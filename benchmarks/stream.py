"""Case ``sse``: the client cost of reading a run's event stream.

The canned upstream sends ``N`` ``log`` events (default 200,000; each ``id: n`` plus a
JSON ``data`` line) and a final ``run.completed`` as one ``text/event-stream`` body. Each
client reads it to the terminal event, decoding every event's JSON, after a warm-up
stream of a few hundred events on the same client. Figures are client CPU (and wall) time
per event.

* ``SDK runs.stream``: ``async with client.runs.stream(run_id) as events: async for ...``
  (SSE decoding, dedupe by id, idle timeout, ``RunEvent`` per event).
* ``raw aiohttp``: ``resp.content.iter_any()``, split on ``b"\\n\\n"``, ``json.loads`` of
  each ``data`` line: the floor the SDK is held to (<= 1.5x).
* ``raw aiohttp + orjson``: the same with ``orjson.loads`` (informational: how much of the
  difference is the JSON library).
* ``httpx-sse``: ``aconnect_sse(httpx.AsyncClient, "GET", url)`` + ``aiter_sse()`` +
  ``json.loads`` (a peer: the SDK must be faster).
* ``aiohttp-sse-client``: ``EventSource(url, session=...)`` + ``json.loads`` (a peer).
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
    """``client.runs.stream`` read to its terminal event."""
    from crewship_async import AsyncCrewship

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
        with meter.measure(params["events"] + 1) as m:
            m.ops = await read(params["events"])
        _check(m.ops, params["events"])


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
    """``iter_any`` + split on blank lines + ``json.loads``."""
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

LABELS = {
    "sdk_stream": "SDK runs.stream",
    "raw_aiohttp": "raw aiohttp",
    "raw_aiohttp_orjson": "raw aiohttp + orjson",
    "httpx_sse": "httpx-sse",
    "aiohttp_sse_client": "aiohttp-sse-client",
}


def run(ctx: Any) -> list[Row]:
    """Measure every client and compare them."""
    params = {
        "base_url": ctx.base_url,
        "events": ctx.sizes.events,
        "warm_events": ctx.sizes.warm_events,
    }
    figures: dict[str, Figure] = ctx.measure(
        MODULE, {LABELS[v]: (v, params) for v in VARIANTS}, profile=["sdk_stream"]
    )
    sdk = figures["SDK runs.stream"]
    raw, raw_orjson = figures["raw aiohttp"], figures["raw aiohttp + orjson"]

    def cpu(figure: Figure) -> float:
        return figure.per_op("cpu") * 1e6

    def wall(figure: Figure) -> float:
        return figure.per_op("wall") * 1e6

    metric = f"CPU/event ({params['events']:,})"
    faster = Target(1.0, strict=True)
    return [
        compare(TITLE, metric, sdk, raw, value=cpu, unit="us", target=Target(1.5)),
        compare(TITLE, metric, sdk, figures["httpx-sse"], value=cpu, unit="us", target=faster),
        compare(
            TITLE, metric, sdk, figures["aiohttp-sse-client"], value=cpu, unit="us", target=faster
        ),
        compare(TITLE, metric, sdk, raw_orjson, value=cpu, unit="us"),
        compare(TITLE, "wall/event", sdk, raw, value=wall, unit="us"),
    ]
