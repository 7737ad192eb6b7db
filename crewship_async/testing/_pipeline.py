"""The path of every request through the emulator, between aiohttp.web and the handlers.

The middleware gives each request an id (sent back as ``x-request-id``), counts it in
flight, records it, applies the faults that match it, checks the API key and turns
:class:`ApiError` and aiohttp's own HTTP errors into the API's error envelope.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from typing import Any, Callable, Optional

from aiohttp import web

from ._common import ApiError, error_body
from ._fault_responses import abort_connection, failure_response, mangled
from ._faults import FaultInjector
from ._recording import EmulatorStats, RecordedRequest, RequestLog, redact_headers
from ._routes import (
    EVENTS_ROUTE,
    WEBHOOK_ROUTE,
    Call,
    current_call,
    json_response,
    parse_body,
    set_current_call,
)

__all__ = ["RequestPipeline"]

logger = logging.getLogger("crewship_async.testing")


class RequestPipeline:
    """Records, faults, authentication and error mapping around every handler.

    ``api_key`` is asked for the key at each request. Between :meth:`open` and
    :meth:`close` requests are served; after :meth:`close` a request waiting on injected
    latency is answered 503 at once.
    """

    def __init__(
        self,
        *,
        api_key: Callable[[], str],
        faults: FaultInjector,
        stats: EmulatorStats,
        log: RequestLog,
    ) -> None:
        self._api_key = api_key
        self.faults = faults
        self.stats = stats
        self.log = log
        self._stopping: Optional[asyncio.Event] = None

    def open(self) -> None:
        """Start a serving period (call it on the loop that serves)."""
        self._stopping = asyncio.Event()

    def close(self) -> None:
        """End the serving period: cut short every wait on injected latency."""
        if self._stopping is not None:
            self._stopping.set()

    def middleware(self) -> Any:
        """The aiohttp.web middleware that sends every request through :meth:`handle`."""

        @web.middleware
        async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
            call = Call(request_id="req_" + secrets.token_hex(8))
            set_current_call(call)
            self.stats.enter()
            try:
                return await self.handle(request, handler, call)
            finally:
                self.stats.leave()

        return middleware

    @staticmethod
    async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
        """Give every response, error and stream alike, the request's ``x-request-id``."""
        call = current_call()
        request_id = call.request_id if call is not None else "req_" + secrets.token_hex(8)
        response.headers.setdefault("x-request-id", request_id)

    async def handle(self, request: web.Request, handler: Any, call: Call) -> web.StreamResponse:
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
        self.log.append(
            RecordedRequest(
                method=method,
                path=path,
                query=dict(request.query),
                body=call.body,
                headers=redact_headers(request.headers),
                request_id=call.request_id,
            )
        )

        delay = self.faults.take_latency(method, path)
        if delay > 0 and not await self._sleep(delay):
            return json_response(error_body(503, "The emulator is shutting down"), 503)
        failure = self.faults.take_failure(method, path)
        if failure is not None:
            return failure_response(failure)

        route_name = request.match_info.route.name
        close = self.faults.take_close(method, path)
        if close and route_name == EVENTS_ROUTE:
            abort_connection(request)
            return web.Response(status=204)
        malformed = route_name != EVENTS_ROUTE and self.faults.take_malformed(method, path)

        response = await self._dispatch(request, handler, route_name)
        if close:
            abort_connection(request)
        elif malformed and isinstance(response, web.Response):
            response = mangled(response)
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
            token.strip().encode(), self._api_key().encode()
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
