"""pytest fixtures backed by the Crewship emulator.

Registered as the ``crewship_async`` pytest plugin when the package is installed (or load
it with ``-p crewship_async.testing.pytest_plugin``). Fixtures, both function-scoped:

``crewship_emulator``
    A started :class:`~crewship_async.testing.CrewshipEmulator` (``step_delay=0.005``),
    stopped after the test.
``crewship_client``
    An ``AsyncCrewship`` client connected to that emulator, closed after the test.

Mark a test ``@pytest.mark.crewship_emulator(**options)`` to pass other constructor
options, e.g. ``strict_deployments=True, deployments=["dep_a"]``.

The fixtures are async. With pytest-asyncio installed they are ``pytest_asyncio.fixture``
fixtures (function-scoped, on the test's own event loop), so they work in both of its
modes: with ``asyncio_mode = auto`` any ``async def`` test can use them; in the default
strict mode the test must be marked ``@pytest.mark.asyncio`` (an unmarked async test is
not run by pytest-asyncio at all). Without pytest-asyncio they are plain async fixtures,
which anyio's pytest plugin runs for tests marked ``@pytest.mark.anyio`` (with the
``asyncio`` backend).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

import pytest

from ._server import CrewshipEmulator

try:
    import pytest_asyncio
except ImportError:
    _PYTEST_ASYNCIO = False
else:
    _PYTEST_ASYNCIO = True

if TYPE_CHECKING:
    from crewship_async import AsyncCrewship

__all__ = ["crewship_client", "crewship_emulator"]

#: Constructor options the fixture uses unless a marker overrides them.
DEFAULT_OPTIONS: dict[str, Any] = {"step_delay": 0.005}

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(function: _F) -> _F:
    if _PYTEST_ASYNCIO:
        return cast(_F, pytest_asyncio.fixture(function))
    return cast(_F, pytest.fixture(function))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "crewship_emulator(**options): CrewshipEmulator options for the crewship_emulator fixture",
    )


def emulator_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The fixture's constructor options: the defaults updated by the closest marker."""
    options = dict(DEFAULT_OPTIONS)
    marker = request.node.get_closest_marker("crewship_emulator")
    if marker is not None:
        options.update(marker.kwargs)
    return options


@_async_fixture
async def crewship_emulator(request: pytest.FixtureRequest) -> AsyncIterator[CrewshipEmulator]:
    """A running Crewship emulator for one test."""
    async with CrewshipEmulator(**emulator_options(request)) as emulator:
        yield emulator


@_async_fixture
async def crewship_client(crewship_emulator: CrewshipEmulator) -> AsyncIterator[AsyncCrewship]:
    """An ``AsyncCrewship`` talking to ``crewship_emulator``; closed after the test."""
    client = crewship_emulator.client()
    try:
        yield client
    finally:
        await client.aclose()
