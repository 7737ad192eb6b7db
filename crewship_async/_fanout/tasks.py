"""Ending the fan-out's background task: from a finalizer, and from ``aclose``."""

from __future__ import annotations

import asyncio
from typing import Optional

import anyio

__all__ = ["cancel_and_join", "cancel_soon"]


def cancel_soon(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
    """Finalizer of an abandoned fan-out: ask its task to cancel (never awaits).

    Does nothing when the task is done or its loop is closed.
    """
    if not task.done() and not loop.is_closed():
        loop.call_soon_threadsafe(task.cancel)


async def cancel_and_join(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it is gone, even if the caller is being cancelled.

    The caller's own cancellation is raised once the task is gone; an exception the task
    ended with (other than its cancellation) is raised too.
    """
    task.cancel()
    interrupted: Optional[BaseException] = None
    while not task.done():
        try:
            with anyio.CancelScope(shield=True):
                await asyncio.wait((task,))
        except asyncio.CancelledError as exc:  # a native cancel of the caller: finish first
            interrupted = exc
    if not task.cancelled():
        task.result()
    if interrupted is not None:
        raise interrupted
