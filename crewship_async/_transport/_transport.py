"""The :class:`Transport` of one client: its headers, its calls in flight, and closing."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, cast
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .. import _json, _tracing
from .._connection import CallGuard, StreamConnection
from .._deadline import Deadline
from .._extras import NO_EXTRAS, Extras
from .._metadata import ResponseInfo
from .._operations import describe
from .._redact import Secret, cut_chain
from .._responses import DEFAULT_MAX_RESPONSE_SIZE
from .._retry import RetryPolicy
from .._version import __version__
from ..errors import APIError, ClientClosedError, CrewshipError
from ._call import Caller, CallSpec
from ._failures import maybe_applied
from ._hooks import CallRecord, ResponseHook, ResponseHooks
from ._session import SessionOwner
from ._stream_open import StreamOpener

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["USER_AGENT", "Reply", "Transport"]

USER_AGENT = (
    f"crewship-async/{__version__} "
    f"python/{sys.version_info.major}.{sys.version_info.minor} "
    f"aiohttp/{'.'.join(aiohttp.__version__.split('.')[:2])}"
)


class Reply:
    """A call's decoded JSON body and the :class:`ResponseInfo` of its response."""

    __slots__ = ("body", "info")

    def __init__(self, body: Any, info: ResponseInfo) -> None:
        self.body = body
        self.info = info


class Transport:
    """Sends requests for one client: one session, one retry policy, one deadline per call.

    ``session`` given: borrowed, used as is and never closed. Otherwise a session is made
    on first use inside the running event loop and closed by :meth:`aclose`. A transport is
    bound to the loop of its first request; using it from another loop raises
    :class:`ClientClosedError` instead of hanging. ``proxy``: the proxy URL every request
    goes through (the client chose it), or ``None`` for direct connections.
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
        proxy: Optional[str] = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        on_response: Sequence[ResponseHook] = (),
        shared_pool: Optional[SessionOwner] = None,
    ) -> None:
        self.base_url = base_url
        self.max_response_size = max_response_size
        # Registers the key with the redaction step for as long as this transport lives.
        self._secret = Secret(api_key)
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_connections = max_connections
        self.proxy = proxy
        parts = urlsplit(base_url)
        self._server = (
            parts.hostname or "",
            parts.port or (443 if parts.scheme == "https" else 80),
        )
        self.on_response: tuple[ResponseHook, ...] = tuple(on_response)
        self._owns_pool = shared_pool is None
        self._closed_here = False
        self._sessions = shared_pool or SessionOwner(
            session, max_connections=max_connections, trace_configs=trace_configs
        )
        self._in_flight = self._sessions.in_flight
        self.default_headers: dict[str, str] = dict(default_headers)
        common = {"User-Agent": USER_AGENT, "Accept": "application/json", **default_headers}
        authenticated = {**common, "Authorization": f"Bearer {api_key}"}
        json_type = {"Content-Type": "application/json"}
        self._anonymous_headers = _prepared(common)
        self._headers = _prepared(authenticated)
        self._json_headers = _prepared({**authenticated, **json_type})
        self._anonymous_json_headers = _prepared({**common, **json_type})
        hooks = ResponseHooks(on_response)
        self._caller = Caller(
            self._sessions,
            retry_policy=retry_policy,
            max_response_size=max_response_size,
            proxy=proxy,
            hooks=hooks,
        )
        self._streams = StreamOpener(
            self._sessions,
            base_url=base_url,
            headers=_prepared(
                {**authenticated, "Accept": "text/event-stream", "Cache-Control": "no-store"}
            ),
            proxy=proxy,
            in_flight=self._in_flight,
            hooks=hooks,
        )

    def derive(
        self,
        *,
        timeout: Optional[float],
        retry_policy: RetryPolicy,
        default_headers: Mapping[str, str],
        on_response: Sequence[ResponseHook],
    ) -> Transport:
        """A transport with other per-call settings that shares this one's pool, key,
        proxy and limits (closing it leaves the pool open)."""
        return Transport(
            base_url=self.base_url,
            api_key=self._secret.value,
            timeout=timeout,
            retry_policy=retry_policy,
            max_connections=self.max_connections,
            default_headers=default_headers,
            max_response_size=self.max_response_size,
            proxy=self.proxy,
            on_response=on_response,
            shared_pool=self._sessions,
        )

    def __reduce__(self) -> Any:
        raise TypeError("a crewship_async transport holds an API key and cannot be pickled")

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (here, or on the client that owns the pool)."""
        return self._closed_here or self._sessions.closed

    @property
    def pool(self) -> SessionOwner:
        """The connection pool, to share with a derived transport (``with_options``)."""
        return self._sessions

    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running loop (see
        :meth:`SessionOwner.get` for the errors)."""
        if self._closed_here:
            raise ClientClosedError("this AsyncCrewship client is closed; create a new one")
        return self._sessions.get()

    def pool_size(self) -> int:
        """How many connections the session's pool opens at most (0: unlimited)."""
        return self._sessions.pool_size()

    async def aclose(self) -> None:
        """Close the session if this transport created it. Idempotent.

        Calls and stream reads still in flight end with :class:`ClientClosedError`. Raises
        :class:`ClientClosedError` (and closes nothing) when called from an event loop other
        than the client's while that loop is still open: its connections belong to it.
        """
        if not self._owns_pool:
            # A with_options() copy: closing it leaves the shared pool to its owner.
            self._closed_here = True
            return
        self._sessions.check_close_loop()
        await self._sessions.aclose()

    async def call(
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
        extra_headers: Optional[Mapping[str, str]] = None,
    ) -> Reply:
        """Send one API call (with retries): its decoded JSON body and response metadata.

        ``path`` is appended to the base URL (ids already encoded). ``json`` is sent as the
        body when ``send_json`` is true or ``json`` is not None; it is encoded before the
        first attempt, so a value JSON cannot hold raises ``TypeError`` and nothing is sent.
        A 204 or empty body gives ``None``. ``timeout`` overrides the client's deadline for
        this call across all attempts. ``display_path`` replaces ``path`` in logs and errors
        (used to keep a webhook token out of them). ``retry_rate_limits=False`` raises a
        429 at once as :class:`RateLimitError` (``retry_after`` set) instead of sleeping and
        retrying, so a caller coordinating many requests (the fan-out) can pause them all.
        ``extra_headers`` (checked by the caller, see :mod:`crewship_async._extras`) are
        added to this call's headers, overriding the client's defaults.

        Raises :class:`APIError` subclasses for HTTP errors (with ``response_info``),
        :class:`APIConnectionError` / :class:`APITimeoutError` when no response could be
        had, :class:`ResponseError` for a 2xx body that is not JSON.
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
            headers: Mapping[str, str] = (
                self._json_headers if authenticated else self._anonymous_json_headers
            )
        else:
            headers = self._headers if authenticated else self._anonymous_headers
        if extra_headers:
            headers = {**headers, **extra_headers}
        session = self.session()  # closed or another loop: raised before anything starts
        context = describe(method, shown)
        record = CallRecord(context)
        value = self.timeout if timeout is None else timeout
        spec = CallSpec(
            method=method,
            url=self.base_url + path,
            shown=shown,
            params=params,
            body=body,
            headers=headers,
            deadline=Deadline(value, start=record.started),
            retry_rate_limits=retry_rate_limits,
            context=context,
        )
        if not _tracing.active():
            return await self._run(spec, record, session)
        deployment = json.get("deployment_id") if isinstance(json, dict) else None
        return await _traced(self._run(spec, record, session), record, self._server, deployment)

    async def _run(
        self, spec: CallSpec, record: CallRecord, session: aiohttp.ClientSession
    ) -> Reply:
        """The call under a guard that :meth:`aclose` fires, its errors finished."""
        guard = CallGuard()
        self._in_flight.add(guard)
        try:
            async with guard:
                result = await self._caller.send(spec, record, session)
                # A call that succeeded had a response, so its record has one.
                return Reply(result, cast(ResponseInfo, record.info()))
        except CrewshipError as exc:
            if isinstance(exc, APIError) and exc.response_info is None:
                exc.response_info = record.error_info()
            cut_chain(exc)
            raise
        finally:
            self._in_flight.discard(guard)
        raise ClientClosedError(
            f"{spec.method} {spec.shown}: the client was closed during the call"
            + maybe_applied(spec.method)
        )

    def stream_span(self, path: str) -> Optional[Span]:
        """The OpenTelemetry span of an event stream on ``path``, ended by the stream
        (``None`` without a tracer provider)."""
        if not _tracing.active():
            return None
        return _tracing.stream_span(describe("GET", path, cached=False), self._server)

    def open_stream(
        self,
        path: str,
        *,
        last_event_id: Optional[str] = None,
        connect_timeout: Optional[float] = None,
        attempt: int = 1,
        extras: Extras = NO_EXTRAS,
    ) -> Coroutine[Any, Any, StreamConnection]:
        """Open one ``GET`` event-stream connection (a single attempt, no retries): await
        the coroutine returned.

        Logs one line for the attempt, like every other request: method, path template,
        the status or the exception name, elapsed time and ``attempt`` (the caller's count).
        ``extras``: the stream's checked ``extra_headers`` and ``extra_query``.

        ``last_event_id`` is sent as ``Last-Event-ID`` when non-empty. ``connect_timeout``
        bounds the time to connect (default 10 s) and three times it the time until the
        response headers arrive. Raises :class:`APIError` for an HTTP error status (at most
        64 KiB of the body are read, and the connection released),
        :class:`APIConnectionError`/:class:`APITimeoutError` when no response came, and
        :class:`ResponseError` when the response is not ``text/event-stream``. The error
        chains hold no other library's exception.
        """
        # The opener's coroutine itself: a stream holds one frame less while it opens.
        return self._streams.open(path, last_event_id, connect_timeout, attempt, extras)


def _prepared(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    """``headers`` as aiohttp keeps a request's headers: passed so, they are not converted
    again for every request (half a microsecond, and a few hundred bytes while it lasts)."""
    return CIMultiDictProxy(CIMultiDict(headers))


async def _traced(
    run: Awaitable[Reply], record: CallRecord, server: tuple[str, int], deployment: Optional[str]
) -> Reply:
    """``run`` (a call) inside its OpenTelemetry span, which ends with its outcome."""
    with _tracing.call_span(record.context, server, deployment) as span:
        try:
            reply = await run
        except BaseException as exc:
            _tracing.finish_call(span, status=record.status, attempts=record.attempts, error=exc)
            raise
        _tracing.finish_call(span, status=record.status, attempts=record.attempts, error=None)
        return reply
