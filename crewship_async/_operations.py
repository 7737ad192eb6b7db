"""Which API operation a request is, and the context it is tagged with.

Every request the SDK sends is one of the operations of the API. :func:`describe` names it
from the method and path (``runs.create``, ``threads.runs.create``, ...) and reads the ids
out of the path, so that logs, ``trace_request_ctx``, spans and response metadata all say
the same thing without every resource method passing it along. The table below is the one
list of operations; a path it does not know is named ``<METHOD> <path>``.

Ids sit at fixed places of the API's paths (``/v1/<collection>/<id>/<sub>/<id>``), so a
path is looked up in one dict by its shape: the segments with those places blanked.
"""

from __future__ import annotations

import functools
from typing import Optional
from urllib.parse import unquote

import attrs

__all__ = ["RequestContext", "describe"]

# Indexes, in "/v1/runs/<id>/cancel".split("/"), of the segments that may hold an id.
_ID_SEGMENTS = (3, 5)
_ID = "{}"

# (method, path template, operation); "{name}" marks an id segment.
_TABLE = (
    ("POST", "/v1/runs", "runs.create"),
    ("GET", "/v1/runs", "runs.list"),
    ("GET", "/v1/runs/{run_id}", "runs.get"),
    ("POST", "/v1/runs/{run_id}/cancel", "runs.cancel"),
    ("GET", "/v1/runs/{run_id}/events", "runs.stream"),
    ("POST", "/v1/threads", "threads.create"),
    ("GET", "/v1/threads", "threads.list"),
    ("GET", "/v1/threads/{thread_id}", "threads.get"),
    ("PATCH", "/v1/threads/{thread_id}", "threads.update"),
    ("DELETE", "/v1/threads/{thread_id}", "threads.delete"),
    ("POST", "/v1/threads/{thread_id}/copy", "threads.copy"),
    ("GET", "/v1/threads/{thread_id}/history", "threads.history"),
    ("GET", "/v1/threads/{thread_id}/state", "threads.state"),
    ("POST", "/v1/threads/{thread_id}/runs", "threads.runs.create"),
    ("GET", "/v1/threads/{thread_id}/runs", "threads.runs.list"),
    ("POST", "/v1/tables", "tables.create"),
    ("GET", "/v1/tables", "tables.list"),
    ("GET", "/v1/tables/{table_id}", "tables.get"),
    ("PATCH", "/v1/tables/{table_id}", "tables.update"),
    ("DELETE", "/v1/tables/{table_id}", "tables.delete"),
    ("POST", "/v1/tables/{table_id}/rows", "tables.rows.insert"),
    ("GET", "/v1/tables/{table_id}/rows", "tables.rows.list"),
    ("GET", "/v1/tables/{table_id}/rows/{row_id}", "tables.rows.get"),
    ("PATCH", "/v1/tables/{table_id}/rows/{row_id}", "tables.rows.update"),
    ("DELETE", "/v1/tables/{table_id}/rows/{row_id}", "tables.rows.delete"),
    # The token is a secret: only the display path (/webhooks/runs/***) is ever described.
    ("POST", "/webhooks/runs/***", "webhooks.trigger"),
)


@attrs.frozen(slots=True)
class RequestContext:
    """What one attempt of a request is.

    Handed to aiohttp as ``trace_request_ctx`` (so a user's ``aiohttp.TraceConfig`` or
    OpenTelemetry's aiohttp instrumentation can read it as
    ``trace_config_ctx.trace_request_ctx``), written in the log lines and kept in response
    metadata. ``operation`` is the API operation (``runs.create``, ``tables.rows.insert``,
    ...); ``method`` and ``path`` the request as logs show it (a webhook token is never in
    it); ``template`` the path with its ids as ``{run_id}``-style names; ``attempt`` counts
    from 1; the ids are those the path names, else ``None``.
    """

    operation: str
    method: str
    path: str
    template: str
    attempt: int = 1
    run_id: Optional[str] = None
    thread_id: Optional[str] = None
    table_id: Optional[str] = None
    row_id: Optional[str] = None

    def for_attempt(self, attempt: int) -> RequestContext:
        """The same request at ``attempt`` (itself when the number is the same)."""
        if attempt == self.attempt:
            return self
        return attrs.evolve(self, attempt=attempt)


def _shape(method: str, segments: list[str]) -> tuple[str, ...]:
    blanked = list(segments)
    for index in _ID_SEGMENTS:
        if index < len(blanked):
            blanked[index] = _ID
    return (method, *blanked)


def _index() -> dict[tuple[str, ...], tuple[str, str, tuple[tuple[int, str], ...]]]:
    index = {}
    for method, template, operation in _TABLE:
        segments = template.split("/")
        ids = tuple(
            (position, segments[position][1:-1])
            for position in _ID_SEGMENTS
            if position < len(segments)
        )
        index[_shape(method, segments)] = (operation, template, ids)
    return index


_BY_SHAPE = _index()
_KNOWN_IDS = frozenset(attrs.fields_dict(RequestContext)) - {
    "operation",
    "method",
    "path",
    "template",
    "attempt",
}


def describe(method: str, path: str, *, attempt: int = 1, cached: bool = True) -> RequestContext:
    """The :class:`RequestContext` of ``method path`` (``path`` as displayed, ids encoded,
    no query string).

    ``cached=False`` for a path that seldom repeats (an event stream's, one per run): it
    is described anew and takes no place among the last 1,024 paths kept."""
    first = _first_attempt(method, path) if cached else _describe(method, path)
    return first.for_attempt(attempt)


def _describe(method: str, path: str) -> RequestContext:
    segments = path.split("/")
    found = _BY_SHAPE.get(_shape(method, segments))
    if found is None:
        return RequestContext(f"{method} {path}", method, path, path, 1)
    operation, template, id_positions = found
    ids = {
        name: unquote(segments[position]) for position, name in id_positions if name in _KNOWN_IDS
    }
    return RequestContext(operation, method, path, template, 1, **ids)


# A context is immutable, so the same path shares one; most calls repeat a path (a create,
# a listing, polls of one run), and a miss costs what describing it costs.
_first_attempt = functools.lru_cache(maxsize=1024)(_describe)
