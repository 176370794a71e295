"""The PostgreSQL store on a real server: concurrent workers, crashed leases, the
transactional outbox, schema versioning and lock timeouts."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from msgbridge import Bridge, Connection, DeliveryState, MessageStatus
from msgbridge.errors import ConfigurationError
from msgbridge.outbox import (
    SCHEMA_VERSION,
    EnqueueOutcome,
    ForeignDatabase,
    Outbox,
    OutboxWorker,
    SchemaTooNew,
    StorageLocked,
)
from msgbridge.outbox.store import Row, Tx
from msgbridge.retry import RetryPolicy

from .conftest import FakeClock, make_worker

psycopg = pytest.importorskip("psycopg")
PostgresStore = pytest.importorskip("msgbridge.outbox.postgres").PostgresStore


@pytest.fixture
def pg_outbox(pg_dsn: str, clock: FakeClock) -> Iterator[Outbox]:
    with Outbox(pg_dsn, clock=clock) as outbox:
        yield outbox


def test_drain_applies_final_states(
    pg_outbox: Outbox, emu: Any, connections: list[Connection], clock: FakeClock
) -> None:
    for index in range(30):
        vendor = ("highlevel", "leadway", "hoop")[index % 3]
        pg_outbox.enqueue(vendor, MessageStatus(f"m{index}", "delivered"))
        pg_outbox.enqueue(vendor, MessageStatus(f"m{index}", "read"))
        pg_outbox.enqueue(vendor, MessageStatus(f"m{index}", "sent"))
    with make_worker(pg_outbox, connections, clock, batch_size=7) as worker:
        report = worker.drain()
    assert (report.applied, report.dead) == (30, 0)
    assert pg_outbox.stats().pending == 0
    for index in range(30):
        vendor = ("highlevel", "leadway", "hoop")[index % 3]
        assert emu.message(vendor, f"m{index}").statuses == ["read"]
    assert pg_outbox.enqueue("hoop", MessageStatus("m2", "delivered")).outcome is (
        EnqueueOutcome.STALE
    )


class RecordingStore(PostgresStore):
    """Logs which owner leased which rows when (shared across the workers' stores)."""

    log: dict[str, list[tuple[float, list[int]]]]

    def lease(self, tx: Tx, **kwargs: Any) -> list[Row]:
        rows = super().lease(tx, **kwargs)
        self.log[kwargs["owner"]].append((time.monotonic(), [int(r[0]) for r in rows]))
        return rows


class RecordingWorker(OutboxWorker):
    intervals: dict[int, list[tuple[str, float, float]]]

    def run_once(self) -> Any:
        report = super().run_once()
        assert isinstance(self.store, RecordingStore)
        for started, ids in self.store.log.pop(self.owner, []):
            for row_id in ids:
                self.intervals[row_id].append((self.owner, started, time.monotonic()))
        return report


def test_two_workers_never_hold_or_apply_the_same_row_at_once(
    pg_dsn: str, emu: Any, connections: list[Connection]
) -> None:
    log: dict[str, list[tuple[float, list[int]]]] = defaultdict(list)
    intervals: dict[int, list[tuple[str, float, float]]] = defaultdict(list)
    emu.faults.latency(0.01, rate=0.5)  # keep batches in flight long enough to overlap
    with Outbox(pg_dsn) as outbox:
        outbox.enqueue_many(
            [
                (("highlevel", "leadway", "hoop")[i % 3], MessageStatus(f"m{i}", "delivered"))
                for i in range(300)
            ]
        )
    workers: list[RecordingWorker] = []
    for name in ("alpha", "beta", "gamma"):
        store = RecordingStore(pg_dsn)
        store.log = log
        bridge = Bridge(connections, retry=RetryPolicy.none(), rate_limits=False)
        worker = RecordingWorker(store, bridge, owner=name, batch_size=20, lease_seconds=30)
        worker.intervals = intervals
        workers.append(worker)
    reports: dict[str, Any] = {}
    barrier = threading.Barrier(len(workers))

    def work(worker: RecordingWorker) -> None:
        barrier.wait()
        reports[worker.owner] = worker.drain()

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for worker in workers:
        worker.bridge.close()
        worker.store.close()
    assert sum(r.applied for r in reports.values()) == 300
    assert all(r.applied > 0 for r in reports.values()), reports  # all of them took part
    assert len(intervals) == 300
    for row_id, held in intervals.items():
        held.sort(key=lambda item: item[1])
        for (owner_a, _, end_a), (owner_b, start_b, _) in itertools.pairwise(held):
            assert start_b >= end_a, f"row {row_id} held by {owner_a} and {owner_b} at once"
        assert len(held) == 1  # nothing was leased twice
    for index in range(300):
        vendor = ("highlevel", "leadway", "hoop")[index % 3]
        assert emu.message(vendor, f"m{index}").statuses == ["delivered"]  # applied once


def test_crashed_workers_leases_return(
    pg_outbox: Outbox, emu: Any, connections: list[Connection], clock: FakeClock
) -> None:
    for index in range(4):
        pg_outbox.enqueue("leadway", MessageStatus(f"m{index}", "read"))
    with pg_outbox.store.transaction() as tx:
        leased = pg_outbox.store.lease(
            tx,
            owner="crashed",
            now=clock.now,
            until=clock.now + 30,
            limit=10,
            scan=100,
            per_connection=100,
            connections=["leadway"],
        )
    assert len(leased) == 4
    with make_worker(pg_outbox, connections, clock, lease_seconds=30) as worker:
        assert worker.drain(until_empty=False).leased == 0
        clock.advance(31)
        assert worker.drain(until_empty=False).applied == 4
    assert all(emu.message("leadway", f"m{i}").statuses == ["read"] for i in range(4))


def test_lease_skips_rows_locked_by_another_transaction(pg_dsn: str, clock: FakeClock) -> None:
    with Outbox(pg_dsn, clock=clock) as outbox:
        outbox.enqueue("acme", MessageStatus("locked", "read"))
        outbox.enqueue("acme", MessageStatus("free", "read"))
        with psycopg.connect(pg_dsn) as other:
            other.execute("SELECT 1 FROM msgbridge_outbox WHERE subject_id = 'locked' FOR UPDATE")
            started = time.monotonic()
            with outbox.store.transaction() as tx:
                rows = outbox.store.lease(
                    tx,
                    owner="w",
                    now=clock.now,
                    until=clock.now + 60,
                    limit=10,
                    scan=100,
                    per_connection=100,
                    connections=None,
                )
            assert time.monotonic() - started < 1.0  # skipped, not waited for
            assert [r[3] for r in rows] == ["free"]
            other.rollback()


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


def test_transactional_outbox_rolled_back_leaves_nothing(pg_dsn: str) -> None:
    with Outbox(pg_dsn) as outbox, psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        conn.commit()
        conn.execute("INSERT INTO orders VALUES ('o-1')")
        result = outbox.enqueue("acme", MessageStatus("m1", "sent"), conn=conn)
        assert result.outcome is EnqueueOutcome.ENQUEUED
        assert outbox.pending() == []  # not visible before the caller commits
        conn.rollback()
        assert outbox.pending() == []
        assert _count(pg_dsn, "SELECT count(*) FROM orders") == 0


def test_transactional_outbox_committed_is_present(pg_dsn: str) -> None:
    with Outbox(pg_dsn) as outbox, psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        conn.commit()
        conn.execute("INSERT INTO orders VALUES ('o-1')")
        outbox.enqueue("acme", MessageStatus("m1", "sent"), conn=conn)
        outbox.enqueue_many([("acme", MessageStatus("m1", "read"))], conn=conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.commit()
        [row] = outbox.pending()
        assert (row.subject_id, row.state, row.version) == ("m1", DeliveryState.READ, 2)
        assert _count(pg_dsn, "SELECT count(*) FROM orders") == 1


def test_transactional_outbox_in_an_explicit_transaction_block(pg_dsn: str) -> None:
    with Outbox(pg_dsn) as outbox, psycopg.connect(pg_dsn, autocommit=True) as conn:
        with pytest.raises(ConfigurationError, match="autocommit"):
            outbox.enqueue("acme", MessageStatus("m0", "sent"), conn=conn)

        def business_change_that_fails() -> None:
            with conn.transaction():
                outbox.enqueue("acme", MessageStatus("m1", "sent"), conn=conn)
                raise RuntimeError("business rule failed")

        with pytest.raises(RuntimeError, match="business rule"):
            business_change_that_fails()
        assert outbox.pending() == []
        with conn.transaction():
            outbox.enqueue("acme", MessageStatus("m2", "sent"), conn=conn)
        assert [p.subject_id for p in outbox.pending()] == ["m2"]


def test_transactional_outbox_refuses_a_failed_transaction(pg_dsn: str) -> None:
    with Outbox(pg_dsn) as outbox, psycopg.connect(pg_dsn) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM no_such_table")
        with pytest.raises(ConfigurationError, match="already failed"):
            outbox.enqueue("acme", MessageStatus("m1", "sent"), conn=conn)


def test_sqlite_outbox_refuses_conn(tmp_path: Any, pg_dsn: str) -> None:
    with (
        Outbox(tmp_path / "x.db") as outbox,
        psycopg.connect(pg_dsn) as conn,
        pytest.raises(ConfigurationError, match="PostgreSQL"),
    ):
        outbox.enqueue("acme", MessageStatus("m1", "sent"), conn=conn)


def test_newer_schema_is_refused_untouched(pg_dsn: str) -> None:
    Outbox(pg_dsn).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE msgbridge_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNew) as caught:
        Outbox(pg_dsn)
    assert caught.value.found == SCHEMA_VERSION + 1
    assert _count(pg_dsn, "SELECT version FROM msgbridge_schema") == SCHEMA_VERSION + 1


def test_unknown_tables_with_our_names_are_refused(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE msgbridge_outbox (something TEXT)")
    with pytest.raises(ForeignDatabase, match="msgbridge_outbox"):
        Outbox(pg_dsn)
    assert _count(pg_dsn, "SELECT count(*) FROM msgbridge_outbox") == 0


def test_a_held_row_lock_is_storage_locked(pg_dsn: str) -> None:
    with Outbox(pg_dsn, lock_timeout=0.2) as outbox:
        outbox.enqueue("acme", MessageStatus("m1", "sent"))
        with psycopg.connect(pg_dsn) as other:
            other.execute("SELECT 1 FROM msgbridge_outbox WHERE subject_id = 'm1' FOR UPDATE")
            with pytest.raises(StorageLocked) as caught:
                outbox.enqueue("acme", MessageStatus("m1", "read"))
            assert caught.value.retryable
            other.rollback()
        assert outbox.enqueue("acme", MessageStatus("m1", "read")).outcome is (
            EnqueueOutcome.REPLACED
        )


def test_a_caller_connection_can_back_the_store(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        with Outbox(conn) as outbox:
            assert outbox.enqueue("acme", MessageStatus("m1", "sent")).accepted
            assert len(outbox.pending()) == 1
        assert not conn.closed  # the caller's connection is left open


def _lease_ids(rows: Sequence[Row]) -> list[int]:
    return [int(r[0]) for r in rows]
