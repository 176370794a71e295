"""What the CLI's persistent state guard costs ``msgbridge push`` when nothing paces it.

    python benchmarks/cli_guard.py [--lines 3000] [--repeats 2]

Runs ``msgbridge push`` (a subprocess, default sender) over LINES fresh status updates
against the emulator with rate limits off and a connection budget far above the rate
reached, alternating ``--no-guard`` and the default state file, and prints lines/s and
the ratio. Every applied update is one SQLite commit (WAL, ``synchronous=FULL``) in the
state file, so the ratio is about the disk's sync rate; a real vendor's budget (HighLevel:
10 per second per location) is usually far below both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from msgbridge.emulator import Emulator, EmulatorConfig


def _push(config: Path, source: Path, extra: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    command = [sys.executable, "-m", "msgbridge.cli", "push", str(source), "--json"]
    result = subprocess.run(
        [*command, "--no-progress", *extra],
        env={**env, "MSGBRIDGE_CONFIG": str(config)},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"--no-guard": [], "state file": []}
    config_emulator = EmulatorConfig(unknown_messages="create", rate_limits=False)
    with Emulator(config_emulator) as emu, tempfile.TemporaryDirectory() as tmp:
        emu.add_token("highlevel", "bench-token", account="loc-1")
        config = Path(tmp, "msgbridge.toml")
        config.write_text(
            '[connections.fast]\nadapter = "highlevel"\ntoken_env = "BENCH_TOKEN"\n'
            "rate_limit = { requests = 1000000, per_seconds = 1 }\n"
            f'[connections.fast.settings]\nbase_url = "{emu.base_url("highlevel")}"\n'
            'location_id = "loc-1"\n',
            encoding="utf-8",
        )
        env = {**os.environ, "BENCH_TOKEN": "bench-token"}
        for repeat in range(args.repeats):
            for name, extra in (("--no-guard", ["--no-guard"]), ("state file", [])):
                source = Path(tmp, "in.jsonl")
                with source.open("w", encoding="utf-8") as handle:
                    for n in range(args.lines):
                        status = {"message_id": f"{repeat}-{name}-{n}", "state": "delivered"}
                        handle.write(json.dumps({"connection": "fast", "status": status}) + "\n")
                state = Path(tmp, f"guard-{repeat}.sqlite3")
                elapsed = _push(config, source, extra, {**env, "MSGBRIDGE_STATE": str(state)})
                rates[name].append(args.lines / elapsed)
                print(f"  {name}: {args.lines / elapsed:,.0f} lines/s", flush=True)
    plain, guarded = (statistics.median(rates[k]) for k in ("--no-guard", "state file"))
    print()
    print(f"| push of {args.lines:,} lines, unpaced | lines/s (median) |")
    print("|---|---|")
    print(f"| `--no-guard` | {plain:,.0f} |")
    print(f"| state file (default) | {guarded:,.0f} |")
    print(f"| ratio | {guarded / plain:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
