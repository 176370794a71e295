"""Versioned schema of the outbox, per dialect.

``MIGRATIONS[dialect][n]`` takes a database from version ``n`` to ``n + 1``. SQLite keeps
the version in ``PRAGMA user_version`` (and marks the file with ``PRAGMA application_id``);
PostgreSQL in the ``msgbridge_schema`` table. A database newer than
:data:`~msgbridge.outbox.store.SCHEMA_VERSION` is refused before anything is written.

Tables (both dialects):

``msgbridge_outbox``
    One pending row per (connection, kind, subject id): the final desired update
    (``payload``, msgbridge's strict JSON), a ``version`` bumped by every change, the
    retry bookkeeping (``attempts``, ``available_at``, ``last_error``) and the lease
    (``lease_owner``, ``lease_until``). A leased row's ``available_at`` equals its
    ``lease_until``, so one index serves both "ready" and "lease expired".
``msgbridge_applied``
    The persisted state guard: last state (and vendor value) applied per message.
``msgbridge_dead_letters``
    Updates given up on, with the reason, error type, HTTP status and vendor trace id.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "TABLES"]

TABLES = ("msgbridge_outbox", "msgbridge_applied", "msgbridge_dead_letters")

_SQLITE_V1 = [
    """
    CREATE TABLE msgbridge_outbox (
        id           INTEGER PRIMARY KEY,
        connection   TEXT    NOT NULL,
        kind         TEXT    NOT NULL CHECK (kind IN ('status', 'conversation')),
        subject_id   TEXT    NOT NULL,
        state        TEXT,
        payload      TEXT    NOT NULL,
        version      INTEGER NOT NULL DEFAULT 1,
        attempts     INTEGER NOT NULL DEFAULT 0,
        created_at   REAL    NOT NULL,
        updated_at   REAL    NOT NULL,
        available_at REAL    NOT NULL,
        lease_owner  TEXT,
        lease_until  REAL,
        last_error   TEXT,
        UNIQUE (connection, kind, subject_id)
    )
    """,
    "CREATE INDEX msgbridge_outbox_ready ON msgbridge_outbox (available_at, id)",
    """
    CREATE TABLE msgbridge_applied (
        connection   TEXT NOT NULL,
        message_id   TEXT NOT NULL,
        state        TEXT NOT NULL,
        vendor_value TEXT NOT NULL,
        applied_at   REAL NOT NULL,
        PRIMARY KEY (connection, message_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX msgbridge_applied_age ON msgbridge_applied (applied_at)",
    """
    CREATE TABLE msgbridge_dead_letters (
        id           INTEGER PRIMARY KEY,
        connection   TEXT    NOT NULL,
        kind         TEXT    NOT NULL,
        subject_id   TEXT    NOT NULL,
        state        TEXT,
        payload      TEXT    NOT NULL,
        attempts     INTEGER NOT NULL,
        reason       TEXT    NOT NULL,
        error_type   TEXT,
        http_status  INTEGER,
        trace_id     TEXT,
        created_at   REAL    NOT NULL,
        failed_at    REAL    NOT NULL
    )
    """,
    "CREATE INDEX msgbridge_dead_letters_conn ON msgbridge_dead_letters (connection, id)",
]

_POSTGRES_V1 = [
    """
    CREATE TABLE msgbridge_outbox (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        connection   TEXT    NOT NULL,
        kind         TEXT    NOT NULL CHECK (kind IN ('status', 'conversation')),
        subject_id   TEXT    NOT NULL,
        state        TEXT,
        payload      TEXT    NOT NULL,
        version      INTEGER NOT NULL DEFAULT 1,
        attempts     INTEGER NOT NULL DEFAULT 0,
        created_at   DOUBLE PRECISION NOT NULL,
        updated_at   DOUBLE PRECISION NOT NULL,
        available_at DOUBLE PRECISION NOT NULL,
        lease_owner  TEXT,
        lease_until  DOUBLE PRECISION,
        last_error   TEXT,
        UNIQUE (connection, kind, subject_id)
    )
    """,
    "CREATE INDEX msgbridge_outbox_ready ON msgbridge_outbox (available_at, id)",
    """
    CREATE TABLE msgbridge_applied (
        connection   TEXT NOT NULL,
        message_id   TEXT NOT NULL,
        state        TEXT NOT NULL,
        vendor_value TEXT NOT NULL,
        applied_at   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (connection, message_id)
    )
    """,
    "CREATE INDEX msgbridge_applied_age ON msgbridge_applied (applied_at)",
    """
    CREATE TABLE msgbridge_dead_letters (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        connection   TEXT    NOT NULL,
        kind         TEXT    NOT NULL,
        subject_id   TEXT    NOT NULL,
        state        TEXT,
        payload      TEXT    NOT NULL,
        attempts     INTEGER NOT NULL,
        reason       TEXT    NOT NULL,
        error_type   TEXT,
        http_status  INTEGER,
        trace_id     TEXT,
        created_at   DOUBLE PRECISION NOT NULL,
        failed_at    DOUBLE PRECISION NOT NULL
    )
    """,
    "CREATE INDEX msgbridge_dead_letters_conn ON msgbridge_dead_letters (connection, id)",
]

#: ``MIGRATIONS[dialect][n]``: statements from version ``n`` to ``n + 1``.
MIGRATIONS: dict[str, list[list[str]]] = {
    "sqlite": [_SQLITE_V1],
    "postgresql": [_POSTGRES_V1],
}
