"""A canned-response Crewship upstream that costs its clients' benchmarks almost nothing.

Run as ``python -m benchmarks.upstream [--events N ...] [--threads N]``. It listens on
127.0.0.1 on a free port, prints ``PORT <number>`` on stdout, and serves until its stdin
closes or it gets SIGTERM/SIGINT.

It is a bare :class:`asyncio.Protocol` HTTP/1.1 server with keep-alive. It parses only
what the benchmarks send: the request line, the header block, and a ``Content-Length``
body (pipelined requests are answered in order). Every answer is pre-built bytes:

``POST /v1/runs``
    202 with the documented body ``{"run_id": ..., "version_id": "ver_abc",
    "version_number": 3, "status": "running"}``.
``GET /v1/runs/{id}/events``
    A pre-generated ``text/event-stream`` of ``N`` ``log`` events (``id: 1`` ... ``id: N``)
    then one ``run.completed`` event, sent with ``Content-Length`` and
    ``Connection: close``. ``N`` is the number in an id of the form ``ev<N>`` when it was
    pre-generated with ``--events N``; any other id gets the first ``--events`` size.
``GET /v1/runs/hold<anything>/events``
    Sends the stream's headers and one ``log`` event, then holds the connection open
    (no length, no end) until the client closes it.
``GET /v1/threads?...``
    200 with a pre-generated page of ``--threads`` realistic Thread objects.
``GET /v1/runs/{id}``
    200 with a running Run object.

Anything else gets a 404 with the API's error envelope. :func:`thread_page_body` and
:func:`event_stream_body` build the same bytes for in-process use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Optional

from benchmarks._harness import raise_fd_limit

__all__ = ["event_stream_body", "main", "run_created_body", "thread_page_body"]

_REASONS = {200: b"OK", 202: b"Accepted", 404: b"Not Found"}


def run_created_body() -> bytes:
    """The documented 202 body of ``POST /v1/runs``."""
    return (
        b'{"run_id":"run_xyz789abc","version_id":"ver_abc","version_number":3,"status":"running"}'
    )


def event_stream_body(events: int) -> bytes:
    """``events`` ``log`` events with ids 1..events, then a ``run.completed`` event."""
    parts = [
        b'id: %d\ndata: {"type":"log","data":{"message":"step %d of the crew: '
        b'found 15 relevant results"}}\n\n' % (i, i)
        for i in range(1, events + 1)
    ]
    parts.append(
        b'id: %d\ndata: {"type":"run.completed","data":{"status":"succeeded"}}\n\n' % (events + 1)
    )
    return b"".join(parts)


def _thread(index: int) -> dict[str, object]:
    created = datetime(2024, 1, 15, 10, 35, tzinfo=UTC) + timedelta(minutes=index)
    updated = created + timedelta(minutes=5, seconds=index % 60)
    return {
        "thread_id": f"thr_{index:09d}abc",
        "deployment_id": "dep_abc123",
        "status": ("idle", "busy", "interrupted", "error")[index % 4],
        "metadata": {"user_id": f"user_{index % 97}", "channel": "web", "priority": index % 3},
        "values": {
            "messages": [
                {"role": "user", "content": f"Hello, can you research topic {index}?"},
                {
                    "role": "assistant",
                    "content": "Sure. I found 15 relevant results and summarised them below.",
                },
                {"role": "user", "content": "Thanks, please draft the report."},
            ],
            "step": index % 7,
        },
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def thread_page_body(count: int = 1000) -> bytes:
    """``{"threads": [...]}`` with ``count`` Thread objects shaped as API.md documents."""
    page = {"threads": [_thread(i) for i in range(count)]}
    return json.dumps(page, separators=(",", ":")).encode()


def _response(
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    close: bool = False,
) -> bytes:
    head = [
        b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"OK")),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
        b"Connection: close" if close else b"Connection: keep-alive",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_HOLD_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    b"Connection: close\r\n\r\n"
    b'id: 1\ndata: {"type":"log","data":{"message":"holding"}}\n\n'
)
_RUN_BODY = (
    b'{"id":"run_xyz789abc","version_id":"ver_abc","deployment_id":"dep_abc123",'
    b'"status":"running","input":{"topic":"AI"},"output":null,"error_message":null,'
    b'"created_at":"2024-01-15T10:35:00Z","started_at":"2024-01-15T10:35:02Z",'
    b'"completed_at":null}'
)


class Responses:
    """The pre-built answers, shared by every connection."""

    def __init__(self, event_sizes: list[int], threads: int) -> None:
        self.created = _response(202, run_created_body())
        self.run = _response(200, _RUN_BODY)
        self.threads = _response(200, thread_page_body(threads))
        self.not_found = _response(404, b'{"error":{"message":"not found","code":"not_found"}}')
        self.streams: dict[bytes, bytes] = {}
        for size in event_sizes:
            self.streams[b"ev%d" % size] = _response(
                200, event_stream_body(size), content_type=b"text/event-stream", close=True
            )
        self.default_stream = self.streams[b"ev%d" % event_sizes[0]]


class CannedHTTP(asyncio.Protocol):
    """One client connection: parse requests, write the canned answers."""

    def __init__(self, responses: Responses) -> None:
        self.responses = responses
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = b""
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.done = True
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while not self.done:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            headers = b"" if line_end < 0 else head[line_end:].lower()
            length = 0
            at = headers.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = headers.find(b"\r\n", at + 2)
                length = int(headers[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buffer) < total:
                break
            buffer = buffer[total:]
            wants_close = b"\r\nconnection: close" in headers
            self.answer(request_line, wants_close)
        self.buffer = buffer

    def answer(self, request_line: bytes, wants_close: bool) -> None:
        """Write the canned answer for one request."""
        transport = self.transport
        if transport is None:
            return
        method, _, rest = request_line.partition(b" ")
        target = rest.rpartition(b" ")[0]
        path = target.partition(b"?")[0]
        responses = self.responses
        close = wants_close
        if method == b"POST" and path == b"/v1/runs":
            transport.write(responses.created)
        elif method == b"GET" and path.startswith(b"/v1/runs/"):
            run_id, _, tail = path[9:].partition(b"/")
            if tail == b"events":
                if run_id.startswith(b"hold"):
                    transport.write(_HOLD_HEAD)
                    self.done = True
                    return
                transport.write(responses.streams.get(run_id, responses.default_stream))
                close = True
            elif not tail:
                transport.write(responses.run)
            else:
                transport.write(responses.not_found)
        elif method == b"GET" and path == b"/v1/threads":
            transport.write(responses.threads)
        else:
            transport.write(responses.not_found)
        if close:
            self.done = True
            transport.close()


async def serve(event_sizes: list[int], threads: int) -> None:
    """Serve until stdin closes or a termination signal arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    responses = Responses(event_sizes, threads)
    server = await loop.create_server(
        lambda: CannedHTTP(responses), "127.0.0.1", 0, backlog=4096, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


def main(argv: Optional[list[str]] = None) -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events",
        type=int,
        action="append",
        help="event-stream sizes to pre-generate (repeatable; default 200000)",
    )
    parser.add_argument("--threads", type=int, default=1000, help="threads per list page")
    args = parser.parse_args(argv)
    raise_fd_limit()
    asyncio.run(serve(args.events or [200_000], args.threads))


if __name__ == "__main__":
    main()
