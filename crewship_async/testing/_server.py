"""CrewshipEmulator: the in-memory Crewship API served over a real socket."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional

from aiohttp import web

from ._common import IdFactory
from ._controls import EmulatorControls
from ._faults import FaultInjector
from ._outgoing import OutgoingWebhooks
from ._pipeline import RequestPipeline
from ._recording import EmulatorStats, RequestLog
from ._routes import Handlers
from ._simulation import RunScripts, Simulator
from ._state import Store
from ._streaming import StreamSettings

if TYPE_CHECKING:
    from crewship_async import AsyncCrewship

__all__ = ["CrewshipEmulator"]

_MAX_BODY = 64 * 1024 * 1024


class CrewshipEmulator(EmulatorControls):
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

    Setting up and inspecting (deployments, webhooks, run scripts, the records) is
    inherited from :class:`EmulatorControls`; this class owns the server's lifecycle.

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
        self.api_key: str = api_key if api_key is not None else "cs_test_" + secrets.token_hex(16)
        self.step_delay = step_delay
        self.faults: FaultInjector = FaultInjector(seed=seed)
        self.stats: EmulatorStats = EmulatorStats()
        super().__init__(
            store=Store(
                ids=IdFactory(seed),
                strict_deployments=strict_deployments,
                max_rows_per_insert=max_rows_per_insert,
            ),
            scripts=RunScripts(),
            outgoing=OutgoingWebhooks(),
            log=RequestLog(max_recorded_requests),
        )
        self._store.on_run_finished.append(self._outgoing.run_finished)
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
        self._pipeline = RequestPipeline(
            api_key=lambda: self.api_key, faults=self.faults, stats=self.stats, log=self._log
        )
        self._runner: Optional[web.AppRunner] = None
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
        self._pipeline.open()
        self._simulator.closing = False
        self._outgoing.closing = False
        app = web.Application(middlewares=[self._pipeline.middleware()], client_max_size=_MAX_BODY)
        self._handlers.register(app.router)
        app.on_response_prepare.append(self._pipeline.on_response_prepare)
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
        self._pipeline.close()
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

    def webhook_url(self, token: str) -> str:
        """Where to POST to start a run through the incoming webhook ``token``."""
        return f"{self.url}/webhooks/runs/{token}"
