"""``python -m crewship_async.testing``: run the Crewship emulator as a standalone server.

It prints the URL and the API key, then serves until Ctrl-C or SIGTERM. Point the SDK at
it with ``CREWSHIP_BASE_URL`` and ``CREWSHIP_API_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any, Optional

from crewship_async._signals import wait_for_stop_signal

from ._server import CrewshipEmulator

__all__ = ["main", "serve_forever"]


async def serve_forever(host: str = "127.0.0.1", port: int = 8080, **options: Any) -> None:
    """Serve an emulator on ``host:port`` until SIGINT or SIGTERM, then stop it cleanly.

    ``options`` go to :class:`CrewshipEmulator`. The URL and the API key are printed to
    stdout once the socket is bound (``port=0`` picks a free port).
    """
    async with CrewshipEmulator(host=host, port=port, **options) as emulator:
        print(f"Crewship emulator listening on {emulator.url}", flush=True)
        print(f"API key: {emulator.api_key}", flush=True)
        print(f"  export CREWSHIP_BASE_URL={emulator.url}", flush=True)
        print(f"  export CREWSHIP_API_KEY={emulator.api_key}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        await wait_for_stop_signal()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crewship_async.testing",
        description="Serve an in-memory emulator of the Crewship API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (8080; 0 picks one)")
    parser.add_argument("--api-key", default=None, help="API key to accept (default: random)")
    parser.add_argument(
        "--step-delay", type=float, default=0.5, help="seconds between run events (0.5)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="only deployments given with --deployment have a running version",
    )
    parser.add_argument(
        "--deployment",
        action="append",
        default=[],
        metavar="ID",
        help="register a deployment id (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for ids and random faults")
    parser.add_argument(
        "--keepalive-interval",
        type=float,
        default=15.0,
        help="idle seconds before an event stream sends a keep-alive comment (15)",
    )
    parser.add_argument(
        "--stream-timeout",
        type=float,
        default=None,
        help="seconds after which an event stream sends `timeout` and ends (never)",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv``, serve until interrupted; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(
            serve_forever(
                args.host,
                args.port,
                api_key=args.api_key,
                step_delay=args.step_delay,
                strict_deployments=args.strict,
                deployments=args.deployment,
                seed=args.seed,
                keepalive_interval=args.keepalive_interval,
                stream_timeout=args.stream_timeout,
            )
        )
    except KeyboardInterrupt:  # pragma: no cover - only without loop signal handlers
        return 0
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
