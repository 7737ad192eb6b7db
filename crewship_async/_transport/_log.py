"""The transport's log lines: one per attempt, one per retry decision.

Both go to the ``crewship_async`` logger, whose redaction filter scrubs every record. They
name the request by its method and path template (``GET /v1/runs/{run_id}``) and the
operation, never the query, a header or a body; with ``CREWSHIP_LOG_BODIES=1`` (or
:func:`crewship_async.enable_logging`'s ``bodies=True``) a DEBUG line also shows the start
of each response body, scrubbed.
"""

from __future__ import annotations

import logging
from typing import Optional, Protocol

from .._logging import bodies_enabled
from .._operations import RequestContext

__all__ = ["log_attempt", "log_body", "log_retry", "logger"]

logger = logging.getLogger("crewship_async")
_BODY_PREVIEW = 2048


def _ids(context: RequestContext) -> str:
    pairs = (
        ("run_id", context.run_id),
        ("thread_id", context.thread_id),
        ("table_id", context.table_id),
        ("row_id", context.row_id),
    )
    return "".join(f", {name}={value}" for name, value in pairs if value is not None)


class _Timed(Protocol):
    def elapsed_attempt(self) -> float: ...


def log_attempt(context: RequestContext, outcome: object, timing: _Timed) -> None:
    """One INFO line per attempt: method, path template, the status or the exception
    name, the attempt's elapsed time (read from ``timing`` only when the line is logged),
    attempt number, operation and the ids the path names.

    The record also carries them as attributes for structured handlers:
    ``crewship_request`` (the :class:`RequestContext`), ``crewship_outcome`` and
    ``crewship_elapsed``.
    """
    if logger.isEnabledFor(logging.INFO):
        elapsed = timing.elapsed_attempt()
        logger.info(
            "%s %s -> %s in %.3fs (attempt %d, %s%s)",
            context.method,
            context.template,
            outcome,
            elapsed,
            context.attempt,
            context.operation,
            _ids(context),
            extra={
                "crewship_request": context,
                "crewship_outcome": outcome,
                "crewship_elapsed": elapsed,
            },
        )


def log_retry(
    context: RequestContext, retry_number: int, max_retries: int, delay: float, error: Exception
) -> None:
    """One DEBUG line when a call is about to be retried."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s: retry %d/%d in %.2fs after %s",
            context.method,
            context.template,
            retry_number,
            max_retries,
            delay,
            type(error).__name__,
        )


def log_body(context: RequestContext, status: int, body: Optional[bytes]) -> None:
    """A DEBUG line with the start of a response body, only when bodies are opted in."""
    if body is None or not logger.isEnabledFor(logging.DEBUG) or not bodies_enabled():
        return
    preview = body[:_BODY_PREVIEW].decode("utf-8", "replace")
    more = f" ... ({len(body)} bytes)" if len(body) > _BODY_PREVIEW else ""
    logger.debug("%s %s -> %s body: %s%s", context.method, context.template, status, preview, more)
