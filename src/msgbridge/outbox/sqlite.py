"""The embedded store: one SQLite file, WAL, ``synchronous=FULL``.

* A commit returns only once it is on disk (WAL + ``synchronous=FULL``), so ``enqueue``
  is durable when it returns, and a killed process loses no committed row.
* Several processes on one machine may use one file at once: every write is a
  ``BEGIN IMMEDIATE`` transaction, waiting up to ``busy_timeout`` for the write lock
  (then :class:`~msgbridge.outbox.errors.StorageLocked`). Readers never block.
* The file is checked before anything is written to it: a file that is not SQLite, a
  damaged one, one that belongs to another application, or one written by a newer
  msgbridge is refused untouched (:class:`~msgbridge.outbox.errors.StorageCorrupt`,
  :class:`~msgbridge.outbox.errors.ForeignDatabase`,
  :class:`~msgbridge.outbox.errors.SchemaTooNew`).
* ``max_page_count`` optionally caps the file's size (pages of ``page_size`` bytes); a
  write past the cap, like one on a full disk, is
  :class:`~msgbridge.outbox.errors.StorageFull` and leaves earlier rows intact.

Within one process a store is shared by threads through one connection and a lock.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from msgbridge.outbox.errors import (
    ForeignDatabase,
    SchemaTooNew,
    StorageCorrupt,
    StorageError,
    StorageFull,
    StorageLocked,
)
from msgbridge.outbox.schema import MIGRATIONS
from msgbridge.outbox.store import APPLICATION_ID, SCHEMA_VERSION, Row, Store, Tx

#: The fence of the connection lease of the outbox row being updated.
FENCE_OF_ROW = (
    "(SELECT l.fence FROM msgbridge_leases l WHERE l.connection = msgbridge_outbox.connection)"
)

__all__ = ["SQLiteStore"]

_MAGIC = b"SQLite format 3\x00"

# Primary result codes (https://sqlite.org/rescode.html).
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


def translate(exc: sqlite3.Error, location: str, doing: str) -> StorageError:
    """The typed error for a sqlite3 exception."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    lowered = text.lower()
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in lowered or "busy" in lowered:
        return StorageLocked(
            f"{doing}: the database stayed locked by another writer past the busy timeout ({text})",
            location=location,
        )
    if primary == _SQLITE_FULL or "disk is full" in lowered:
        return StorageFull(
            f"{doing}: the disk or the database's size cap is full; nothing was stored ({text})",
            location=location,
        )
    if (
        primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
        or "malformed" in lowered
        or "not a database" in lowered
    ):
        return StorageCorrupt(
            f"{doing}: the database file is damaged or not a database ({text})",
            location=location,
        )
    if primary in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN, _SQLITE_IOERR):
        return StorageError(f"{doing}: {text}", location=location)
    return StorageError(f"{doing}: {type(exc).__name__}: {text}", location=location)


class _SQLiteTx(Tx):
    dialect: ClassVar[str] = "sqlite"
    in_list: ClassVar[str] = "IN (SELECT value FROM json_each(?))"
    for_update: ClassVar[str] = ""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.statements += 1
        return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.statements += 1
        self._conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.statements += 1
        return list(self._conn.execute(sql, params).fetchall())

    def id_list(self, values: Sequence[Any]) -> Any:
        import json

        return json.dumps(list(values))


class SQLiteStore(Store):
    """An outbox in one SQLite file (created if missing unless ``create=False``)."""

    dialect: ClassVar[str] = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        create: bool = True,
        max_page_count: int | None = None,
    ) -> None:
        if busy_timeout < 0:
            raise ValueError("busy_timeout must be zero or more seconds")
        self.path = Path(path)
        self.location = str(self.path)
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._version = 0
        self._check_file(create)
        conn = self._connect()
        try:
            self._version = self._prepare(conn, max_page_count)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- opening -------------------------------------------------------------------------
    def _check_file(self, create: bool) -> None:
        path = self.path
        if path.is_dir():
            raise StorageError("the outbox path is a directory", location=self.location)
        if not path.exists():
            if not create:
                raise StorageError("no outbox database at this path", location=self.location)
            if not path.parent.is_dir():
                raise StorageError(
                    f"the directory {str(path.parent)!r} does not exist", location=self.location
                )
            return
        try:
            with path.open("rb") as handle:
                header = handle.read(len(_MAGIC))
        except OSError as exc:
            raise StorageError(
                f"cannot read the database file: {exc.strerror or exc}", location=self.location
            ) from None
        if header and header != _MAGIC:
            raise StorageCorrupt(
                "the file is not a SQLite database (wrong header); refusing to touch it",
                location=self.location,
            )

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise translate(exc, self.location, "opening the outbox") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc, self.location, "opening the outbox") from None
        return conn

    def _identify(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """(application_id, user_version, number of schema objects) — reads only."""
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.Error as exc:
            raise translate(exc, self.location, "reading the database header") from None
        return int(app_id), int(version), int(objects)

    def _classify(self, app_id: int, version: int, objects: int) -> bool:
        """Whether the database is new (empty); raises if it is not ours to touch."""
        if app_id == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"the outbox schema is version {version}, newer than this msgbridge "
                    f"understands ({SCHEMA_VERSION}); upgrade msgbridge. Nothing was changed",
                    found=version,
                    supported=SCHEMA_VERSION,
                    location=self.location,
                )
            return False
        if app_id == 0 and version == 0 and objects == 0:
            return True
        raise ForeignDatabase(
            "the file is a SQLite database of another application "
            f"(application_id={app_id:#x}, user_version={version}, {objects} schema objects); "
            "refusing to touch it",
            location=self.location,
        )

    def _prepare(self, conn: sqlite3.Connection, max_page_count: int | None) -> int:
        app_id, version, objects = self._identify(conn)
        self._classify(app_id, version, objects)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = FULL")
            if max_page_count is not None:
                conn.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
        except sqlite3.Error as exc:
            raise translate(exc, self.location, "configuring the outbox") from None
        if str(mode).lower() != "wal":
            raise StorageError(
                f"the database cannot use write-ahead logging (journal_mode={mode})",
                location=self.location,
            )
        if version == SCHEMA_VERSION:
            return version
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.location, "creating the outbox schema") from None
        try:
            app_id, version, objects = self._identify(conn)  # another process may have won
            self._classify(app_id, version, objects)
            for step in MIGRATIONS[self.dialect][version:SCHEMA_VERSION]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, self.location, "creating the outbox schema") from None
            raise
        return SCHEMA_VERSION

    # -- Store -----------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return self._version

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("the outbox store is closed", location=self.location)
        return self._conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        with self._lock:
            conn = self._require()
            doing = "writing to the outbox" if write else "reading the outbox"
            try:
                if write:
                    self._begin_immediate(conn)
                else:
                    conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise translate(exc, self.location, doing) from None
            tx = _SQLiteTx(conn)
            try:
                yield tx
            except sqlite3.Error as exc:
                _rollback(conn)
                raise translate(exc, self.location, doing) from None
            except BaseException:
                _rollback(conn)
                raise
            finally:
                self._count(tx)
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise translate(exc, self.location, doing) from None

    @contextmanager
    def dedicated_transaction(self) -> Iterator[Tx]:
        """``BEGIN IMMEDIATE`` on a fresh connection (closed on exit): holds the file's
        write lock until exit, from whichever thread exits it."""
        self._require()
        doing = "locking the outbox"
        conn = self._connect()
        try:
            try:
                self._begin_immediate(conn)
            except sqlite3.Error as exc:
                raise translate(exc, self.location, doing) from None
            try:
                yield _SQLiteTx(conn)
            except sqlite3.Error as exc:
                _rollback(conn)
                raise translate(exc, self.location, doing) from None
            except BaseException:
                _rollback(conn)
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise translate(exc, self.location, doing) from None
        finally:
            conn.close()

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """Take the write lock, polling every few milliseconds up to ``busy_timeout``.

        SQLite's own busy handler sleeps up to 100 ms between tries, which wastes most of
        the time a lock held for a millisecond by another process is free; a short,
        jittered poll keeps several writing processes near the single-writer rate.
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or self.busy_timeout == 0:
                raise
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.0005
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                time.sleep(pause * (0.5 + random.random()))  # noqa: S311 - jitter
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
                pause = min(pause * 1.5, 0.01)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def lease(
        self,
        tx: Tx,
        *,
        owner: str,
        now: float,
        until: float,
        limit: int,
        scan: int,
        per_connection: int,
        connections: Sequence[str] | None,
        fenced: bool = False,
    ) -> list[Row]:
        where = "available_at <= ?"
        params: list[Any] = [now]
        if connections is not None:
            where += f" AND connection {tx.in_list}"
            params.append(tx.id_list(connections))
        fence = "NULL"
        if fenced:
            where += (
                " AND connection IN (SELECT connection FROM msgbridge_leases "
                "WHERE owner = ? AND until > ?)"
            )
            params += [owner, now]
            fence = FENCE_OF_ROW
        sql = f"""
            UPDATE msgbridge_outbox
            SET lease_owner = ?, lease_until = ?, available_at = ?, fence = {fence}
            WHERE id IN (
                SELECT id FROM (
                    SELECT id, available_at,
                           row_number() OVER (
                               PARTITION BY connection ORDER BY available_at, id
                           ) AS rn
                    FROM (
                        SELECT id, connection, available_at FROM msgbridge_outbox
                        WHERE {where}
                        ORDER BY available_at, id LIMIT ?
                    )
                )
                WHERE rn <= ?
                ORDER BY rn, available_at, id
                LIMIT ?
            )
            RETURNING id, connection, kind, subject_id, state, payload, version, attempts,
                      created_at, fence
        """  # noqa: S608 - only fixed fragments are interpolated
        return tx.fetchall(sql, [owner, until, until, *params, scan, per_connection, limit])

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the database file (optional housekeeping)."""
        with self._lock:
            try:
                self._require().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise translate(exc, self.location, "checkpointing") from None

    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``: ``["ok"]`` or the problems found."""
        with self._lock:
            try:
                return [str(r[0]) for r in self._require().execute("PRAGMA quick_check")]
            except sqlite3.Error as exc:
                raise translate(exc, self.location, "checking the database") from None

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc).lower() or "busy" in str(exc).lower()


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (e.g. after SQLITE_FULL).
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")
