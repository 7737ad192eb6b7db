"""Deployments and incoming webhooks: what a run is started against.

A deployment id that starts with ``dep_`` exists with a running version in both
environments, unless the store is strict; then only registered ids have running versions.
An incoming webhook token names a deployment and an environment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs

from .._common import ApiError

__all__ = ["ENVIRONMENTS", "Deployment", "Deployments", "environment_of"]

ENVIRONMENTS = ("production", "staging")


@attrs.frozen
class Deployment:
    """A deployment the emulator knows, with the version each environment runs."""

    id: str
    environments: Mapping[str, int]

    def version(self, environment: str) -> tuple[str, int]:
        """``(version_id, version_number)`` of ``environment``, or 400 like the API."""
        number = self.environments.get(environment)
        if number is None:
            raise ApiError(400, f"No running version found for {environment} environment")
        digest = hashlib.sha1(f"{self.id}:{environment}:{number}".encode()).hexdigest()
        return f"ver_{digest[:12]}", number


def environment_of(body: Mapping[str, Any]) -> str:
    """The request body's ``environment`` (default ``production``); 400 if unknown."""
    environment = body.get("environment")
    if environment is None:
        return "production"
    if environment not in ENVIRONMENTS:
        raise ApiError(400, "environment must be one of: production, staging")
    return str(environment)


class Deployments:
    """The registered deployments and the incoming webhook tokens."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.known: dict[str, Deployment] = {}
        #: token -> (deployment id, environment)
        self.webhooks: dict[str, tuple[str, str]] = {}

    def add(self, deployment_id: str, environments: Mapping[str, int]) -> Deployment:
        """Register ``deployment_id`` with the version number of each environment."""
        deployment = Deployment(id=deployment_id, environments=dict(environments))
        self.known[deployment_id] = deployment
        return deployment

    def resolve(self, deployment_id: Any) -> Deployment:
        """Resolve ``deployment_id`` from a request body (400 / 404 as the API answers)."""
        if deployment_id is None:
            raise ApiError(400, "deployment_id is required")
        if not isinstance(deployment_id, str) or not deployment_id:
            raise ApiError(400, "deployment_id must be a non-empty string")
        known = self.known.get(deployment_id)
        if known is not None:
            return known
        if not deployment_id.startswith("dep_"):
            raise ApiError(404, f"Deployment not found: {deployment_id}")
        if self.strict:
            # The API knows the deployment exists but has no version running for it.
            return Deployment(id=deployment_id, environments={})
        return Deployment(id=deployment_id, environments={"production": 1, "staging": 1})

    def require_registered(self, deployment: Deployment) -> None:
        """404 for a deployment that strict mode does not know (threads need a real one)."""
        if self.strict and deployment.id not in self.known:
            raise ApiError(404, f"Deployment not found: {deployment.id}")

    def add_webhook(self, token: str, deployment_id: str, environment: str) -> None:
        """Let ``token`` start runs of ``deployment_id`` in ``environment``."""
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}, not {environment!r}")
        self.webhooks[token] = (deployment_id, environment)

    def webhook_target(self, token: str) -> tuple[str, str]:
        """``(deployment id, environment)`` of ``token``; 404 for an unknown token."""
        target = self.webhooks.get(token)
        if target is None:
            raise ApiError(404, "Webhook not found")
        return target
