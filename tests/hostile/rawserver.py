"""A raw asyncio HTTP server for the hostile-server tests: it can send anything at all.

:class:`RawServer` listens on 127.0.0.1 (port 0), reads each request's head and body
(``Content-Length`` only, which is all the SDK sends), records it, and hands it with the
connection's writer to the current *behaviour*: a coroutine function that writes whatever
bytes it likes (an echo of the request, a bomb, a bad status line, nothing at all) and
returns. The connection is closed after the behaviour returns, unless it already was.

Helpers build the common behaviours: :func:`reply` (a complete response, with a correct
``Content-Length`` unless told otherwise), :func:`silence` (read the request, never answer)
and :func:`echo_text` (the request's head as text, so any echo can be tested).

Secrets and the scan that proves they never come back are here too: :func:`texts_of`
collects every text an exception exposes (``str``, ``repr``, ``args``, every attribute,
the pickled bytes) across its whole cause/context chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import Awaitable, Iterator
from typing import Any, Callable, Optional

import attrs

KEY = "csk_live_8Jq2ZwV4nR7tY1pX6mK3bH9s"
TOKEN = "whk_tok_5Fz8Lq1Wm4Rt7Yv2Xc9Nb3Kd"


@attrs.define
class RawRequest:
    """One request as the server read it."""

    method: str
    target: str
    head: bytes
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """An HTTP/1.1 listener whose answers are raw bytes (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: list[RawRequest] = []
        self.behaviour: Behaviour = reply(200, b"{}")
        self._server: Optional[asyncio.Server] = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                await self.behaviour(request, writer)
                if writer.is_closing():
                    return
                await writer.drain()
                writer.close()
                return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Optional[RawRequest]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawRequest(method, target, head, headers, body)


def response_bytes(
    status: int | bytes,
    body: bytes = b"",
    headers: Optional[dict[str, str]] = None,
    *,
    content_length: bool = True,
) -> bytes:
    """A whole response: a status line (``bytes``: sent as given), headers, body."""
    line = status if isinstance(status, bytes) else f"HTTP/1.1 {status} X\r\n".encode()
    fields = {"Connection": "close", **(headers or {})}
    if content_length and "Transfer-Encoding" not in fields:
        fields.setdefault("Content-Length", str(len(body)))
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return line + head.encode("latin-1", "backslashreplace") + b"\r\n" + body


def reply(
    status: int | bytes,
    body: bytes | Callable[[RawRequest], bytes] = b"",
    headers: Optional[dict[str, str]] = None,
    **options: Any,
) -> Behaviour:
    """Answer every request with one response; ``body`` may be built from the request."""

    async def behaviour(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        content = body(request) if callable(body) else body
        writer.write(response_bytes(status, content, headers, **options))

    return behaviour


def sequence(*behaviours: Behaviour) -> Behaviour:
    """Each request gets the next behaviour; the last one repeats."""
    queue = list(behaviours)

    async def behaviour(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        await current(request, writer)

    return behaviour


async def silence(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    """Read the request and never answer (until the server is closed)."""
    await asyncio.sleep(3600)


def echo_text(request: RawRequest) -> bytes:
    """The request head, as a gateway that quotes what it received."""
    return request.head


def texts_of(error: BaseException) -> Iterator[str]:
    """Every text ``error`` and each exception in its cause/context chain exposes."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield type(current).__name__
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield from (repr(value) for value in _attributes(current))
        with contextlib.suppress(Exception):
            yield repr(pickle.dumps(current))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        pending.extend(e for e in _attributes(current) if isinstance(e, BaseException))


def _attributes(error: BaseException) -> list[Any]:
    values = list(vars(error).values()) if hasattr(error, "__dict__") else []
    for name in dir(error):
        if name.startswith("__"):
            continue
        with contextlib.suppress(Exception):
            value = getattr(error, name)
            if not callable(value):
                values.append(value)
    return values


def leaks(texts: Iterator[str] | list[str], *secrets: str) -> list[str]:
    """The texts that hold a secret, or its last 8 characters."""
    found = []
    for text in texts:
        for secret in secrets or (KEY, TOKEN):
            if secret in text or secret[-8:] in text or secret[:-8][-8:] in text:
                found.append(text)
    return found
