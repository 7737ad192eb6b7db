"""Receive Crewship's outgoing webhooks in an aiohttp.web app, end to end.

    python examples/webhook_receiver.py

Starts the embedded emulator and a receiver app, gives a deployment an outgoing webhook
pointed at the app, runs one crew that succeeds and one that fails, and prints the
verified deliveries as they arrive; then replays one delivery to show that a redelivery is
acknowledged but not processed twice. No key and no network needed.

Against Crewship, mount ``webhook_handler(receiver)`` on your public URL and pass the
signing secret the Console showed (``CREWSHIP_WEBHOOK_SECRET``; several while rotating).
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from crewship_async.integrations.aiohttp import webhook_handler
from crewship_async.testing import CrewshipEmulator
from crewship_async.webhooks import WebhookEvent, WebhookReceiver, delivery_headers


async def main() -> None:
    received: asyncio.Queue[WebhookEvent] = asyncio.Queue()

    async def on_event(event: WebhookEvent) -> None:
        # Keep this quick (Crewship waits for the answer): hand real work to a queue.
        await received.put(event)

    async with CrewshipEmulator(step_delay=0.05) as emulator:
        secret = "whsec_example_secret"
        receiver = WebhookReceiver(secret, on_event)
        app = web.Application()
        app.router.add_post("/crewship/webhooks", webhook_handler(receiver))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/crewship/webhooks"
        try:
            emulator.add_outgoing_webhook("dep_reports", url, secret=secret)
            emulator.script_runs("failed", count=1, error_message="the search tool timed out")
            async with emulator.client() as client:
                for topic in ("quarterly numbers", "AI agents"):
                    created = await client.runs.create("dep_reports", input={"topic": topic})
                    print(f"started {created.run_id} ({topic})")
                for _ in range(2):
                    event = await asyncio.wait_for(received.get(), 30)
                    detail = f": {event.error_message}" if event.failed else ""
                    print(f"received {event.type} for {event.run_id} [{event.delivery_id}]{detail}")

            # Crewship may deliver the same event again (a retry after a timeout, say):
            delivery = (await emulator.wait_for_deliveries(2))[0]
            again = delivery_headers(
                delivery.body, secret, event=delivery.event, delivery_id=delivery.delivery_id
            )
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, data=delivery.body, headers=again) as response,
            ):
                text = await response.text()
            print(f"redelivery of {delivery.delivery_id}: {response.status} {text}")
            print(f"events processed: {2 + received.qsize()} (the redelivery was not)")
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
