"""The emulator's fault injection, counters, request log and shutdown behaviour."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Optional

import aiohttp
import pytest
from clocks import CLOCK_GRAIN

from crewship_async.testing import CrewshipEmulator, FaultInjector, RecordedRequest, RoutePattern
from crewship_async.testing import _server as server_module


class Client:
    """Raw HTTP against an emulator, with its key."""

    def __init__(self, session: aiohttp.ClientSession, emu: CrewshipEmulator) -> None:
        self.session = session
        self.emu = emu
        self.headers = {"Authorization": f"Bearer {emu.api_key}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.session.request(method, self.emu.url + path, headers=headers, **kwargs)

    async def status(self, method: str, path: str, **kwargs: Any) -> int:
        async with self.request(method, path, **kwargs) as response:
            await response.read()
            return response.status

    async def create_run(self, deployment_id: str = "dep_f") -> str:
        async with self.request("POST", "/v1/runs", json={"deployment_id": deployment_id}) as r:
            assert r.status == 202
            return str((await r.json())["run_id"])


async def wait_until(condition: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


@pytest.fixture
async def emu() -> AsyncIterator[CrewshipEmulator]:
    async with CrewshipEmulator(step_delay=0.002, seed=7) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: CrewshipEmulator) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, emu)


# -- route patterns ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "method", "path", "expected"),
    [
        ("POST /v1/runs", "POST", "/v1/runs", True),
        ("POST /v1/runs", "GET", "/v1/runs", False),
        ("post /v1/runs", "POST", "/v1/runs/", True),
        ("GET /v1/runs/{id}", "GET", "/v1/runs/run_1", True),
        ("GET /v1/runs/{id}", "GET", "/v1/runs", False),
        ("GET /v1/runs/{id}", "GET", "/v1/runs/run_1/events", False),
        ("/v1/runs/{id}/events", "GET", "/v1/runs/run_1/events", True),
        ("/v1/runs/{id}/events", "HEAD", "/v1/runs/x/events", True),
        ("/v1/tables/{id}/rows/{row_id}", "PATCH", "/v1/tables/t/rows/r", True),
        ("/v1/runs.json", "GET", "/v1/runsxjson", False),
    ],
)
def test_route_pattern(spec: str, method: str, path: str, expected: bool) -> None:
    assert RoutePattern(spec).matches(method, path) is expected


@pytest.mark.parametrize("spec", ["v1/runs", "FETCH /v1/runs", "GET /a /b", ""])
def test_route_pattern_rejects_garbage(spec: str) -> None:
    with pytest.raises(ValueError, match="route"):
        RoutePattern(spec)


def test_route_pattern_repr() -> None:
    assert repr(RoutePattern("GET /v1/runs")) == "RoutePattern('GET /v1/runs')"


def test_fault_arguments_are_checked() -> None:
    faults = CrewshipEmulator().faults
    with pytest.raises(ValueError, match="count"):
        faults.fail_next(0)
    with pytest.raises(ValueError, match="probability"):
        faults.fail_randomly(1.5)
    with pytest.raises(ValueError, match="seconds"):
        faults.latency(-1)
    with pytest.raises(ValueError, match="events"):
        faults.drop_stream_after(-1)
    with pytest.raises(ValueError, match="count"):
        faults.close_connection_next(0)
    assert faults.pending == 0


# -- fail_next ------------------------------------------------------------------------------


async def test_fail_next_with_route_and_count(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.fail_next(2, route="POST /v1/runs")
    assert await client.status("GET", "/v1/runs") == 200
    for _ in range(2):
        async with client.request("POST", "/v1/runs", json={"deployment_id": "dep_f"}) as r:
            assert r.status == 503
            assert r.headers["x-request-id"].startswith("req_")
            body = await r.json()
            assert body == {
                "error": {"message": "Injected fault: HTTP 503", "code": "service_unavailable"}
            }
    assert not emu.runs  # the handler never ran
    await client.create_run()
    assert len(emu.runs) == 1
    assert emu.faults.pending == 0


async def test_fail_next_applies_to_every_route_by_default(
    client: Client, emu: CrewshipEmulator
) -> None:
    emu.faults.fail_next(status=500)
    assert await client.status("GET", "/v1/tables") == 500
    assert await client.status("GET", "/v1/tables") == 200


async def test_fail_next_happens_before_auth(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.fail_next()
    assert await client.status("GET", "/v1/runs", headers={"Authorization": "x"}) == 503


async def test_rate_limit_with_retry_after(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.fail_next(status=429, headers={"Retry-After": "1"}, route="GET /v1/runs/{id}")
    run_id = await client.create_run()
    async with client.request("GET", f"/v1/runs/{run_id}") as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"]["code"] == "rate_limited"
    assert await client.status("GET", f"/v1/runs/{run_id}") == 200


async def test_fail_next_custom_bodies(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.fail_next(status=502, body="<html>Bad gateway</html>")
    emu.faults.fail_next(status=500, body=b"oops", headers={"Content-Type": "text/html"})
    emu.faults.fail_next(status=418, body={"teapot": True})
    async with client.request("GET", "/v1/runs") as response:
        assert (response.status, await response.text()) == (502, "<html>Bad gateway</html>")
        assert response.content_type == "text/plain"
    async with client.request("GET", "/v1/runs") as response:
        assert (response.status, await response.text()) == (500, "oops")
        assert response.content_type == "text/html"
    async with client.request("GET", "/v1/runs") as response:
        assert (response.status, await response.json()) == (418, {"teapot": True})
    async with client.request("GET", "/v1/runs") as response:
        assert response.status == 200


async def test_fail_randomly_is_reproducible_with_a_seed() -> None:
    async def pattern(seed: int) -> list[int]:
        async with CrewshipEmulator(seed=seed) as emu, aiohttp.ClientSession() as session:
            client = Client(session, emu)
            emu.faults.fail_randomly(0.5, route="GET /v1/runs")
            return [await client.status("GET", "/v1/runs") for _ in range(16)]

    first, again, other = await pattern(1), await pattern(1), await pattern(2)
    assert first == again
    assert set(first) == {200, 503}
    assert first != other


async def test_fail_randomly_count_caps_failures(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.fail_randomly(1.0, count=2, status=500)
    statuses = [await client.status("GET", "/v1/runs") for _ in range(4)]
    assert statuses == [500, 500, 200, 200]


# -- latency --------------------------------------------------------------------------------


async def test_latency_delays_matching_requests(client: Client, emu: CrewshipEmulator) -> None:
    # A local request takes milliseconds: half a second apart even on a loaded machine.
    loop = asyncio.get_running_loop()
    emu.faults.latency(0.5, route="GET /v1/tables", count=1)
    started = loop.time()
    assert await client.status("GET", "/v1/runs") == 200
    assert loop.time() - started < 0.5
    started = loop.time()
    assert await client.status("GET", "/v1/tables") == 200
    assert loop.time() - started >= 0.5 - CLOCK_GRAIN
    started = loop.time()
    assert await client.status("GET", "/v1/tables") == 200
    assert loop.time() - started < 0.5


async def test_latency_without_count_stays_until_reset(
    client: Client, emu: CrewshipEmulator
) -> None:
    loop = asyncio.get_running_loop()
    emu.faults.latency(0.03)
    emu.faults.latency(0.03, route="/v1/runs")
    for _ in range(2):
        started = loop.time()
        await client.status("GET", "/v1/runs")
        assert loop.time() - started >= 0.06 - CLOCK_GRAIN
    assert emu.faults.pending == 2
    emu.faults.reset()
    assert emu.faults.pending == 0


async def test_peak_in_flight_counts_concurrent_requests(
    client: Client, emu: CrewshipEmulator
) -> None:
    emu.faults.latency(30)  # every request waits until the emulator stops
    answers = asyncio.gather(*(client.status("GET", "/v1/runs") for _ in range(6)))
    await wait_until(lambda: emu.stats.in_flight == 6)
    assert emu.stats.peak_in_flight == 6
    await emu.stop()
    assert await answers == [503] * 6
    assert emu.stats.peak_in_flight == 6
    assert emu.stats.in_flight == 0
    assert emu.stats.requests_total == 6
    emu.stats.reset()
    assert (emu.stats.peak_in_flight, emu.stats.requests_total) == (0, 0)


# -- streams cut, connections closed, bodies broken --------------------------------------------


async def read_stream(client: Client, run_id: str) -> tuple[bytes, Optional[BaseException]]:
    received = b""
    try:
        async with client.request("GET", f"/v1/runs/{run_id}/events") as response:
            assert response.status == 200
            async for chunk in response.content.iter_any():
                received += chunk
    except aiohttp.ClientPayloadError as exc:
        return received, exc
    return received, None


async def test_drop_stream_after_aborts_the_transfer(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.drop_stream_after(3)
    run_id = await client.create_run()
    received, error = await read_stream(client, run_id)
    assert isinstance(error, aiohttp.ClientPayloadError)
    assert received.count(b"data: ") == 3
    assert received.endswith(b"\n\n")
    # The fault is used up: the next stream is whole.
    received, error = await read_stream(client, run_id)
    assert error is None
    assert b"run.completed" in received or b"complete" in received


async def test_drop_stream_after_zero_events_and_count(
    client: Client, emu: CrewshipEmulator
) -> None:
    emu.faults.drop_stream_after(0, count=2)
    run_id = await client.create_run()
    for _ in range(2):
        received, error = await read_stream(client, run_id)
        assert (received, type(error)) == (b"", aiohttp.ClientPayloadError)
    assert (await read_stream(client, run_id))[1] is None


async def test_drop_stream_mid_event(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.drop_stream_after(1, mid_event=True)
    run_id = await client.create_run()
    received, error = await read_stream(client, run_id)
    assert isinstance(error, aiohttp.ClientPayloadError)
    complete, partial = received.split(b"\n\n", 1)
    assert complete.startswith(b"id: 1\n")
    assert partial.startswith(b"id: 2\ndata: {")
    assert not partial.endswith(b"\n\n")


async def test_drop_applies_to_the_complete_event_of_a_terminal_run(
    client: Client, emu: CrewshipEmulator
) -> None:
    run_id = await client.create_run()
    await wait_until(lambda: emu.runs[run_id].terminal)
    emu.faults.drop_stream_after(0)
    received, error = await read_stream(client, run_id)
    assert (received, type(error)) == (b"", aiohttp.ClientPayloadError)


async def test_close_connection_next_creates_the_run_but_loses_the_answer(
    client: Client, emu: CrewshipEmulator
) -> None:
    emu.faults.close_connection_next(route="POST /v1/runs")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.status("POST", "/v1/runs", json={"deployment_id": "dep_lost"})
    assert [run.deployment_id for run in emu.runs.values()] == ["dep_lost"]
    assert [entry.body for entry in emu.requests] == [{"deployment_id": "dep_lost"}]
    assert await client.status("GET", "/v1/runs") == 200


async def test_close_connection_next_on_an_event_stream(
    client: Client, emu: CrewshipEmulator
) -> None:
    run_id = await client.create_run()
    # aiohttp itself sends an idempotent request once more after a disconnect: close twice.
    emu.faults.close_connection_next(2, route="/v1/runs/{id}/events")
    emu.clear_requests()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await read_stream(client, run_id)
    assert [entry.method for entry in emu.requests] == ["GET", "GET"]
    assert emu.faults.pending == 0


async def test_malformed_body_next(client: Client, emu: CrewshipEmulator) -> None:
    emu.faults.malformed_body_next(route="POST /v1/runs")
    async with client.request("POST", "/v1/runs", json={"deployment_id": "dep_m"}) as response:
        assert response.status == 202
        assert response.content_type == "application/json"
        assert response.headers["x-request-id"].startswith("req_")
        text = await response.text()
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        assert text.startswith('{"run_id":')
    assert len(emu.runs) == 1
    async with client.request("POST", "/v1/runs", json={"deployment_id": "dep_m"}) as response:
        await response.json()


async def test_malformed_body_of_an_empty_response(client: Client, emu: CrewshipEmulator) -> None:
    async with client.request("POST", "/v1/tables", json={"name": "t"}) as response:
        table_id = (await response.json())["id"]
    emu.faults.malformed_body_next()
    async with client.request("DELETE", f"/v1/tables/{table_id}") as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await response.text())


async def test_malformed_body_skips_event_streams(client: Client, emu: CrewshipEmulator) -> None:
    run_id = await client.create_run()
    emu.faults.malformed_body_next()
    received, error = await read_stream(client, run_id)
    assert error is None
    assert received.startswith((b"id: 1\n", b"data: "))
    assert emu.faults.pending == 1
    async with client.request("GET", "/v1/runs") as response:
        with pytest.raises(json.JSONDecodeError):
            json.loads(await response.text())


# -- request log ------------------------------------------------------------------------------


async def test_request_log_redacts_the_key(client: Client, emu: CrewshipEmulator) -> None:
    await client.create_run()
    await client.status("GET", "/v1/runs", params={"status": "running", "limit": "5"})
    await client.status("POST", "/v1/runs", data="{bad", headers={"Proxy-Authorization": "Basic x"})
    first, second, third = emu.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.query) == ("POST", "/v1/runs", {})
    assert first.body == {"deployment_id": "dep_f"}
    assert first.headers["Authorization"] == "Bearer ***"
    assert emu.api_key not in repr(emu.requests)
    assert (second.method, second.query, second.body) == (
        "GET",
        {"status": "running", "limit": "5"},
        None,
    )
    assert third.body == "{bad"
    assert third.headers["Proxy-Authorization"] == "Bearer ***"
    emu.clear_requests()
    assert emu.requests == []


async def test_request_log_is_bounded() -> None:
    async with CrewshipEmulator(max_recorded_requests=2) as emu, aiohttp.ClientSession() as session:
        client = Client(session, emu)
        for path in ("/v1/runs", "/v1/tables", "/v1/nothing"):
            await client.status("GET", path)
        assert [entry.path for entry in emu.requests] == ["/v1/tables", "/v1/nothing"]


async def test_too_large_body_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "_MAX_BODY", 1024)
    async with CrewshipEmulator() as emu, aiohttp.ClientSession() as session:
        client = Client(session, emu)
        async with client.request("POST", "/v1/runs", data=b"x" * 2048) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_handler_crash_becomes_a_500_envelope(
    client: Client, emu: CrewshipEmulator, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(emu._store, "list_runs", explode)
    async with client.request("GET", "/v1/runs") as response:
        assert response.status == 500
        body = await response.json()
    assert body["error"] == {
        "message": "Internal emulator error: KeyError",
        "code": "internal_error",
    }
    assert "crashed" in caplog.text


# -- shutdown ---------------------------------------------------------------------------------


async def test_stop_closes_open_streams_and_ends_simulations() -> None:
    emu = await CrewshipEmulator(step_delay=0.002).start()
    async with aiohttp.ClientSession() as session:
        client = Client(session, emu)
        emu.script_runs("forever")
        run_ids = [await client.create_run() for _ in range(3)]
        responses = [
            await client.request("GET", f"/v1/runs/{run_id}/events").__aenter__()
            for run_id in run_ids
        ]
        try:
            for response in responses:
                assert (await response.content.readuntil(b"\n\n")).startswith(b"id: 1")
            assert emu.stats.in_flight == 3
            assert emu._simulator.active == 3
            await emu.stop()
            for response in responses:
                rest = await response.read()  # a clean end, not an aborted transfer
                assert b"complete" not in rest
        finally:
            for response in responses:
                response.release()
    assert emu._simulator.active == 0
    assert emu.stats.in_flight == 0
    assert all(run.status == "running" for run in emu.runs.values())


async def test_stop_answers_requests_waiting_on_latency() -> None:
    emu = await CrewshipEmulator().start()
    async with aiohttp.ClientSession() as session:
        client = Client(session, emu)
        emu.faults.latency(30)
        pending = asyncio.ensure_future(client.status("GET", "/v1/runs"))
        await wait_until(lambda: emu.stats.in_flight > 0)
        await emu.stop()
        assert await pending == 503


async def test_stop_releases_a_webhook_waiting_for_its_run() -> None:
    emu = await CrewshipEmulator(step_delay=30).start()
    async with aiohttp.ClientSession() as session:
        token = emu.add_webhook("dep_w")
        pending = asyncio.ensure_future(session.post(emu.webhook_url(token), json={}))
        await wait_until(lambda: bool(emu.runs))
        await emu.stop()
        response = await pending
        assert response.status == 202
        response.release()


async def test_restart_after_stop_keeps_state() -> None:
    emu = CrewshipEmulator(step_delay=0.001)
    emu.script_runs("forever", count=1)
    async with emu, aiohttp.ClientSession() as session:
        frozen = await Client(session, emu).create_run()
        await wait_until(lambda: emu.runs[frozen].status == "running")
    async with emu, aiohttp.ClientSession() as session:
        client = Client(session, emu)
        run_id = await client.create_run()
        await wait_until(lambda: emu.runs[run_id].terminal)
        assert emu.runs[run_id].status == "succeeded"
        # A run left running by the stop is frozen; it can still be canceled.
        assert emu.runs[frozen].status == "running"
        assert await client.status("POST", f"/v1/runs/{frozen}/cancel") == 200
    assert len(emu.runs) == 2


async def test_a_crashing_simulation_is_logged(
    client: Client, emu: CrewshipEmulator, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def explode(run: Any) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(emu._store, "start_run", explode)
    run_id = await client.create_run()
    await wait_until(lambda: "crashed" in caplog.text)
    assert f"Simulation of {run_id} crashed" in caplog.text
    assert emu.runs[run_id].status == "pending"
    assert emu._simulator.active == 0


async def test_client_disconnect_ends_the_stream_handler(
    client: Client, emu: CrewshipEmulator
) -> None:
    emu.script_runs("forever", count=1)
    run_id = await client.create_run()
    async with client.request("GET", f"/v1/runs/{run_id}/events") as response:
        await response.content.readuntil(b"\n\n")
        assert emu.stats.in_flight == 1
        response.close()
    await wait_until(lambda: emu.stats.in_flight == 0)


# -- the injector's own answers, as the server asks for them -----------------------------------


def test_take_latency_adds_matching_rules_and_uses_counted_ones_up() -> None:
    faults = FaultInjector()
    faults.latency(0.25, route="POST /v1/runs", count=1)
    faults.latency(0.5)
    assert faults.take_latency("POST", "/v1/runs") == pytest.approx(0.75)
    assert faults.take_latency("POST", "/v1/runs") == pytest.approx(0.5)
    assert faults.take_latency("GET", "/v1/tables") == pytest.approx(0.5)
    assert faults.pending == 1


def test_take_failure_answers_only_matching_requests() -> None:
    faults = FaultInjector()
    faults.fail_next(status=429, headers={"Retry-After": "1"}, route="GET /v1/runs/{id}")
    assert faults.take_failure("GET", "/v1/runs") is None
    failure = faults.take_failure("GET", "/v1/runs/run_1")
    assert failure is not None
    assert failure.status == 429
    assert failure.headers == {"Retry-After": "1"}
    assert faults.take_failure("GET", "/v1/runs/run_1") is None


def test_take_close_and_take_malformed_use_their_rules_once() -> None:
    faults = FaultInjector()
    faults.close_connection_next(route="/v1/tables")
    faults.malformed_body_next(count=2)
    assert faults.take_close("GET", "/v1/runs") is False
    assert faults.take_close("PATCH", "/v1/tables") is True
    assert faults.take_close("PATCH", "/v1/tables") is False
    assert [faults.take_malformed("GET", "/v1/runs") for _ in range(3)] == [True, True, False]


def test_take_stream_drop_says_where_to_cut() -> None:
    faults = FaultInjector()
    assert faults.take_stream_drop() is None
    faults.drop_stream_after(3, mid_event=True)
    assert faults.take_stream_drop() == (3, True)
    assert faults.take_stream_drop() is None
