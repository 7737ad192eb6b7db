"""The Crewship emulator, route by route, over real sockets with a raw aiohttp client."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any, Optional

import aiohttp
import pytest

from crewship_async.testing import CrewshipEmulator

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
REQUEST_ID = re.compile(r"^req_[0-9a-f]+$")
_UNSET: Any = object()
_loads = json.loads  # Api.call has a parameter named ``json``


class Api:
    """A thin raw-HTTP helper: returns ``(status, decoded body, headers)``."""

    def __init__(self, session: aiohttp.ClientSession, emu: CrewshipEmulator) -> None:
        self.session = session
        self.emu = emu

    def auth(self, headers: Optional[dict[str, str]] = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.emu.api_key}", **(headers or {})}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = _UNSET,
        data: Optional[str] = None,
        params: Optional[dict[str, Any]] = None,
        headers: Optional[dict[str, str]] = None,
        auth: bool = True,
    ) -> tuple[int, Any, Any]:
        kwargs: dict[str, Any] = {
            "headers": self.auth(headers) if auth else dict(headers or {}),
            "params": params,
        }
        if json is not _UNSET:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.emu.url + path, **kwargs) as response:
            text = await response.text()
            body = _loads(text) if text else None
            return response.status, body, response.headers

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        got, body, _ = await self.call(method, path, **kwargs)
        assert got == status, body
        return body

    async def error(self, method: str, path: str, status: int, **kwargs: Any) -> str:
        """Assert an error envelope with ``status``; return its message."""
        got, body, headers = await self.call(method, path, **kwargs)
        assert got == status, body
        assert REQUEST_ID.match(headers["x-request-id"])
        assert set(body) == {"error"}
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["code"]
        return str(body["error"]["message"])

    async def create_run(self, deployment_id: str = "dep_test", **body: Any) -> str:
        created = await self.ok(
            "POST", "/v1/runs", 202, json={"deployment_id": deployment_id, **body}
        )
        return str(created["run_id"])

    async def events(
        self, run_id: str, *, last_event_id: Optional[str] = None
    ) -> list[dict[str, Any]]:
        """Read a whole event stream; each frame as ``{"id", "type", "data"}`` or comment."""
        headers = self.auth({"Last-Event-ID": last_event_id} if last_event_id else None)
        url = f"{self.emu.url}/v1/runs/{run_id}/events"
        async with self.session.get(url, headers=headers) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            return parse_frames((await response.read()).decode())


def parse_frames(text: str) -> list[dict[str, Any]]:
    frames = []
    for block in text.split("\n\n"):
        if not block:
            continue
        frame: dict[str, Any] = {"id": None}
        for line in block.split("\n"):
            if line.startswith(":"):
                frame["comment"] = line[1:].strip()
            elif line.startswith("id: "):
                frame["id"] = line[4:]
            elif line.startswith("data: "):
                frame.update(json.loads(line[6:]))
        frames.append(frame)
    return frames


async def wait_until(condition: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


@pytest.fixture
async def emu() -> AsyncIterator[CrewshipEmulator]:
    async with CrewshipEmulator(step_delay=0.002) as emulator:
        yield emulator


@pytest.fixture
async def api(emu: CrewshipEmulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, emu)


# -- basics ---------------------------------------------------------------------------------


async def test_lifecycle_url_key_and_repr() -> None:
    emu = CrewshipEmulator(api_key="cs_test_fixed")
    assert repr(emu) == "<CrewshipEmulator stopped>"
    assert not emu.running
    with pytest.raises(RuntimeError, match="not started"):
        _ = emu.url
    await emu.stop()  # stopping a stopped emulator does nothing
    assert await emu.start() is emu
    try:
        assert emu.running
        assert re.match(r"^http://127\.0\.0\.1:\d+$", emu.url)
        assert emu.api_key == "cs_test_fixed"
        assert repr(emu) == f"<CrewshipEmulator {emu.url}>"
        with pytest.raises(RuntimeError, match="already running"):
            await emu.start()
    finally:
        await emu.stop()
    await emu.stop()
    assert not emu.running


async def test_generated_key_and_url_for_wildcard_hosts() -> None:
    first, second = CrewshipEmulator(), CrewshipEmulator()
    assert re.match(r"^cs_test_[0-9a-f]{32}$", first.api_key)
    assert first.api_key != second.api_key
    async with CrewshipEmulator(host="0.0.0.0") as emu:
        assert emu.url.startswith("http://127.0.0.1:")
    ipv6 = CrewshipEmulator(host="::1")
    ipv6._bound_port = 1234
    assert ipv6.url == "http://[::1]:1234"


def test_constructor_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="step_delay"):
        CrewshipEmulator(step_delay=-1)
    with pytest.raises(ValueError, match="max_rows_per_insert"):
        CrewshipEmulator(max_rows_per_insert=0)
    with pytest.raises(ValueError, match="keepalive_interval"):
        CrewshipEmulator(keepalive_interval=0)
    with pytest.raises(ValueError, match="stream_timeout"):
        CrewshipEmulator(stream_timeout=0)


async def test_client_points_at_the_emulator(emu: CrewshipEmulator) -> None:
    try:
        from crewship_async import AsyncCrewship
    except ImportError:  # pragma: no cover - the client package is optional here
        pytest.skip("crewship_async.AsyncCrewship is not importable")
    client = emu.client(max_retries=0)
    try:
        assert isinstance(client, AsyncCrewship)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong-key", "wrong-scheme"],
)
async def test_auth_required(api: Api, headers: dict[str, str]) -> None:
    message = await api.error("GET", "/v1/runs", 401, headers=headers, auth=False)
    assert "API key" in message
    _, body, _ = await api.call("GET", "/v1/runs", headers=headers, auth=False)
    assert body["error"]["code"] == "unauthorized"


async def test_bearer_scheme_is_case_insensitive(api: Api) -> None:
    headers = {"Authorization": f"bearer {api.emu.api_key}"}
    assert await api.ok("GET", "/v1/runs", headers=headers, auth=False) == {"runs": []}


async def test_unknown_route_wrong_method_and_bad_json(api: Api) -> None:
    assert "GET /v1/nothing" in await api.error("GET", "/v1/nothing", 404)
    _, body, headers = await api.call("PUT", "/v1/runs")
    assert body["error"]["code"] == "method_not_allowed"
    assert "POST" in headers["Allow"]
    assert "not valid JSON" in await api.error(
        "POST", "/v1/runs", 400, data="{nope", headers={"Content-Type": "application/json"}
    )
    assert "JSON object" in await api.error("POST", "/v1/runs", 400, json=[1, 2])


async def test_request_ids_are_unique_and_on_success_too(api: Api) -> None:
    seen = set()
    for _ in range(3):
        _, _, headers = await api.call("GET", "/v1/runs")
        seen.add(headers["x-request-id"])
    assert len(seen) == 3
    assert [entry.request_id for entry in api.emu.requests] == list(
        dict.fromkeys(entry.request_id for entry in api.emu.requests)
    )


# -- runs -----------------------------------------------------------------------------------


async def test_create_run_and_poll_until_succeeded(api: Api, emu: CrewshipEmulator) -> None:
    created = await api.ok(
        "POST", "/v1/runs", 202, json={"deployment_id": "dep_abc", "input": {"topic": "AI"}}
    )
    assert set(created) == {"run_id", "version_id", "version_number", "status"}
    assert created["run_id"].startswith("run_")
    assert created["version_id"].startswith("ver_")
    assert created["status"] == "running"
    await wait_until(lambda: emu.runs[created["run_id"]].terminal)
    run = await api.ok("GET", f"/v1/runs/{created['run_id']}")
    assert set(run) == {
        "id",
        "version_id",
        "deployment_id",
        "status",
        "input",
        "output",
        "error_message",
        "created_at",
        "started_at",
        "completed_at",
    }
    assert run["status"] == "succeeded"
    assert run["deployment_id"] == "dep_abc"
    assert run["version_id"] == created["version_id"]
    assert run["input"] == {"topic": "AI"}
    assert run["output"]["input"] == {"topic": "AI"}
    assert run["error_message"] is None
    for field in ("created_at", "started_at", "completed_at"):
        assert ISO_Z.match(run[field]), run[field]
    assert run["created_at"] <= run["started_at"] <= run["completed_at"]
    assert emu.runs[run["id"]].to_json() == run


async def test_staging_uses_its_own_version_and_input_defaults_to_empty(api: Api) -> None:
    production = await api.ok("POST", "/v1/runs", 202, json={"deployment_id": "dep_v"})
    staging = await api.ok(
        "POST", "/v1/runs", 202, json={"deployment_id": "dep_v", "environment": "staging"}
    )
    assert production["version_id"] != staging["version_id"]
    run = await api.ok("GET", f"/v1/runs/{production['run_id']}")
    assert run["input"] == {}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({}, 400, "deployment_id is required"),
        ({"deployment_id": None}, 400, "deployment_id is required"),
        ({"deployment_id": 5}, 400, "non-empty string"),
        ({"deployment_id": ""}, 400, "non-empty string"),
        ({"deployment_id": "dep_a", "environment": "dev"}, 400, "production, staging"),
        ({"deployment_id": "dep_a", "input": [1]}, 400, "input must be an object"),
        ({"deployment_id": "abc"}, 404, "Deployment not found: abc"),
    ],
)
async def test_create_run_validation(
    api: Api, body: dict[str, Any], status: int, fragment: str
) -> None:
    assert fragment in await api.error("POST", "/v1/runs", status, json=body)
    assert not api.emu.runs


async def test_create_run_without_body(api: Api) -> None:
    assert await api.error("POST", "/v1/runs", 400) == "deployment_id is required"


async def test_strict_deployments() -> None:
    async with (
        CrewshipEmulator(
            strict_deployments=True, deployments=["dep_known"], step_delay=0.001
        ) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, emu)
        await api.create_run("dep_known")
        _, body, _ = await api.call("POST", "/v1/runs", json={"deployment_id": "dep_other"})
        assert body == {
            "error": {
                "message": "No running version found for production environment",
                "code": "bad_request",
            }
        }
        emu.add_deployment("dep_prod_only", environments=["production"], version_number=7)
        created = await api.ok("POST", "/v1/runs", 202, json={"deployment_id": "dep_prod_only"})
        assert created["version_number"] == 7
        message = await api.error(
            "POST",
            "/v1/runs",
            400,
            json={"deployment_id": "dep_prod_only", "environment": "staging"},
        )
        assert message == "No running version found for staging environment"
        await api.error("POST", "/v1/threads", 404, json={"deployment_id": "dep_other"})
        await api.ok("POST", "/v1/threads", 201, json={"deployment_id": "dep_known"})
        with pytest.raises(ValueError, match="unknown environment"):
            emu.add_deployment("dep_x", environments=["qa"])


async def test_registered_deployment_without_prefix(api: Api, emu: CrewshipEmulator) -> None:
    emu.add_deployment("my-crew")
    await api.create_run("my-crew")


async def test_get_unknown_run(api: Api) -> None:
    assert await api.error("GET", "/v1/runs/run_missing", 404) == "Run not found: run_missing"


async def test_list_runs_filters_and_pagination(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("forever", deployment_id="dep_b")
    ids = [await api.create_run("dep_a"), await api.create_run("dep_b"), await api.create_run()]
    listed = await api.ok("GET", "/v1/runs")
    assert [run["id"] for run in listed["runs"]] == ids[::-1]
    only_b = await api.ok("GET", "/v1/runs", params={"deployment_id": "dep_b"})
    assert [run["id"] for run in only_b["runs"]] == [ids[1]]
    page = await api.ok("GET", "/v1/runs", params={"limit": 1, "offset": 1})
    assert [run["id"] for run in page["runs"]] == [ids[1]]
    await wait_until(lambda: emu.runs[ids[0]].terminal and emu.runs[ids[2]].terminal)
    running = await api.ok("GET", "/v1/runs", params={"status": "running"})
    assert [run["id"] for run in running["runs"]] == [ids[1]]
    succeeded = await api.ok("GET", "/v1/runs", params={"status": "succeeded"})
    assert [run["id"] for run in succeeded["runs"]] == [ids[2], ids[0]]
    assert "status must be one of" in await api.error(
        "GET", "/v1/runs", 400, params={"status": "done"}
    )
    assert "limit must be an integer" in await api.error(
        "GET", "/v1/runs", 400, params={"limit": "x"}
    )
    assert "between 1 and 1000" in await api.error("GET", "/v1/runs", 400, params={"limit": 0})
    assert "offset" in await api.error("GET", "/v1/runs", 400, params={"offset": -1})


async def test_list_runs_default_limit_is_20(api: Api) -> None:
    for _ in range(21):
        await api.create_run()
    assert len((await api.ok("GET", "/v1/runs"))["runs"]) == 20
    assert len((await api.ok("GET", "/v1/runs", params={"offset": 20}))["runs"]) == 1


async def test_cancel_rules(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("forever", count=1)
    run_id = await api.create_run()
    assert await api.ok("POST", f"/v1/runs/{run_id}/cancel") == {
        "success": True,
        "status": "canceled",
    }
    run = await api.ok("GET", f"/v1/runs/{run_id}")
    assert run["status"] == "canceled"
    assert ISO_Z.match(run["completed_at"])
    _, body, _ = await api.call("POST", f"/v1/runs/{run_id}/cancel")
    assert body == {
        "error": {"code": "bad_request", "message": "Cannot cancel run with status: canceled"}
    }
    done = await api.create_run()
    await wait_until(lambda: emu.runs[done].terminal)
    message = await api.error("POST", f"/v1/runs/{done}/cancel", 400)
    assert message == "Cannot cancel run with status: succeeded"
    await api.error("POST", "/v1/runs/run_nope/cancel", 404)


async def test_a_new_run_is_pending_for_one_step() -> None:
    async with CrewshipEmulator(step_delay=30) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        run_id = await api.create_run()
        run = await api.ok("GET", f"/v1/runs/{run_id}")
        assert (run["status"], run["started_at"], run["completed_at"]) == ("pending", None, None)
        # Canceling it stops the simulation before it ever starts.
        await api.ok("POST", f"/v1/runs/{run_id}/cancel")
        assert [event.type for event in emu.runs[run_id].events] == ["complete"]
        assert emu._simulator.active == 0


# -- event streams ---------------------------------------------------------------------------


async def test_event_sequence_of_a_succeeded_run(api: Api, emu: CrewshipEmulator) -> None:
    run_id = await api.create_run(input={"topic": "robots"})
    frames = await api.events(run_id)
    assert [frame["type"] for frame in frames] == [
        "run.started",
        "task.started",
        "agent.action",
        "tool_use",
        "log",
        "task.completed",
        "artifact",
        "run.completed",
    ]
    assert [frame["id"] for frame in frames] == [str(n) for n in range(1, 9)]
    assert frames[0]["data"] == {"entrypoint": "default"}
    assert frames[1]["data"] == {"task": "Research the topic", "agent": "Researcher"}
    assert frames[3]["data"]["input"] == {"query": "robots"}
    assert frames[-1]["data"] == {"status": "succeeded"}
    assert emu.runs[run_id].status == "succeeded"


async def test_event_sequence_of_a_failed_run(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("failed", count=1, error_message="LLM quota exceeded")
    run_id = await api.create_run()
    frames = await api.events(run_id)
    assert frames[-1]["type"] == "run.failed"
    assert frames[-1]["data"] == {"status": "failed", "error": "LLM quota exceeded"}
    assert "artifact" not in [frame["type"] for frame in frames]
    run = await api.ok("GET", f"/v1/runs/{run_id}")
    assert (run["status"], run["error_message"], run["output"]) == (
        "failed",
        "LLM quota exceeded",
        None,
    )


async def test_stream_of_terminal_run_sends_one_complete_event(
    api: Api, emu: CrewshipEmulator
) -> None:
    run_id = await api.create_run()
    await wait_until(lambda: emu.runs[run_id].terminal)
    frames = await api.events(run_id)
    assert frames == [{"id": None, "type": "complete", "data": {"status": "succeeded"}}]


async def test_resume_a_terminal_run_after_last_event_id(api: Api, emu: CrewshipEmulator) -> None:
    run_id = await api.create_run()
    await wait_until(lambda: emu.runs[run_id].terminal)
    frames = await api.events(run_id, last_event_id="5")
    assert [frame["id"] for frame in frames] == ["6", "7", "8"]
    assert frames[-1]["type"] == "run.completed"
    after_end = await api.events(run_id, last_event_id="8")
    assert after_end == [{"id": None, "type": "complete", "data": {"status": "succeeded"}}]
    # An id this emulator never issued replays everything.
    assert len(await api.events(run_id, last_event_id="not-a-number")) == 8


async def test_resume_a_running_run_after_last_event_id(api: Api, emu: CrewshipEmulator) -> None:
    steps = [("log", {"message": f"step {n}"}) for n in range(4)]
    emu.script_runs("forever", count=1, steps=steps)
    run_id = await api.create_run()
    url = f"{emu.url}/v1/runs/{run_id}/events"

    async def read_frames(headers: dict[str, str], count: int) -> list[dict[str, Any]]:
        async with api.session.get(url, headers=api.auth(headers)) as response:
            raw = b"".join([await response.content.readuntil(b"\n\n") for _ in range(count)])
        return parse_frames(raw.decode())

    seen = await read_frames({}, 2)
    assert [frame["id"] for frame in seen] == ["1", "2"]
    resumed = await read_frames({"Last-Event-ID": "2"}, 4)
    assert [frame["id"] for frame in resumed[:3]] == ["3", "4", "5"]
    assert [frame["data"].get("message") for frame in resumed[:3]] == [
        "step 1",
        "step 2",
        "step 3",
    ]
    assert resumed[3]["type"] == "heartbeat"
    assert emu.runs[run_id].status == "running"
    await api.ok("POST", f"/v1/runs/{run_id}/cancel")
    rest = await api.events(run_id, last_event_id=resumed[3]["id"])
    assert rest[-1]["type"] == "complete"


async def test_stream_of_unknown_run_is_404(api: Api) -> None:
    assert "Run not found" in await api.error("GET", "/v1/runs/run_nope/events", 404)


async def test_cancel_ends_open_streams(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("forever", count=1)
    run_id = await api.create_run()
    reader = asyncio.ensure_future(api.events(run_id))
    await wait_until(lambda: any(e.type == "heartbeat" for e in emu.runs[run_id].events))
    await api.ok("POST", f"/v1/runs/{run_id}/cancel")
    frames = await reader
    assert frames[0]["type"] == "run.started"
    assert frames[-1]["type"] == "complete"
    assert frames[-1]["data"] == {"status": "canceled"}
    assert frames[-1]["id"] is not None
    ids = [int(frame["id"]) for frame in frames]
    assert ids == sorted(set(ids))


async def test_forever_run_heartbeats_keep_the_log_small(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("forever", count=1, steps=[])
    run_id = await api.create_run()
    run = emu.runs[run_id]
    await wait_until(lambda: bool(run.events) and run.events[-1].id > 20)
    assert [event.type for event in run.events] == ["run.started", "heartbeat"]
    assert run.events[-1].data == {"status": "running"}
    await api.ok("POST", f"/v1/runs/{run_id}/cancel")


async def test_keepalive_comments_while_idle() -> None:
    # The run stays pending (silent) for the whole test, so the stream is idle.
    async with (
        CrewshipEmulator(step_delay=30, keepalive_interval=0.01) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, emu)
        run_id = await api.create_run()
        url = f"{emu.url}/v1/runs/{run_id}/events"
        async with session.get(url, headers=api.auth()) as response:
            assert await response.content.readuntil(b"\n\n") == b": keepalive\n\n"


async def test_stream_timeout_sends_timeout_event() -> None:
    async with (
        CrewshipEmulator(step_delay=0.001, stream_timeout=0.05) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, emu)
        emu.script_runs("forever")
        run_id = await api.create_run()
        # Started before the stream opens: its first event is there at once, however
        # long the request takes, so it is sent before the stream's 0.05 s run out.
        await wait_until(lambda: emu.runs[run_id].status == "running")
        frames = await api.events(run_id)
        assert frames[-1]["type"] == "timeout"
        assert frames[-1]["id"] is None
        assert "timed out" in frames[-1]["data"]["message"]
        assert frames[0]["type"] == "run.started"


async def test_stream_timeout_reached_before_keepalive() -> None:
    async with (
        CrewshipEmulator(step_delay=30, stream_timeout=0.01, keepalive_interval=0.001) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, emu)
        frames = await api.events(await api.create_run())
        assert frames[-1]["type"] == "timeout"
        assert all(frame.get("comment") == "keepalive" for frame in frames[:-1])


# -- run scripts -------------------------------------------------------------------------------


async def test_script_runs_counts_and_deployments(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("failed", count=1, deployment_id="dep_x")
    emu.script_runs("failed", count=2)
    first = await api.create_run("dep_y")  # counted, any deployment
    second = await api.create_run("dep_x")  # the dep_x script is older
    third = await api.create_run("dep_y")  # the second count of the generic script
    fourth = await api.create_run("dep_y")  # default
    ids = (first, second, third, fourth)
    await wait_until(lambda: all(emu.runs[run_id].terminal for run_id in ids))
    assert [emu.runs[run_id].status for run_id in ids] == [
        "failed",
        "failed",
        "failed",
        "succeeded",
    ]


async def test_unlimited_scripts_latest_wins_and_clear(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("failed")
    emu.script_runs("succeeded", deployment_id="dep_ok", output={"answer": 42})
    ok = await api.create_run("dep_ok")
    bad = await api.create_run("dep_other")
    emu.clear_scripts()
    after = await api.create_run("dep_other")
    await wait_until(lambda: all(emu.runs[r].terminal for r in (ok, bad, after)))
    assert emu.runs[ok].output == {"answer": 42}
    assert emu.runs[bad].status == "failed"
    assert emu.runs[after].status == "succeeded"


async def test_script_custom_steps(api: Api, emu: CrewshipEmulator) -> None:
    big = "x" * 200_000
    emu.script_runs(
        count=1, steps=[("log", {"message": "line\u2028separator"}), ("log", {"message": big})]
    )
    frames = await api.events(await api.create_run())
    assert [frame["type"] for frame in frames] == ["run.started", "log", "log", "run.completed"]
    assert frames[1]["data"]["message"] == "line\u2028separator"
    assert frames[2]["data"]["message"] == big


async def test_held_run_waits_for_release(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("held", count=1, steps=[("log", {"message": "working"})], output={"n": 1})
    run_id = await api.create_run()
    run = emu.runs[run_id]
    assert run.held
    # However long the test takes, the run stays running: it heartbeats, never ends.
    await wait_until(lambda: bool(run.events) and run.events[-1].id > 10)
    assert [event.type for event in run.events] == ["run.started", "log", "heartbeat"]
    assert (await api.ok("GET", f"/v1/runs/{run_id}"))["status"] == "running"
    run.release()
    assert not run.held
    frames = await api.events(run_id, last_event_id=str(run.events[-1].id))
    assert [frame["type"] for frame in frames] == ["run.completed"]
    assert (await api.ok("GET", f"/v1/runs/{run_id}"))["output"] == {"n": 1}
    with pytest.raises(RuntimeError, match="already released"):
        run.release()


async def test_held_run_released_before_it_is_held() -> None:
    async with CrewshipEmulator(step_delay=0.01) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        # 30 steps (and 30 turns of the event loop) before it would start to heartbeat.
        steps = [("log", {"message": f"step {n}"}) for n in range(30)]
        emu.script_runs("held", count=1, steps=steps, error_message="boom")
        run_id = await api.create_run()
        run = emu.runs[run_id]
        run.release("failed")
        assert "heartbeat" not in [event.type for event in run.events]
        frames = await api.events(run_id)
        assert [frame["type"] for frame in frames] == ["run.started", *["log"] * 30, "run.failed"]
        assert frames[-1]["data"] == {"status": "failed", "error": "boom"}
        assert run.error_message == "boom"


async def test_held_thread_run_keeps_the_thread_busy(api: Api, emu: CrewshipEmulator) -> None:
    thread_id = (await create_thread(api))["thread_id"]
    emu.script_runs("held", count=1)
    first = await api.ok(
        "POST", f"/v1/threads/{thread_id}/runs", 202, json={"input": {"message": "a"}}
    )
    run = emu.runs[first["run_id"]]
    await wait_until(lambda: bool(run.events) and run.events[-1].id > 10)
    assert (await api.ok("GET", f"/v1/threads/{thread_id}"))["status"] == "busy"
    await api.error("POST", f"/v1/threads/{thread_id}/runs", 409, json={})
    run.release()
    await wait_until(lambda: emu.threads[thread_id].status == "idle")
    assert emu.threads[thread_id].values["messages"][-1] == {
        "role": "assistant",
        "content": "You said: a",
    }


async def test_release_rules(api: Api, emu: CrewshipEmulator) -> None:
    plain = await api.create_run()
    with pytest.raises(RuntimeError, match="not held"):
        emu.runs[plain].release()
    emu.script_runs("held", count=1)
    held = await api.create_run()
    with pytest.raises(ValueError, match="outcome"):
        emu.runs[held].release("canceled")
    assert emu.runs[held].held
    await api.ok("POST", f"/v1/runs/{held}/cancel")
    assert not emu.runs[held].held
    with pytest.raises(RuntimeError, match="already ended: canceled"):
        emu.runs[held].release()
    assert emu.runs[held].status == "canceled"


def test_script_runs_rejects_bad_arguments() -> None:
    emu = CrewshipEmulator()
    with pytest.raises(ValueError, match="outcome"):
        emu.script_runs("exploded")
    with pytest.raises(ValueError, match="count"):
        emu.script_runs("failed", count=0)


# -- threads ---------------------------------------------------------------------------------


async def create_thread(api: Api, **body: Any) -> dict[str, Any]:
    thread: dict[str, Any] = await api.ok(
        "POST", "/v1/threads", 201, json={"deployment_id": "dep_chat", **body}
    )
    return thread


async def test_create_and_get_thread(api: Api) -> None:
    thread = await create_thread(api, metadata={"user_id": "u1"})
    assert set(thread) == {
        "thread_id",
        "deployment_id",
        "status",
        "metadata",
        "values",
        "created_at",
        "updated_at",
    }
    assert thread["thread_id"].startswith("thr_")
    assert thread["status"] == "idle"
    assert thread["values"] is None
    assert thread["metadata"] == {"user_id": "u1"}
    assert ISO_Z.match(thread["created_at"])
    assert await api.ok("GET", f"/v1/threads/{thread['thread_id']}") == thread
    with_values = await create_thread(api, values={"messages": []})
    assert with_values["values"] == {"messages": []}
    assert with_values["metadata"] == {}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({}, 400, "deployment_id is required"),
        ({"deployment_id": "dep_a", "metadata": "x"}, 400, "metadata must be an object"),
        ({"deployment_id": "dep_a", "values": [1]}, 400, "values must be an object"),
        ({"deployment_id": "nope"}, 404, "Deployment not found"),
    ],
)
async def test_create_thread_validation(
    api: Api, body: dict[str, Any], status: int, fragment: str
) -> None:
    assert fragment in await api.error("POST", "/v1/threads", status, json=body)


async def test_list_threads_filters_and_pagination(api: Api, emu: CrewshipEmulator) -> None:
    first = (await create_thread(api))["thread_id"]
    second = (await create_thread(api))["thread_id"]
    await create_thread(api, deployment_id="dep_other")
    listed = await api.ok("GET", "/v1/threads", params={"deployment_id": "dep_chat"})
    assert [thread["thread_id"] for thread in listed["threads"]] == [second, first]
    page = await api.ok(
        "GET", "/v1/threads", params={"deployment_id": "dep_chat", "limit": 1, "offset": 1}
    )
    assert [thread["thread_id"] for thread in page["threads"]] == [first]
    emu.script_runs("forever", count=1)
    await api.ok("POST", f"/v1/threads/{first}/runs", 202, json={"input": {}})
    busy = await api.ok(
        "GET", "/v1/threads", params={"deployment_id": "dep_chat", "status": "busy"}
    )
    assert [thread["thread_id"] for thread in busy["threads"]] == [first]
    assert "deployment_id is required" in await api.error("GET", "/v1/threads", 400)
    assert "status must be one of" in await api.error(
        "GET", "/v1/threads", 400, params={"deployment_id": "dep_chat", "status": "sleeping"}
    )


async def test_thread_run_busy_then_idle_with_messages(api: Api, emu: CrewshipEmulator) -> None:
    emu.script_runs("held", count=1)  # busy until released below, however slow the machine
    thread = await create_thread(api)
    thread_id = thread["thread_id"]
    accepted = await api.ok(
        "POST", f"/v1/threads/{thread_id}/runs", 202, json={"input": {"message": "Hello"}}
    )
    assert set(accepted) == {"run_id", "thread_id", "version_id", "version_number", "status"}
    assert accepted["thread_id"] == thread_id
    assert accepted["status"] == "running"
    run_id = accepted["run_id"]
    assert (await api.ok("GET", f"/v1/threads/{thread_id}"))["status"] == "busy"
    _, body, _ = await api.call("POST", f"/v1/threads/{thread_id}/runs", json={"input": {}})
    assert body["error"]["code"] == "conflict"
    assert body["error"]["message"].startswith("Thread is busy")
    assert body["error"]["run_id"] == run_id
    run = await api.ok("GET", f"/v1/runs/{run_id}")
    assert run["thread_id"] == thread_id

    emu.runs[run_id].release()
    frames = await api.events(run_id)
    assert frames[-1]["type"] == "run.completed"
    after = await api.ok("GET", f"/v1/threads/{thread_id}")
    assert after["status"] == "idle"
    assert after["updated_at"] > thread["updated_at"]
    assert after["values"] == {
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "You said: Hello"},
        ]
    }
    history = await api.ok("GET", f"/v1/threads/{thread_id}/history")
    assert len(history["history"]) == 1
    checkpoint = history["history"][0]
    assert set(checkpoint) == {"checkpoint_id", "run_id", "values", "created_at"}
    assert checkpoint["run_id"] == run_id
    assert checkpoint["values"] == after["values"]

    second = await api.ok(
        "POST", f"/v1/threads/{thread_id}/runs", 202, json={"input": {"message": 5, "topic": "x"}}
    )
    await wait_until(lambda: emu.threads[thread_id].status == "idle")
    final = await api.ok("GET", f"/v1/threads/{thread_id}")
    assert final["values"]["messages"][2] == {
        "role": "user",
        "content": {"message": 5, "topic": "x"},
    }
    assert final["values"]["messages"][3] == {"role": "assistant", "content": "Done."}
    history = (await api.ok("GET", f"/v1/threads/{thread_id}/history"))["history"]
    assert [checkpoint["run_id"] for checkpoint in history] == [second["run_id"], run_id]
    page = await api.ok("GET", f"/v1/threads/{thread_id}/history", params={"limit": 1, "offset": 1})
    assert [checkpoint["run_id"] for checkpoint in page["history"]] == [run_id]
    assert (await api.ok("GET", f"/v1/runs/{second['run_id']}"))["output"] == {"result": "Done."}


async def test_thread_run_keeps_existing_values(api: Api, emu: CrewshipEmulator) -> None:
    thread = await create_thread(api, values={"messages": [{"role": "system"}], "n": 1})
    thread_id = thread["thread_id"]
    await api.ok("POST", f"/v1/threads/{thread_id}/runs", 202, json={"input": {"content": "Hi"}})
    await wait_until(lambda: emu.threads[thread_id].status == "idle")
    values = (await api.ok("GET", f"/v1/threads/{thread_id}"))["values"]
    assert values["n"] == 1
    assert [message["role"] for message in values["messages"]] == ["system", "user", "assistant"]


async def test_failed_thread_run_puts_thread_in_error(api: Api, emu: CrewshipEmulator) -> None:
    thread_id = (await create_thread(api))["thread_id"]
    emu.script_runs("failed", count=1)
    await api.ok("POST", f"/v1/threads/{thread_id}/runs", 202, json={})
    await wait_until(lambda: emu.threads[thread_id].status != "busy")
    thread = await api.ok("GET", f"/v1/threads/{thread_id}")
    assert thread["status"] == "error"
    assert thread["values"] is None
    assert (await api.ok("GET", f"/v1/threads/{thread_id}/history")) == {"history": []}
    # A thread in error accepts a new run.
    await api.ok("POST", f"/v1/threads/{thread_id}/runs", 202, json={})


async def test_canceled_thread_run_frees_the_thread(api: Api, emu: CrewshipEmulator) -> None:
    thread_id = (await create_thread(api))["thread_id"]
    emu.script_runs("forever", count=1)
    run = await api.ok("POST", f"/v1/threads/{thread_id}/runs", 202, json={})
    message = await api.error("DELETE", f"/v1/threads/{thread_id}", 409)
    assert "busy" in message
    await api.ok("POST", f"/v1/runs/{run['run_id']}/cancel")
    thread = await api.ok("GET", f"/v1/threads/{thread_id}")
    assert thread["status"] == "idle"
    assert thread["values"] is None


async def test_thread_run_validation_and_unknown_thread(api: Api) -> None:
    thread_id = (await create_thread(api))["thread_id"]
    await api.error("POST", f"/v1/threads/{thread_id}/runs", 400, json={"environment": "preview"})
    await api.error("POST", f"/v1/threads/{thread_id}/runs", 400, json={"input": "hi"})
    for method, path in [
        ("GET", "/v1/threads/thr_nope"),
        ("DELETE", "/v1/threads/thr_nope"),
        ("POST", "/v1/threads/thr_nope/runs"),
        ("POST", "/v1/threads/thr_nope/copy"),
        ("GET", "/v1/threads/thr_nope/history"),
    ]:
        assert "Thread not found" in await api.error(method, path, 404)


async def test_copy_and_delete_thread(api: Api, emu: CrewshipEmulator) -> None:
    source = await create_thread(api, metadata={"user": "u"})
    source_id = source["thread_id"]
    await api.ok("POST", f"/v1/threads/{source_id}/runs", 202, json={"input": {"message": "a"}})
    await wait_until(lambda: emu.threads[source_id].status == "idle")
    source = await api.ok("GET", f"/v1/threads/{source_id}")
    copied = await api.ok("POST", f"/v1/threads/{source_id}/copy", 201)
    assert copied["thread_id"] != source_id
    for field in ("deployment_id", "metadata", "values"):
        assert copied[field] == source[field]
    assert copied["status"] == "idle"
    source_history = await api.ok("GET", f"/v1/threads/{source_id}/history")
    copied_history = await api.ok("GET", f"/v1/threads/{copied['thread_id']}/history")
    assert copied_history == source_history
    status, body, _ = await api.call("DELETE", f"/v1/threads/{source_id}")
    assert (status, body) == (204, None)
    await api.error("GET", f"/v1/threads/{source_id}", 404)
    await api.ok("GET", f"/v1/threads/{copied['thread_id']}")


# -- tables ----------------------------------------------------------------------------------

LEAD_COLUMNS = [
    {"name": "company", "type": "text", "required": True},
    {"name": "score", "type": "number", "required": False},
    {"name": "qualified", "type": "boolean"},
    {"name": "extra", "type": "json"},
    {"name": "seen_at", "type": "datetime"},
]


async def create_table(api: Api, **body: Any) -> dict[str, Any]:
    table: dict[str, Any] = await api.ok(
        "POST", "/v1/tables", 201, json={"name": "leads", "columns": LEAD_COLUMNS, **body}
    )
    return table


async def test_create_get_list_table(api: Api) -> None:
    table = await create_table(api, description="Prospects")
    assert table["id"].startswith("tbl_")
    assert table["name"] == "leads"
    assert table["description"] == "Prospects"
    assert table["row_count"] == 0
    assert table["columns"][0] == {"name": "company", "type": "text", "required": True}
    assert table["columns"][2] == {"name": "qualified", "type": "boolean", "required": False}
    assert ISO_Z.match(table["created_at"])
    assert await api.ok("GET", f"/v1/tables/{table['id']}") == table
    bare = await api.ok("POST", "/v1/tables", 201, json={"name": "empty"})
    assert (bare["columns"], bare["description"]) == ([], None)
    listed = await api.ok("GET", "/v1/tables")
    assert [entry["id"] for entry in listed["tables"]] == [table["id"], bare["id"]]
    page = await api.ok("GET", "/v1/tables", params={"limit": 1, "offset": 1})
    assert [entry["id"] for entry in page["tables"]] == [bare["id"]]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "name is required"),
        ({"name": "  "}, "name must be a non-empty string"),
        ({"name": "t", "description": 5}, "description must be a string or null"),
        ({"name": "t", "columns": {}}, "columns must be an array"),
        ({"name": "t", "columns": ["a"]}, "columns[0] must be an object"),
        ({"name": "t", "columns": [{"type": "text"}]}, "column name is required"),
        ({"name": "t", "columns": [{"name": "id"}]}, "reserved: id"),
        ({"name": "t", "columns": [{"name": "a"}, {"name": "a"}]}, "Duplicate column name: a"),
        ({"name": "t", "columns": [{"name": "a", "type": "money"}]}, "Unknown type for column a"),
        ({"name": "t", "columns": [{"name": "a", "required": "yes"}]}, "must be a boolean"),
    ],
)
async def test_create_table_validation(api: Api, body: dict[str, Any], fragment: str) -> None:
    assert fragment in await api.error("POST", "/v1/tables", 400, json=body)
    assert not api.emu.tables


async def test_update_table_patch_semantics(api: Api) -> None:
    table = await create_table(api, description="Prospects")
    path = f"/v1/tables/{table['id']}"
    renamed = await api.ok("PATCH", path, json={"name": "qualified_leads"})
    assert renamed["name"] == "qualified_leads"
    assert renamed["description"] == "Prospects"
    assert renamed["columns"] == table["columns"]
    assert renamed["updated_at"] > table["updated_at"]
    cleared = await api.ok("PATCH", path, json={"description": None})
    assert cleared["description"] is None
    assert cleared["name"] == "qualified_leads"
    replaced = await api.ok("PATCH", path, json={"columns": [{"name": "only", "type": "number"}]})
    assert replaced["columns"] == [{"name": "only", "type": "number", "required": False}]
    assert "name must be" in await api.error("PATCH", path, 400, json={"name": ""})
    assert "description must be" in await api.error("PATCH", path, 400, json={"description": 1})
    assert "Duplicate" in await api.error(
        "PATCH", path, 400, json={"columns": [{"name": "x"}, {"name": "x"}]}
    )
    assert (await api.ok("GET", path))["columns"] == replaced["columns"]


async def test_delete_table_and_unknown_table(api: Api) -> None:
    table = await create_table(api)
    status, body, _ = await api.call("DELETE", f"/v1/tables/{table['id']}")
    assert (status, body) == (204, None)
    for method, path in [
        ("GET", f"/v1/tables/{table['id']}"),
        ("PATCH", f"/v1/tables/{table['id']}"),
        ("DELETE", f"/v1/tables/{table['id']}"),
        ("GET", f"/v1/tables/{table['id']}/rows"),
        ("POST", f"/v1/tables/{table['id']}/rows"),
        ("PATCH", f"/v1/tables/{table['id']}/rows/row_x"),
        ("DELETE", f"/v1/tables/{table['id']}/rows/row_x"),
    ]:
        assert "Table not found" in await api.error(method, path, 404, json={})


async def test_insert_one_row_and_many(api: Api, emu: CrewshipEmulator) -> None:
    table_id = (await create_table(api))["id"]
    rows_path = f"/v1/tables/{table_id}/rows"
    row = await api.ok(
        "POST",
        rows_path,
        201,
        json={
            "company": "Acme",
            "score": 92.5,
            "extra": [1, {"a": None}],
            "seen_at": "2024-01-15T10:35:00Z",
        },
    )
    assert row["id"].startswith("row_")
    assert row["company"] == "Acme"
    assert row["score"] == 92.5
    assert row["qualified"] is None
    assert row["extra"] == [1, {"a": None}]
    assert set(row["_meta"]) == {"created_at", "created_by", "updated_at", "updated_by"}
    assert row["_meta"]["created_by"] == "api:Emulator Key"
    assert ISO_Z.match(row["_meta"]["created_at"])
    batch = await api.ok(
        "POST",
        rows_path,
        201,
        json=[{"company": "Beta", "score": 70, "qualified": True}, {"company": "Gamma"}],
    )
    assert [entry["company"] for entry in batch["rows"]] == ["Beta", "Gamma"]
    assert (await api.ok("GET", f"/v1/tables/{table_id}"))["row_count"] == 3
    assert len(emu.tables[table_id].rows) == 3


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ({"company": "A", "ceo": "x"}, "unknown column: ceo"),
        ({"score": 1}, "missing required column: company"),
        ({"company": None}, "missing required column: company"),
        ({"company": 5}, "column company expects text, got number"),
        ({"company": "A", "score": "high"}, "column score expects number, got string"),
        ({"company": "A", "score": True}, "column score expects number, got boolean"),
        ({"company": "A", "qualified": 1}, "column qualified expects boolean, got number"),
        ({"company": "A", "seen_at": "yesterday"}, "column seen_at expects datetime"),
        ({"company": "A", "seen_at": 5}, "column seen_at expects datetime"),
        ({"company": ["A"]}, "got array"),
        ({"company": {"A": 1}}, "got object"),
        ("just text", "a row must be a JSON object"),
    ],
)
async def test_row_validation_names_the_column(api: Api, row: Any, fragment: str) -> None:
    table_id = (await create_table(api))["id"]
    assert fragment in await api.error("POST", f"/v1/tables/{table_id}/rows", 400, json=row)


async def test_batch_is_all_or_nothing(api: Api) -> None:
    table_id = (await create_table(api))["id"]
    rows_path = f"/v1/tables/{table_id}/rows"
    message = await api.error(
        "POST", rows_path, 400, json=[{"company": "A"}, {"company": "B", "score": "x"}]
    )
    assert message.startswith("rows[1]: column score expects number")
    assert (await api.ok("GET", f"/v1/tables/{table_id}"))["row_count"] == 0
    assert "at least one row" in await api.error("POST", rows_path, 400, json=[])
    assert "row object or an array" in await api.error("POST", rows_path, 400)
    assert "rows[0]: a row must be a JSON object" in await api.error(
        "POST", rows_path, 400, json=[3]
    )


async def test_at_most_100_rows_per_insert(api: Api) -> None:
    table_id = (await create_table(api))["id"]
    rows_path = f"/v1/tables/{table_id}/rows"
    rows = [{"company": f"c{n}"} for n in range(101)]
    assert await api.error("POST", rows_path, 400, json=rows) == "at most 100 rows per insert"
    inserted = await api.ok("POST", rows_path, 201, json=rows[:100])
    assert len(inserted["rows"]) == 100


async def test_max_rows_per_insert_is_configurable() -> None:
    async with CrewshipEmulator(max_rows_per_insert=2) as emu, aiohttp.ClientSession() as session:
        api = Api(session, emu)
        table_id = (await create_table(api))["id"]
        message = await api.error(
            "POST", f"/v1/tables/{table_id}/rows", 400, json=[{"company": "x"}] * 3
        )
        assert message == "at most 2 rows per insert"


async def test_list_update_delete_rows(api: Api) -> None:
    table_id = (await create_table(api))["id"]
    rows_path = f"/v1/tables/{table_id}/rows"
    inserted = await api.ok(
        "POST", rows_path, 201, json=[{"company": f"c{n}", "score": n} for n in range(25)]
    )
    ids = [row["id"] for row in inserted["rows"]]
    first_page = await api.ok("GET", rows_path)
    assert [row["id"] for row in first_page["rows"]] == ids[:20]
    second_page = await api.ok("GET", rows_path, params={"limit": 10, "offset": 20})
    assert [row["id"] for row in second_page["rows"]] == ids[20:]

    row_path = f"{rows_path}/{ids[0]}"
    updated = await api.ok("PATCH", row_path, json={"score": 99, "qualified": True})
    assert (updated["company"], updated["score"], updated["qualified"]) == ("c0", 99, True)
    assert updated["_meta"]["updated_at"] > updated["_meta"]["created_at"]
    assert "missing required column: company" in await api.error(
        "PATCH", row_path, 400, json={"company": None}
    )
    assert "unknown column: nope" in await api.error("PATCH", row_path, 400, json={"nope": 1})
    assert "expects number" in await api.error("PATCH", row_path, 400, json={"score": "1"})
    assert (await api.ok("GET", rows_path, params={"limit": 1}))["rows"][0]["score"] == 99

    status, body, _ = await api.call("DELETE", row_path)
    assert (status, body) == (204, None)
    assert (await api.ok("GET", f"/v1/tables/{table_id}"))["row_count"] == 24
    assert "Row not found" in await api.error("DELETE", row_path, 404)
    assert "Row not found" in await api.error("PATCH", row_path, 404, json={"score": 1})


async def test_offset_has_no_upper_bound(api: Api) -> None:
    # Only limit is capped (1 to 1000); offset is any count >= 0, or no listing could go
    # past its 1,000th item.
    table_id = (await create_table(api))["id"]
    rows_path = f"/v1/tables/{table_id}/rows"
    ids: list[str] = []
    for batch in range(11):
        rows = [{"company": f"c{batch}-{n}", "score": n} for n in range(100)]
        ids += [row["id"] for row in (await api.ok("POST", rows_path, 201, json=rows))["rows"]]
    page = await api.ok("GET", rows_path, params={"limit": 20, "offset": 1090})
    assert [row["id"] for row in page["rows"]] == ids[1090:]
    page = await api.ok("GET", rows_path, params={"limit": 1000, "offset": 1000})
    assert [row["id"] for row in page["rows"]] == ids[1000:]

    thread_id = (await api.ok("POST", "/v1/threads", 201, json={"deployment_id": "dep_a"}))[
        "thread_id"
    ]
    listings = [
        ("/v1/runs", {}, "runs"),
        ("/v1/threads", {"deployment_id": "dep_a"}, "threads"),
        (f"/v1/threads/{thread_id}/history", {}, "history"),
        ("/v1/tables", {}, "tables"),
        (rows_path, {}, "rows"),
    ]
    for path, params, key in listings:
        for offset in ("1100", "5000", str(10**30)):  # past the end: an empty page
            assert await api.ok("GET", path, params={**params, "offset": offset}) == {key: []}
        for offset in ("-1", "1.5", "x", "1_000", " 5", "1e3", "9" * 5000):
            message = await api.error("GET", path, 400, params={**params, "offset": offset})
            assert message.startswith("offset must be"), message
        for limit in ("0", "1001"):
            message = await api.error("GET", path, 400, params={**params, "limit": limit})
            assert message == "limit must be between 1 and 1000"


async def test_rows_of_removed_columns_are_hidden(api: Api) -> None:
    table_id = (await create_table(api))["id"]
    await api.ok("POST", f"/v1/tables/{table_id}/rows", 201, json={"company": "A", "score": 1})
    await api.ok("PATCH", f"/v1/tables/{table_id}", json={"columns": [{"name": "company"}]})
    row = (await api.ok("GET", f"/v1/tables/{table_id}/rows"))["rows"][0]
    assert set(row) == {"id", "company", "_meta"}


# -- incoming webhook ---------------------------------------------------------------------------


async def test_webhook_starts_a_run_without_bearer(api: Api, emu: CrewshipEmulator) -> None:
    token = emu.add_webhook("dep_hook", environment="staging")
    assert emu.webhook_url(token) == f"{emu.url}/webhooks/runs/{token}"
    status, body, headers = await api.call(
        "POST", f"/webhooks/runs/{token}", json={"topic": "AI agents"}, auth=False
    )
    assert status == 202
    assert REQUEST_ID.match(headers["x-request-id"])
    assert set(body) == {"run_id", "version_id", "version_number", "status"}
    run = emu.runs[body["run_id"]]
    assert run.input == {"topic": "AI agents"}
    assert run.environment == "staging"
    assert run.deployment_id == "dep_hook"
    assert run.status != "pending"  # the webhook answers once the run has started
    empty = await api.ok("POST", f"/webhooks/runs/{token}", 202, auth=False)
    assert emu.runs[empty["run_id"]].input == {}


async def test_webhook_errors(api: Api, emu: CrewshipEmulator) -> None:
    assert await api.error("POST", "/webhooks/runs/whk_nope", 404, auth=False) == (
        "Webhook not found"
    )
    token = emu.add_webhook("dep_hook")
    assert "JSON object" in await api.error(
        "POST", f"/webhooks/runs/{token}", 400, json=[1], auth=False
    )
    with pytest.raises(ValueError, match="environment"):
        emu.add_webhook("dep_hook", environment="qa")
