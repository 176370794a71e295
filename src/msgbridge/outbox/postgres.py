"""The PostgreSQL store (psycopg 3; ``pip install 'msgbridge[postgres]'``).

* ``PostgresStore("postgresql://…")`` keeps a small pool of its own connections (in
  autocommit mode; every operation is one explicit transaction). It also takes a psycopg
  ``Connection`` (shared under a lock; left open) or a pool with ``.connection()``, such as
  ``psycopg_pool.ConnectionPool``.
* Leasing is ``SELECT … FOR UPDATE SKIP LOCKED`` then setting ``lease_owner`` /
  ``lease_until``, so any number of workers, on any number of machines, split the rows.
* **Transactional outbox**: ``Outbox.enqueue(..., conn=caller_conn)`` writes inside the
  caller's open transaction and never commits; the update exists exactly when the
  caller's business change commits.
* The schema version lives in ``msgbridge_schema``; migrations run under an advisory
  lock; a newer schema is refused before anything is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

from msgbridge.errors import ConfigurationError
from msgbridge.outbox.errors import (
    ForeignDatabase,
    SchemaTooNew,
    StorageCorrupt,
    StorageError,
    StorageFull,
    StorageLocked,
    StorageUnavailable,
)
from msgbridge.outbox.schema import MIGRATIONS, TABLES
from msgbridge.outbox.store import SCHEMA_VERSION, Row, Store, Tx

#: The fence of the connection lease of the outbox row being updated (alias ``o``).
FENCE_OF_ROW = "(SELECT l.fence FROM msgbridge_leases l WHERE l.connection = o.connection)"

try:  # the ignores keep mypy clean where the optional extra is not installed
    import psycopg  # type: ignore[import-not-found, unused-ignore]
    from psycopg import errors as pg_errors  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - exercised without the extra
    psycopg = None  # type: ignore[assignment, unused-ignore]
    pg_errors = None  # type: ignore[assignment, unused-ignore]

__all__ = ["PostgresStore"]

#: ``pg_advisory_xact_lock`` key serialising schema migrations ("MSGBOUTB").
_MIGRATION_LOCK = 0x4D5347424F555442
_COMPONENT = "outbox"


def _require_psycopg() -> None:
    if psycopg is None:
        raise ConfigurationError(
            "the PostgreSQL outbox needs psycopg 3: pip install 'msgbridge[postgres]'"
        )


def translate(exc: Exception, location: str, doing: str) -> StorageError:
    """The typed error for a psycopg exception."""
    text = " ".join(str(exc).split())
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.QueryCanceled)):
        return StorageLocked(
            f"{doing}: a lock was not granted within the lock timeout ({text})",
            location=location,
        )
    if isinstance(exc, (pg_errors.DiskFull, pg_errors.InsufficientResources)):
        return StorageFull(f"{doing}: the server is out of space ({text})", location=location)
    if isinstance(exc, (pg_errors.DataCorrupted, pg_errors.IndexCorrupted)):
        return StorageCorrupt(f"{doing}: {text}", location=location)
    if isinstance(exc, psycopg.OperationalError):
        return StorageUnavailable(f"{doing}: {text}", location=location)
    return StorageError(f"{doing}: {type(exc).__name__}: {text}", location=location)


class _PgTx(Tx):
    dialect: ClassVar[str] = "postgresql"
    in_list: ClassVar[str] = "= ANY(?)"
    for_update: ClassVar[str] = " FOR UPDATE"
    skip_locked: ClassVar[str] = " FOR UPDATE SKIP LOCKED"

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.statements += 1
        self._cursor.execute(self._sql(sql), params)
        return int(self._cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.statements += 1
            self._cursor.executemany(self._sql(sql), rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.statements += 1
        self._cursor.execute(self._sql(sql), params)
        if self._cursor.description is None:
            return []
        return [tuple(r) for r in self._cursor.fetchall()]

    def id_list(self, values: Sequence[Any]) -> Any:
        return list(values)


class _Raced(Exception):
    """The schema appeared while a migration waited for its lock."""


class _OwnPool:
    """A minimal thread-safe pool of autocommit connections to one DSN."""

    def __init__(self, dsn: str, max_size: int, options: dict[str, Any]) -> None:
        self._dsn = dsn
        self._max = max_size
        self._options = options
        self._idle: list[Any] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False

    def _new(self) -> Any:
        options = dict(self._options)
        lock_timeout = options.pop("lock_timeout_ms")
        conn = psycopg.connect(self._dsn, autocommit=True, **options)
        try:
            conn.execute(f"SET lock_timeout = {int(lock_timeout)}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._cond:
            while True:
                if self._closed:
                    raise StorageError("the outbox store is closed")
                if self._idle:
                    conn = self._idle.pop()
                    break
                if self._count < self._max:
                    self._count += 1
                    conn = None
                    break
                self._cond.wait()
        if conn is None:
            try:
                conn = self._new()
            except BaseException:
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
                raise
        try:
            yield conn
        finally:
            with self._cond:
                if conn.closed or conn.broken or self._closed:
                    self._count -= 1
                    if not conn.closed:
                        conn.close()
                else:
                    self._idle.append(conn)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()


class _Shared:
    """A caller's single connection, used by one thread at a time."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.RLock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        pass


def _describe(conninfo: str) -> str:
    try:
        from psycopg.conninfo import (  # type: ignore[import-not-found, unused-ignore]
            conninfo_to_dict,
        )

        params = conninfo_to_dict(conninfo)
    except Exception:
        return "postgresql (unparseable DSN)"
    shown = {k: v for k, v in params.items() if k in ("host", "port", "dbname", "user")}
    return "postgresql " + " ".join(f"{k}={v}" for k, v in sorted(shown.items()))


class PostgresStore(Store):
    """An outbox in a PostgreSQL database (tables ``msgbridge_*``)."""

    dialect: ClassVar[str] = "postgresql"

    def __init__(
        self,
        target: str | Any,
        *,
        max_connections: int = 8,
        lock_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        application_name: str = "msgbridge-outbox",
    ) -> None:
        _require_psycopg()
        self.lock_timeout = lock_timeout
        self._closed = False
        self._pool: _OwnPool | _Shared | Any
        if isinstance(target, str):
            self.location = _describe(target)
            self._pool = _OwnPool(
                target,
                max_connections,
                {
                    "connect_timeout": max(1, int(connect_timeout)),
                    "application_name": application_name,
                    "lock_timeout_ms": int(lock_timeout * 1000),
                },
            )
            self._owns = True
        elif isinstance(target, psycopg.Connection):
            self.location = _describe(target.info.dsn)
            self._pool = _Shared(target)
            self._owns = False
        elif hasattr(target, "connection"):
            self.location = f"postgresql pool {type(target).__name__}"
            self._pool = target
            self._owns = False
        else:
            raise ConfigurationError(
                "PostgresStore takes a DSN, a psycopg Connection or a pool with "
                f".connection(), got {type(target).__name__}"
            )
        try:
            self._version = self._migrate()
        except BaseException:
            self.close()
            raise

    # -- schema -----------------------------------------------------------------------------
    def _schema_version(self, tx: Tx) -> int | None:
        row = tx.fetchone("SELECT to_regclass('msgbridge_schema') IS NOT NULL")
        if row is None or not row[0]:
            return None
        found = tx.fetchone(
            "SELECT version FROM msgbridge_schema WHERE component = ?", (_COMPONENT,)
        )
        return int(found[0]) if found is not None else 0

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the outbox schema is version {version}, newer than this msgbridge "
                f"understands ({SCHEMA_VERSION}); upgrade msgbridge. Nothing was changed",
                found=version,
                supported=SCHEMA_VERSION,
                location=self.location,
            )

    def _migrate(self) -> int:
        try:
            return self._migrate_once(first=True)
        except _Raced:
            # Another process created the schema while this one waited for the lock; a
            # new transaction sees it (catalog caches are refreshed at transaction start,
            # not by an advisory lock).
            return self._migrate_once(first=False)

    def _migrate_once(self, *, first: bool) -> int:
        with self.transaction(write=False) as tx:
            version = self._schema_version(tx) or 0
        self._check_version(version)
        if version == SCHEMA_VERSION:
            return version
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            found = self._schema_version(tx)
            version = found or 0
            self._check_version(version)
            if found is None:
                existing = [
                    name
                    for name in TABLES
                    if (tx.fetchone("SELECT to_regclass(?) IS NOT NULL", (name,)) or (False,))[0]
                ]
                if existing and first:
                    raise _Raced
                if existing:
                    raise ForeignDatabase(
                        f"tables {', '.join(existing)} exist but no msgbridge_schema says "
                        "what they are; refusing to touch them",
                        location=self.location,
                    )
                tx.execute(
                    "CREATE TABLE msgbridge_schema (component TEXT PRIMARY KEY, "
                    "version INTEGER NOT NULL)"
                )
            for step in MIGRATIONS[self.dialect][version:SCHEMA_VERSION]:
                for statement in step:
                    tx.execute(statement)
            tx.execute(
                "INSERT INTO msgbridge_schema (component, version) VALUES (?, ?) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (_COMPONENT, SCHEMA_VERSION),
            )
        return SCHEMA_VERSION

    @property
    def schema_version(self) -> int:
        return self._version

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        if self._closed:
            raise StorageError("the outbox store is closed", location=self.location)
        doing = "writing to the outbox" if write else "reading the outbox"
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                tx = _PgTx(cur)
                try:
                    yield tx
                finally:
                    self._count(tx)
        except psycopg.Error as exc:
            raise translate(exc, self.location, doing) from None

    def external_transaction(self, conn: Any) -> AbstractContextManager[Tx]:
        if not isinstance(conn, psycopg.Connection):
            raise ConfigurationError(
                f"conn must be a psycopg Connection, got {type(conn).__name__}"
            )
        return self._external(conn)

    @contextmanager
    def _external(self, conn: Any) -> Iterator[Tx]:
        status = conn.info.transaction_status
        tx_status = psycopg.pq.TransactionStatus
        if status == tx_status.INERROR:
            raise ConfigurationError(
                "the caller's transaction has already failed; roll it back first"
            )
        if status == tx_status.IDLE and conn.autocommit:
            raise ConfigurationError(
                "conn is in autocommit mode with no transaction open, so the update would "
                "not be part of the caller's transaction; use `with conn.transaction():`"
            )
        doing = "enqueueing in the caller's transaction"
        try:
            if status == tx_status.INTRANS:
                # A savepoint: a failure here leaves the caller's transaction usable.
                with conn.transaction(), conn.cursor() as cur:
                    yield _PgTx(cur)
            else:
                # Not autocommit and idle: this statement opens the caller's transaction,
                # which stays open for the caller to commit or roll back.
                with conn.cursor() as cur:
                    yield _PgTx(cur)
        except psycopg.Error as exc:
            raise translate(exc, self.location, doing) from None

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
            WITH candidates AS (
                SELECT id, connection, available_at FROM msgbridge_outbox
                WHERE {where}
                ORDER BY available_at, id LIMIT ?
                FOR UPDATE SKIP LOCKED
            ), picked AS (
                SELECT id FROM (
                    SELECT id, available_at,
                           row_number() OVER (
                               PARTITION BY connection ORDER BY available_at, id
                           ) AS rn
                    FROM candidates
                ) ranked
                WHERE rn <= ?
                ORDER BY rn, available_at, id
                LIMIT ?
            )
            UPDATE msgbridge_outbox o
            SET lease_owner = ?, lease_until = ?, available_at = ?, fence = {fence}
            FROM picked WHERE o.id = picked.id
            RETURNING o.id, o.connection, o.kind, o.subject_id, o.state, o.payload, o.version,
                      o.attempts, o.created_at, o.fence
        """  # noqa: S608 - only fixed fragments are interpolated
        return tx.fetchall(sql, [*params, scan, per_connection, limit, owner, until, until])

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns:
                self._pool.close()
