"""The finished outcomes waiting to be yielded, in completion or in input order."""

from __future__ import annotations

import collections

from ..models.runs import RunOutcome

__all__ = ["OutcomeBuffer"]


class OutcomeBuffer:
    """Holds finished outcomes until the consumer takes them.

    Unordered, an outcome is ready as soon as it is stored. Ordered, it is held back until
    every outcome of a lower index was stored (a reorder buffer), then released in index
    order. ``len()`` counts both, ready and held.
    """

    __slots__ = ("_held", "_next_index", "_ordered", "_ready")

    def __init__(self, *, ordered: bool) -> None:
        self._ordered = ordered
        self._ready: collections.deque[RunOutcome] = collections.deque()
        self._held: dict[int, RunOutcome] = {}
        self._next_index = 0

    def __len__(self) -> int:
        return len(self._ready) + len(self._held)

    def store(self, outcome: RunOutcome) -> None:
        """Add a finished outcome (each index once)."""
        if not self._ordered:
            self._ready.append(outcome)
            return
        held = self._held
        held[outcome.index] = outcome
        while self._next_index in held:
            self._ready.append(held.pop(self._next_index))
            self._next_index += 1

    def has_ready(self) -> bool:
        """Whether :meth:`pop` has an outcome to give."""
        return bool(self._ready)

    def pop(self) -> RunOutcome:
        """The next ready outcome (``IndexError`` when none is)."""
        return self._ready.popleft()
