"""``python -m msgbridge.emulator``: serve the emulator until Ctrl-C (a stand-in for the CLI)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from msgbridge.emulator.config import EmulatorConfig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m msgbridge.emulator", description="Serve the msgbridge vendor emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--unknown", choices=("reject", "create"), default="reject")
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--provider-race", type=float, default=0.0)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="VENDOR:TOKEN[:ACCOUNT]",
        help="accept this token (repeatable)",
    )
    parser.add_argument("--no-demo", action="store_true", help="do not register demo tokens")
    args = parser.parse_args(argv)
    config = EmulatorConfig.from_options(
        unknown=args.unknown,
        rate_limits=not args.no_rate_limits,
        fault_rate=args.fault_rate,
        seed=args.seed,
        provider_race=args.provider_race,
        tokens=args.token,
        demo=not args.no_demo,
    )
    from msgbridge.emulator.server import serve

    serve(args.host, args.port, config)


if __name__ == "__main__":
    main()
