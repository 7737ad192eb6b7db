"""The API's resources, attached to :class:`~crewship_async.AsyncCrewship`."""

from .runs import Runs
from .tables import NOT_GIVEN, NotGiven, TableRows, Tables
from .threads import ThreadRuns, Threads
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
