"""Small proxies for the tests, on 127.0.0.1: a forward proxy that also tunnels CONNECT,
and a TLS front that puts a certificate in front of a plain-http server.

:class:`ForwardProxy` records what it is asked: each request head (absolute-form
``GET http://host/path`` for plain http, ``CONNECT host:443`` for https) and, for a
tunnel, every byte the client sent through it, so a test can check that the proxy never
saw the API key. Whatever host is asked for, it connects to ``upstream`` (the emulator,
or a :class:`TLSFront` for CONNECT).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["ForwardProxy", "ProxiedRequest", "TLSFront", "serve_forward_proxy", "serve_tls_front"]


class ProxiedRequest:
    """One request head the proxy received."""

    def __init__(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, _ = lines[0].split(" ", 2)
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                self.headers[name.strip().lower()] = value.strip()
        self.head = head


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray) -> None:
    try:
        while chunk := await reader.read(65536):
            log.extend(chunk)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class ForwardProxy:
    """A forward proxy: absolute-form requests are forwarded, CONNECT is tunnelled."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.requests: list[ProxiedRequest] = []
        #: Every byte clients sent inside CONNECT tunnels (TLS records, for https).
        self.tunnelled = bytearray()
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request = ProxiedRequest(head)
            self.requests.append(request)
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            if request.method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                log = self.tunnelled
            else:
                # One request per connection: the upstream is told to close after it.
                origin = "/" + request.target.split("://", 1)[1].partition("/")[2]
                kept = [
                    line
                    for line in head.decode("latin-1").split("\r\n")[1:]
                    if line and not line.lower().startswith(("proxy-", "connection:"))
                ]
                rewritten = "\r\n".join(
                    [f"{request.method} {origin} HTTP/1.1", *kept, "Connection: close", "", ""]
                )
                up_writer.write(rewritten.encode("latin-1"))
                log = bytearray()
            await asyncio.gather(
                _pipe(reader, up_writer, log), _pipe(up_reader, writer, bytearray())
            )
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            writer.close()
        finally:
            self._tasks.discard(task)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


class TLSFront:
    """Terminates TLS with ``context`` and passes the plain bytes on to ``upstream``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.received = bytearray()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            await asyncio.gather(
                _pipe(reader, up_writer, self.received), _pipe(up_reader, writer, bytearray())
            )
        except (ConnectionError, OSError):
            writer.close()


@asynccontextmanager
async def serve_forward_proxy(upstream: tuple[str, int]) -> AsyncIterator[tuple[ForwardProxy, str]]:
    """A :class:`ForwardProxy` to ``upstream`` on a free port, and its URL."""
    proxy = ForwardProxy(upstream)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield proxy, f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await proxy.aclose()
        await server.wait_closed()


@asynccontextmanager
async def serve_tls_front(
    upstream: tuple[str, int], context: ssl.SSLContext
) -> AsyncIterator[tuple[TLSFront, tuple[str, int]]]:
    """A :class:`TLSFront` to ``upstream`` on a free port, and its address."""
    front = TLSFront(upstream)
    server = await asyncio.start_server(front.handle, "127.0.0.1", 0, ssl=context)
    address = server.sockets[0].getsockname()[:2]
    try:
        yield front, address
    finally:
        server.close()
        await server.wait_closed()
