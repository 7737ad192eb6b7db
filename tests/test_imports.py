"""What ``import crewship_async`` loads, and the names it defers until first use."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap

import pytest

import crewship_async
from crewship_async import AsyncCrewship, ClientClosedError, _fanout, resources
from crewship_async.resources import runs as runs_module
from crewship_async.resources.tables import Tables
from crewship_async.resources.threads import ThreadRuns, Threads
from crewship_async.resources.webhooks import Webhooks

# Modules that ``import crewship_async`` must not import: the fan-out engine (only for
# ``create_many``), the resources reached through lazy client attributes, the CLI and
# its terminal library, and the test emulator.
DEFERRED = [
    "rich",
    "crewship_async._fanout",
    "crewship_async.cli",
    "crewship_async.testing",
    "crewship_async.resources.tables",
    "crewship_async.resources.threads",
    "crewship_async.resources.webhooks",
    "crewship_async.resources._support",
]


def run_fresh(source: str) -> dict[str, list[str]]:
    """Run ``source`` in a new interpreter; it prints a JSON object, which is returned."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_package_import_leaves_the_rarely_used_modules_out() -> None:
    result = run_fresh(
        f"""
        import json, sys
        import crewship_async
        print(json.dumps({{"loaded": [m for m in {DEFERRED!r} if m in sys.modules]}}))
        """
    )
    assert result["loaded"] == []


def test_every_exported_name_resolves_in_a_fresh_interpreter() -> None:
    result = run_fresh(
        """
        import json
        import crewship_async
        missing = []
        for name in crewship_async.__all__:
            namespace = {}
            try:
                exec(f"from crewship_async import {name}", namespace)
            except ImportError:
                missing.append(name)
        print(json.dumps({"missing": missing}))
        """
    )
    assert result["missing"] == []


def test_resources_load_on_first_access_in_a_fresh_interpreter() -> None:
    result = run_fresh(
        """
        import json, sys
        from crewship_async import AsyncCrewship
        client = AsyncCrewship("sk_test_imports")
        before = [m for m in sys.modules if m.startswith("crewship_async.resources.")]
        client.threads, client.tables, client.webhooks
        after = [m for m in sys.modules if m.startswith("crewship_async.resources.")]
        print(json.dumps({"before": sorted(before), "after": sorted(after)}))
        """
    )
    assert result["before"] == [
        "crewship_async.resources._common",
        "crewship_async.resources._sender",
        "crewship_async.resources.runs",
    ]
    assert {
        "crewship_async.resources.tables",
        "crewship_async.resources.threads",
        "crewship_async.resources.webhooks",
    } <= set(result["after"])


def test_create_many_imports_the_fan_out_engine_when_called() -> None:
    result = run_fresh(
        """
        import json, sys
        from crewship_async import AsyncCrewship
        client = AsyncCrewship("sk_test_imports")
        before = "crewship_async._fanout" in sys.modules
        client.runs.create_many([])
        print(json.dumps({"loaded": [before, "crewship_async._fanout" in sys.modules]}))
        """
    )
    assert result["loaded"] == [False, True]


@pytest.mark.parametrize("name", crewship_async.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(crewship_async, name) is not None


def test_client_resources_are_built_once() -> None:
    client = AsyncCrewship("sk_test_imports")
    assert isinstance(client.threads, Threads)
    assert isinstance(client.tables, Tables)
    assert isinstance(client.webhooks, Webhooks)
    assert client.threads is client.threads
    assert client.tables is client.tables
    assert client.webhooks is client.webhooks
    assert isinstance(client.threads.runs, ThreadRuns)
    assert client.threads.runs is client.threads.runs


async def test_client_resources_share_the_clients_connection_state() -> None:
    client = AsyncCrewship("sk_test_imports")
    await client.aclose()
    # Closing the client closed what the resources send through: they are not separate.
    with pytest.raises(ClientClosedError, match="closed"):
        [table async for table in client.tables.list()]
    with pytest.raises(ClientClosedError, match="closed"):
        await client.webhooks.trigger("whk_token", None)


def test_client_resources_can_still_be_replaced() -> None:
    client = AsyncCrewship("sk_test_imports")
    stand_in = object()
    client.tables = stand_in  # type: ignore[assignment]
    assert client.tables is stand_in


@pytest.mark.parametrize("name", resources.__all__)
def test_resources_package_resolves_each_name_lazily(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    submodule = sys.modules[f"crewship_async.resources.{resources._SUBMODULES[name]}"]
    monkeypatch.delattr(resources, name, raising=False)
    assert getattr(resources, name) is getattr(submodule, name)
    assert vars(resources)[name] is getattr(submodule, name)  # cached after the first use


def test_resources_package_rejects_unknown_names() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        resources.Nope  # noqa: B018
    with pytest.raises(ImportError):
        exec("from crewship_async.resources import Nope", {})


def test_resources_package_lists_its_lazy_names() -> None:
    assert set(resources.__all__) <= set(dir(resources))
    assert set(resources._SUBMODULES) == set(resources.__all__)


def test_fan_out_defaults_match_the_engine() -> None:
    assert runs_module.DEFAULT_CONCURRENCY == _fanout.DEFAULT_CONCURRENCY
    for method in (runs_module.Runs.create_many, runs_module.Runs.create_all):
        default = inspect.signature(method).parameters["concurrency"].default
        assert default == _fanout.DEFAULT_CONCURRENCY
