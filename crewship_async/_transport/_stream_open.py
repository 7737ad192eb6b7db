"""Opening one event-stream connection: a single attempt, bounded in time, errors mapped.

Reading the stream is :mod:`crewship_async._streams`' job; this module ends when the
response headers said ``200 text/event-stream`` (or an error was raised for them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Optional

import aiohttp
import anyio

from .._connection import CallGuard, StreamConnection
from .._deadline import now
from .._extras import NO_EXTRAS, Extras
from .._operations import RequestContext, describe
from .._redact import cut_chain
from .._responses import ERROR_BODY_LIMIT, make_api_error, read_capped
from ..errors import APITimeoutError, ClientClosedError, CrewshipError, ResponseError
from ._call import CONNECT_TIMEOUT
from ._failures import connection_error
from ._hooks import CallRecord, ResponseHooks
from ._log import log_attempt
from ._session import SessionOwner

__all__ = ["StreamOpener"]


def _timeout(connect: float) -> aiohttp.ClientTimeout:
    """aiohttp's bounds of a stream: ``connect`` to connect, none on reading."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, connect=connect)


_DEFAULT_TIMEOUT = _timeout(CONNECT_TIMEOUT)


def _describe(path: str, attempt: int) -> RequestContext:
    # Not through the path cache: each stream's path is new and would push out the
    # paths that calls repeat.
    return describe("GET", path, attempt=attempt, cached=False)


def _attempt_record(
    traced: Optional[RequestContext], path: str, attempt: int, started: float
) -> CallRecord:
    """The record of an attempt that began at ``started``, once its wait has ended."""
    context = _describe(path, attempt) if traced is None else traced
    return CallRecord(context, started=started, attempt=attempt)


class StreamOpener:
    """Opens ``GET`` event streams through one session owner."""

    def __init__(
        self,
        sessions: SessionOwner,
        *,
        base_url: str,
        headers: Mapping[str, str],
        proxy: Optional[str],
        in_flight: set[CallGuard],
        hooks: ResponseHooks,
    ) -> None:
        self._sessions = sessions
        self._base_url = base_url
        self._headers = headers
        self.proxy = proxy
        self._in_flight = in_flight
        self.hooks = hooks

    async def open(
        self,
        path: str,
        last_event_id: Optional[str],
        connect_timeout: Optional[float],
        attempt: int,
        extras: Extras = NO_EXTRAS,
    ) -> StreamConnection:
        """Open one connection (see :meth:`Transport.open_stream`); the errors it raises
        hold no other library's exception in their chain (see :func:`cut_chain`)."""
        try:
            session = self._sessions.get()
            headers = self._headers
            if extras.headers:
                headers = {**headers, **extras.headers}
            if last_event_id:
                headers = {**headers, "Last-Event-ID": last_event_id}
            limit = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
            timeout = _DEFAULT_TIMEOUT if connect_timeout is None else _timeout(limit)
            # The attempt is described once its headers came (or did not), unless a trace
            # config is to read it meanwhile: a thousand streams opening at once each hold
            # a few hundred bytes less while they wait.
            traced = _describe(path, attempt) if session.trace_configs else None
            started = now()
            guard = CallGuard()
            self._in_flight.add(guard)
            try:
                async with guard:
                    async with asyncio.timeout(limit * 3):
                        response = await session.get(
                            self._base_url + path,
                            params=extras.params(None),
                            headers=headers,
                            timeout=timeout,
                            allow_redirects=False,
                            proxy=self.proxy,
                            trace_request_ctx=traced,
                        )
            except (aiohttp.ClientError, OSError) as exc:  # OSError: TimeoutError too
                record = _attempt_record(traced, path, attempt, started)
                log_attempt(record.context, type(exc).__name__, record)
                if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
                    raise APITimeoutError(
                        f"GET {path}: no response headers within {limit * 3:.1f}s",
                        method="GET",
                        path=path,
                    ) from exc
                raise connection_error(exc, "GET", path, "could not open the stream") from exc
            finally:
                self._in_flight.discard(guard)
            record = _attempt_record(traced, path, attempt, started)
            if guard.fired:
                log_attempt(record.context, "ClientClosedError", record)
                raise ClientClosedError(
                    f"GET {path}: the client was closed while opening the stream"
                )
            log_attempt(record.context, response.status, record)
            try:
                record.responded(response.status, response.headers)
                await self.hooks.responded(record)
                if response.status >= 300:
                    raw = await self._read_error_body(response, path, limit * 3)
                    error = make_api_error(
                        response.status, response.headers, raw, method="GET", path=path
                    )
                    error.response_info = record.error_info()
                    raise error
                content_type = response.headers.get("Content-Type", "")
                if not content_type.startswith("text/event-stream"):
                    raise ResponseError(
                        f"GET {path} -> {response.status}: expected text/event-stream, "
                        f"got {content_type or 'no content type'}",
                        method="GET",
                        path=path,
                    )
            except BaseException:
                response.close()
                raise
            return StreamConnection(response, method="GET", path=path, in_flight=self._in_flight)
        except CrewshipError as exc:
            cut_chain(exc)
            raise

    async def _read_error_body(
        self, response: aiohttp.ClientResponse, path: str, limit: float
    ) -> bytes:
        """The body of a stream's HTTP error response: within ``limit`` seconds, ended by
        ``aclose``, and with aiohttp's errors mapped (the caller closes the response)."""
        guard = CallGuard()
        self._in_flight.add(guard)
        try:
            async with guard:
                with anyio.move_on_after(limit):
                    try:
                        return (await read_capped(response, ERROR_BODY_LIMIT))[0]
                    except (aiohttp.ClientError, OSError, RuntimeError) as exc:
                        raise connection_error(
                            exc, "GET", path, f"the {response.status} error response was cut short"
                        ) from exc
                raise APITimeoutError(
                    f"GET {path} -> {response.status}: the error response did not arrive "
                    f"within {limit:.1f}s",
                    method="GET",
                    path=path,
                )
        finally:
            self._in_flight.discard(guard)
        raise ClientClosedError(
            f"GET {path}: the client was closed while reading the error response"
        )
