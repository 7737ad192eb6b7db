"""``webhook listen``: a local receiver that verifies and prints Crewship's deliveries."""

from __future__ import annotations

import argparse
import contextvars
import os
from collections.abc import Mapping
from functools import partial
from typing import Any, Optional

import aiohttp
from aiohttp import web

from .._signals import wait_for_stop_signal
from ..integrations.aiohttp import read_body
from ..webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookEvent,
    WebhookReceiver,
)
from ._args import port_number, positive_float
from ._errors import UsageError
from ._output import Output

__all__ = ["register"]

#: Where ``--secret`` is read from when not given on the command line.
SECRET_ENV = "CREWSHIP_WEBHOOK_SECRET"
_FORWARDED = (EVENT_HEADER, DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, "Content-Type")
# The headers of the delivery being handled, for --forward-to (set per request).
_request_headers: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "crewship_listen_headers"
)


def register(actions: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``listen`` to the ``webhook`` command group."""
    listen = actions.add_parser(
        "listen",
        parents=[parent],
        help="receive outgoing webhooks locally: verify and print each delivery",
        description=(
            "Serve a local receiver for Crewship's outgoing webhooks. Every POST (any path) "
            "is verified with the signing secret(s) and printed; a bad one is answered 400 "
            "and reported on stderr, a redelivery is acknowledged and not printed again. "
            "With --forward-to, each verified delivery is sent on, raw body and "
            "X-Crewship-* headers unchanged, to your own app; when that fails the sender "
            "gets 500 and retries. Ctrl-C stops it (exit 0)."
        ),
    )
    listen.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="SECRET",
        help=f"signing secret (repeatable, for rotation; default: ${SECRET_ENV})",
    )
    listen.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    listen.add_argument("--port", type=port_number, default=8787, help="port (8787; 0 picks one)")
    listen.add_argument(
        "--forward-to", metavar="URL", default=None, help="POST each verified delivery here"
    )
    listen.add_argument(
        "--tolerance",
        type=positive_float,
        default=300.0,
        metavar="SECONDS",
        help="accepted clock difference (300)",
    )
    listen.set_defaults(standalone=listen_for_deliveries, need_rich=False)


def _check_forward_url(url: Optional[str]) -> Optional[str]:
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--forward-to must be an http:// or https:// URL, got {url!r}")
    return url


class _Printer:
    """Prints each verified delivery and forwards it when asked."""

    def __init__(
        self, out: Output, session: Optional[aiohttp.ClientSession], forward_to: Optional[str]
    ) -> None:
        self.out = out
        self.session = session
        self.forward_to = forward_to

    async def __call__(self, event: WebhookEvent) -> None:
        forwarded: Optional[int] = None
        if self.session is not None and self.forward_to is not None:
            forwarded = await self._forward(event)
        stamp = event.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.out.json_mode:
            record: dict[str, Any] = {
                "event": str(event.type),
                "delivery_id": event.delivery_id,
                "timestamp": stamp,
                "run_id": event.run_id,
                "status": str(event.status),
            }
            if event.error_message:
                record["error_message"] = event.error_message
            if forwarded is not None:
                record["forwarded_status"] = forwarded
            self.out.write_json(record)
            return
        text = f"{stamp}  {event.type}  {event.run_id}  {event.status}  [{event.delivery_id}]"
        if event.error_message:
            text += f"  error: {event.error_message}"
        if forwarded is not None:
            text += f"  -> {forwarded}"
        self.out.line(text)

    async def _forward(self, event: WebhookEvent) -> int:
        assert self.session is not None
        assert self.forward_to is not None
        given = _request_headers.get({})
        headers = {name: given[name] for name in _FORWARDED if name in given}
        try:
            async with self.session.post(self.forward_to, data=event.body, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.out.note(f"forward to {self.forward_to} failed: {type(exc).__name__}")
            raise
        if status >= 500:
            self.out.note(f"forward to {self.forward_to} answered {status}")
            raise RuntimeError(f"the forward target answered {status}")
        return status


def _handler(receiver: WebhookReceiver, out: Output) -> Any:
    async def handle_delivery(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405, text="POST a delivery here")
        token = _request_headers.set(request.headers)
        try:
            reply = await receiver.receive(partial(read_body, request), request.headers)
        finally:
            _request_headers.reset(token)
        if reply.status in (400, 408, 413):
            out.note(f"refused a delivery: {reply.text}")
        return web.Response(status=reply.status, text=reply.text)

    return handle_delivery


async def listen_for_deliveries(args: argparse.Namespace, out: Output) -> int:
    """Serve the receiver until SIGINT/SIGTERM; 0 once stopped."""
    secrets = list(args.secret) or [s for s in [os.environ.get(SECRET_ENV, "")] if s]
    if not secrets:
        raise UsageError(f"no signing secret: pass --secret or set {SECRET_ENV}")
    forward_to = _check_forward_url(args.forward_to)
    session = aiohttp.ClientSession() if forward_to else None
    try:
        printer = _Printer(out, session, forward_to)
        receiver = WebhookReceiver(secrets, printer, tolerance=args.tolerance)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _handler(receiver, out))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, args.host, args.port).start()
            except OSError as exc:
                raise UsageError(
                    f"cannot listen on {args.host}:{args.port}: {exc.strerror}"
                ) from None
            host, port = runner.addresses[0][:2]
            shown = f"[{host}]" if ":" in host else host
            out.note(f"listening for Crewship webhooks on http://{shown}:{port}/ (Ctrl-C to stop)")
            await wait_for_stop_signal()
        finally:
            await runner.cleanup()
    finally:
        if session is not None:
            await session.close()
    out.note("stopped")
    return 0
