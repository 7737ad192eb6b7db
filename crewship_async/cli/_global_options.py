"""The global options (``--api-key``, ``--base-url``, ``--emulator``, ...) and which
commands take them.

Every command that calls the API takes all of them, before or after its name. The
commands in :data:`NARROWED` take only the ones that mean something to them: their help
shows no other, an other one after their name is an unknown argument, and one given before
their name is refused by :func:`check_narrowed` (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any, Optional

from ._args import positive_float

__all__ = ["NARROWED", "add_global_options", "check_narrowed", "options_parent"]

_EMULATOR_HELP = (
    "run against an in-process Crewship emulator (no key, no network); each command gets a "
    "fresh, empty one, so an id that an earlier command created is not found there: for "
    "state that lasts across commands, serve one with `crewship-async emulator` and point "
    "--base-url/--api-key at it"
)

#: Each global option: its destination, flag, default and argparse settings.
_OPTIONS: tuple[tuple[str, str, Any, dict[str, Any]], ...] = (
    (
        "api_key",
        "--api-key",
        None,
        {"metavar": "KEY", "help": "API key (default: $CREWSHIP_API_KEY)"},
    ),
    (
        "base_url",
        "--base-url",
        None,
        {
            "metavar": "URL",
            "help": "API root (default: $CREWSHIP_BASE_URL or https://api.crewship.dev)",
        },
    ),
    ("emulator", "--emulator", False, {"action": "store_true", "help": _EMULATOR_HELP}),
    (
        "json",
        "--json",
        False,
        {"action": "store_true", "help": "machine output: one JSON object per line"},
    ),
    (
        "request_timeout",
        "--request-timeout",
        None,
        {
            "metavar": "SECONDS",
            "type": positive_float,
            "help": "deadline of each API call across its retries (default: 60)",
        },
    ),
    (
        "allow_insecure_http",
        "--allow-insecure-http",
        False,
        {
            "action": "store_true",
            "help": "allow a plain http:// base URL on a host other than localhost",
        },
    ),
)

#: The commands that take only some global options, each with its own help text where
#: the option means something else there (``None``: the usual text).
NARROWED: dict[str, dict[str, Optional[str]]] = {
    "emulator": {
        "api_key": "the key the emulator accepts (default: a random one, printed at start)"
    },
    "demo": {"json": None},
    "webhook listen": {"json": None},
    # An incoming webhook's token is its credential, and a fresh emulator has no webhooks.
    "webhook trigger": {
        "base_url": None,
        "json": None,
        "request_timeout": None,
        "allow_insecure_http": None,
    },
}


def add_global_options(
    parser: argparse.ArgumentParser, *, leaf: bool, command: Optional[str] = None
) -> None:
    """Add the global options to ``parser``: all of them, or those ``command`` takes.

    On leaf parsers the defaults are suppressed so that a value given before the command
    name is not overwritten by the leaf's default.
    """
    wanted = NARROWED.get(command) if command is not None else None
    group = parser.add_argument_group("global options")
    for dest, flag, default, settings in _OPTIONS:
        if wanted is not None and dest not in wanted:
            continue
        options = dict(settings)
        if wanted is not None and wanted[dest] is not None:
            options["help"] = wanted[dest]
        group.add_argument(
            flag, dest=dest, default=argparse.SUPPRESS if leaf else default, **options
        )


def options_parent(command: Optional[str] = None) -> argparse.ArgumentParser:
    """A parent parser with the global options of ``command`` (``None``: every option)."""
    parent = argparse.ArgumentParser(add_help=False)
    add_global_options(parent, leaf=True, command=command)
    if command is not None:
        parent.set_defaults(narrowed_to=command)
    return parent


def check_narrowed(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error (exit 2) for a global option given before the name of a command
    that does not take it."""
    command: Optional[str] = getattr(args, "narrowed_to", None)
    if command is None:
        return
    wanted = NARROWED[command]
    for dest, flag, default, _settings in _OPTIONS:
        if dest not in wanted and getattr(args, dest, default) != default:
            parser.error(f"{flag} means nothing for {command}")
