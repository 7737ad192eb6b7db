"""The SDK's own CPU per call, without the network: what the layers above aiohttp cost.

``python -m benchmarks.call_path [--calls N]`` lends the client a stand-in session (the
``session=`` argument) whose requests answer at once with a canned 201, then times
``runs.create`` one call at a time and ``create_many`` at concurrency 100 (median of 5
rounds of process CPU). No socket, no event-loop wait and no aiohttp code runs, so the
figure is the SDK's part of a call alone: the argument checks, the transport's call
(guard, deadline, attempt, logging checks, body read), the decode and the model. In-process
and informational: it is not a case of ``python -m benchmarks``, and it has no baseline,
as a raw aiohttp loop costs nothing here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from crewship_async import AsyncCrewship

_BODY = b'{"run_id":"run_1","status":"queued","deployment_id":"dep_abc123"}'
_HEADERS = CIMultiDictProxy(
    CIMultiDict({"Content-Type": "application/json", "Content-Length": str(len(_BODY))})
)


class _Response:
    status = 201
    headers = _HEADERS
    content_length = len(_BODY)

    async def read(self) -> bytes:
        return _BODY

    def close(self) -> None:
        pass


class _Request:
    async def __aenter__(self) -> _Response:
        return _Response()

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Session:
    """Enough of an ``aiohttp.ClientSession`` for the client's calls."""

    closed = False
    connector = None

    def request(self, *args: Any, **kwargs: Any) -> _Request:
        return _Request()


async def _rounds(calls: int) -> tuple[float, float]:
    client = AsyncCrewship(api_key="k", base_url="http://127.0.0.1:1", session=_Session())  # type: ignore[arg-type]
    payload = {"topic": "AI", "index": 1}
    items = [{"deployment_id": "dep_abc123", "input": payload}] * calls

    async def one_at_a_time() -> None:
        for _ in range(calls):
            await client.runs.create("dep_abc123", input=payload)

    async def fan_out() -> None:
        async with client.runs.create_many(items, concurrency=100) as outcomes:
            async for _ in outcomes:
                pass

    single: list[float] = []
    many: list[float] = []
    await one_at_a_time()  # warm up
    for _ in range(5):
        for run, samples in ((one_at_a_time, single), (fan_out, many)):
            start = time.process_time()
            await run()
            samples.append((time.process_time() - start) / calls * 1e6)
    await client.aclose()
    return statistics.median(single), statistics.median(many)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round")
    args = parser.parse_args()
    single, many = asyncio.run(_rounds(args.calls))
    print(f"runs.create, one at a time: {single:.1f} us CPU per call (SDK only)")
    print(f"create_many @ 100:          {many:.1f} us CPU per request (SDK only)")


if __name__ == "__main__":
    main()
