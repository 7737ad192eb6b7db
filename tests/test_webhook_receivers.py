"""The aiohttp.web and Starlette receivers, end to end: the emulator signs and POSTs
deliveries over real sockets, the receiver verifies, deduplicates and answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Callable

import aiohttp
import pytest
from aiohttp import web
from starlette.applications import Starlette
from web_servers import serve_aiohttp, serve_asgi

from crewship_async.integrations.aiohttp import webhook_handler
from crewship_async.integrations.starlette import webhook_endpoint
from crewship_async.testing import CrewshipEmulator
from crewship_async.webhooks import WebhookEvent, WebhookReceiver, delivery_headers

Mount = Callable[[WebhookReceiver], Any]


@asynccontextmanager
async def aiohttp_receiver(receiver: WebhookReceiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", webhook_handler(receiver))
    async with serve_aiohttp(app) as base:
        yield f"{base}/hook"


@asynccontextmanager
async def starlette_receiver(receiver: WebhookReceiver) -> AsyncIterator[str]:
    app = Starlette()
    app.add_route("/hook", webhook_endpoint(receiver), methods=["POST"])
    async with serve_asgi(app) as base:
        yield f"{base}/hook"


RECEIVERS = [
    pytest.param(aiohttp_receiver, id="aiohttp"),
    pytest.param(starlette_receiver, id="starlette"),
]


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[WebhookEvent] = []
        self.calls = 0
        self.fail_first = fail_first

    async def __call__(self, event: WebhookEvent) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("not yet")
        self.events.append(event)


@pytest.mark.parametrize("serve", RECEIVERS)
async def test_emulator_deliveries_reach_the_receiver(serve: Any) -> None:
    recorder = Recorder()
    async with CrewshipEmulator() as emu:
        secret = "whsec_fixed_for_this_test"
        receiver = WebhookReceiver(["whsec_previous", secret], recorder)
        async with serve(receiver) as url:
            assert emu.add_outgoing_webhook("dep_hooks", url, secret=secret) == secret
            emu.script_runs("failed", count=1, error_message="tool crashed")
            async with emu.client() as client:
                failed = await client.runs.create("dep_hooks", input={"n": 1})
                await client.runs.wait(failed.run_id, poll_interval=0.02)
                ok = await client.runs.create("dep_hooks", input={"n": 2})
                await client.runs.wait(ok.run_id, poll_interval=0.02)
                # Another deployment has no webhook: nothing is sent for its runs.
                other = await client.runs.create("dep_quiet", input={})
                await client.runs.wait(other.run_id, poll_interval=0.02)
            deliveries = await emu.wait_for_deliveries(2)
    assert [d.statuses for d in deliveries] == [[200], [200]]
    assert all(d.delivered and d.finished and d.attempts == 1 for d in deliveries)
    first, second = recorder.events
    assert (first.type, first.run_id, first.error_message) == (
        "run.failed",
        failed.run_id,
        "tool crashed",
    )
    assert (second.type, second.run_id) == ("run.succeeded", ok.run_id)
    assert second.run.input == {"n": 2}
    assert second.run.output is not None
    assert first.delivery_id == deliveries[0].delivery_id


@pytest.mark.parametrize("serve", RECEIVERS)
async def test_a_failing_handler_is_retried_by_the_sender_and_processed_once(
    serve: Any,
) -> None:
    recorder = Recorder(fail_first=1)
    async with CrewshipEmulator() as emu, serve(WebhookReceiver("whsec_x", recorder)) as url:
        emu.add_outgoing_webhook("dep_hooks", url, secret="whsec_x", events=["run.succeeded"])
        async with emu.client() as client:
            run = await client.runs.create("dep_hooks", input={})
            await client.runs.wait(run.run_id, poll_interval=0.02)
        (delivery,) = await emu.wait_for_deliveries(1)
        assert delivery.statuses == [500, 200]
        assert delivery.delivered
        # A redelivery of the same delivery id is acknowledged, not processed again.
        headers = delivery_headers(
            delivery.body, "whsec_x", event=delivery.event, delivery_id=delivery.delivery_id
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=delivery.body, headers=headers) as resp,
        ):
            assert resp.status == 200
            assert (await resp.text()).startswith("duplicate")
    assert recorder.calls == 2
    assert len(recorder.events) == 1


@pytest.mark.parametrize("serve", RECEIVERS)
async def test_bad_deliveries_get_400_with_a_short_reason(serve: Any) -> None:
    recorder = Recorder()
    body = b'{"event": "run.succeeded", "run": {"id": "run_1", "status": "succeeded"}}'
    receiver = WebhookReceiver("whsec_right", recorder, max_body_size=4096)
    async with serve(receiver) as url, aiohttp.ClientSession() as session:
        wrong = delivery_headers(body, "whsec_wrong", event="run.succeeded", delivery_id="d1")
        async with session.post(url, data=body, headers=wrong) as resp:
            assert resp.status == 400
            text = await resp.text()
            assert text.startswith("bad_signature:")
            assert "whsec" not in text
        async with session.post(url, data=body) as resp:
            assert resp.status == 400
            assert (await resp.text()).startswith("missing_header:")
        right = delivery_headers(body, "whsec_right", event="run.succeeded", delivery_id="d1")
        async with session.post(url, data=body[:-5], headers=right) as resp:
            assert resp.status == 400  # truncated: the signature no longer matches
        async with session.post(url, data=b"x" * 5000, headers=right) as resp:
            assert resp.status == 413

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1000

        async with session.post(url, data=chunked(), headers=right) as resp:
            assert resp.status == 413
    assert recorder.events == []


async def test_the_emulator_endpoint_adds_an_outgoing_webhook_over_http() -> None:
    recorder = Recorder()
    async with (
        CrewshipEmulator() as emu,
        aiohttp_receiver(WebhookReceiver("whsec_http", recorder)) as url,
    ):
        auth = {"Authorization": f"Bearer {emu.api_key}"}
        endpoint = f"{emu.url}/_emulator/deployments/dep_http/outgoing-webhooks"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                endpoint, json={"url": url, "secret": "whsec_http"}, headers=auth
            ) as resp:
                assert resp.status == 201
                created = await resp.json()
            for bad in (
                {"url": "ftp://x"},
                {"url": url, "events": ["run.started"]},
                {"url": url, "events": "run.failed"},
                {"url": url, "secret": 5},
            ):
                async with session.post(endpoint, json=bad, headers=auth) as resp:
                    assert resp.status == 400
            async with session.post(endpoint, json={"url": url}) as resp:
                assert resp.status == 401
        assert created["secret"] == "whsec_http"
        assert created["deployment_id"] == "dep_http"
        async with emu.client() as client:
            run = await client.runs.create("dep_http", input={})
            await client.runs.wait(run.run_id, poll_interval=0.02)
        await emu.wait_for_deliveries(1)
    assert [e.run_id for e in recorder.events] == [run.run_id]


async def test_an_unreachable_receiver_is_retried_then_given_up() -> None:
    async with CrewshipEmulator() as emu:
        emu._outgoing.retry_delays = (0.01, 0.01)
        emu.add_outgoing_webhook("dep_down", "http://127.0.0.1:9/hook")
        async with emu.client() as client:
            run = await client.runs.create("dep_down", input={})
            await client.runs.wait(run.run_id, poll_interval=0.02)
        (delivery,) = await emu.wait_for_deliveries(1)
    assert delivery.statuses == [None, None, None]
    assert not delivery.delivered


async def test_stopping_the_emulator_cancels_deliveries_in_flight() -> None:
    started = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hang)
    async with serve_aiohttp(app, shutdown_timeout=0.1) as base:
        emu = CrewshipEmulator()
        async with emu:
            emu.add_outgoing_webhook("dep_slow", f"{base}/hook")
            async with emu.client() as client:
                run = await client.runs.create("dep_slow", input={})
                await client.runs.wait(run.run_id, poll_interval=0.02)
            await asyncio.wait_for(started.wait(), 5)
        (delivery,) = emu.webhook_deliveries
        assert delivery.finished
        assert not delivery.delivered


def test_add_outgoing_webhook_checks_its_arguments() -> None:
    emu = CrewshipEmulator()
    with pytest.raises(ValueError, match="url"):
        emu.add_outgoing_webhook("dep_x", "not a url")
    with pytest.raises(ValueError, match="events"):
        emu.add_outgoing_webhook("dep_x", "http://127.0.0.1/x", events=["run.started"])
    secret = emu.add_outgoing_webhook("dep_x", "http://127.0.0.1/x")
    assert secret.startswith("whsec_")
    assert len(secret) > 20


@pytest.mark.parametrize("serve", RECEIVERS)
async def test_a_sender_that_trickles_its_body_is_answered_408(serve: Any) -> None:
    recorder = Recorder()
    receiver = WebhookReceiver("whsec_slow", recorder, body_timeout=0.3)
    async with serve(receiver) as url:
        host, port = url.split("//")[1].split("/")[0].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(
                b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n" + b"{" * 10
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5)
        finally:
            writer.close()
            await writer.wait_closed()
    assert status_line.split()[1] == b"408"
    assert recorder.calls == 0


def test_body_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="body_timeout"):
        WebhookReceiver("whsec_x", Recorder(), body_timeout=0)


async def test_a_receiver_tested_with_the_pytest_plugin_fixtures(
    crewship_emulator: CrewshipEmulator, crewship_client: Any
) -> None:
    recorder = Recorder()
    async with aiohttp_receiver(WebhookReceiver("whsec_plugin", recorder)) as url:
        crewship_emulator.add_outgoing_webhook("dep_plugin", url, secret="whsec_plugin")
        run = await crewship_client.runs.create("dep_plugin", input={"q": 1})
        await crewship_client.runs.wait(run.run_id, poll_interval=0.02)
        (delivery,) = await crewship_emulator.wait_for_deliveries(1)
    assert delivery.delivered
    assert [event.run_id for event in recorder.events] == [run.run_id]
