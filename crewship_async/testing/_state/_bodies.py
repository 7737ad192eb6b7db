"""Checks of request-body fields shared by the resources' stores."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .._common import ApiError

__all__ = ["optional_object"]


def optional_object(body: Mapping[str, Any], key: str, default: Any) -> Any:
    """A deep copy of the object ``body[key]``, ``default`` when absent or null; 400 if it
    is not an object."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, dict):
        raise ApiError(400, f"{key} must be an object")
    return copy.deepcopy(value)
