"""The one place that talks to aiohttp.

:class:`Transport` owns (or borrows) the ``aiohttp.ClientSession``, builds every request,
applies the :class:`~crewship_async._retry.RetryPolicy` under one deadline per call and
turns aiohttp exceptions into :mod:`crewship_async.errors`; what a response becomes is
:mod:`crewship_async._responses`' job, and what ``aclose`` can end lives in
:mod:`crewship_async._connection`. Event streams are opened here too
(:meth:`Transport.open_stream`); reading them is the job of :mod:`crewship_async._streams`.
Every SDK error leaving a public method has its foreign exceptions cut from its chain.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from typing import Any, Optional

import aiohttp
import anyio

from . import _json
from ._connection import CallGuard, StreamConnection
from ._loopback import LoopbackResolver
from ._redact import Secret, cut_chain
from ._responses import (
    DEFAULT_MAX_RESPONSE_SIZE,
    ERROR_BODY_LIMIT,
    decode_success,
    make_api_error,
    read_capped,
)
from ._retry import RetryPolicy
from ._version import __version__
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    CrewshipError,
    RateLimitError,
    ResponseError,
)

__all__ = ["CONNECT_TIMEOUT", "USER_AGENT", "Transport"]

logger = logging.getLogger("crewship_async")

USER_AGENT = (
    f"crewship-async/{__version__} "
    f"python/{sys.version_info.major}.{sys.version_info.minor} "
    f"aiohttp/{'.'.join(aiohttp.__version__.split('.')[:2])}"
)
CONNECT_TIMEOUT = 10.0


class _AttemptFailed(Exception):
    """Internal: one attempt failed in a way the retry loop may act on."""

    def __init__(self, error: Exception, *, retryable: bool, retry_after: Optional[float]) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after


class Transport:
    """Sends requests for one client: one session, one retry policy, one deadline per call.

    ``session`` given: borrowed, used as is and never closed. Otherwise a session is made
    on first use inside the running event loop and closed by :meth:`aclose`. A transport is
    bound to the loop of its first request; using it from another loop raises
    :class:`ClientClosedError` instead of hanging.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: Optional[float],
        retry_policy: RetryPolicy,
        max_connections: int,
        default_headers: Mapping[str, str],
        session: Optional[aiohttp.ClientSession] = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self.base_url = base_url
        self.max_response_size = max_response_size
        # Registers the key with the redaction step for as long as this transport lives.
        self._secret = Secret(api_key)
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_connections = max_connections
        self._session = session
        self._owns_session = session is None
        self._resolver: Optional[LoopbackResolver] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False
        # Cancel scopes of the calls and stream reads in flight: aclose() cancels them,
        # because aiohttp never wakes a body read whose connection its session closed.
        self._in_flight: set[CallGuard] = set()
        common = {"User-Agent": USER_AGENT, "Accept": "application/json", **default_headers}
        self._anonymous_headers = common
        self._headers = {**common, "Authorization": f"Bearer {api_key}"}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._anonymous_json_headers = {**common, "Content-Type": "application/json"}
        self._stream_headers = {
            **self._headers,
            "Accept": "text/event-stream",
            "Cache-Control": "no-store",
        }

    def __reduce__(self) -> Any:
        raise TypeError("a crewship_async transport holds an API key and cannot be pickled")

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def pool_size(self) -> int:
        """How many connections the session's pool opens at most (0: unlimited)."""
        connector = self.session().connector
        return connector.limit if connector is not None else 0

    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running loop.

        Raises :class:`ClientClosedError` after :meth:`aclose`, when the borrowed session was
        closed, or when called from a loop other than the first one.
        """
        if self._closed:
            raise ClientClosedError("this AsyncCrewship client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ClientClosedError(
                "this AsyncCrewship client is bound to the event loop it was first used in; "
                "create one client per event loop"
            )
        session = self._session
        if session is None:
            self._resolver = LoopbackResolver()
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                ttl_dns_cache=300,
                resolver=self._resolver,
            )
            session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
            self._session = session
        elif session.closed:
            raise ClientClosedError("the aiohttp session given to AsyncCrewship is closed")
        return session

    async def aclose(self) -> None:
        """Close the session if this transport created it. Idempotent.

        Calls and stream reads still in flight end with :class:`ClientClosedError`. Raises
        :class:`ClientClosedError` (and closes nothing) when called from an event loop other
        than the client's while that loop is still open: its connections belong to it.
        """
        loop = self._loop
        if loop is not None and not loop.is_closed() and loop is not asyncio.get_running_loop():
            raise ClientClosedError(
                "close this AsyncCrewship client in the event loop it was used in"
            )
        self._closed = True
        for guard in list(self._in_flight):
            guard.cancel()
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            # Shielded: aclose() may run inside a call it has just cancelled.
            with anyio.CancelScope(shield=True):
                await session.close()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        value = self.timeout if timeout is None else timeout
        if value is None:
            return None
        return asyncio.get_running_loop().time() + value

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        send_json: bool = False,
        timeout: Optional[float] = None,
        authenticated: bool = True,
        display_path: Optional[str] = None,
        retry_rate_limits: bool = True,
    ) -> Any:
        """Send one API call (with retries) and return its decoded JSON body.

        ``path`` is appended to the base URL (ids already encoded). ``json`` is sent as the
        body when ``send_json`` is true or ``json`` is not None; it is encoded before the
        first attempt, so a value JSON cannot hold raises ``TypeError`` and nothing is sent.
        A 204 or empty body gives ``None``. ``timeout`` overrides the client's deadline for
        this call across all attempts. ``display_path`` replaces ``path`` in logs and errors
        (used to keep a webhook token out of them). ``retry_rate_limits=False`` raises a
        429 at once as :class:`RateLimitError` (``retry_after`` set) instead of sleeping and
        retrying, so a caller coordinating many requests (the fan-out) can pause them all.

        Raises :class:`APIError` subclasses for HTTP errors, :class:`APIConnectionError` /
        :class:`APITimeoutError` when no response could be had, :class:`ResponseError` for a
        2xx body that is not JSON.
        """
        shown = path if display_path is None else display_path
        body: Optional[bytes] = None
        if send_json or json is not None:
            try:
                body = _json.dumps(json)
            except TypeError as exc:
                raise TypeError(
                    f"{method} {shown}: the request body is not JSON-serialisable: {exc}"
                ) from None
            headers = self._json_headers if authenticated else self._anonymous_json_headers
        else:
            headers = self._headers if authenticated else self._anonymous_headers
        url = self.base_url + path
        deadline = self._deadline(timeout)
        session = self.session()
        guard = CallGuard()
        self._in_flight.add(guard)
        try:
            async with guard:
                return await self._send(
                    session,
                    method,
                    url,
                    shown,
                    params,
                    body,
                    headers,
                    deadline,
                    retry_rate_limits,
                )
        except CrewshipError as exc:
            cut_chain(exc)
            raise
        finally:
            self._in_flight.discard(guard)
        raise ClientClosedError(
            f"{method} {shown}: the client was closed during the call" + self._maybe_applied(method)
        )

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        shown: str,
        params: Optional[Mapping[str, Any]],
        body: Optional[bytes],
        headers: Mapping[str, str],
        deadline: Optional[float],
        retry_rate_limits: bool,
    ) -> Any:
        """The attempts of one call, with retries, under its deadline."""
        policy = self.retry_policy
        loop = asyncio.get_running_loop()
        retry_number = 0
        while True:
            started = loop.time()
            if retry_number:
                # The client may have been closed while this call waited to retry.
                session = self.session()
            try:
                return await self._attempt(
                    session,
                    method,
                    url,
                    shown,
                    params,
                    body,
                    headers,
                    deadline,
                    started,
                    retry_number + 1,
                )
            except _AttemptFailed as failure:
                error = failure.error
                if (
                    not failure.retryable
                    or retry_number >= policy.max_retries
                    or (not retry_rate_limits and isinstance(error, RateLimitError))
                ):
                    raise error from failure.__cause__
                delay = policy.delay_for(retry_number, failure.retry_after)
                if delay is None or (deadline is not None and loop.time() + delay >= deadline):
                    raise error from failure.__cause__
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s: retry %d/%d in %.2fs after %s",
                        method,
                        shown,
                        retry_number + 1,
                        policy.max_retries,
                        delay,
                        type(error).__name__,
                    )
                retry_number += 1
                await anyio.sleep(delay)

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        shown: str,
        params: Optional[Mapping[str, Any]],
        body: Optional[bytes],
        headers: Mapping[str, str],
        deadline: Optional[float],
        started: float,
        attempt: int,
    ) -> Any:
        remaining = None if deadline is None else deadline - started
        if remaining is not None and remaining <= 0:
            raise APITimeoutError(
                f"{method} {shown}: the call's deadline passed", method=method, path=shown
            )
        client_timeout = aiohttp.ClientTimeout(
            total=remaining,
            sock_connect=CONNECT_TIMEOUT if remaining is None else min(CONNECT_TIMEOUT, remaining),
        )
        try:
            async with session.request(
                method,
                url,
                params=params,
                data=body,
                headers=headers,
                timeout=client_timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                limit = self.max_response_size if status < 300 else ERROR_BODY_LIMIT
                raw, complete = await read_capped(response, limit)
                response_headers = response.headers
                if not complete:
                    # Not returned to the pool: the rest of the body was never read.
                    response.close()
        except aiohttp.ClientConnectorCertificateError as exc:
            self._log_attempt(method, shown, type(exc).__name__, started, attempt)
            raise _AttemptFailed(
                self._connection_error(exc, method, shown, "TLS certificate check failed"),
                retryable=False,
                retry_after=None,
            ) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The request never left this process: sending it again cannot duplicate it.
            self._log_attempt(method, shown, type(exc).__name__, started, attempt)
            raise self._failed_without_response(exc, method, shown, deadline, sent=False) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._log_attempt(method, shown, type(exc).__name__, started, attempt)
            raise self._failed_without_response(exc, method, shown, deadline, sent=True) from exc
        self._log_attempt(method, shown, status, started, attempt)
        if status < 300:
            return decode_success(
                status,
                response_headers,
                raw,
                complete=complete,
                max_size=self.max_response_size,
                method=method,
                path=shown,
            )
        error = make_api_error(status, response_headers, raw, method=method, path=shown)
        retryable = self.retry_policy.retries_status(method, status)
        retry_after = getattr(error, "retry_after", None)
        raise _AttemptFailed(error, retryable=retryable, retry_after=retry_after)

    @staticmethod
    def _log_attempt(
        method: str, shown: str, outcome: object, started: float, attempt: int
    ) -> None:
        """One DEBUG line per attempt: method, path (never the query or a header), the
        status or the exception name, elapsed time and attempt number."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.3fs (attempt %d)",
                method,
                shown,
                outcome,
                asyncio.get_running_loop().time() - started,
                attempt,
            )

    def _connection_error(
        self, exc: BaseException, method: str, shown: str, what: str
    ) -> APIConnectionError:
        return APIConnectionError(
            f"{method} {shown}: {what} ({type(exc).__name__}: {exc})", method=method, path=shown
        )

    def _failed_without_response(
        self,
        exc: BaseException,
        method: str,
        shown: str,
        deadline: Optional[float],
        *,
        sent: bool,
    ) -> _AttemptFailed:
        timed_out = isinstance(exc, asyncio.TimeoutError)
        if timed_out and deadline is not None and asyncio.get_running_loop().time() >= deadline:
            error: APIConnectionError = APITimeoutError(
                f"{method} {shown}: no response before the call's deadline"
                + (self._maybe_applied(method) if sent else ""),
                method=method,
                path=shown,
                request_sent=sent,
            )
            return _AttemptFailed(error, retryable=False, retry_after=None)
        retryable = self.retry_policy.retries_connection_error(method, request_sent=sent)
        what = "could not connect" if not sent else "the connection failed before a response"
        message = f"{method} {shown}: {what} ({type(exc).__name__}: {exc})"
        if sent and not retryable:
            message += self._maybe_applied(method)
        cls = APITimeoutError if timed_out else APIConnectionError
        return _AttemptFailed(
            cls(message, method=method, path=shown, request_sent=sent),
            retryable=retryable,
            retry_after=None,
        )

    @staticmethod
    def _maybe_applied(method: str) -> str:
        if method in ("GET", "HEAD"):
            return ""
        return (
            "; the request may have reached the server, so it may or may not have taken "
            "effect (for a run: it may or may not exist). It was not sent again."
        )

    async def open_stream(
        self,
        path: str,
        *,
        last_event_id: Optional[str] = None,
        connect_timeout: Optional[float] = None,
        attempt: int = 1,
    ) -> StreamConnection:
        """Open one ``GET`` event-stream connection (a single attempt, no retries).

        Logs one DEBUG line for the attempt, like every other request: method, path, the
        status or the exception name, elapsed time and ``attempt`` (the caller's count).

        ``last_event_id`` is sent as ``Last-Event-ID`` when non-empty. ``connect_timeout``
        bounds the time to connect (default 10 s) and three times it the time until the
        response headers arrive. Raises :class:`APIError` for an HTTP error status (at most
        :data:`ERROR_BODY_LIMIT` bytes of the body are read, and the connection released),
        :class:`APIConnectionError`/:class:`APITimeoutError` when no response came, and
        :class:`ResponseError` when the response is not ``text/event-stream``.
        """
        try:
            return await self._open_stream(path, last_event_id, connect_timeout, attempt)
        except CrewshipError as exc:
            cut_chain(exc)
            raise

    async def _open_stream(
        self,
        path: str,
        last_event_id: Optional[str],
        connect_timeout: Optional[float],
        attempt: int,
    ) -> StreamConnection:
        session = self.session()
        headers = self._stream_headers
        if last_event_id:
            headers = {**headers, "Last-Event-ID": last_event_id}
        limit = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=limit, connect=limit)
        method = "GET"
        guard = CallGuard()
        self._in_flight.add(guard)
        started = asyncio.get_running_loop().time()
        try:
            async with guard:
                with anyio.fail_after(limit * 3):
                    response = await session.get(
                        self.base_url + path,
                        headers=headers,
                        timeout=timeout,
                        allow_redirects=False,
                    )
        except TimeoutError as exc:
            self._log_attempt(method, path, type(exc).__name__, started, attempt)
            if not isinstance(exc, aiohttp.ClientError):
                raise APITimeoutError(
                    f"GET {path}: no response headers within {limit * 3:.1f}s",
                    method=method,
                    path=path,
                ) from exc
            raise self._connection_error(exc, method, path, "could not open the stream") from exc
        except (aiohttp.ClientError, OSError) as exc:
            self._log_attempt(method, path, type(exc).__name__, started, attempt)
            raise self._connection_error(exc, method, path, "could not open the stream") from exc
        finally:
            self._in_flight.discard(guard)
        if guard.fired:
            self._log_attempt(method, path, "ClientClosedError", started, attempt)
            raise ClientClosedError(f"GET {path}: the client was closed while opening the stream")
        self._log_attempt(method, path, response.status, started, attempt)
        try:
            if response.status >= 300:
                raw = await self._read_error_body(response, path, limit * 3)
                raise make_api_error(
                    response.status, response.headers, raw, method=method, path=path
                )
            content_type = response.headers.get("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                raise ResponseError(
                    f"GET {path} -> {response.status}: expected text/event-stream, "
                    f"got {content_type or 'no content type'}",
                    method=method,
                    path=path,
                )
        except BaseException:
            response.close()
            raise
        return StreamConnection(response, method=method, path=path, in_flight=self._in_flight)

    async def _read_error_body(
        self, response: aiohttp.ClientResponse, path: str, limit: float
    ) -> bytes:
        """The body of a stream's HTTP error response: within ``limit`` seconds, ended by
        :meth:`aclose`, and with aiohttp's errors mapped (the caller closes the response)."""
        guard = CallGuard()
        self._in_flight.add(guard)
        try:
            async with guard:
                with anyio.move_on_after(limit):
                    try:
                        return (await read_capped(response, ERROR_BODY_LIMIT))[0]
                    except (aiohttp.ClientError, OSError, RuntimeError) as exc:
                        raise self._connection_error(
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
