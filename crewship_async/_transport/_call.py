"""One API call: its attempts, the retries between them, and one deadline over all.

:class:`Caller` sends a :class:`CallSpec` and returns the decoded body. Each attempt is
tagged with its :class:`~crewship_async._operations.RequestContext` (aiohttp's
``trace_request_ctx``), logged, and shown to the response hooks; what the
:class:`~crewship_async._retry.RetryPolicy` says decides whether another follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import aiohttp
import anyio

from .._deadline import Deadline
from .._operations import RequestContext
from .._responses import ERROR_BODY_LIMIT, decode_success, make_api_error, read_capped
from .._retry import RetryPolicy
from ..errors import APIConnectionError, APITimeoutError, RateLimitError
from ._failures import AttemptFailed, connection_error, failed_without_response
from ._hooks import CallRecord, ResponseHooks
from ._log import log_attempt, log_body, log_retry
from ._session import SessionOwner

__all__ = ["CONNECT_TIMEOUT", "CallSpec", "Caller"]

CONNECT_TIMEOUT = 10.0


class CallSpec:
    """What one call sends: built once by :meth:`Transport.request`, read by each attempt."""

    __slots__ = (
        "body",
        "context",
        "deadline",
        "headers",
        "method",
        "params",
        "retry_rate_limits",
        "shown",
        "url",
    )

    def __init__(
        self,
        *,
        method: str,
        url: str,
        shown: str,
        params: Optional[Mapping[str, Any]],
        body: Optional[bytes],
        headers: Mapping[str, str],
        deadline: Deadline,
        retry_rate_limits: bool,
        context: RequestContext,
    ) -> None:
        self.method = method
        self.url = url
        self.shown = shown
        self.params = params
        self.body = body
        self.headers = headers
        self.deadline = deadline
        self.retry_rate_limits = retry_rate_limits
        self.context = context


class Caller:
    """Sends calls through one session owner, under one retry policy."""

    def __init__(
        self,
        sessions: SessionOwner,
        *,
        retry_policy: RetryPolicy,
        max_response_size: int,
        proxy: Optional[str],
        hooks: ResponseHooks,
    ) -> None:
        self._sessions = sessions
        self.retry_policy = retry_policy
        self.max_response_size = max_response_size
        self.proxy = proxy
        self.hooks = hooks
        self._has_hooks = bool(hooks)

    async def send(self, spec: CallSpec, record: CallRecord, session: aiohttp.ClientSession) -> Any:
        """The attempts of one call, with retries, under its deadline. ``record`` collects
        what the response hooks and the response metadata need; ``session`` is the one the
        caller just checked, for the first attempt."""
        policy = self.retry_policy
        loop = record.loop
        retry_number = 0
        while True:
            try:
                return await self._attempt(session, spec, record, retry_number + 1)
            except AttemptFailed as failure:
                error = failure.error
                delay = policy.delay_for(retry_number, failure.retry_after)
                if (
                    not failure.retryable
                    or (not spec.retry_rate_limits and isinstance(error, RateLimitError))
                    or delay is None
                    or policy.gives_up(
                        retry_number, delay, time_left=spec.deadline.remaining_at(loop.time())
                    )
                ):
                    raise _final(error, retry_number + 1) from failure.__cause__
                log_retry(spec.context, retry_number + 1, policy.max_retries, delay, error)
                retry_number += 1
                await anyio.sleep(delay)
                # The client may have been closed while this call waited to retry.
                session = self._sessions.get()

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        spec: CallSpec,
        record: CallRecord,
        attempt: int,
    ) -> Any:
        method, shown, deadline = spec.method, spec.shown, spec.deadline
        context = spec.context.for_attempt(attempt)
        started = record.attempt_started(attempt)
        remaining = deadline.remaining_at(started)
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
                spec.url,
                params=spec.params,
                data=spec.body,
                headers=spec.headers,
                timeout=client_timeout,
                allow_redirects=False,
                proxy=self.proxy,
                trace_request_ctx=context,
            ) as response:
                status = response.status
                limit = self.max_response_size if status < 300 else ERROR_BODY_LIMIT
                raw, complete = await read_capped(response, limit)
                response_headers = response.headers
                if not complete:
                    # Not returned to the pool: the rest of the body was never read.
                    response.close()
        except aiohttp.ClientConnectorCertificateError as exc:
            log_attempt(context, type(exc).__name__, record)
            raise AttemptFailed(
                connection_error(exc, method, shown, "TLS certificate check failed"),
                retryable=False,
                retry_after=None,
            ) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The request never left this process: sending it again cannot duplicate it.
            log_attempt(context, type(exc).__name__, record)
            raise self._no_response(exc, spec, sent=False) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log_attempt(context, type(exc).__name__, record)
            raise self._no_response(exc, spec, sent=True) from exc
        log_attempt(context, status, record)
        log_body(context, status, raw)
        record.responded(status, response_headers)
        if self._has_hooks:
            await self.hooks.responded(record)
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
        raise AttemptFailed(error, retryable=retryable, retry_after=retry_after)

    def _no_response(self, exc: BaseException, spec: CallSpec, *, sent: bool) -> AttemptFailed:
        retryable = self.retry_policy.retries_connection_error(spec.method, request_sent=sent)
        return failed_without_response(
            exc, spec.method, spec.shown, spec.deadline, sent=sent, retryable=retryable
        )


def _final(error: Exception, attempts: int) -> Exception:
    """The error a call ends with; a connection failure says how many attempts it took."""
    if attempts > 1 and isinstance(error, APIConnectionError):
        error.message = f"{error.message} (gave up after {attempts} attempts)"
    return error
