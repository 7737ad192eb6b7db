"""The API's resources, attached to :class:`~crewship_async.AsyncCrewship`.

The submodules are imported on first use (PEP 562), so that importing one of them (the
client needs only ``runs`` up front) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runs import Runs
    from .tables import NOT_GIVEN, NotGiven, TableRows, Tables
    from .thread_runs import ThreadRuns
    from .threads import Threads
    from .webhooks import Webhooks

__all__ = [
    "NOT_GIVEN",
    "NotGiven",
    "Runs",
    "TableRows",
    "Tables",
    "ThreadRuns",
    "Threads",
    "Webhooks",
]

# Each exported name -> the submodule defining it.
_SUBMODULES = {
    "NOT_GIVEN": "tables",
    "NotGiven": "tables",
    "Runs": "runs",
    "TableRows": "tables",
    "Tables": "tables",
    "ThreadRuns": "thread_runs",
    "Threads": "threads",
    "Webhooks": "webhooks",
}

if not TYPE_CHECKING:  # pragma: no branch (mypy reads the imports above instead)

    def __getattr__(name: str) -> object:
        submodule = _SUBMODULES.get(name)
        if submodule is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{submodule}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
