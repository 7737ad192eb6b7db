"""Fault injection: make the emulator misbehave on purpose, predictably.

Every rule can be limited to a ``route``: ``"POST /v1/runs"``, ``"GET /v1/runs/{id}"``
(``{name}`` matches one path segment), or a path alone (``"/v1/runs/{id}/events"``) for
any method. ``None`` matches every request. Rules with a ``count`` are used up by matching
requests and then vanish; rules without one stay until :meth:`FaultInjector.reset`.
Randomness (:meth:`FaultInjector.fail_randomly`) comes from a generator seeded with the
emulator's ``seed``, so a failing test fails the same way every time.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any, Optional

import attrs

from ._common import error_body

__all__ = ["FaultInjector", "Failure", "RoutePattern"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RoutePattern:
    """``"METHOD /path/{param}"`` or ``"/path/{param}"``, matched against a request."""

    def __init__(self, spec: str) -> None:
        parts = spec.strip().split()
        if len(parts) == 2 and parts[0].upper() in _METHODS:
            self.method: Optional[str] = parts[0].upper()
            path = parts[1]
        elif len(parts) == 1:
            self.method = None
            path = parts[0]
        else:
            raise ValueError(f"route must look like 'POST /v1/runs' or '/v1/runs', not {spec!r}")
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {spec!r}")
        pieces = re.split(r"(\{[^/{}]+\})", path.rstrip("/") or "/")
        regex = "".join("[^/]+" if piece.startswith("{") else re.escape(piece) for piece in pieces)
        self._regex = re.compile(f"^{regex}/?$")
        self.spec = spec

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method.upper() != self.method:
            return False
        return self._regex.match(path) is not None

    def __repr__(self) -> str:
        return f"RoutePattern({self.spec!r})"


@attrs.frozen
class Failure:
    """An injected error response: ``status``, extra ``headers`` and a ``body``.

    A ``None`` body becomes the error envelope; ``str``/``bytes`` are sent as they are
    (as ``text/plain`` unless the headers say otherwise); anything else is sent as JSON.
    """

    status: int
    headers: Mapping[str, str]
    body: Any

    def render(self) -> tuple[bytes, str]:
        """The response bytes and their content type."""
        if self.body is None:
            message = f"Injected fault: HTTP {self.status}"
            return json.dumps(error_body(self.status, message)).encode(), "application/json"
        if isinstance(self.body, bytes):
            return self.body, "text/plain"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain"
        return json.dumps(self.body).encode(), "application/json"


@attrs.define
class _Rule:
    route: Optional[RoutePattern]
    remaining: Optional[int]
    probability: float = 1.0
    failure: Optional[Failure] = None
    seconds: float = 0.0
    events: int = 0
    mid_event: bool = False

    def matches(self, method: str, path: str) -> bool:
        return self.route is None or self.route.matches(method, path)


def _route(route: Optional[str]) -> Optional[RoutePattern]:
    return None if route is None else RoutePattern(route)


def _count(count: Optional[int]) -> Optional[int]:
    if count is not None and count < 1:
        raise ValueError("count must be at least 1")
    return count


class FaultInjector:
    """The faults waiting to be applied to the next requests (``emu.faults``)."""

    def __init__(self, *, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._failures: list[_Rule] = []
        self._latencies: list[_Rule] = []
        self._closes: list[_Rule] = []
        self._malformed: list[_Rule] = []
        self._drops: list[_Rule] = []

    # -- the public API -----------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
        route: Optional[str] = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` instead of handling them.

        The request never reaches the handler (nothing is created). ``headers`` are added,
        e.g. ``{"Retry-After": "1"}`` with ``status=429``. ``body`` defaults to the error
        envelope ``{"error": {"message": "Injected fault: HTTP 503", "code": ...}}``.
        """
        self._failures.append(
            _Rule(
                route=_route(route),
                remaining=_count(count),
                failure=Failure(status=status, headers=dict(headers or {}), body=body),
            )
        )

    def fail_randomly(
        self,
        probability: float,
        *,
        status: int = 503,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
        route: Optional[str] = None,
        count: Optional[int] = None,
    ) -> None:
        """Like :meth:`fail_next`, but each matching request fails with ``probability``.

        The draws come from the emulator's seeded generator. ``count`` caps how many
        failures are injected (``None``: no cap).
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        self._failures.append(
            _Rule(
                route=_route(route),
                remaining=_count(count),
                probability=probability,
                failure=Failure(status=status, headers=dict(headers or {}), body=body),
            )
        )

    def latency(
        self, seconds: float, *, route: Optional[str] = None, count: Optional[int] = None
    ) -> None:
        """Delay matching requests by ``seconds`` before they are handled.

        ``count=None`` delays every matching request until :meth:`reset`. Delays of several
        matching rules add up. The request counts as in flight while it waits.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._latencies.append(_Rule(route=_route(route), remaining=_count(count), seconds=seconds))

    def drop_stream_after(self, events: int, *, count: int = 1, mid_event: bool = False) -> None:
        """Cut the next ``count`` event streams abruptly after ``events`` events.

        The transport is aborted, so the client sees an incomplete chunked body (aiohttp
        raises ``ClientPayloadError``), not a clean end. With ``mid_event=True`` the first
        half of the following event's frame is sent before the cut, to exercise a
        client's handling of a partial event. Keep-alive comments are not counted.
        """
        if events < 0:
            raise ValueError("events must not be negative")
        self._drops.append(
            _Rule(
                route=None,
                remaining=_count(count),
                events=events,
                mid_event=mid_event,
            )
        )

    def close_connection_next(self, count: int = 1, *, route: Optional[str] = None) -> None:
        """Handle the next ``count`` matching requests, then drop the connection unanswered.

        Simulates "the request reached the server but the response was lost": the state
        change happens (a ``POST /v1/runs`` creates its run) and the client sees the
        connection close (aiohttp raises ``ServerDisconnectedError``). An event-stream
        request is dropped before any byte of the stream is sent.
        """
        self._closes.append(_Rule(route=_route(route), remaining=_count(count)))

    def malformed_body_next(self, count: int = 1, *, route: Optional[str] = None) -> None:
        """Handle the next ``count`` matching requests but send a truncated, non-JSON body.

        Status and content type stay what the handler chose (e.g. 202
        ``application/json``), so the client must notice the body itself. Event-stream
        requests are not affected and do not use the rule up.
        """
        self._malformed.append(_Rule(route=_route(route), remaining=_count(count)))

    def reset(self) -> None:
        """Remove every pending fault."""
        for rules in self._all():
            rules.clear()

    @property
    def pending(self) -> int:
        """How many fault rules are still waiting (unlimited rules included)."""
        return sum(len(rules) for rules in self._all())

    # -- applying the faults: what the server asks for each request ---------------------
    #
    # Each method uses up the matching rules it returns, so the server asks once per
    # request and only for the faults that request can still meet (a request answered
    # with an injected failure never asks whether its connection is to be dropped).

    def take_latency(self, method: str, path: str) -> float:
        """The seconds to wait before handling the request: every matching latency rule,
        added up (counted rules are used up by one)."""
        total = 0.0
        for rule in [rule for rule in self._latencies if rule.matches(method, path)]:
            total += rule.seconds
            self._consume(self._latencies, rule)
        return total

    def take_failure(self, method: str, path: str) -> Optional[Failure]:
        """The injected response to send instead of handling the request, or ``None``.

        The first matching rule applies; a random rule that draws a miss lets the next
        one be tried.
        """
        rule = self._use_first(self._failures, method, path)
        return None if rule is None else rule.failure

    def take_close(self, method: str, path: str) -> bool:
        """Whether to drop the connection once the request is handled."""
        return self._use_first(self._closes, method, path) is not None

    def take_malformed(self, method: str, path: str) -> bool:
        """Whether to send the handled response with a truncated body."""
        return self._use_first(self._malformed, method, path) is not None

    def take_stream_drop(self) -> Optional[tuple[int, bool]]:
        """``(events, mid_event)`` for the event stream being opened, or ``None``: cut it
        after ``events`` events (with half of the next frame sent when ``mid_event``)."""
        rule = self._use_first(self._drops, "GET", "/")
        return None if rule is None else (rule.events, rule.mid_event)

    # -- rule bookkeeping -------------------------------------------------------------

    def _all(self) -> tuple[list[_Rule], ...]:
        return (self._failures, self._latencies, self._closes, self._malformed, self._drops)

    @staticmethod
    def _consume(rules: list[_Rule], rule: _Rule) -> None:
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining == 0:
                rules.remove(rule)

    def _use_first(self, rules: list[_Rule], method: str, path: str) -> Optional[_Rule]:
        for rule in rules:
            if not rule.matches(method, path):
                continue
            if rule.probability < 1.0 and self._random.random() >= rule.probability:
                continue
            self._consume(rules, rule)
            return rule
        return None
