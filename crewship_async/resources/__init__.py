"""The API's resources, attached to :class:`~crewship_async.AsyncCrewship`."""

from .runs import Runs

__all__ = ["Runs"]
