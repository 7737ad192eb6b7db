"""Waiting for Ctrl-C or SIGTERM in a long-running command."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["wait_for_stop_signal"]


async def wait_for_stop_signal() -> None:
    """Return once SIGINT or SIGTERM arrives; the loop's handlers are removed afterwards.

    Where the loop cannot install signal handlers (Windows, a non-main thread), it waits
    until cancelled.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, threads
            continue
        installed.append(signum)
    try:
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
