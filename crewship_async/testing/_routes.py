"""The request handlers: one per operation of the Crewship API.

Handlers validate the query, hand the body to the :class:`Store`, start simulations and
render JSON. Errors are raised as :class:`ApiError`; the server's middleware turns them
into the ``{"error": {"message", "code"}}`` envelope and records the request.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Sequence
from typing import Any, Callable, Optional, TypeVar

import attrs
from aiohttp import web

from ._common import ApiError, dumps
from ._faults import FaultInjector
from ._outgoing import OUTGOING_EVENTS, OutgoingWebhooks
from ._simulation import Simulator
from ._state import Store
from ._streaming import StreamSettings, stream_events

__all__ = ["Call", "Handlers", "current_call", "json_response", "parse_body"]

T = TypeVar("T")

EVENTS_ROUTE = "run_events"
WEBHOOK_ROUTE = "webhook"


@attrs.define
class Call:
    """What the middleware learned about the request being handled."""

    request_id: str
    body: Any = None
    body_is_json: bool = True


_current: contextvars.ContextVar[Call] = contextvars.ContextVar("crewship_emulator_call")


def current_call() -> Optional[Call]:
    return _current.get(None)


def set_current_call(call: Call) -> None:
    # Each request is handled in its own task (with its own context), so nothing leaks.
    _current.set(call)


def parse_body(raw: bytes) -> tuple[Any, bool]:
    """``(value, is_json)``: the decoded body (``None`` if empty), or the raw text."""
    if not raw.strip():
        return None, True
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text), True
    except ValueError:
        return text, False


def _body() -> Any:
    call = current_call()
    if call is None:  # pragma: no cover - every request goes through the middleware
        return None
    if not call.body_is_json:
        raise ApiError(400, "Request body is not valid JSON")
    return call.body


def _object_body() -> dict[str, Any]:
    body = _body()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


#: The largest page a listing serves. It bounds ``limit`` only: ``offset`` may be any
#: count >= 0 (an offset past the end gives an empty page), or listings would end there.
MAX_LIMIT = 1000

_INTEGER = re.compile(r"-?[0-9]+")


def _int_query(
    request: web.Request,
    name: str,
    default: Optional[int],
    *,
    minimum: int,
    maximum: Optional[int] = None,
) -> Optional[int]:
    """The integer query parameter ``name`` (``default`` if absent), or 400 like the API."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        # ASCII digits only: int() would also take "1_000", " 5" or other scripts' digits.
        value = int(raw) if _INTEGER.fullmatch(raw) else None
    except ValueError:  # more digits than int() converts
        value = None
    if value is None:
        raise ApiError(400, f"{name} must be an integer")
    if maximum is None:
        if value < minimum:
            raise ApiError(400, f"{name} must be at least {minimum}")
    elif not minimum <= value <= maximum:
        raise ApiError(400, f"{name} must be between {minimum} and {maximum}")
    return value


def _paginate(request: web.Request, items: Sequence[T], default_limit: Optional[int]) -> list[T]:
    """The page of ``items`` chosen by ``limit`` / ``offset`` (``None``: no limit).

    ``limit`` is 1 to :data:`MAX_LIMIT`; ``offset`` has no upper bound.
    """
    offset = _int_query(request, "offset", 0, minimum=0) or 0
    limit = _int_query(request, "limit", default_limit, minimum=1, maximum=MAX_LIMIT)
    return list(items[offset:] if limit is None else items[offset : offset + limit])


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response (compact, UTF-8)."""
    return web.json_response(data, status=status, dumps=dumps)


def _no_content() -> web.Response:
    return web.Response(status=204)


Handler = Callable[[web.Request], Any]


class Handlers:
    """The API's operations, bound to one emulator's state."""

    def __init__(
        self,
        *,
        store: Store,
        simulator: Simulator,
        faults: FaultInjector,
        settings: StreamSettings,
        outgoing: OutgoingWebhooks,
    ) -> None:
        self.outgoing = outgoing
        self.store = store
        self.simulator = simulator
        self.faults = faults
        self.settings = settings

    def register(self, router: web.UrlDispatcher) -> None:
        routes: list[tuple[str, str, Handler, Optional[str]]] = [
            ("POST", "/v1/runs", self.create_run, None),
            ("GET", "/v1/runs", self.list_runs, None),
            ("GET", "/v1/runs/{id}", self.get_run, None),
            ("POST", "/v1/runs/{id}/cancel", self.cancel_run, None),
            ("GET", "/v1/runs/{id}/events", self.run_events, EVENTS_ROUTE),
            ("POST", "/v1/threads", self.create_thread, None),
            ("GET", "/v1/threads", self.list_threads, None),
            ("GET", "/v1/threads/{id}", self.get_thread, None),
            ("DELETE", "/v1/threads/{id}", self.delete_thread, None),
            ("POST", "/v1/threads/{id}/runs", self.create_thread_run, None),
            ("GET", "/v1/threads/{id}/history", self.thread_history, None),
            ("POST", "/v1/threads/{id}/copy", self.copy_thread, None),
            ("GET", "/v1/tables", self.list_tables, None),
            ("POST", "/v1/tables", self.create_table, None),
            ("GET", "/v1/tables/{id}", self.get_table, None),
            ("PATCH", "/v1/tables/{id}", self.update_table, None),
            ("DELETE", "/v1/tables/{id}", self.delete_table, None),
            ("GET", "/v1/tables/{id}/rows", self.list_rows, None),
            ("POST", "/v1/tables/{id}/rows", self.insert_rows, None),
            ("PATCH", "/v1/tables/{id}/rows/{row_id}", self.update_row, None),
            ("DELETE", "/v1/tables/{id}/rows/{row_id}", self.delete_row, None),
            ("POST", "/webhooks/runs/{token}", self.webhook, WEBHOOK_ROUTE),
            (
                "POST",
                "/_emulator/deployments/{id}/outgoing-webhooks",
                self.add_outgoing_webhook,
                None,
            ),
        ]
        for method, path, handler, name in routes:
            router.add_route(method, path, handler, name=name)

    # -- runs ---------------------------------------------------------------------------

    async def create_run(self, request: web.Request) -> web.Response:
        run = self.store.create_run(_object_body())
        self.simulator.launch(run)
        return json_response(run.accepted_json(), 202)

    async def list_runs(self, request: web.Request) -> web.Response:
        runs = self.store.list_runs(
            deployment_id=request.query.get("deployment_id") or None,
            status=request.query.get("status") or None,
        )
        runs = _paginate(request, runs, 20)
        return json_response({"runs": [run.to_json() for run in runs]})

    async def get_run(self, request: web.Request) -> web.Response:
        return json_response(self.store.get_run(request.match_info["id"]).to_json())

    async def cancel_run(self, request: web.Request) -> web.Response:
        run = self.store.cancel_run(request.match_info["id"])
        self.simulator.stop(run.id)
        return json_response({"success": True, "status": "canceled"})

    async def run_events(self, request: web.Request) -> web.StreamResponse:
        run = self.store.get_run(request.match_info["id"])
        return await stream_events(
            request,
            run,
            settings=self.settings,
            drop=self.faults.take_stream_drop(),
            is_closing=lambda: self.simulator.closing,
        )

    async def webhook(self, request: web.Request) -> web.Response:
        run = self.store.create_webhook_run(request.match_info["token"], _body())
        self.simulator.launch(run)
        # The API answers only once the run has actually started.
        await self.simulator.wait_started(run)
        return json_response(run.accepted_json(), 202)

    async def add_outgoing_webhook(self, request: web.Request) -> web.Response:
        """Emulator only: ``{"url", "events"?, "secret"?}`` -> 201 with the secret."""
        deployment = self.store.deployment(request.match_info["id"])
        body = _object_body()
        events = body.get("events", list(OUTGOING_EVENTS))
        secret = body.get("secret")
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise ApiError(400, "events must be a list of event names")
        if secret is not None and not isinstance(secret, str):
            raise ApiError(400, "secret must be a string")
        try:
            hook = self.outgoing.add(deployment.id, body.get("url"), events=events, secret=secret)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(
            {
                "id": hook.id,
                "deployment_id": hook.deployment_id,
                "url": hook.url,
                "events": sorted(hook.events),
                "secret": hook.secret,
            },
            201,
        )

    # -- threads ------------------------------------------------------------------------

    async def create_thread(self, request: web.Request) -> web.Response:
        return json_response(self.store.create_thread(_object_body()).to_json(), 201)

    async def list_threads(self, request: web.Request) -> web.Response:
        threads = self.store.list_threads(
            deployment_id=request.query.get("deployment_id"),
            status=request.query.get("status") or None,
        )
        threads = _paginate(request, threads, 20)
        return json_response({"threads": [thread.to_json() for thread in threads]})

    async def get_thread(self, request: web.Request) -> web.Response:
        return json_response(self.store.get_thread(request.match_info["id"]).to_json())

    async def delete_thread(self, request: web.Request) -> web.Response:
        self.store.delete_thread(request.match_info["id"])
        return _no_content()

    async def copy_thread(self, request: web.Request) -> web.Response:
        return json_response(self.store.copy_thread(request.match_info["id"]).to_json(), 201)

    async def create_thread_run(self, request: web.Request) -> web.Response:
        run = self.store.create_thread_run(request.match_info["id"], _object_body())
        self.simulator.launch(run)
        return json_response(run.accepted_json(), 202)

    async def thread_history(self, request: web.Request) -> web.Response:
        history = self.store.thread_history(request.match_info["id"])
        # Without a limit the whole history is returned.
        history = _paginate(request, history, None)
        return json_response({"history": [checkpoint.to_json() for checkpoint in history]})

    # -- tables -------------------------------------------------------------------------

    async def list_tables(self, request: web.Request) -> web.Response:
        tables = _paginate(request, list(self.store.tables.values()), None)
        return json_response({"tables": [table.to_json() for table in tables]})

    async def create_table(self, request: web.Request) -> web.Response:
        return json_response(self.store.create_table(_object_body()).to_json(), 201)

    async def get_table(self, request: web.Request) -> web.Response:
        return json_response(self.store.get_table(request.match_info["id"]).to_json())

    async def update_table(self, request: web.Request) -> web.Response:
        table = self.store.update_table(request.match_info["id"], _object_body())
        return json_response(table.to_json())

    async def delete_table(self, request: web.Request) -> web.Response:
        self.store.delete_table(request.match_info["id"])
        return _no_content()

    async def list_rows(self, request: web.Request) -> web.Response:
        table = self.store.get_table(request.match_info["id"])
        rows = _paginate(request, list(table.rows.values()), 20)
        return json_response({"rows": [row.to_json(table.columns) for row in rows]})

    async def insert_rows(self, request: web.Request) -> web.Response:
        table = self.store.get_table(request.match_info["id"])
        body = _body()
        if body is None:
            raise ApiError(400, "Request body must be a row object or an array of rows")
        rows = self.store.insert_rows(table.id, body)
        if isinstance(body, list):
            return json_response({"rows": [row.to_json(table.columns) for row in rows]}, 201)
        return json_response(rows[0].to_json(table.columns), 201)

    async def update_row(self, request: web.Request) -> web.Response:
        table = self.store.get_table(request.match_info["id"])
        row = self.store.update_row(table.id, request.match_info["row_id"], _body())
        return json_response(row.to_json(table.columns))

    async def delete_row(self, request: web.Request) -> web.Response:
        self.store.delete_row(request.match_info["id"], request.match_info["row_id"])
        return _no_content()
