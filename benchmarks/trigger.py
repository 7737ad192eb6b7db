"""Case ``trigger``: the client cost of creating runs in bulk (``POST /v1/runs``).

Each client sends the same ``N`` create-run requests (default 20,000) at concurrency 100
to the canned upstream, decodes each 202 body, and is measured after a warm-up that opens
its connections. Figures are client CPU (and wall) time per request.

* ``SDK create_many``: ``client.runs.create_many(requests, concurrency=100)`` over a lazy
  generator of :class:`RunRequest` (SKIP while ``create_many`` is not available).
* ``SDK runs.create``: ``await client.runs.create(...)`` under an ``asyncio.Semaphore(100)``
  (informational: the per-call cost without the fan-out helper).
* ``raw aiohttp``: ``session.post(json=...)`` + ``await resp.json()`` under a semaphore of
  100, a ``TCPConnector(limit=100)``: the floor the SDK is held to (<= 1.25x).
* ``httpx + pydantic``: ``httpx.AsyncClient`` (100 connections) + a pydantic v2 model
  validated from the body (reported). httpx costs two orders of magnitude more per request
  at this concurrency, so it sends fewer requests (default 3,000) to keep the run short;
  its figure is per request like the others.

One call at a time (a web handler awaiting one call): ``SDK runs.create, one at a time``
awaits ``N`` calls one after the other (default 5,000), each in a task of its own as a
web framework's request handler runs, against ``raw aiohttp, one at a time`` doing the
same with ``session.post`` + ``resp.json()`` (target <= 1.10x).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Optional

from benchmarks._harness import Meter, Unavailable
from benchmarks._report import Figure, Row, Target, compare

NAME = "trigger"
MODULE = __name__.rpartition(".")[2]
TITLE = "run trigger"
NEEDS_UPSTREAM = True
API_KEY = "bench-key"


def _body(index: int) -> dict[str, Any]:
    return {
        "deployment_id": "dep_abc123",
        "environment": "production",
        "input": {"topic": "AI agents", "index": index},
    }


async def _gather_bounded(count: int, concurrency: int, call: Any) -> int:
    """Run ``call(i)`` for i in range(count) with at most ``concurrency`` in flight."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Any:
        async with semaphore:
            return await call(index)

    results = await asyncio.gather(*(one(i) for i in range(count)))
    return len(results)


async def consume_fanout(fanout: Any, count: int) -> int:
    """Iterate a ``create_many`` result (inside ``async with`` when it is a context
    manager); return the outcomes seen, raise if any failed."""
    done = failed = 0
    first: Optional[BaseException] = None

    async def drain(outcomes: Any) -> None:
        nonlocal done, failed, first
        async for outcome in outcomes:
            done += 1
            if outcome.error is not None:
                failed += 1
                first = first or outcome.error

    if hasattr(fanout, "__aenter__"):
        async with fanout as outcomes:
            await drain(outcomes)
    else:
        await drain(fanout)
    if failed or done != count:
        raise RuntimeError(
            f"{failed} of {count} creates failed ({done} outcomes); first: {first!r}"
        )
    return done


async def sdk_create_many(meter: Meter, params: dict[str, Any]) -> None:
    """``runs.create_many`` over a lazy generator of RunRequest."""
    from crewship_async import AsyncCrewship, RunRequest

    concurrency = params["concurrency"]
    async with AsyncCrewship(
        api_key=API_KEY, base_url=params["base_url"], max_connections=concurrency
    ) as client:
        if not hasattr(client.runs, "create_many"):
            raise Unavailable("client.runs.create_many is not available")

        def requests(count: int) -> Iterator[RunRequest]:
            for index in range(count):
                body = _body(index)
                yield RunRequest(body["deployment_id"], input=body["input"])

        async def drive(count: int) -> int:
            return await consume_fanout(
                client.runs.create_many(requests(count), concurrency=concurrency), count
            )

        await drive(params["warmup"])
        with meter.measure(params["requests"]) as m:
            m.ops = await drive(params["requests"])


async def sdk_create(meter: Meter, params: dict[str, Any]) -> None:
    """``runs.create`` per request under a semaphore."""
    from crewship_async import AsyncCrewship

    concurrency = params["concurrency"]
    async with AsyncCrewship(
        api_key=API_KEY, base_url=params["base_url"], max_connections=concurrency
    ) as client:

        async def call(index: int) -> str:
            body = _body(index)
            created = await client.runs.create(body["deployment_id"], input=body["input"])
            return created.run_id

        await _gather_bounded(params["warmup"], concurrency, call)
        with meter.measure(params["requests"]) as m:
            m.ops = await _gather_bounded(params["requests"], concurrency, call)


async def _one_at_a_time(count: int, call: Any) -> int:
    """Await ``call(i)`` for i in range(count), each in a fresh task, one after the other."""
    for index in range(count):
        await asyncio.create_task(call(index))
    return count


async def sdk_create_sequential(meter: Meter, params: dict[str, Any]) -> None:
    """``await client.runs.create(...)`` one call at a time, each from its own task."""
    from crewship_async import AsyncCrewship

    async with AsyncCrewship(api_key=API_KEY, base_url=params["base_url"]) as client:

        async def call(index: int) -> str:
            body = _body(index)
            created = await client.runs.create(body["deployment_id"], input=body["input"])
            return created.run_id

        await _one_at_a_time(params["warmup"], call)
        with meter.measure(params["requests"]) as m:
            m.ops = await _one_at_a_time(params["requests"], call)


async def raw_aiohttp_sequential(meter: Meter, params: dict[str, Any]) -> None:
    """``session.post`` + ``resp.json()`` one call at a time, each from its own task."""
    import aiohttp

    url = params["base_url"] + "/v1/runs"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def call(index: int) -> str:
            async with session.post(url, json=_body(index)) as response:
                if response.status != 202:
                    raise RuntimeError(f"unexpected status {response.status}")
                data = await response.json()
            return data["run_id"]  # type: ignore[no-any-return]

        await _one_at_a_time(params["warmup"], call)
        with meter.measure(params["requests"]) as m:
            m.ops = await _one_at_a_time(params["requests"], call)


async def raw_aiohttp(meter: Meter, params: dict[str, Any]) -> None:
    """``session.post`` + ``resp.json()`` under a semaphore."""
    import aiohttp

    concurrency = params["concurrency"]
    url = params["base_url"] + "/v1/runs"
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def call(index: int) -> str:
            async with session.post(url, json=_body(index)) as response:
                if response.status != 202:
                    raise RuntimeError(f"unexpected status {response.status}")
                data = await response.json()
            return data["run_id"]  # type: ignore[no-any-return]

        await _gather_bounded(params["warmup"], concurrency, call)
        with meter.measure(params["requests"]) as m:
            m.ops = await _gather_bounded(params["requests"], concurrency, call)


async def httpx_pydantic(meter: Meter, params: dict[str, Any]) -> None:
    """``httpx.AsyncClient.post`` + a pydantic v2 model validated from the body."""
    try:
        import httpx
        import pydantic
    except ImportError as exc:
        raise Unavailable(f"{exc.name} is not installed (pip install -e '.[bench]')") from None

    class RunCreatedModel(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        run_id: str
        status: str = "running"
        version_id: Optional[str] = None
        version_number: Optional[int] = None
        thread_id: Optional[str] = None

    concurrency = params["concurrency"]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=params["base_url"],
        limits=limits,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=60.0,
    ) as client:

        async def call(index: int) -> str:
            response = await client.post("/v1/runs", json=_body(index))
            response.raise_for_status()
            return RunCreatedModel.model_validate_json(response.content).run_id

        await _gather_bounded(params["warmup"], concurrency, call)
        with meter.measure(params["requests"]) as m:
            m.ops = await _gather_bounded(params["requests"], concurrency, call)


VARIANTS = {
    "sdk_create_many": sdk_create_many,
    "sdk_create": sdk_create,
    "raw_aiohttp": raw_aiohttp,
    "httpx_pydantic": httpx_pydantic,
    "sdk_create_sequential": sdk_create_sequential,
    "raw_aiohttp_sequential": raw_aiohttp_sequential,
}

LABELS = {
    "sdk_create_many": "SDK create_many",
    "sdk_create": "SDK runs.create",
    "raw_aiohttp": "raw aiohttp",
    "httpx_pydantic": "httpx + pydantic",
    "sdk_create_sequential": "SDK runs.create, one at a time",
    "raw_aiohttp_sequential": "raw aiohttp, one at a time",
}


def run(ctx: Any) -> list[Row]:
    """Measure every client and compare them."""
    params = {
        "base_url": ctx.base_url,
        "requests": ctx.sizes.trigger_requests,
        "warmup": ctx.sizes.trigger_warmup,
        "concurrency": ctx.sizes.concurrency,
    }
    clients = {LABELS[v]: (v, params) for v in VARIANTS}
    clients[LABELS["httpx_pydantic"]] = (
        "httpx_pydantic",
        {**params, "requests": ctx.sizes.httpx_requests},
    )
    sequential = {**params, "requests": ctx.sizes.sequential_requests}
    sequential["warmup"] = min(params["warmup"], sequential["requests"])
    for variant in ("sdk_create_sequential", "raw_aiohttp_sequential"):
        clients[LABELS[variant]] = (variant, sequential)
    figures: dict[str, Figure] = ctx.measure(
        MODULE,
        clients,
        profile=["sdk_create_many", "sdk_create", "sdk_create_sequential"],
    )
    sdk, single = figures["SDK create_many"], figures["SDK runs.create"]
    raw, httpx_fig = figures["raw aiohttp"], figures["httpx + pydantic"]

    def cpu(figure: Figure) -> float:
        return figure.per_op("cpu") * 1e6

    def wall(figure: Figure) -> float:
        return figure.per_op("wall") * 1e6

    metric = f"CPU/request ({params['requests']:,} @ {params['concurrency']})"
    return [
        compare(TITLE, metric, sdk, raw, value=cpu, unit="us", target=Target(1.25)),
        compare(TITLE, metric, sdk, httpx_fig, value=cpu, unit="us", target_text="report"),
        compare(TITLE, metric, single, raw, value=cpu, unit="us"),
        compare(TITLE, metric, single, httpx_fig, value=cpu, unit="us"),
        compare(TITLE, metric, httpx_fig, raw, value=cpu, unit="us"),
        compare(
            TITLE,
            f"CPU/request ({sequential['requests']:,}, one at a time)",
            figures[LABELS["sdk_create_sequential"]],
            figures[LABELS["raw_aiohttp_sequential"]],
            value=cpu,
            unit="us",
            target=Target(1.1),
        ),
        compare(TITLE, "wall/request", sdk, raw, value=wall, unit="us"),
        compare(TITLE, "wall/request", single, raw, value=wall, unit="us"),
        compare(TITLE, "wall/request", httpx_fig, raw, value=wall, unit="us"),
    ]
