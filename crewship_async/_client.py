"""AsyncCrewship: configuration, session ownership, and the resources."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlsplit

import aiohttp
import attrs

from ._extras import check_headers
from ._logging import configure_from_environment
from ._loopback import is_localhost_name, is_loopback_host
from ._proxy import ProxyChoice, choose_proxy, display_proxy
from ._responses import DEFAULT_MAX_RESPONSE_SIZE
from ._retry import RetryPolicy
from ._streams import DEFAULT_IDLE_TIMEOUT
from ._transport import Transport
from ._transport._hooks import ResponseHook
from .errors import CrewshipError
from .resources.runs import Runs

if TYPE_CHECKING:
    from .resources.raw_views import ClientWithRawResponse
    from .resources.tables import Tables
    from .resources.threads import Threads
    from .resources.webhooks import Webhooks

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "AsyncCrewship"]

DEFAULT_BASE_URL = "https://api.crewship.dev"
DEFAULT_TIMEOUT = 60.0
API_KEY_ENV = "CREWSHIP_API_KEY"


class _Unset:
    """The default of a ``with_options`` argument that was not given."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()
BASE_URL_ENV = "CREWSHIP_BASE_URL"


def _check_timeout(timeout: Optional[float]) -> Optional[float]:
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
    return timeout


def _check_idle(idle_timeout: Optional[float]) -> Optional[float]:
    if idle_timeout is not None and not idle_timeout > 0:
        raise ValueError(f"idle_timeout must be > 0 or None, got {idle_timeout!r}")
    return idle_timeout


def _retry_policy(policy: RetryPolicy, max_retries: Optional[int]) -> RetryPolicy:
    if max_retries is None:
        return policy
    return attrs.evolve(policy, max_retries=max_retries)


def _check_trace_configs(value: object) -> list[aiohttp.TraceConfig]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(item, aiohttp.TraceConfig) for item in value
    ):
        raise TypeError("trace_configs must be a list of aiohttp.TraceConfig")
    return list(value)


def _check_hooks(value: object) -> list[ResponseHook]:
    if value is None:
        return []
    hooks = [value] if callable(value) else value
    if not isinstance(hooks, (list, tuple)) or not all(callable(hook) for hook in hooks):
        raise TypeError("on_response must be a callable or a list of callables")
    return list(hooks)


def _normalise_base_url(value: str, *, allow_insecure_http: bool, borrowed: bool) -> str:
    if any(c in value for c in "\r\n\0 "):
        raise ValueError("base_url contains whitespace or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not have a query or fragment")
    if parts.username or parts.password:
        raise ValueError("base_url must not carry credentials")
    if parts.scheme == "http" and not allow_insecure_http:
        host = parts.hostname
        if not is_loopback_host(host):
            raise ValueError(
                f"refusing plain http:// to {host}: the API key would travel "
                "unencrypted. Use https://, or pass allow_insecure_http=True"
            )
        if borrowed and is_localhost_name(host) and host.lower().rstrip(".") != "localhost":
            # The client's own session resolves *.localhost to loopback itself; a borrowed
            # session asks its resolver, which may answer with any address.
            raise ValueError(
                f"refusing plain http:// to {host} with a borrowed session: its resolver "
                "may map the name anywhere. Use http://127.0.0.1, or pass "
                "allow_insecure_http=True"
            )
    url = value.rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    return url


class AsyncCrewship:
    """The Crewship API client. Use ``async with AsyncCrewship() as client``.

    ``api_key`` falls back to ``CREWSHIP_API_KEY``; ``base_url`` to ``CREWSHIP_BASE_URL``,
    then ``https://api.crewship.dev`` (a trailing ``/v1`` is accepted). ``timeout`` is the
    overall deadline of each call in seconds, across all of its retries (``None``: none);
    each method also takes ``timeout=``. ``max_retries`` is shorthand for
    ``retry_policy=RetryPolicy(max_retries=...)``. ``max_connections`` sizes the pool.
    ``session`` lends an ``aiohttp.ClientSession`` that the client uses and never closes.
    ``idle_timeout`` is the default time a stream may go without an event (``math.inf``
    or ``None``: no limit).
    ``max_response_size`` caps the decoded size of one response body in bytes (default
    32 MiB); a larger body raises :class:`ResponseError` without being read further.

    ``proxy`` (an ``http://`` or ``https://`` URL, credentials allowed) sends every request
    through that proxy; otherwise ``trust_env`` (default true) takes the proxy from
    ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY``, except for a loopback
    base URL, which always goes direct. ``trace_configs`` (a list of
    ``aiohttp.TraceConfig``) is given to the session the client makes; every request is
    tagged with a :class:`RequestContext` as ``trace_request_ctx``. ``on_response``: a
    callable (or list of them, plain or async) called with the :class:`ResponseInfo` of
    every response, retried ones included; what it raises is logged and ignored. With
    ``session=``, the lent session keeps its own settings: ``proxy`` and
    ``trace_configs`` are refused and the environment is not read. ``CREWSHIP_LOG=info``
    or ``debug`` turns on the ``crewship_async`` logger's stderr output (see
    :func:`enable_logging`).

    The key never appears in ``repr``, logs or errors, and the client cannot be pickled.
    Plain ``http://`` to a host other than loopback (an IP literal, ``localhost``, or a
    ``*.localhost`` name, which the client resolves to loopback itself) is refused unless
    ``allow_insecure_http=True``. Raises :class:`CrewshipError` when no key is found and
    ``ValueError``/``TypeError`` for invalid options.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        max_retries: Optional[int] = None,
        max_connections: int = 100,
        default_headers: Optional[Mapping[str, str]] = None,
        session: Optional[aiohttp.ClientSession] = None,
        retry_policy: Optional[RetryPolicy] = None,
        idle_timeout: Optional[float] = DEFAULT_IDLE_TIMEOUT,
        allow_insecure_http: bool = False,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        proxy: Optional[str] = None,
        trust_env: bool = True,
        trace_configs: Optional[Sequence[aiohttp.TraceConfig]] = None,
        on_response: Union[ResponseHook, Sequence[ResponseHook], None] = None,
    ) -> None:
        configure_from_environment()
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key:
            raise CrewshipError(
                f"no API key: pass api_key= or set the {API_KEY_ENV} environment variable"
            )
        if not isinstance(key, str):
            raise TypeError(f"api_key must be a string, got {type(key).__name__}")
        if any(c in key for c in "\r\n\0") or key != key.strip():
            raise ValueError("api_key contains whitespace or control characters")
        url = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        self.base_url: str = _normalise_base_url(
            url, allow_insecure_http=allow_insecure_http, borrowed=session is not None
        )
        _check_timeout(timeout)
        _check_idle(idle_timeout)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError("max_connections must be an int")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        if isinstance(max_response_size, bool) or not isinstance(max_response_size, int):
            raise TypeError("max_response_size must be an int (bytes)")
        if max_response_size < 1:
            raise ValueError(f"max_response_size must be >= 1, got {max_response_size}")
        policy = _retry_policy(retry_policy or RetryPolicy(), max_retries)
        headers = check_headers("default_headers", default_headers)
        configs = _check_trace_configs(trace_configs)
        hooks = _check_hooks(on_response)
        if not isinstance(trust_env, bool):
            raise TypeError("trust_env must be a bool")
        if session is not None:
            if proxy is not None:
                raise ValueError(
                    "proxy= applies to the session the client makes; set the proxy on the "
                    "aiohttp session you lend (session=) instead"
                )
            if configs:
                raise ValueError(
                    "trace_configs= applies to the session the client makes; give them to "
                    "the aiohttp session you lend (session=) instead"
                )
            self._proxy = ProxyChoice(None)
        else:
            self._proxy = choose_proxy(self.base_url, proxy=proxy, trust_env=trust_env)
        self.timeout = timeout
        self.retry_policy = policy
        self.idle_timeout = idle_timeout
        self._transport = Transport(
            base_url=self.base_url,
            api_key=key,
            timeout=timeout,
            retry_policy=policy,
            max_connections=max_connections,
            default_headers=headers,
            session=session,
            max_response_size=max_response_size,
            proxy=self._proxy.url,
            trace_configs=configs,
            on_response=hooks,
        )
        self.runs: Runs = Runs(self._transport, idle_timeout=idle_timeout)

    # The other resources are built, and their modules imported, on first access.

    @cached_property
    def threads(self) -> Threads:
        """Threads and the runs on them (``client.threads.runs``)."""
        from .resources.threads import Threads

        return Threads(self._transport, runs=self.runs)

    @cached_property
    def tables(self) -> Tables:
        """Structured tables and their rows."""
        from .resources.tables import Tables

        return Tables(self._transport)

    @cached_property
    def webhooks(self) -> Webhooks:
        """Runs started through an incoming webhook URL."""
        from .resources.webhooks import Webhooks

        return Webhooks(self._transport)

    @cached_property
    def with_raw_response(self) -> ClientWithRawResponse:
        """The resources again, each single-request method returning a
        :class:`RawResponse` (status, headers, ``request_id``, ``rate_limit``, and
        ``await parse()`` for the model): ``await
        client.with_raw_response.runs.get(run_id)``. Same arguments, checks, retries and
        errors as the ordinary methods."""
        from .resources.raw_views import ClientWithRawResponse

        return ClientWithRawResponse(self)

    def with_options(
        self,
        *,
        timeout: Optional[float] = _UNSET,
        max_retries: Optional[int] = None,
        retry_policy: Optional[RetryPolicy] = None,
        default_headers: Optional[Mapping[str, str]] = None,
        idle_timeout: Optional[float] = _UNSET,
        on_response: Union[ResponseHook, Sequence[ResponseHook], None] = None,
    ) -> AsyncCrewship:
        """A copy of this client with other per-call settings, sharing its connection pool.

        Cheap enough to make per request (no session, no connection is made). Options not
        given keep this client's values; ``default_headers`` are added to (and override)
        this client's; ``on_response`` hooks run after this client's. ``timeout=None`` means
        none, and ``idle_timeout=None`` or ``math.inf`` no limit, as in the constructor.
        Closing the copy makes only
        the copy unusable; closing this client ends the copy's calls too. Raises the
        constructor's errors for invalid values.
        """
        transport = self._transport
        new_timeout = self.timeout if timeout is _UNSET else _check_timeout(timeout)
        new_idle = self.idle_timeout if idle_timeout is _UNSET else _check_idle(idle_timeout)
        policy = _retry_policy(retry_policy or self.retry_policy, max_retries)
        headers = {
            **transport.default_headers,
            **check_headers("default_headers", default_headers),
        }
        hooks = [*transport.on_response, *_check_hooks(on_response)]
        copy = object.__new__(AsyncCrewship)
        copy.base_url = self.base_url
        copy.timeout = new_timeout
        copy.retry_policy = policy
        copy.idle_timeout = new_idle
        copy._proxy = self._proxy
        copy._transport = transport.derive(
            timeout=new_timeout, retry_policy=policy, default_headers=headers, on_response=hooks
        )
        copy.runs = Runs(copy._transport, idle_timeout=new_idle)
        return copy

    def __repr__(self) -> str:
        state = " closed" if self._transport.closed else ""
        return f"<AsyncCrewship base_url={self.base_url!r}{state}>"

    def __reduce__(self) -> Any:
        raise TypeError("AsyncCrewship holds an API key and cannot be pickled")

    @property
    def proxy(self) -> Optional[str]:
        """The proxy the client's requests go through, credentials masked (``None``: direct,
        or a lent session's own settings)."""
        url = self._proxy.url
        return None if url is None else display_proxy(url)

    @property
    def max_connections(self) -> int:
        """The size of the connection pool the client creates."""
        return self._transport.max_connections

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._transport.closed

    async def __aenter__(self) -> AsyncCrewship:
        self._transport.session()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool the client created (a borrowed session stays open).

        Idempotent. Using the client afterwards raises :class:`ClientClosedError`.
        """
        await self._transport.aclose()
