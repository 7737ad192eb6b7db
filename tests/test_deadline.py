"""The deadline type the resources and the fan-out share."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import pytest

from crewship_async._deadline import Deadline


async def test_a_bounded_deadline_counts_down_to_zero() -> None:
    deadline = Deadline(0.05)
    assert deadline.bounded
    assert deadline.seconds == 0.05
    left = deadline.remaining()
    assert left is not None
    assert 0 < left <= 0.05 + 1e-9  # at + now rounds
    assert deadline.at == pytest.approx(anyio.current_time() + left, abs=0.01)
    await anyio.sleep(0.06)
    assert deadline.remaining() == 0.0
    assert "seconds=0.05 remaining=0.0" in repr(deadline)


async def test_an_unbounded_deadline_never_comes() -> None:
    deadline = Deadline(None)
    assert not deadline.bounded
    assert deadline.remaining() is None
    assert deadline.at == math.inf
    with anyio.CancelScope(deadline=deadline.at) as scope:
        await anyio.lowlevel.checkpoint()
    assert not scope.cancelled_caught


def test_a_deadline_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        Deadline(1.0)
