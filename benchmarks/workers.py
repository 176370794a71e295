"""Many workers on one outbox (issue 11): 1, 2 and 4 worker processes by (many accounts,
one account), on SQLite (one WAL file) and PostgreSQL.

For each cell:

* **throughput**: N updates are enqueued up front, the workers (separate processes,
  ``tests/outbox/worker_proc.py``) start together and drain them; updates/s is N over
  the span between the first and the last status the vendor (emulator) applied, so
  interpreter start-up is not counted;
* **429s**: answers of the emulator's per-account budget during that drain;
* **DB round trips per update**: statements plus begin/commit of every transaction the
  workers ran (``Store.round_trips``), over N;
* **p99 enqueue → applied**: a second, open-loop phase; updates are enqueued at a steady
  rate below capacity while the workers run, and each one's latency is from the return
  of ``enqueue`` to the vendor (emulator) applying it.

"Many accounts": 12 connections, no vendor budget (the emulator's limits are off), so
only CPU and the database limit the rate. "One account": one HighLevel location with a
tight budget (20 requests per second at the emulator, the same budget in the client's
limiter): the rate is the budget's whatever the number of workers, and 429s show whether
the workers share it. The emulator runs in this process (threads); the machine's cores
are shared by it, the workers and the database. Idle workers look for work every 0.1 s
(``idle_interval``), which is most of the round trips of a worker that holds nothing.

Run: ``python benchmarks/workers.py`` (``--quick`` for a smaller run, ``--dsn`` for an
existing PostgreSQL, ``--stores sqlite`` to skip PostgreSQL, ``--scenarios one``,
``--no-affinity`` for the per-row leasing of schema version 1, for comparison).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from outbox_bench import fresh_pg, postgres  # noqa: E402

from msgbridge import MessageStatus  # noqa: E402
from msgbridge.emulator import Emulator, EmulatorConfig  # noqa: E402
from msgbridge.emulator.ratelimit import RateLimit  # noqa: E402
from msgbridge.outbox import Outbox  # noqa: E402

WORKER = REPO / "tests" / "outbox" / "worker_proc.py"
LOCATION = "demo-location"
BUDGET = 20  # requests per second for the one-account scenario


AFFINITY = {"affinity": True}


def spec(emu: Emulator, target: str, names: list[str], *, budget: bool, mode: str) -> str:
    return json.dumps(
        {
            **AFFINITY,
            "target": target,
            "mode": mode,
            "lease_seconds": 10.0,
            "batch_size": 200,
            "max_in_flight": 16,
            "per_connection": 4,
            "rate_limits": budget,
            "timeout": 600.0,
            "idle_interval": 0.1,
            "connections": [
                {
                    "name": name,
                    "adapter": "highlevel",
                    "token": "demo-highlevel-token",
                    "settings": {
                        "base_url": emu.base_url("highlevel"),
                        "version": "2021-04-15",
                        "location_id": LOCATION,
                    },
                    "rate_limit": [BUDGET, 1.0] if budget else None,
                }
                for name in names
            ],
        }
    )


def start(spec_json: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), spec_json],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed: {err[-2000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def vendor_applied(emu: Emulator) -> dict[str, float]:
    """Message id -> wall time the vendor applied its status (first 2xx status request)."""
    times: dict[str, float] = {}
    for record in emu.requests:
        if record.status is not None and 200 <= record.status < 300 and "/status" in record.path:
            message_id = record.path.rstrip("/").split("/")[-2]
            times.setdefault(message_id, record.at)
    return times


@contextlib.contextmanager
def fresh_target(store: str, dsn: str | None) -> Iterator[str]:
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "outbox.db")
            Outbox(path).close()
            yield path
    else:
        assert dsn is not None
        target = fresh_pg(dsn)
        Outbox(target).close()
        yield target


def throughput(
    emu: Emulator, target: str, names: list[str], workers: int, count: int, budget: bool
) -> dict[str, float]:
    with Outbox(target) as box:
        items = [(names[i % len(names)], MessageStatus(f"t{i}", "delivered")) for i in range(count)]
        for chunk in range(0, count, 500):
            box.enqueue_many(items[chunk : chunk + 500])
    emu.reset()
    emu.set_rate_limit(
        "highlevel", RateLimit(max_requests=BUDGET, interval=1.0) if budget else None
    )
    procs = [start(spec(emu, target, names, budget=budget, mode="drain")) for _ in range(workers)]
    reports = [finish(p) for p in procs]
    times = vendor_applied(emu)
    span = max(times.values()) - min(times.values())
    statuses = [r.status for r in emu.requests]
    return {
        "rate": len(times) / span if span > 0 else float("nan"),
        "applied": sum(r["applied"] for r in reports),
        "429": statuses.count(429),
        "trips": sum(r["round_trips"] for r in reports) / count,
    }


def latency(
    emu: Emulator,
    target: str,
    names: list[str],
    workers: int,
    per_second: float,
    seconds: float,
    budget: bool,
) -> float:
    emu.reset()
    emu.set_rate_limit(
        "highlevel", RateLimit(max_requests=BUDGET, interval=1.0) if budget else None
    )
    procs = [start(spec(emu, target, names, budget=budget, mode="forever")) for _ in range(workers)]
    for proc in procs:  # wait until every worker is up
        assert proc.stdout is not None
        proc.stdout.readline()
    enqueued: dict[str, float] = {}
    with Outbox(target) as box:
        total = int(per_second * seconds)
        began = time.monotonic()
        for index in range(total):
            due = began + index / per_second
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            message_id = f"l{index}"
            box.enqueue(names[index % len(names)], MessageStatus(message_id, "delivered"))
            enqueued[message_id] = time.time()
        deadline = time.monotonic() + 120
        while box.stats().pending and time.monotonic() < deadline:
            time.sleep(0.05)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    reports = [finish(proc) for proc in procs]
    times = vendor_applied(emu)
    waits = sorted(times[m] - t for m, t in enqueued.items() if m in times)
    if len(waits) < len(enqueued):
        raise RuntimeError(
            f"{len(enqueued) - len(waits)} of {len(enqueued)} updates were not applied: {reports}"
        )
    return waits[min(len(waits) - 1, int(len(waits) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--dsn", default=os.environ.get("MSGBRIDGE_TEST_POSTGRES_DSN"))
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--scenarios", default="many,one")
    parser.add_argument(
        "--no-affinity",
        action="store_true",
        help="per-row leasing, any worker sends for any account (before schema version 2)",
    )
    args = parser.parse_args()
    AFFINITY["affinity"] = not args.no_affinity
    many = [f"acct-{i:02d}" for i in range(12)]
    one = ["highlevel"]
    count = 1500 if args.quick else 4000
    budget_count = BUDGET * (4 if args.quick else 8)
    counts = [int(w) for w in args.workers.split(",")]
    print(
        "| store | accounts | workers | updates/s | 429s | DB round trips / update "
        "| p99 enqueue → applied |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    config = EmulatorConfig(demo=True, unknown_messages="create", record_limit=None)
    with Emulator(config) as emu, postgres(args.dsn) as dsn:
        for store in args.stores.split(","):
            if store == "postgresql" and dsn is None:
                continue
            scenarios = [("many (12)", many, False), ("one", one, True)]
            for label, names, budget in scenarios:
                if label.split()[0] not in args.scenarios.split(","):
                    continue
                for workers in counts:
                    with fresh_target(store, dsn) as target:
                        got = throughput(
                            emu, target, names, workers, budget_count if budget else count, budget
                        )
                    with fresh_target(store, dsn) as target:
                        p99 = latency(
                            emu,
                            target,
                            names,
                            workers,
                            BUDGET * 0.75 if budget else 100.0,
                            4.0 if args.quick else 8.0,
                            budget,
                        )
                    print(
                        f"| {store} | {label} | {workers} | {got['rate']:,.0f} | "
                        f"{got['429']:.0f} | {got['trips']:.2f} | {p99 * 1000:,.0f} ms |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
