"""Storage faults on real SQLite files: typed errors, and nothing stored is ever lost."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from msgbridge import DeliveryState, MessageStatus, StatusError
from msgbridge.errors import InvalidStatus, MessagingError
from msgbridge.outbox import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    EnqueueOutcome,
    ForeignDatabase,
    Outbox,
    SchemaTooNew,
    SQLiteStore,
    StorageCorrupt,
    StorageError,
    StorageFull,
    StorageLocked,
    open_store,
)

from .conftest import sqlite_rows


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def make_outbox(path: Path, count: int = 3) -> None:
    with Outbox(path) as outbox:
        for index in range(count):
            outbox.enqueue("acme", MessageStatus(f"m{index}", "delivered"))


def test_new_file_is_marked_and_versioned(db_path: Path) -> None:
    make_outbox(db_path)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    with SQLiteStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.integrity_check() == ["ok"]
        with store.transaction(write=False) as tx:
            assert tx.fetchone("PRAGMA synchronous") == (2,)  # FULL: a commit is on disk


ENQUEUE_AND_REPORT = """
import sys
from msgbridge import MessageStatus
from msgbridge.outbox import Outbox
with Outbox(sys.argv[1]) as box:
    for i in range(100_000):
        box.enqueue("acme", MessageStatus(f"m{i}", "sent"))
        print(f"m{i}", flush=True)
"""


def test_what_enqueue_returned_survives_a_sigkill(db_path: Path) -> None:
    Outbox(db_path).close()
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", ENQUEUE_AND_REPORT, str(db_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    confirmed: list[str] = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        confirmed.append(line.strip())
    child.kill()
    child.wait()
    child.stdout.close()
    assert len(confirmed) > 10
    stored = {row[0] for row in sqlite_rows(db_path, "SELECT subject_id FROM msgbridge_outbox")}
    assert set(confirmed) <= stored


def test_a_file_that_is_not_sqlite_is_refused_untouched(db_path: Path) -> None:
    db_path.write_bytes(b"PK\x03\x04 definitely a zip file, not a database" * 100)
    before = digest(db_path)
    with pytest.raises(StorageCorrupt, match="not a SQLite database") as caught:
        Outbox(db_path)
    assert isinstance(caught.value, StorageError)
    assert isinstance(caught.value, MessagingError)
    assert str(db_path) in str(caught.value)
    assert digest(db_path) == before
    assert siblings(db_path) == ["outbox.db"]


def test_a_damaged_outbox_is_refused_untouched(db_path: Path) -> None:
    make_outbox(db_path)
    data = bytearray(db_path.read_bytes())
    data[100:4096] = os.urandom(4096 - 100)  # page 1 (the schema) after the header
    db_path.write_bytes(bytes(data))
    before = digest(db_path)
    with pytest.raises(StorageCorrupt):
        Outbox(db_path)
    assert digest(db_path) == before


def test_another_applications_database_is_refused_untouched(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    before = digest(db_path)
    with pytest.raises(ForeignDatabase, match="another application"):
        Outbox(db_path)
    assert digest(db_path) == before
    assert siblings(db_path) == ["outbox.db"]
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT total FROM invoices").fetchall() == [(12.5,)]
    conn.close()


def test_a_database_with_another_application_id_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    before = digest(db_path)
    with pytest.raises(ForeignDatabase, match="0x4d2"):
        Outbox(db_path)
    assert digest(db_path) == before


def test_a_newer_schema_is_refused_and_nothing_is_touched(db_path: Path) -> None:
    make_outbox(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = digest(db_path)
    with pytest.raises(SchemaTooNew) as caught:
        Outbox(db_path)
    assert (caught.value.found, caught.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert "upgrade msgbridge" in str(caught.value)
    assert digest(db_path) == before
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM msgbridge_outbox").fetchone() == (3,)
    conn.close()


def test_a_locked_database_is_storage_locked_after_the_busy_timeout(db_path: Path) -> None:
    make_outbox(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with Outbox(db_path, busy_timeout=0.3) as outbox:
            with pytest.raises(InvalidStatus):  # bad input never waits for the lock
                outbox.enqueue("acme", MessageStatus("m1", "delivered", error=None).state)  # type: ignore[arg-type]
            started = time.monotonic()
            with pytest.raises(StorageLocked) as caught:
                outbox.enqueue("acme", MessageStatus("new", "read"))
            assert time.monotonic() - started >= 0.25
            assert caught.value.retryable
            assert len(outbox.pending()) == 3  # readers are not blocked (WAL)
            holder.execute("ROLLBACK")
            assert outbox.enqueue("acme", MessageStatus("new", "read")).accepted
    finally:
        holder.close()
    assert len(sqlite_rows(db_path, "SELECT id FROM msgbridge_outbox")) == 4


def test_a_writer_waits_for_a_short_lock(db_path: Path) -> None:
    make_outbox(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with Outbox(db_path, busy_timeout=5.0) as outbox:
            assert outbox.enqueue("acme", MessageStatus("x", "sent")).accepted
    finally:
        release.join()
        holder.close()


def test_a_full_disk_raises_and_keeps_what_was_stored(db_path: Path) -> None:
    make_outbox(db_path, count=0)
    with SQLiteStore(db_path) as store, store.transaction(write=False) as tx:
        row = tx.fetchone("PRAGMA page_count")
        assert row is not None
        pages = int(row[0])
    big = StatusError("x" * 4000)
    stored = 0
    with Outbox(db_path, max_page_count=pages + 4) as outbox:

        def fill() -> None:
            nonlocal stored
            for index in range(1000):
                outbox.enqueue("acme", MessageStatus(f"m{index}", "failed", error=big))
                stored += 1

        with pytest.raises(StorageFull) as caught:
            fill()
        assert "full" in str(caught.value)
        assert 0 < stored < 1000
        with pytest.raises(StorageFull):  # still full, still typed, nothing half-written
            outbox.enqueue_many(
                [("acme", MessageStatus(f"n{i}", "failed", error=big)) for i in range(20)]
            )
        assert len(outbox.pending(limit=10_000)) == stored
    with Outbox(db_path) as reopened:  # space is back
        pending = reopened.pending(limit=10_000)
        assert len(pending) == stored
        assert all(p.state is DeliveryState.FAILED and p.update is not None for p in pending)
        assert reopened.store.integrity_check() == ["ok"]  # type: ignore[attr-defined]
        assert reopened.enqueue("acme", MessageStatus("after", "sent")).outcome is (
            EnqueueOutcome.ENQUEUED
        )


def test_bad_paths_are_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="directory"):
        Outbox(tmp_path)
    with pytest.raises(StorageError, match="does not exist"):
        Outbox(tmp_path / "missing" / "outbox.db")
    with pytest.raises(StorageError, match="no outbox database"):
        SQLiteStore(tmp_path / "absent.db", create=False)


def test_closed_store_is_a_storage_error(db_path: Path) -> None:
    outbox = Outbox(db_path)
    outbox.close()
    with pytest.raises(StorageError, match="closed"):
        outbox.enqueue("acme", MessageStatus("m1", "sent"))


def test_open_store_understands_urls_and_paths(tmp_path: Path) -> None:
    absolute = tmp_path / "a.db"
    for target in (f"sqlite://{absolute}", str(absolute), absolute):
        with open_store(target) as store:
            assert isinstance(store, SQLiteStore)
            assert store.path == absolute
    with pytest.raises(ValueError, match="needs a path"):
        open_store("sqlite://")
