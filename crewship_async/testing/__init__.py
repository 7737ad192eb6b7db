"""Test tooling for code that uses crewship_async: an emulator of the Crewship API.

:class:`CrewshipEmulator` serves every operation of the Crewship REST API from memory on
a local socket, with realistic run lifecycles, event streams, busy threads and table
validation, plus fault injection (``emu.faults``) for retries, dropped streams and lost
responses. The pytest plugin (``crewship_async.testing.pytest_plugin``, registered
automatically when the package is installed) provides the ``crewship_emulator`` and
``crewship_client`` fixtures. ``python -m crewship_async.testing`` runs it standalone.

This package imports only aiohttp, attrs and the standard library.
"""

from ._faults import FaultInjector, RoutePattern
from ._outgoing import OutgoingWebhook, WebhookDelivery
from ._recording import EmulatorStats, RecordedRequest
from ._server import CrewshipEmulator
from ._state import Checkpoint, RowRecord, RunEvent, RunRecord, TableRecord, ThreadRecord

__all__ = [
    "Checkpoint",
    "CrewshipEmulator",
    "EmulatorStats",
    "FaultInjector",
    "OutgoingWebhook",
    "RecordedRequest",
    "RoutePattern",
    "RowRecord",
    "RunEvent",
    "RunRecord",
    "TableRecord",
    "ThreadRecord",
    "WebhookDelivery",
]
