"""The docs site's code, kept true: every ``python`` block of ``docs/*.md`` runs against
the emulator.

A page's blocks run in order in one namespace, as the reader meets them, with a client of
the emulator bound to ``client`` and the emulator to ``emulator``; ``await`` is allowed at
the top level of a block. A block that calls ``asyncio.run(`` is a whole program: it runs
in a subprocess whose ``CREWSHIP_BASE_URL`` and ``CREWSHIP_API_KEY`` point at the
emulator. A block fenced ``py`` is shown only: it needs what a test has not got (a web
app's server, a deployment's secrets), and says so in the text around it.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from crewship_async.testing import CrewshipEmulator

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PAGES = sorted(DOCS.glob("*.md"))


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """Each ``python`` block of ``page`` with the line it starts on."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_guides_have_runnable_blocks() -> None:
    pages = {page.name for page in PAGES if python_blocks(page)}
    assert {"quickstart.md", "streams.md", "fan-out.md", "errors.md"} <= pages


def test_a_block_is_found_with_its_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n```python\nx = 1\n```\n\n```py\nnot run\n```\n")
    assert python_blocks(page) == [(4, "x = 1\n")]


async def run_program(source: str, emulator: CrewshipEmulator) -> None:
    env = {
        **os.environ,
        "CREWSHIP_BASE_URL": emulator.url,
        "CREWSHIP_API_KEY": emulator.api_key,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        source,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (out + err).decode()


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
async def test_the_page_runs(page: Path) -> None:
    async with CrewshipEmulator(step_delay=0.05) as emulator, emulator.client() as client:
        namespace: dict[str, Any] = {
            "__name__": "docs_" + page.stem.replace("-", "_"),
            "client": client,
            "emulator": emulator,
        }
        for line, source in python_blocks(page):
            if "asyncio.run(" in source:
                await run_program(source, emulator)
                continue
            code = compile(
                "\n" * (line - 1) + source,
                str(page),
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            )
            # The docs' own code, run as the reader would run it.
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                await result
