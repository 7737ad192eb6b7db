"""Run simulation: each run is an asyncio task that walks it through its events.

Time moves in steps of ``step_delay`` seconds: the run is ``pending`` for one step, then
``running`` (``run.started``), then each scripted step emits one event, then one more step
ends it with ``run.completed`` or ``run.failed``. A ``forever`` run emits a ``heartbeat``
every step until it is canceled or the emulator stops. A ``held`` run does the same until
the test calls :meth:`RunRecord.release` on it (``emu.runs[run_id].release()``), then ends
as released: ``"succeeded"`` (the default) or ``"failed"``. Holding a run keeps it, and
its thread, busy for exactly as long as a test needs, however slow the machine. What a run
does is picked, when it starts, from the scripts registered with :meth:`RunScripts.add`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

import attrs

from ._state import RunRecord, Store, user_content

__all__ = ["OUTCOMES", "RunScript", "RunScripts", "Simulator"]

logger = logging.getLogger("crewship_async.testing")

OUTCOMES = ("succeeded", "failed", "forever", "held")

Step = tuple[str, Mapping[str, Any]]

_TASK = "Research the topic"
_AGENT = "Researcher"


def default_steps(run: RunRecord, outcome: str) -> list[Step]:
    """The events between ``run.started`` and the end, in the API's own vocabulary."""
    topic = run.input.get("topic") if isinstance(run.input, dict) else None
    query = topic if isinstance(topic, str) else "AI agents"
    steps: list[Step] = [
        ("task.started", {"task": _TASK, "agent": _AGENT}),
        (
            "agent.action",
            {"agent": _AGENT, "action": "search", "thought": "Looking for recent sources"},
        ),
        ("tool_use", {"tool": "web_search", "input": {"query": query}}),
        ("log", {"message": "Found 15 relevant results"}),
    ]
    if outcome != "failed":
        steps += [
            ("task.completed", {"task": _TASK, "agent": _AGENT}),
            ("artifact", {"name": "report.md"}),
        ]
    return steps


def default_output(run: RunRecord) -> dict[str, Any]:
    """A succeeded run's output; a thread run answers the user's message."""
    if run.thread_id is not None:
        content = user_content(run.input)
        reply = f"You said: {content}" if isinstance(content, str) else "Done."
        return {"result": reply}
    return {"result": "Research complete: report.md", "input": copy.deepcopy(run.input)}


@attrs.define
class RunScript:
    """What the next matching runs do (see ``CrewshipEmulator.script_runs``)."""

    outcome: str = "succeeded"
    remaining: Optional[int] = None
    deployment_id: Optional[str] = None
    error_message: str = "Crew execution failed"
    steps: Optional[tuple[Step, ...]] = None
    output: Any = None

    def matches(self, deployment_id: str) -> bool:
        return self.deployment_id is None or self.deployment_id == deployment_id


class RunScripts:
    """The registered run scripts.

    Counted scripts are used first, oldest first, each for its ``count`` runs; then the
    most recent unlimited script that matches; then the default (succeed).
    """

    def __init__(self) -> None:
        self._scripts: list[RunScript] = []

    def add(
        self,
        outcome: str = "succeeded",
        *,
        count: Optional[int] = None,
        deployment_id: Optional[str] = None,
        error_message: str = "Crew execution failed",
        steps: Optional[Iterable[Step]] = None,
        output: Any = None,
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for every run)")
        frozen_steps = None
        if steps is not None:
            frozen_steps = tuple((str(kind), dict(data)) for kind, data in steps)
        self._scripts.append(
            RunScript(
                outcome=outcome,
                remaining=count,
                deployment_id=deployment_id,
                error_message=error_message,
                steps=frozen_steps,
                output=copy.deepcopy(output),
            )
        )

    def clear(self) -> None:
        self._scripts.clear()

    def take(self, deployment_id: str) -> RunScript:
        """The script for the next run of ``deployment_id`` (a counted one is consumed)."""
        for script in self._scripts:
            if script.remaining is not None and script.matches(deployment_id):
                script.remaining -= 1
                if script.remaining == 0:
                    self._scripts.remove(script)
                return script
        for script in reversed(self._scripts):
            if script.remaining is None and script.matches(deployment_id):
                return script
        return RunScript()


class Simulator:
    """Owns one task per unfinished run; :meth:`aclose` cancels and awaits them all."""

    def __init__(self, store: Store, scripts: RunScripts, *, step_delay: float) -> None:
        self.store = store
        self.scripts = scripts
        self.step_delay = step_delay
        self.closing = False
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def launch(self, run: RunRecord) -> None:
        """Start simulating ``run`` with the script that applies to it."""
        script = self.scripts.take(run.deployment_id)
        if script.outcome == "held":
            run.hold()
        task = asyncio.get_running_loop().create_task(self._drive(run, script))
        self._tasks[run.id] = task
        task.add_done_callback(lambda done: self._done(run.id, done))

    def _done(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]
        if not task.cancelled() and task.exception() is not None:
            logger.error("Simulation of %s crashed", run_id, exc_info=task.exception())
        run = self.store.runs.get(run_id)
        if run is not None:
            run.notify()  # wakes wait_started() if the run never started

    def stop(self, run_id: str) -> None:
        """Stop simulating ``run_id`` (its state is settled by the caller)."""
        task = self._tasks.pop(run_id, None)
        if task is not None:
            task.cancel()

    @property
    def active(self) -> int:
        """How many runs are still being simulated."""
        return len(self._tasks)

    async def _drive(self, run: RunRecord, script: RunScript) -> None:
        delay = self.step_delay
        steps: Sequence[Step] = (
            script.steps if script.steps is not None else default_steps(run, script.outcome)
        )
        await asyncio.sleep(delay)
        self.store.start_run(run)
        for kind, data in steps:
            await asyncio.sleep(delay)
            run.emit(kind, copy.deepcopy(data))
        if script.outcome == "forever":
            while True:
                await asyncio.sleep(delay)
                run.emit("heartbeat", {"status": run.status})
        outcome = script.outcome
        if outcome == "held":
            while run.released_as is None:
                await asyncio.sleep(delay)
                if run.released_as is None:
                    run.emit("heartbeat", {"status": run.status})
            outcome = run.released_as
        await asyncio.sleep(delay)
        if outcome == "failed":
            self.store.finish_run(run, "failed", error=script.error_message)
        else:
            output = script.output if script.output is not None else default_output(run)
            self.store.finish_run(run, "succeeded", output=copy.deepcopy(output))

    async def wait_started(self, run: RunRecord) -> None:
        """Return once ``run`` has left ``pending`` or will not (stopped, crashed)."""
        while run.status == "pending" and not self.closing and run.id in self._tasks:
            await run.changed().wait()

    async def aclose(self) -> None:
        """Cancel every simulation and wait until all of them have ended."""
        self.closing = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.store.wake_all()
