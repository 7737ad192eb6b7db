"""OpenTelemetry spans of the SDK's calls, when ``opentelemetry-api`` is installed.

The ``otel`` extra installs it; without it every function here does nothing. One span per
logical call (``runs.create``, ...), of kind CLIENT, covering all of its attempts, so an
instrumentation of aiohttp (``opentelemetry-instrumentation-aiohttp-client``) nests one
child span per attempt under it. Attributes follow the stable HTTP client conventions
(``http.request.method``, ``server.address``, ``server.port``, ``url.template``,
``http.response.status_code``, ``error.type``, ``http.request.resend_count``) plus
``crewship.operation`` and the ids the call names (``crewship.run_id``,
``crewship.thread_id``, ``crewship.table_id``, ``crewship.row_id``,
``crewship.deployment_id``). No URL is recorded: the path template stands for it, so a
webhook token, which sits in the URL path, never reaches an attribute; neither does a
header. The tracer comes from the global tracer provider at each call, so a provider set
after the client was made is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional

from ._operations import RequestContext
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span

_trace: Any
_NO_OP_PROVIDERS: tuple[type, ...] = ()
try:
    from opentelemetry import trace as _trace

    # The API's own providers: no SDK was set up, so every span would be a no-op.
    _NO_OP_PROVIDERS = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)
except ImportError:  # pragma: no cover - the CI's run without the extra takes this branch
    _trace = None

_UNKNOWN = object()
#: Whether the environment names a tracer provider, which the API loads on first use.
_PROVIDER_IN_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ

__all__ = [
    "active",
    "add_event",
    "batch_span",
    "call_span",
    "end_stream",
    "finish_batch",
    "finish_call",
    "span_attributes",
    "stream_span",
]


def active() -> bool:
    """Whether a call's span would be recorded: OpenTelemetry is installed and a tracer
    provider other than the API's no-op default is set (checked at each call, so a
    provider set later is seen). A call costs no span object when this is false.

    The API keeps the provider it was given in ``_TRACER_PROVIDER`` (set once, never
    unset), so while that is empty, and no provider is named in the environment, there is
    nothing to ask: this runs before every call, and asking costs a dictionary lookup in
    ``os.environ``.
    """
    if _trace is None:
        return False
    if _trace.__dict__.get("_TRACER_PROVIDER", _UNKNOWN) is None and not _PROVIDER_IN_ENV:
        return False
    return not isinstance(_trace.get_tracer_provider(), _NO_OP_PROVIDERS)


_SCOPE = "crewship_async"


def span_attributes(
    context: RequestContext, server: tuple[str, int], deployment_id: Optional[str] = None
) -> dict[str, Any]:
    """The attributes a call's span starts with."""
    attributes: dict[str, Any] = {
        "http.request.method": context.method,
        "server.address": server[0],
        "server.port": server[1],
        "url.template": context.template,
        "crewship.operation": context.operation,
    }
    for name in ("run_id", "thread_id", "table_id", "row_id"):
        value = getattr(context, name)
        if value is not None:
            attributes[f"crewship.{name}"] = value
    if deployment_id is not None:
        attributes["crewship.deployment_id"] = deployment_id
    return attributes


def _start(name: str, attributes: Mapping[str, Any], *, client: bool = True) -> Optional[Span]:
    if not active():
        return None
    tracer = _trace.get_tracer(_SCOPE, __version__)
    kind = _trace.SpanKind.CLIENT if client else _trace.SpanKind.INTERNAL
    span: Span = tracer.start_span(name, kind=kind, attributes=attributes)
    return span


def finish_call(
    span: Optional[Span],
    *,
    status: Optional[int],
    attempts: int,
    error: Optional[BaseException],
) -> None:
    """Record the outcome of a call on its span and end it."""
    if span is None or _trace is None:
        return
    if span.is_recording():
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if attempts > 1:
            span.set_attribute("http.request.resend_count", attempts - 1)
        if error is not None:
            kind = str(status) if status is not None and status >= 400 else type(error).__name__
            span.set_attribute("error.type", kind)
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(error).__name__))
    span.end()


@contextmanager
def call_span(
    context: RequestContext, server: tuple[str, int], deployment_id: Optional[str]
) -> Iterator[Optional[Span]]:
    """The span of one call, current while the block runs (``None`` without OpenTelemetry).

    The caller ends it with :func:`finish_call`; this only makes it current.
    """
    span = _start(context.operation, span_attributes(context, server, deployment_id))
    if span is None or _trace is None:
        yield None
        return
    with _trace.use_span(span, end_on_exit=False, record_exception=False):
        yield span


@contextmanager
def batch_span(operation: str, attributes: Mapping[str, Any]) -> Iterator[Optional[Span]]:
    """The INTERNAL span of a batch (``runs.create_many``), current while the block runs,
    so that the span of every call the batch makes is its child. Ended when the block
    exits; the batch records its counts and error with :func:`finish_batch` (a
    cancellation, the consumer being done, is no error). ``None`` without
    OpenTelemetry."""
    span = _start(operation, {"crewship.operation": operation, **attributes}, client=False)
    if span is None or _trace is None:
        yield None
        return
    with _trace.use_span(
        span, end_on_exit=True, record_exception=False, set_status_on_exception=False
    ):
        yield span


def finish_batch(
    span: Optional[Span], attributes: Mapping[str, Any], error: Optional[BaseException]
) -> None:
    """Record a batch's final counts, and the error that ended it, on its span."""
    if span is None or _trace is None or not span.is_recording():
        return
    span.set_attributes(attributes)
    if error is not None:
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(error).__name__))


def stream_span(context: RequestContext, server: tuple[str, int]) -> Optional[Span]:
    """A span for an event stream, ended by the stream when it closes (``None`` without
    OpenTelemetry). Not made current: a stream outlives the code that opened it."""
    return _start(context.operation, span_attributes(context, server))


def end_stream(span: Optional[Span], *, reconnects: int, error: Optional[BaseException]) -> None:
    """End a stream's span: its reconnect count, and the error that ended it if any (the
    end of the iteration, a close or a cancellation is no error)."""
    if span is None or _trace is None:
        return
    if span.is_recording():
        span.set_attribute("crewship.stream.reconnects", reconnects)
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(error).__name__))
    span.end()


def add_event(span: Optional[Span], name: str, attributes: Mapping[str, Any]) -> None:
    """A span event (a reconnect, the terminal event), when the span records."""
    if span is not None and span.is_recording():
        span.add_event(name, attributes=dict(attributes))
