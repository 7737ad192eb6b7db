"""The docs site builds with ``mkdocs build --strict`` and its API reference documents
every public name of the modules users import (needs the ``docs`` extra)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_MODULES = [
    "crewship_async",
    "crewship_async.errors",
    "crewship_async.models",
    "crewship_async.testing",
    "crewship_async.testing.pytest_plugin",
    "crewship_async.webhooks",
    "crewship_async.relay",
    "crewship_async.integrations.aiohttp",
    "crewship_async.integrations.starlette",
]
ANCHOR = re.compile(r'id="(crewship_async(?:\.\w+)+)"')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site_dir = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return site_dir


def documented_names(site: Path) -> set[str]:
    """The full name of every object the reference pages document."""
    names: set[str] = set()
    for page in (site / "reference").glob("*/index.html"):
        names.update(ANCHOR.findall(page.read_text(encoding="utf-8")))
    return names


def homes(module_name: str, name: str) -> set[str]:
    """Where ``module_name.name`` counts as documented: under that full name, or under
    another documented module that exports the same object (``crewship_async.APIError``
    is documented as ``crewship_async.errors.APIError``)."""
    obj = getattr(importlib.import_module(module_name), name)
    found = {f"{module_name}.{name}"}
    for other in DOCUMENTED_MODULES:
        module = importlib.import_module(other)
        if name in module.__all__ and getattr(module, name) is obj:
            found.add(f"{other}.{name}")
    return found


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_every_public_name_is_in_the_reference(site: Path, module_name: str) -> None:
    documented = documented_names(site)
    names = importlib.import_module(module_name).__all__
    missing = [name for name in names if not homes(module_name, name) & documented]
    assert missing == []


def test_a_re_export_counts_under_its_home() -> None:
    assert homes("crewship_async", "APIError") == {
        "crewship_async.APIError",
        "crewship_async.errors.APIError",
    }


def test_the_guides_are_in_the_site(site: Path) -> None:
    for page in ROOT.joinpath("docs").glob("*.md"):
        stem = page.stem
        built = site / "index.html" if stem == "index" else site / stem / "index.html"
        assert built.is_file(), page.name
