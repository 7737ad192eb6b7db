"""What an injected fault does to a response: an error sent instead, a connection dropped,
a body cut in half. Pure aiohttp.web plumbing; :class:`FaultInjector` decides *when*."""

from __future__ import annotations

from aiohttp import web

from ._faults import Failure

__all__ = ["abort_connection", "failure_response", "mangled"]


def failure_response(failure: Failure) -> web.Response:
    """The injected error response: its status, headers and rendered body."""
    body, content_type = failure.render()
    response = web.Response(status=failure.status, body=body)
    response.headers["Content-Type"] = content_type
    response.headers.update(failure.headers)
    return response


def abort_connection(request: web.Request) -> None:
    """Close the request's connection at once, with nothing more sent."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def mangled(response: web.Response) -> web.Response:
    """The same status (200 for a 204) and headers, with the body cut in half.

    A JSON object cut before its closing brace is never valid JSON.
    """
    body = response.body if isinstance(response.body, bytes) else b""
    broken = body[: len(body) // 2] if len(body) > 1 else b'{"truncat'
    status = 200 if response.status == 204 else response.status
    result = web.Response(status=status, body=broken)
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "content-type"):
            result.headers[name] = value
    result.headers["Content-Type"] = "application/json"
    return result
