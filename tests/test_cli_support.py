"""Helpers for the CLI tests: an emulator served from a background thread.

``main()`` runs its own event loop with ``asyncio.run``, so the emulator the commands talk
to must live on another loop: :class:`ThreadedEmulator` runs one in a daemon thread and
lets the test inspect or change it from the main thread. This module holds no tests.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from typing import Any, Callable, TypeVar

from crewship_async.cli import main
from crewship_async.testing import CrewshipEmulator

T = TypeVar("T")


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT.

    A process started in the background by a non-interactive shell ignores SIGINT, and its
    children inherit that; Python then installs no KeyboardInterrupt handler at all. The
    Ctrl-C tests must not depend on how the test run itself was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ThreadedEmulator:
    """A :class:`CrewshipEmulator` running on its own event loop in a daemon thread."""

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.emulator = CrewshipEmulator(**options)

    def start(self) -> ThreadedEmulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.emulator.stop(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def call(self, function: Callable[[CrewshipEmulator], T]) -> T:
        """Run ``function(emulator)`` on the emulator's loop and return its result."""

        async def wrapper() -> T:
            return function(self.emulator)

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(10)

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def api_key(self) -> str:
        return self.emulator.api_key

    def posts(self, path: str) -> list[Any]:
        """The bodies of the POST requests to ``path`` received so far."""
        return self.call(
            lambda emu: [r.body for r in emu.requests if r.method == "POST" and r.path == path]
        )

    def cli(self, *argv: str) -> int:
        """``main()`` with ``argv`` pointed at this emulator."""
        return main(["--base-url", self.url, "--api-key", self.api_key, *argv])


def running_emulator(**options: Any) -> Iterator[ThreadedEmulator]:
    """Body of a fixture: a running emulator on a background thread (fast runs)."""
    options.setdefault("step_delay", 0.01)
    emulator = ThreadedEmulator(**options).start()
    try:
        yield emulator
    finally:
        emulator.stop()
