"""Outbox benchmark: enqueue and drain rates (SQLite, PostgreSQL) and the crash test at scale.

* The emulator runs in a **separate process** (``python -m msgbridge.emulator --port 0
  --unknown create --no-rate-limits``), so its CPU is not this process's.
* Enqueue: one ``enqueue`` per update (one durable commit each: the latency a caller
  sees), ``enqueue_many`` in chunks of 500, and 4 processes enqueuing into one SQLite file.
* Drain: N distinct messages over 3 connections, one worker (batch 200, 32 in flight),
  compared with the same updates sent by ``Bridge.update_many`` without an outbox.
* PostgreSQL: ``--dsn`` / ``$MSGBRIDGE_TEST_POSTGRES_DSN``, else a throwaway server is
  started with ``initdb``/``pg_ctl`` (default durability: ``fsync`` and
  ``synchronous_commit`` on), as the ``postgres`` user when run as root.
* Crash test: ``tests/outbox/crash_harness.py`` at a larger scale (SIGKILLed worker
  processes; emulator faults: 10% 5xx, ~3% 429, 2% dropped after apply, latency).

Run: ``python benchmarks/outbox_bench.py`` (``--quick`` for a smaller run; ``--help``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.outbox.crash_harness

from msgbridge import BearerToken, Bridge, Connection, MessageStatus  # noqa: E402
from msgbridge.outbox import Outbox, OutboxWorker  # noqa: E402
from msgbridge.retry import RetryPolicy  # noqa: E402

VENDORS = ("highlevel", "leadway", "hoop")
VERSIONS = {"highlevel": "2021-04-15", "leadway": "2021-07-28", "hoop": "2021-04-15"}
PG_BIN = Path("/usr/lib/postgresql/15/bin")

ENQUEUER = """
import sys, time
from msgbridge import MessageStatus
from msgbridge.outbox import Outbox
db, proc, count, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
with Outbox(db, busy_timeout=60.0) as box:
    while time.time() < start_at:  # start together, after the interpreters are up
        time.sleep(0.001)
    for i in range(count):
        box.enqueue("highlevel", MessageStatus(f"p{proc}-m{i}", "delivered"))
print(time.time() - start_at)
"""


# -- the emulator in its own process ------------------------------------------------------------


@contextlib.contextmanager
def emulator_process() -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "msgbridge.emulator",
            "--port",
            "0",
            "--unknown",
            "create",
            "--no-rate-limits",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 20
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.search(r"on (http://\S+)", line)
            if found:
                url = found.group(1)
        if url is None:
            raise RuntimeError("the emulator process did not announce its URL")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def connections(url: str) -> list[Connection]:
    return [
        Connection(
            vendor,
            adapter=vendor,
            credentials=BearerToken(f"demo-{vendor}-token"),
            settings={"base_url": f"{url}/{vendor}", "version": VERSIONS[vendor]},
        )
        for vendor in VENDORS
    ]


# -- PostgreSQL ---------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres(dsn: str | None) -> Iterator[str | None]:
    if dsn:
        yield dsn
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("PostgreSQL: psycopg not installed, skipped", file=sys.stderr)
        yield None
        return
    initdb = shutil.which("initdb") or str(PG_BIN / "initdb")
    pg_ctl = shutil.which("pg_ctl") or str(PG_BIN / "pg_ctl")
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="msgbridge-bench-pg-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = False
    try:
        if prefix:
            shutil.chown(base, "postgres", "postgres")
        subprocess.run(
            [*prefix, initdb, "-D", str(base / "data"), "-A", "trust", "-U", "postgres", "-N"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(base / "data"),
                "-l",
                str(base / "log"),
                "-w",
                "-o",
                f"-k {base} -p {port} -c listen_addresses=''",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        started = True
        yield f"host={base} port={port} user=postgres dbname=postgres"
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"PostgreSQL: could not start a server ({exc}), skipped", file=sys.stderr)
        yield None
    finally:
        if started:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(base / "data"), "-m", "fast", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


def fresh_pg(dsn: str) -> str:
    import psycopg

    schema = f"bench_{os.getpid()}_{int(time.monotonic() * 1000) % 10**8}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{dsn} options='-c search_path={schema}'"


# -- measurements ---------------------------------------------------------------------------------


def rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"


def timed(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def updates(count: int, prefix: str = "m") -> list[tuple[str, MessageStatus]]:
    return [(VENDORS[i % 3], MessageStatus(f"{prefix}{i}", "delivered")) for i in range(count)]


def bench_enqueue(target: str, singles: int, bulk: int) -> tuple[float, float]:
    with Outbox(target) as outbox:
        items = updates(singles, "single-")

        def one_by_one() -> None:
            for connection, status in items:
                outbox.enqueue(connection, status)

        single = singles / timed(one_by_one)
        many_items = updates(bulk, "bulk-")

        def in_chunks() -> None:
            for start in range(0, bulk, 500):
                outbox.enqueue_many(many_items[start : start + 500])

        many = bulk / timed(in_chunks)
    return single, many


def bench_sqlite_processes(db: Path, processes: int, each: int) -> float:
    Outbox(db).close()
    start_at = time.time() + 2.0
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUER, str(db), str(p), str(each), str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    elapsed = [float(child.communicate()[0]) for child in children]
    return processes * each / max(elapsed)


def bench_drain(target: str, url: str, count: int, workers: int = 1) -> float:
    with Outbox(target) as outbox:
        items = updates(count)
        for start in range(0, count, 1000):
            outbox.enqueue_many(items[start : start + 1000])
        built = [
            OutboxWorker.create(
                Outbox(target) if workers > 1 else outbox,
                connections(url),
                rate_limits=False,
                batch_size=200,
                max_in_flight=32,
                per_connection=16,
                owner=f"bench-{n}",
            )
            for n in range(workers)
        ]
        reports: list[Any] = []

        def run(worker: OutboxWorker) -> None:
            reports.append(worker.drain(until_empty=False))

        def all_workers() -> None:
            threads = [threading.Thread(target=run, args=(w,)) for w in built]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        seconds = timed(all_workers)
        for worker in built:
            worker.close()
            if workers > 1:
                worker.store.close()
        applied = sum(r.applied for r in reports)
        if applied != count or outbox.stats().pending:
            raise RuntimeError(f"drain applied {applied} of {count}")
    return count / seconds


def bench_bridge(url: str, count: int) -> float:
    items = updates(count, "direct-")
    with Bridge(connections(url), retry=RetryPolicy(max_attempts=2), rate_limits=False) as bridge:
        return count / timed(
            lambda: list(bridge.update_many(items, max_in_flight=32, per_connection=16))
        )


def bench_crash(messages: int, kills: int) -> Any:
    from tests.outbox.crash_harness import run_crash_scenario

    from msgbridge.emulator import Emulator, EmulatorConfig

    config = EmulatorConfig(demo=True, unknown_messages="create", rate_limits=False)
    with Emulator(config) as emu, tempfile.TemporaryDirectory() as tmp:
        return run_crash_scenario(
            emu,
            Path(tmp) / "crash.db",
            messages=messages,
            kills=kills,
            seed=2024,
            trickle_seconds=10.0,
            kill_after=(0.3, 1.2),
            lease_seconds=1.0,
            batch_size=100,
            timeout=600.0,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers, faster")
    parser.add_argument("--dsn", default=os.environ.get("MSGBRIDGE_TEST_POSTGRES_DSN"))
    parser.add_argument("--skip-crash", action="store_true")
    args = parser.parse_args()
    singles, bulk, drain_n = (300, 5_000, 2_000) if args.quick else (1_000, 20_000, 10_000)
    crash_messages, crash_kills = (600, 10) if args.quick else (3_000, 30)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, emulator_process() as url:
        tmpdir = Path(tmp)
        single, many = bench_enqueue(str(tmpdir / "enqueue.db"), singles, bulk)
        rows.append(("SQLite", "enqueue, one commit each (1 thread)", rate(single)))
        rows.append(("SQLite", "enqueue_many, 500 per commit", rate(many)))
        procs = bench_sqlite_processes(tmpdir / "procs.db", 4, singles // 2)
        rows.append(("SQLite", "enqueue, 4 processes, one file", rate(procs)))
        drained = bench_drain(str(tmpdir / "drain.db"), url, drain_n)
        rows.append(("SQLite", f"drain {drain_n:,} updates, 1 worker", rate(drained)))
        with postgres(args.dsn) as dsn:
            if dsn is not None:
                single, many = bench_enqueue(fresh_pg(dsn), singles, bulk)
                rows.append(("PostgreSQL", "enqueue, one commit each (1 thread)", rate(single)))
                rows.append(("PostgreSQL", "enqueue_many, 500 per commit", rate(many)))
                drained = bench_drain(fresh_pg(dsn), url, drain_n)
                rows.append(("PostgreSQL", f"drain {drain_n:,} updates, 1 worker", rate(drained)))
                drained = bench_drain(fresh_pg(dsn), url, drain_n, workers=2)
                rows.append(("PostgreSQL", f"drain {drain_n:,} updates, 2 workers", rate(drained)))
        direct = bench_bridge(url, drain_n)
        rows.append(("(none)", f"Bridge.update_many {drain_n:,}, no outbox", rate(direct)))
    print("| store | measurement | rate |")
    print("| --- | --- | ---: |")
    for store, what, value in rows:
        print(f"| {store} | {what} | {value} |")
    if args.skip_crash:
        return
    result = bench_crash(crash_messages, crash_kills)
    print()
    print(
        "| crash test | messages | updates enqueued | kills | lost | regressed | dead | seconds |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| SQLite, SIGKILLed worker | {result.messages:,} | {result.enqueued:,} | "
        f"{result.kills} | {result.lost} | {result.regressed} | {result.dead} | "
        f"{result.seconds:.1f} |"
    )
    print(
        f"\nupdates enqueued / lost / regressed: {result.enqueued} / {result.lost} / "
        f"{result.regressed}"
    )
    if result.problems:
        print("problems:\n" + "\n".join(result.problems[:20]))
        sys.exit(1)


if __name__ == "__main__":
    main()
