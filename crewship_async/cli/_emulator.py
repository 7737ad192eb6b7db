"""``emulator``: serve the Crewship emulator on a local port until Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

from ._args import port_number
from ._output import Output

__all__ = ["register", "serve"]


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def register(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add the ``emulator`` command."""
    emulator = commands.add_parser(
        "emulator",
        parents=[parent],
        help="serve an in-memory Crewship API emulator on a local port",
        description=(
            "Serve an in-memory emulator of the Crewship API. It prints its URL and API "
            "key (set one with --api-key); point the SDK or this CLI at it with "
            "CREWSHIP_BASE_URL and CREWSHIP_API_KEY. Ctrl-C stops it cleanly (exit 0)."
        ),
    )
    emulator.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    emulator.add_argument("--port", type=port_number, default=8080, help="port (8080; 0 picks one)")
    emulator.add_argument(
        "--step-delay",
        type=_delay,
        default=0.5,
        metavar="SECONDS",
        help="seconds between a run's events (0.5)",
    )
    emulator.add_argument(
        "--strict",
        action="store_true",
        help="only deployments given with --deployment have a running version",
    )
    emulator.add_argument(
        "--deployment",
        action="append",
        default=[],
        metavar="ID",
        help="register a deployment id (repeatable)",
    )
    emulator.add_argument("--seed", type=int, default=None, help="seed for ids and random faults")
    emulator.set_defaults(standalone=serve, need_rich=False)


async def serve(args: argparse.Namespace, out: Output) -> int:
    """Run the emulator's ``serve_forever`` with the options given; 0 once stopped."""
    from ..testing.__main__ import serve_forever

    options: dict[str, Any] = {
        "api_key": args.api_key,
        "step_delay": args.step_delay,
        "strict_deployments": args.strict,
        "deployments": args.deployment,
    }
    if args.seed is not None:
        options["seed"] = args.seed
    await serve_forever(args.host, args.port, **options)
    out.note("emulator stopped")
    return 0
