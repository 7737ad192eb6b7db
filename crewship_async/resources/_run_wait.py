"""``runs.wait``'s way to a terminal run: follow the event stream, else poll."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

import anyio

from .._retry import is_transient_status, poll_delays
from ..errors import APIConnectionError, APIError, APITimeoutError, ResponseError, StreamError
from ..models.runs import Run

if TYPE_CHECKING:
    from .runs import Runs

__all__ = ["wait_until_terminal", "wait_within"]

logger: logging.Logger = logging.getLogger("crewship_async")

_MAX_POLL_INTERVAL = 15.0
_POLL_GROWTH = 1.5


async def wait_within(
    runs: Runs,
    run_id: str,
    path: str,
    limit: Optional[float],
    poll_interval: float,
    extra: Mapping[str, Any],
) -> Run:
    """:func:`wait_until_terminal` within ``limit`` seconds (``None``: no limit); past it,
    :class:`APITimeoutError`."""
    with anyio.move_on_after(math.inf if limit is None else limit):
        return await wait_until_terminal(runs, run_id, poll_interval, extra)
    raise APITimeoutError(
        f"GET {path}: run {run_id} did not finish within {limit:g}s", method="GET", path=path
    )


async def wait_until_terminal(
    runs: Runs, run_id: str, poll_interval: float, extra: Mapping[str, Any]
) -> Run:
    """The run once it is terminal, whatever its status; no time limit of its own.

    Reads the run, then follows its event stream until a terminal event. When the stream
    cannot be had (a stream, connection or response error, or a transient status) or ends
    without a terminal event, polls ``runs.get`` every ``poll_interval`` seconds, growing
    by half each time up to 15 s, with jitter. A non-transient :class:`APIError` (404,
    401, ...) propagates. ``extra``: the ``extra_headers``/``extra_query`` of every read.
    """
    run = await runs.get(run_id, **extra)
    if run.is_terminal:
        return run
    try:
        async with runs.stream(run_id, **extra) as events:
            async for event in events:
                if event.is_terminal:
                    break
    except (StreamError, APIConnectionError, ResponseError) as exc:
        logger.debug("runs.wait(%s): stream unavailable (%s); polling", run_id, exc)
    except APIError as exc:
        if not is_transient_status(exc.status_code):
            raise
        logger.debug("runs.wait(%s): stream unavailable (%s); polling", run_id, exc)
    delays = poll_delays(poll_interval, growth=_POLL_GROWTH, ceiling=_MAX_POLL_INTERVAL)
    while True:
        run = await runs.get(run_id, **extra)
        if run.is_terminal:
            return run
        await anyio.sleep(next(delays))
