"""CallGuard: what ``aclose`` uses to end a call in flight, and what it leaves alone."""

from __future__ import annotations

import asyncio

import pytest

from crewship_async._connection import CallGuard


async def test_cancel_ends_the_block_quietly_and_marks_the_guard_fired() -> None:
    guard = CallGuard()
    entered = asyncio.Event()
    after = []

    async def guarded() -> None:
        async with guard:
            entered.set()
            await asyncio.sleep(10)
        after.append("went on")

    task = asyncio.create_task(guarded())
    await entered.wait()
    guard.cancel()
    await task
    assert guard.fired
    assert after == ["went on"]
    assert task.cancelling() == 0


async def waiting_inside(guard: CallGuard) -> asyncio.Task[None]:
    """A task that has entered ``guard`` and waits inside it."""
    entered = asyncio.Event()

    async def guarded() -> None:
        async with guard:
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(guarded())
    await entered.wait()
    return task


async def test_a_cancellation_from_elsewhere_at_the_same_moment_still_propagates() -> None:
    guard = CallGuard()
    task = await waiting_inside(guard)
    guard.cancel()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outside_cancellation_alone_is_not_absorbed() -> None:
    guard = CallGuard()
    task = await waiting_inside(guard)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not guard.fired


async def test_cancel_from_the_guarded_task_itself_or_outside_the_block_does_nothing() -> None:
    guard = CallGuard()
    guard.cancel()  # not entered yet
    assert not guard.fired
    async with guard:
        guard.cancel()  # the running task: it is not waiting on anything
        await asyncio.sleep(0)
    assert not guard.fired
    guard.cancel()  # left already
    assert not guard.fired
    await asyncio.sleep(0)  # no cancellation is pending for this task
