"""Turning the ``crewship_async`` logger on without touching the root logger.

``CREWSHIP_LOG=info`` (one line per attempt: method, path template, status, attempt,
elapsed) or ``CREWSHIP_LOG=debug`` (also retry decisions and stream reconnects) attaches
one stderr handler to the ``crewship_async`` logger when the first client is made;
:func:`enable_logging` does the same from code. Response bodies are logged only with the
explicit opt-in ``CREWSHIP_LOG_BODIES=1`` (or ``bodies=True``), at DEBUG, scrubbed by the
logger's redaction filter like every other record.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO, Optional

__all__ = ["LOG_ENV", "bodies_enabled", "configure_from_environment", "enable_logging"]

LOG_ENV = "CREWSHIP_LOG"
BODIES_ENV = "CREWSHIP_LOG_BODIES"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

logger = logging.getLogger("crewship_async")
_state: dict[str, Optional[object]] = {"handler": None, "bodies": False}


def _level(value: str, source: str) -> int:
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        raise ValueError(f"{source} must be one of debug, info; got {value!r}")
    return level


def enable_logging(
    level: str = "info", *, bodies: bool = False, stream: Optional[IO[str]] = None
) -> logging.Handler:
    """Send the ``crewship_async`` logger's records at ``level`` ("debug" or "info") and
    above to ``stream`` (default stderr). Calling it again replaces the handler it added;
    the root logger is never changed, and records still propagate to it as usual.

    ``bodies=True`` adds the start of each response body at DEBUG. Raises ``ValueError``
    for another level.
    """
    chosen = _level(level, "level")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    previous = _state["handler"]
    if isinstance(previous, logging.Handler):
        logger.removeHandler(previous)
    logger.addHandler(handler)
    logger.setLevel(chosen)
    _state["handler"] = handler
    _state["bodies"] = bodies
    return handler


def configure_from_environment(environ: Optional[Mapping[str, str]] = None) -> None:
    """Apply ``CREWSHIP_LOG``/``CREWSHIP_LOG_BODIES`` once (later calls do nothing unless
    the values changed). Raises ``ValueError`` for an unknown level."""
    env = os.environ if environ is None else environ
    value = env.get(LOG_ENV, "").strip()
    if not value:
        return
    bodies = env.get(BODIES_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    wanted = (value.lower(), bodies)
    if _state.get("from_env") == wanted:
        return
    _level(value, LOG_ENV)
    enable_logging(value, bodies=bodies)
    _state["from_env"] = wanted


def bodies_enabled() -> bool:
    """Whether response bodies are to be logged (an explicit opt-in)."""
    return bool(_state["bodies"])
