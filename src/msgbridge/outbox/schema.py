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

Version 2 (many workers, :mod:`msgbridge.outbox.leases`):

``msgbridge_workers``
    One heartbeat row per live worker (``owner``, ``seen_at``, ``until``): how many
    workers share the connections, for the fair share.
``msgbridge_leases``
    One row per connection: who holds it (``owner``, ``until``) and its ``fence``, a
    counter bumped by every acquisition and never reset (rows are never deleted).
``msgbridge_tokens``
    OAuth token pairs shared by processes (:class:`~msgbridge.outbox.DatabaseTokenStore`).
``msgbridge_claims``
    A :class:`~msgbridge.outbox.PersistentGuard` used by a plain bridge claims a message
    from its check until its record (or ``until``), and an outbox worker claims its
    batch's messages until it settles them, so processes sharing the outbox send one
    message's updates one at a time.
``msgbridge_outbox.fence``
    The connection lease's fence under which the row was leased; every settle statement
    matches it, so a worker that lost its lease settles nothing.

Version 3 (publishing, :meth:`~msgbridge.outbox.Outbox.publish`):

``msgbridge_outbox.kind``
    May be ``inbound``: a contact's message to publish (``subject_id`` is its own
    ``message_id``; never coalesced). SQLite cannot change a CHECK constraint in place,
    so the table is rebuilt (rows, ids and leases kept).
``msgbridge_outbox.sent_at``
    Set, durably, right before a publish is handed to the bridge; cleared when the
    attempt surely ended unapplied. A row leased again with it set was being sent when
    its worker died or lost its lease: a publish that must not be repeated (HighLevel)
    is then dead-lettered as ``OutcomeUnknown`` instead of sent a second time.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "TABLES"]

TABLES = (
    "msgbridge_outbox",
    "msgbridge_applied",
    "msgbridge_dead_letters",
    "msgbridge_workers",
    "msgbridge_leases",
    "msgbridge_tokens",
    "msgbridge_claims",
)

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


def _v2(real: str, text: str) -> list[str]:
    return [
        f"""
        CREATE TABLE msgbridge_workers (
            owner       {text} PRIMARY KEY,
            started_at  {real} NOT NULL,
            seen_at     {real} NOT NULL,
            until       {real} NOT NULL
        )
        """,
        f"""
        CREATE TABLE msgbridge_leases (
            connection  {text} PRIMARY KEY,
            owner       {text},
            fence       BIGINT NOT NULL DEFAULT 0,
            until       {real} NOT NULL DEFAULT 0,
            acquired_at {real}
        )
        """,
        f"""
        CREATE TABLE msgbridge_tokens (
            key         {text} PRIMARY KEY,
            payload     {text} NOT NULL,
            version     BIGINT NOT NULL,
            updated_at  {real} NOT NULL
        )
        """,
        f"""
        CREATE TABLE msgbridge_claims (
            connection  {text} NOT NULL,
            message_id  {text} NOT NULL,
            holder      {text},
            state       {text},
            until       {real} NOT NULL DEFAULT 0,
            PRIMARY KEY (connection, message_id)
        )
        """,
        "ALTER TABLE msgbridge_outbox ADD COLUMN fence BIGINT",
    ]


_SQLITE_V2 = _v2("REAL", "TEXT")
_POSTGRES_V2 = _v2("DOUBLE PRECISION", "TEXT")

_OUTBOX_COLUMNS = (
    "id, connection, kind, subject_id, state, payload, version, attempts, created_at, "
    "updated_at, available_at, lease_owner, lease_until, last_error, fence"
)

_SQLITE_V3 = [
    """
    CREATE TABLE msgbridge_outbox_v3 (
        id           INTEGER PRIMARY KEY,
        connection   TEXT    NOT NULL,
        kind         TEXT    NOT NULL CHECK (kind IN ('status', 'conversation', 'inbound')),
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
        fence        BIGINT,
        sent_at      REAL,
        UNIQUE (connection, kind, subject_id)
    )
    """,
    f"INSERT INTO msgbridge_outbox_v3 ({_OUTBOX_COLUMNS}) "  # noqa: S608 - constants
    f"SELECT {_OUTBOX_COLUMNS} FROM msgbridge_outbox",
    "DROP TABLE msgbridge_outbox",
    "ALTER TABLE msgbridge_outbox_v3 RENAME TO msgbridge_outbox",
    "CREATE INDEX msgbridge_outbox_ready ON msgbridge_outbox (available_at, id)",
]

_POSTGRES_V3 = [
    "ALTER TABLE msgbridge_outbox DROP CONSTRAINT msgbridge_outbox_kind_check",
    "ALTER TABLE msgbridge_outbox ADD CONSTRAINT msgbridge_outbox_kind_check "
    "CHECK (kind IN ('status', 'conversation', 'inbound'))",
    "ALTER TABLE msgbridge_outbox ADD COLUMN sent_at DOUBLE PRECISION",
]

#: ``MIGRATIONS[dialect][n]``: statements from version ``n`` to ``n + 1``.
MIGRATIONS: dict[str, list[list[str]]] = {
    "sqlite": [_SQLITE_V1, _SQLITE_V2, _SQLITE_V3],
    "postgresql": [_POSTGRES_V1, _POSTGRES_V2, _POSTGRES_V3],
}
