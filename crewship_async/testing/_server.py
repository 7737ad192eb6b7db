"""CrewshipEmulator: the in-memory Crewship API served over a real socket."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import types
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional

from aiohttp import web

from ._common import ApiError, IdFactory, error_body
from ._faults import Failure, FaultInjector
from ._outgoing import OUTGOING_EVENTS, OutgoingWebhooks, WebhookDelivery
from ._recording import EmulatorStats, RecordedRequest, RequestLog, redact_headers
from ._routes import (
    EVENTS_ROUTE,
    WEBHOOK_ROUTE,
    Call,
    Handlers,
    current_call,
    json_response,
    parse_body,
    set_current_call,
)
from ._simulation import RunScripts, Simulator, Step
from ._state import ENVIRONMENTS, RunRecord, Store, TableRecord, ThreadRecord
from ._streaming import StreamSettings

if TYPE_CHECKING:
    from crewship_async import AsyncCrewship

__all__ = ["CrewshipEmulator"]

logger = logging.getLogger("crewship_async.testing")

_MAX_BODY = 64 * 1024 * 1024


class CrewshipEmulator:
    """A realistic, in-memory fake of the whole Crewship API on ``aiohttp.web``.

    Use it as an async context manager (or call :meth:`start` / :meth:`stop`)::

        async with CrewshipEmulator() as emu:
            async with emu.client() as client:
                created = await client.runs.create("dep_demo", input={"topic": "AI"})

    Behaviour:

    * Every route except the incoming webhook needs ``Authorization: Bearer <api_key>``;
      errors use the ``{"error": {"message", "code"}}`` envelope and every response
      carries an ``x-request-id`` header.
    * Runs go ``pending`` -> ``running`` -> terminal, one event per ``step_delay``
      seconds (see :meth:`script_runs` for failures and never-ending runs).
    * Deployment ids starting with ``dep_`` exist unless ``strict_deployments`` is set;
      then only ids given in ``deployments`` or to :meth:`add_deployment` have a running
      version (others get 400 "No running version found for <env> environment").
    * Threads turn ``busy`` during a run (a second thread run gets 409), then ``idle``
      with the exchange appended to ``values["messages"]`` and a checkpoint in history:
      ``{"role": "user", "content": ...}`` holds the input's ``message`` (or
      ``content``, ``prompt``, ``text``, ``question``; else the whole input) and the
      assistant answers ``"You said: <message>"``.
    * Lists are newest first (tables and rows: oldest first) and take ``limit`` /
      ``offset``; runs, threads and rows default to 20 per page, tables and thread
      history to everything.
    * Tables validate column definitions and every row; batches are all-or-nothing and
      hold at most ``max_rows_per_insert`` rows.
    * :attr:`faults` injects errors, latency, cut streams, lost responses and broken
      bodies; :attr:`stats` counts concurrency; :attr:`requests` logs what arrived.

    ``keepalive_interval`` is the idle time after which an event stream sends a
    ``: keepalive`` comment; ``stream_timeout`` (``None``: never) is when it sends a
    ``timeout`` event and ends. ``seed`` makes ids and random faults reproducible.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: Optional[str] = None,
        step_delay: float = 0.02,
        strict_deployments: bool = False,
        deployments: Iterable[str] = (),
        seed: int = 0,
        max_rows_per_insert: int = 100,
        keepalive_interval: float = 15.0,
        stream_timeout: Optional[float] = None,
        max_recorded_requests: int = 100_000,
    ) -> None:
        if step_delay < 0:
            raise ValueError("step_delay must not be negative")
        if max_rows_per_insert < 1:
            raise ValueError("max_rows_per_insert must be at least 1")
        self.host = host
        self.port = port
        self.api_key = api_key if api_key is not None else "cs_test_" + secrets.token_hex(16)
        self.step_delay = step_delay
        self.faults = FaultInjector(seed=seed)
        self.stats = EmulatorStats()
        self._log = RequestLog(max_recorded_requests)
        self._store = Store(
            ids=IdFactory(seed),
            strict_deployments=strict_deployments,
            max_rows_per_insert=max_rows_per_insert,
        )
        self._outgoing = OutgoingWebhooks()
        self._store.on_run_finished.append(self._outgoing.run_finished)
        self._scripts = RunScripts()
        self._simulator = Simulator(self._store, self._scripts, step_delay=step_delay)
        self._settings = StreamSettings(
            keepalive_interval=keepalive_interval, stream_timeout=stream_timeout
        )
        self._handlers = Handlers(
            store=self._store,
            simulator=self._simulator,
            faults=self.faults,
            settings=self._settings,
            outgoing=self._outgoing,
        )
        self._runner: Optional[web.AppRunner] = None
        self._stopping: Optional[asyncio.Event] = None
        self._bound_port: Optional[int] = None
        for deployment_id in deployments:
            self.add_deployment(deployment_id)

    def __repr__(self) -> str:
        where = self.url if self._runner is not None else "stopped"
        return f"<CrewshipEmulator {where}>"

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:54321`` (the SDK adds ``/v1/...``)."""
        if self._bound_port is None:
            raise RuntimeError("The emulator is not started; call start() or use `async with`")
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._bound_port}"

    async def start(self) -> CrewshipEmulator:
        """Bind the socket and start serving. Returns the emulator."""
        if self._runner is not None:
            raise RuntimeError("The emulator is already running")
        self._stopping = asyncio.Event()
        self._simulator.closing = False
        self._outgoing.closing = False
        app = web.Application(middlewares=[self._middleware()], client_max_size=_MAX_BODY)
        self._handlers.register(app.router)
        app.on_response_prepare.append(self._on_response_prepare)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._bound_port = int(runner.addresses[0][1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop serving: end every simulation, close every stream and connection.

        Open event streams end cleanly (no terminal event); requests waiting on injected
        latency are answered 503. Calling it again, or before :meth:`start`, does nothing.
        """
        runner = self._runner
        if runner is None:
            return
        self._runner = None
        assert self._stopping is not None
        self._stopping.set()
        await self._simulator.aclose()
        await self._outgoing.aclose()
        await runner.cleanup()
        self._bound_port = None

    async def __aenter__(self) -> CrewshipEmulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def client(self, **kwargs: Any) -> AsyncCrewship:
        """An ``AsyncCrewship`` pointed at this emulator with its key (close it when done)."""
        from crewship_async import AsyncCrewship

        return AsyncCrewship(api_key=self.api_key, base_url=self.url, **kwargs)

    # -- setup helpers ------------------------------------------------------------------

    def add_deployment(
        self,
        deployment_id: str,
        *,
        environments: Iterable[str] = ENVIRONMENTS,
        version_number: int = 1,
    ) -> None:
        """Register ``deployment_id`` with a running version in each of ``environments``.

        Needed with ``strict_deployments=True``; without it, registering also lets ids
        that do not start with ``dep_`` work.
        """
        wanted = list(environments)
        for environment in wanted:
            if environment not in ENVIRONMENTS:
                raise ValueError(f"unknown environment {environment!r}")
        self._store.add_deployment(deployment_id, dict.fromkeys(wanted, version_number))

    def add_webhook(self, deployment_id: str, environment: str = "production") -> str:
        """Create an incoming webhook; returns its token (POST to ``webhook_url(token)``)."""
        token = "whk_" + secrets.token_urlsafe(18)
        self._store.add_webhook(token, deployment_id, environment)
        return token

    def webhook_url(self, token: str) -> str:
        return f"{self.url}/webhooks/runs/{token}"

    def add_outgoing_webhook(
        self,
        deployment_id: str,
        url: str,
        *,
        events: Iterable[str] = OUTGOING_EVENTS,
        secret: Optional[str] = None,
    ) -> str:
        """Give ``deployment_id`` an outgoing webhook to ``url``; returns its signing secret.

        When one of the deployment's runs ends with an event in ``events``
        (``run.succeeded``, ``run.failed``), the emulator POSTs a signed delivery to
        ``url``: ``{"event", "delivery_id", "run": <the run as GET /v1/runs/{id}>}`` with
        the ``X-Crewship-*`` headers, retried after 0.05, 0.25 and 1 s on 5xx, 409, 429 and
        connection errors. Also reachable over HTTP (for a test in another process):
        ``POST /_emulator/deployments/{id}/outgoing-webhooks`` with ``{"url", "events"?,
        "secret"?}`` answers 201 with the secret. See :attr:`webhook_deliveries`.
        """
        return self._outgoing.add(deployment_id, url, events=events, secret=secret).secret

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every outgoing-webhook delivery so far, oldest first, with each attempt's status."""
        return self._outgoing.deliveries

    async def wait_for_deliveries(
        self, count: int = 1, *, timeout: float = 10.0
    ) -> list[WebhookDelivery]:
        """Wait until ``count`` deliveries are recorded and none is being attempted (its
        retries included); returns :attr:`webhook_deliveries`. ``TimeoutError`` after
        ``timeout`` seconds."""
        return await self._outgoing.wait(count, timeout)

    def script_runs(
        self,
        outcome: str = "succeeded",
        *,
        count: Optional[int] = None,
        deployment_id: Optional[str] = None,
        error_message: str = "Crew execution failed",
        steps: Optional[Iterable[Step]] = None,
        output: Any = None,
    ) -> None:
        """Decide what the next runs do.

        ``outcome``: ``"succeeded"`` (``run.completed``, ``output`` set), ``"failed"``
        (``run.failed`` with ``error_message``; a thread run leaves its thread in
        ``error``), ``"forever"`` (a ``heartbeat`` every step until canceled) or
        ``"held"`` (heartbeats like ``"forever"`` until the test calls
        ``emulator.runs[run_id].release()``, then ends succeeded, or failed with
        ``release("failed")``: a test controls when a run or its thread stops being busy).
        ``count`` runs are affected (``None``: every later run); ``deployment_id``
        limits it to one deployment. ``steps`` replaces the events emitted between
        ``run.started`` and the end, as ``(type, data)`` pairs; ``output`` replaces the
        default output of a succeeded run.

        Counted scripts apply first, oldest first; then the latest unlimited one.
        """
        self._scripts.add(
            outcome,
            count=count,
            deployment_id=deployment_id,
            error_message=error_message,
            steps=steps,
            output=output,
        )

    def clear_scripts(self) -> None:
        """Forget every script: later runs succeed with the default events."""
        self._scripts.clear()

    # -- inspection ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    @property
    def runs(self) -> Mapping[str, RunRecord]:
        """Every run by id (read-only view; ``run.to_json()`` is the API shape)."""
        return types.MappingProxyType(self._store.runs)

    @property
    def threads(self) -> Mapping[str, ThreadRecord]:
        """Every thread by id (read-only view)."""
        return types.MappingProxyType(self._store.threads)

    @property
    def tables(self) -> Mapping[str, TableRecord]:
        """Every table by id (read-only view); ``table.rows`` holds its rows."""
        return types.MappingProxyType(self._store.tables)

    # -- request pipeline ---------------------------------------------------------------

    def _middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
            call = Call(request_id="req_" + secrets.token_hex(8))
            set_current_call(call)
            self.stats.enter()
            try:
                return await self._pipeline(request, handler, call)
            finally:
                self.stats.leave()

        return middleware

    async def _on_response_prepare(
        self, request: web.Request, response: web.StreamResponse
    ) -> None:
        call = current_call()
        request_id = call.request_id if call is not None else "req_" + secrets.token_hex(8)
        response.headers.setdefault("x-request-id", request_id)

    async def _pipeline(self, request: web.Request, handler: Any, call: Call) -> web.StreamResponse:
        """Read and record the request, apply the faults that match it, then handle it.

        Order: latency, then an injected failure (the handler never runs), then the
        handler (auth first) followed by a dropped connection or a broken body.
        """
        method, path = request.method, request.path
        try:
            raw_body = await request.read()
        except web.HTTPException as exc:
            return json_response(error_body(exc.status, exc.reason), exc.status)
        call.body, call.body_is_json = parse_body(raw_body)
        self._log.append(
            RecordedRequest(
                method=method,
                path=path,
                query=dict(request.query),
                body=call.body,
                headers=redact_headers(request.headers),
                request_id=call.request_id,
            )
        )

        delay = self.faults._take_latency(method, path)
        if delay > 0 and not await self._sleep(delay):
            return json_response(error_body(503, "The emulator is shutting down"), 503)
        failure = self.faults._take_failure(method, path)
        if failure is not None:
            return self._failure_response(failure)

        route_name = request.match_info.route.name
        close = self.faults._take_close(method, path)
        if close and route_name == EVENTS_ROUTE:
            self._abort(request)
            return web.Response(status=204)
        malformed = route_name != EVENTS_ROUTE and self.faults._take_malformed(method, path)

        response = await self._dispatch(request, handler, route_name)
        if close:
            self._abort(request)
        elif malformed and isinstance(response, web.Response):
            response = self._mangle(response)
        return response

    async def _dispatch(
        self, request: web.Request, handler: Any, route_name: Optional[str]
    ) -> web.StreamResponse:
        try:
            if route_name != WEBHOOK_ROUTE:
                self._authenticate(request)
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return json_response(exc.body(), exc.status)
        except web.HTTPException as exc:
            messages = {
                404: f"No such route: {request.method} {request.path}",
                405: f"Method {request.method} is not allowed on {request.path}",
            }
            message = messages.get(exc.status, exc.reason)
            response = json_response(error_body(exc.status, message), exc.status)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception as exc:
            logger.exception("Emulator handler crashed on %s %s", request.method, request.path)
            message = f"Internal emulator error: {type(exc).__name__}"
            return json_response(error_body(500, message), 500)

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(401, "Missing API key: send Authorization: Bearer <key>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            raise ApiError(401, "Invalid API key")

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless the emulator stops first; ``False`` when it is stopping."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return True
        return False

    @staticmethod
    def _failure_response(failure: Failure) -> web.Response:
        body, content_type = failure.render()
        response = web.Response(status=failure.status, body=body)
        response.headers["Content-Type"] = content_type
        response.headers.update(failure.headers)
        return response

    @staticmethod
    def _abort(request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()

    @staticmethod
    def _mangle(response: web.Response) -> web.Response:
        """The same status (200 for a 204) and headers, with the body cut in half.

        A JSON object cut before its closing brace is never valid JSON.
        """
        body = response.body if isinstance(response.body, bytes) else b""
        broken = body[: len(body) // 2] if len(body) > 1 else b'{"truncat'
        status = 200 if response.status == 204 else response.status
        mangled = web.Response(status=status, body=broken)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "content-type"):
                mangled.headers[name] = value
        mangled.headers["Content-Type"] = "application/json"
        return mangled
