"""The storage contract the outbox is written against, and ``open_store``.

A :class:`Store` gives transactions (:class:`Tx`) over one database; all SQL the outbox
runs is shared by both dialects (:mod:`msgbridge.outbox.sql`) except leasing, which each
store writes in its own terms (``BEGIN IMMEDIATE`` for SQLite, ``FOR UPDATE SKIP LOCKED``
for PostgreSQL). SQL is written with ``?`` placeholders; the PostgreSQL transaction
translates them.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ClassVar

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Store",
    "Tx",
    "open_store",
]

#: Schema version this code writes and understands.
SCHEMA_VERSION = 3
#: SQLite ``PRAGMA application_id`` of a msgbridge outbox: ASCII "MSGB".
APPLICATION_ID = 0x4D534742

Row = tuple[Any, ...]


class Tx(abc.ABC):
    """One open transaction. SQL uses ``?`` placeholders in both dialects."""

    dialect: ClassVar[str]
    #: ``col {in_ids}`` matches a column against a list given by :meth:`id_list`.
    in_list: ClassVar[str]
    #: Appended to a SELECT that reads a row it is about to change (PostgreSQL only).
    for_update: ClassVar[str]

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    @abc.abstractmethod
    def id_list(self, values: Sequence[Any]) -> Any:
        """The parameter value for :attr:`in_list`."""

    #: Appended to a SELECT of rows to claim that others may be claiming too.
    skip_locked: ClassVar[str] = ""
    #: Statements run in this transaction (for :attr:`Store.round_trips`).
    statements: int = 0


class Store(abc.ABC):
    """A database holding one outbox: pending rows, applied states, dead letters."""

    dialect: ClassVar[str]
    #: Where the data is, for messages (a path, or a DSN without its password).
    location: str
    #: Calls into the database so far (statements, plus begin and commit of each
    #: transaction): what the benchmarks report per update. Approximate under threads.
    round_trips: int = 0

    def _count(self, tx: Tx) -> None:
        self.round_trips += tx.statements + 2

    @abc.abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction committed on success and rolled back on any error."""

    def dedicated_transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction on a connection of its own, not tied to a thread: it may be
        entered in one thread and exited in another, and holds its locks until exit."""
        return self.transaction()

    def external_transaction(self, conn: Any) -> AbstractContextManager[Tx]:
        """Statements inside the caller's own open transaction (never committed here)."""
        from msgbridge.errors import ConfigurationError

        raise ConfigurationError(
            f"enqueue(conn=...) needs a PostgreSQL store; this outbox is {self.dialect}"
        )

    @abc.abstractmethod
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
        """Lease up to *limit* ready rows of *connections* (all when ``None``).

        With ``fenced``, only rows of connections whose lease (``msgbridge_leases``)
        *owner* holds now, and each leased row takes that lease's fence. Rows come back
        as the columns of :meth:`msgbridge.outbox.sql.LeasedRow.from_row`.
        """

    @property
    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def closed(self) -> bool: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"


_PG_PREFIXES = ("postgresql://", "postgres://")


def open_store(target: Store | str | os.PathLike[str] | Any, **options: Any) -> Store:
    """A store from a URL-ish *target*.

    * ``sqlite://PATH`` (so ``sqlite:///var/lib/outbox.db`` is absolute and
      ``sqlite://outbox.db`` relative) or a plain path → :class:`SQLiteStore`;
    * ``postgresql://…``/``postgres://…``, a libpq ``key=value`` DSN, a psycopg connection
      or a pool with ``.connection()`` → :class:`PostgresStore`;
    * a :class:`Store` is returned as is (``options`` must then be empty).
    """
    if isinstance(target, Store):
        if options:
            raise TypeError("options cannot be applied to an already open store")
        return target
    if isinstance(target, os.PathLike):
        from msgbridge.outbox.sqlite import SQLiteStore

        return SQLiteStore(os.fspath(target), **options)
    if isinstance(target, str):
        if target.startswith("sqlite://"):
            from msgbridge.outbox.sqlite import SQLiteStore

            path = target[len("sqlite://") :]
            if not path:
                raise ValueError("sqlite:// needs a path, e.g. sqlite:///var/lib/outbox.db")
            return SQLiteStore(path, **options)
        if target.startswith(_PG_PREFIXES) or _looks_like_keyword_dsn(target):
            from msgbridge.outbox.postgres import PostgresStore

            return PostgresStore(target, **options)
        from msgbridge.outbox.sqlite import SQLiteStore

        return SQLiteStore(target, **options)
    from msgbridge.outbox.postgres import PostgresStore

    return PostgresStore(target, **options)


def _looks_like_keyword_dsn(text: str) -> bool:
    words = text.split()
    return (
        bool(words)
        and all("=" in w for w in words)
        and any(w.split("=", 1)[0] in {"host", "dbname", "user", "port", "service"} for w in words)
    )


def iter_chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
