"""Throughput benchmarks of msgbridge against the emulator, in one command.

Usage (from the repository root, in the venv with ``benchmarks/requirements.txt``)::

    python benchmarks/run.py [overhead|peers|limits|faults|memory|all ...] [--quick]
                             [--pin | --no-pin] [--out FILE]

Each selected benchmark starts the emulator (``benchmarks/emulator_server.py``) as a
separate process on a free loopback port, waits for its control endpoint, runs, stops it,
and the run ends by printing markdown tables (also written to ``--out``). Ratios are
always against a baseline measured in the same run.

* ``overhead``: ``AsyncBridge.update_many`` on each sender vs the raw client it wraps, at
  1, 16 and 64 in flight, N=1,500 updates per point, 3 repetitions in alternating order,
  medians (``overhead.py``).
* ``peers``: the official SDKs making the same updates at the same concurrency
  (``peers.py``).
* ``limits``: 200 HighLevel connections each limited by the emulator to 100 per 10 s,
  30 s, rate limits on (``limits.py``).
* ``faults``: 10% 5xx and 1% dropped connections; final states checked against the
  expected ones (``faults.py``).
* ``memory``: ``msgbridge push`` over a 1,000,000-line file, peak RSS and time per 100k
  lines (``memory.py``).

``--quick`` shrinks everything (N=500, one repetition, a 12 s limits run, fewer fault
updates, a 100k-line push) for a smoke test; its numbers are not the published ones.
By default the OS schedules the client and the emulator on the machine's cores as it likes
(on 2 cores they compete, and so do any other processes running); ``--pin`` puts the
client on core 0 and the emulator on core 1 instead. Every timed section records the CPU
time of the client, of the emulator and of all other processes; a sample during which
other processes used more than 15% of a core is redone (twice at most, keeping the
quietest), and the tables show the shares.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from pathlib import Path

import _harness
from _harness import EmulatorProcess, machine_lines, pin_client

ALL = ("overhead", "peers", "limits", "faults", "memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="*", default=["all"], choices=[*ALL, "all"])
    parser.add_argument("--quick", action="store_true", help="small smoke-test sizes")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--out", type=Path, default=None, help="also write the tables here")
    parser.add_argument(
        "--lines", type=int, default=None, help="memory: input lines (default 1M, quick 100k)"
    )
    args = parser.parse_args(argv)
    selected = list(ALL) if "all" in args.benchmarks else list(dict.fromkeys(args.benchmarks))
    client_cpu, emulator_cpu = (0, 1) if args.pin else (None, None)
    pinning = (
        "client pinned to core 0, emulator to core 1 (one core each)"
        if args.pin
        else "not pinned (the OS schedules client and emulator on the 2 cores)"
    )
    pin_client(client_cpu)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    sections: list[str] = [
        "## Setup",
        "",
        f"- Command: `{command.strip()}`",
        *machine_lines(pinning),
        "",
    ]
    started = time.monotonic()
    for name in selected:
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        if name == "overhead":
            sections.append(run_overhead(args.quick, emulator_cpu))
        elif name == "peers":
            sections.append(run_peers(args.quick, emulator_cpu))
        elif name == "limits":
            sections.append(run_limits(args.quick, emulator_cpu))
        elif name == "faults":
            sections.append(run_faults(args.quick, emulator_cpu))
        elif name == "memory":
            lines = args.lines or (100_000 if args.quick else 1_000_000)
            sections.append(run_memory(lines, emulator_cpu, client_cpu))
        print(f"== {name} done in {time.monotonic() - t0:.0f} s", flush=True)
    sections.append(f"_Total run time: {time.monotonic() - started:.0f} s._")
    report = "\n".join(sections)
    print()
    print(report)
    if args.out is not None:
        args.out.write_text(report + "\n", encoding="utf-8")
    return 0


def run_overhead(quick: bool, cpu: int | None) -> str:
    import overhead

    n, repeats = (500, 1) if quick else (1500, 3)
    with EmulatorProcess(cpu=cpu, unknown="create", rate_limits=False) as emulator:
        points = asyncio.run(overhead.run(emulator, n, repeats))
    return "\n".join(
        [
            "## 1. Overhead and the limit",
            "",
            f"HighLevel status PUT, unthrottled emulator, N={n:,} updates per point, "
            f"{repeats} repetition(s) in alternating order; medians.",
            "",
            overhead.table(points),
            "",
        ]
    )


def run_peers(quick: bool, cpu: int | None) -> str:
    import peers

    n, repeats = (500, 1) if quick else (1500, 3)
    with EmulatorProcess(cpu=cpu, unknown="create", rate_limits=False, accept_v3=True) as emu:
        results = asyncio.run(peers.run(emu, n, repeats))
    return "\n".join(
        [
            "## 2. Peers on the same emulator and the same updates",
            "",
            f"N={n:,} updates per point, {repeats} repetition(s) in rotating order; medians.",
            "",
            peers.table(results),
            "",
        ]
    )


def run_limits(quick: bool, cpu: int | None) -> str:
    import limits

    seconds = 12.0 if quick else 30.0
    with EmulatorProcess(
        cpu=cpu,
        unknown="create",
        rate_limits=True,
        demo=False,
        record_limit=None,
        tokens=limits.token_specs(),
    ) as emulator:
        result = asyncio.run(limits.run(emulator, seconds))
    return limits.report(result)


def run_faults(quick: bool, cpu: int | None) -> str:
    import faults

    messages = 600 if quick else 2_500
    with EmulatorProcess(
        cpu=cpu, unknown="create", rate_limits=False, record_limit=None, seed=7
    ) as emulator:
        results = asyncio.run(faults.run(emulator, messages))
    return faults.report(results)


def run_memory(lines: int, cpu: int | None, client_cpu: int | None) -> str:
    import memory

    with EmulatorProcess(
        cpu=cpu,
        unknown="create",
        rate_limits=False,
        record_limit=1_000,
        history_limit=1,
        tokens=memory.token_specs(),
    ) as emulator:
        result = memory.run(emulator, lines, client_cpu)
    return memory.report(result)


if __name__ == "__main__":
    _ = _harness
    raise SystemExit(main())
