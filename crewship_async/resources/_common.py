"""Argument checks and request-building helpers shared by the resources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import quote

from ..models.runs import check_environment

__all__ = [
    "FILTERED_QUERY",
    "PAGED_QUERY",
    "has_control_characters",
    "check_environment",
    "check_json_object",
    "check_optional_str",
    "segment",
]

# The query names a listing's pager sets itself.
PAGED_QUERY = ("limit", "offset")
# ... and those of a listing filtered by deployment and status (runs, threads).
FILTERED_QUERY = (*PAGED_QUERY, "deployment_id", "status")


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds an ASCII control character (C0 or DEL)."""
    return any(ord(c) < 0x20 or c == "\x7f" for c in text)


def segment(name: str, value: object) -> str:
    """``value`` percent-encoded as one URL path segment.

    Raises ``TypeError`` for a non-string and ``ValueError`` for ``""``, ``"."`` and
    ``".."`` (which would name another path), naming the argument ``name``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value in ("", ".", ".."):
        raise ValueError(f"{name} must be a non-empty id other than '.' and '..', got {value!r}")
    return quote(value, safe="")


def check_json_object(name: str, value: object) -> Optional[Mapping[str, Any]]:
    """Return ``value`` if it is ``None`` or a mapping with string keys, else raise ``TypeError``.

    JSON-serialisability of the values is checked when the body is encoded, before any
    request is sent.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (a JSON object), got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be strings, got {key!r}")
    return value


def check_optional_str(name: str, value: object) -> Optional[str]:
    """Return ``value`` if it is ``None`` or a non-empty string, else raise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value
