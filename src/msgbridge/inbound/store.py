"""Durable, de-duplicated storage of verified webhooks, on the outbox's databases.

One table, ``msgbridge_inbound``, beside the outbox's own tables in the same SQLite file or
PostgreSQL database, opened through :func:`msgbridge.outbox.open_store` (so the same file
checks, WAL + ``synchronous=FULL``, typed storage errors and ``SKIP LOCKED``-free leasing by
conditional ``UPDATE``). The primary key is the idempotency key, so an event is stored once
whatever the number of deliveries and processes; ``store`` returns only after the commit.

Handling is leased: a row is claimed (``lease_until``) before the handler runs and marked
``handled`` after; a process that dies between the two leaves a row that is claimed again
once its lease has expired. At least once, with a stable key for the handler to be
idempotent on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import attrs

from msgbridge.inbound.model import WebhookEvent
from msgbridge.inbound.serialization import event_from_json, event_to_json
from msgbridge.outbox.store import Store, open_store

__all__ = ["InboundRecord", "InboundStore", "StoreOutcome"]

_DDL = [
    """
    CREATE TABLE IF NOT EXISTS msgbridge_inbound (
        key          TEXT PRIMARY KEY,
        source       TEXT NOT NULL,
        adapter      TEXT NOT NULL,
        kind         TEXT NOT NULL,
        event        TEXT NOT NULL,
        state        TEXT NOT NULL DEFAULT 'pending',
        deliveries   INTEGER NOT NULL DEFAULT 1,
        attempts     INTEGER NOT NULL DEFAULT 0,
        received_at  DOUBLE PRECISION NOT NULL,
        available_at DOUBLE PRECISION NOT NULL,
        lease_owner  TEXT,
        lease_until  DOUBLE PRECISION,
        handled_at   DOUBLE PRECISION,
        last_error   TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS msgbridge_inbound_ready ON msgbridge_inbound (state, available_at)",
]


@attrs.frozen
class StoreOutcome:
    """What storing one verified event did."""

    key: str
    #: False when the key was already stored (a duplicate delivery).
    new: bool
    #: The stored row's state: ``pending`` or ``handled``.
    state: str


@attrs.frozen
class InboundRecord:
    """A stored event claimed for handling."""

    key: str
    source: str
    event: WebhookEvent
    #: 1 on the first hand-over; more after a crash or a failing handler.
    attempt: int
    deliveries: int


class InboundStore:
    """Verified webhooks, stored once per key, handed out under a lease."""

    def __init__(
        self,
        target: Store | str | os.PathLike[str] | Any = "inbound.db",
        *,
        clock: Callable[[], float] | None = None,
        **options: Any,
    ) -> None:
        import time

        self._store = open_store(target, **options)
        self._owns = not isinstance(target, Store)
        self._clock = clock or time.time
        with self._store.transaction() as tx:
            for statement in _DDL:
                tx.execute(statement)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def location(self) -> str:
        return self._store.location

    def save(self, source: str, key: str, event: WebhookEvent) -> StoreOutcome:
        """Store *event* under *key* unless already there; durable when it returns."""
        now = self._clock()
        payload = json.dumps(event_to_json(event), separators=(",", ":"), ensure_ascii=False)
        with self._store.transaction() as tx:
            inserted = tx.execute(
                "INSERT INTO msgbridge_inbound (key, source, adapter, kind, event, received_at,"
                " available_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, source, event.adapter, event.kind.value, payload, now, now),
            )
            if inserted:
                return StoreOutcome(key, True, "pending")
            tx.execute(
                "UPDATE msgbridge_inbound SET deliveries = deliveries + 1 WHERE key = ?", (key,)
            )
            row = tx.fetchone("SELECT state FROM msgbridge_inbound WHERE key = ?", (key,))
        return StoreOutcome(key, False, str(row[0]) if row else "pending")

    def claim(self, key: str, *, owner: str, lease: float) -> InboundRecord | None:
        """Lease the pending row *key* for handling, unless handled or leased elsewhere."""
        now = self._clock()
        with self._store.transaction() as tx:
            changed = tx.execute(
                "UPDATE msgbridge_inbound SET lease_owner = ?, lease_until = ?,"
                " attempts = attempts + 1 WHERE key = ? AND state = 'pending'"
                " AND available_at <= ? AND (lease_until IS NULL OR lease_until <= ?)",
                (owner, now + lease, key, now, now),
            )
            if not changed:
                return None
            row = tx.fetchone(
                "SELECT key, source, event, attempts, deliveries FROM msgbridge_inbound"
                " WHERE key = ?",
                (key,),
            )
        assert row is not None
        return InboundRecord(
            key=str(row[0]),
            source=str(row[1]),
            event=event_from_json(json.loads(row[2])),
            attempt=int(row[3]),
            deliveries=int(row[4]),
        )

    def ready(self, *, limit: int = 100) -> list[str]:
        """Keys of pending rows that may be claimed now (new, retried, or lease expired)."""
        now = self._clock()
        with self._store.transaction(write=False) as tx:
            rows = tx.fetchall(
                "SELECT key FROM msgbridge_inbound WHERE state = 'pending' AND available_at <= ?"
                " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY received_at, key"
                " LIMIT ?",
                (now, now, limit),
            )
        return [str(r[0]) for r in rows]

    def renew(self, key: str, *, owner: str, lease: float) -> bool:
        """Extend *owner*'s lease on *key* while its handler runs (False once lost)."""
        with self._store.transaction() as tx:
            return bool(
                tx.execute(
                    "UPDATE msgbridge_inbound SET lease_until = ?"
                    " WHERE key = ? AND lease_owner = ? AND state = 'pending'",
                    (self._clock() + lease, key, owner),
                )
            )

    def mark_handled(self, key: str, *, owner: str) -> bool:
        """Record that the handler finished *key* (False if the lease was lost meanwhile)."""
        with self._store.transaction() as tx:
            return bool(
                tx.execute(
                    "UPDATE msgbridge_inbound SET state = 'handled', handled_at = ?,"
                    " lease_owner = NULL, lease_until = NULL, last_error = NULL"
                    " WHERE key = ? AND lease_owner = ? AND state = 'pending'",
                    (self._clock(), key, owner),
                )
            )

    def mark_failed(self, key: str, *, owner: str, error: str, retry_in: float) -> None:
        """The handler raised: release the lease and make the row ready again later."""
        now = self._clock()
        with self._store.transaction() as tx:
            tx.execute(
                "UPDATE msgbridge_inbound SET lease_owner = NULL, lease_until = NULL,"
                " available_at = ?, last_error = ? WHERE key = ? AND lease_owner = ?",
                (now + retry_in, error[:2000], key, owner),
            )

    def counts(self) -> dict[str, int]:
        """Rows per state (``pending``, ``handled``), for stats and the demo."""
        with self._store.transaction(write=False) as tx:
            rows = tx.fetchall("SELECT state, count(*) FROM msgbridge_inbound GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def get(self, key: str) -> dict[str, Any] | None:
        """One row as a dict (state, deliveries, attempts, last_error), or ``None``."""
        with self._store.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT state, deliveries, attempts, last_error, source, adapter"
                " FROM msgbridge_inbound WHERE key = ?",
                (key,),
            )
        if row is None:
            return None
        names = ("state", "deliveries", "attempts", "last_error", "source", "adapter")
        return dict(zip(names, row, strict=True))

    def close(self) -> None:
        if self._owns:
            self._store.close()

    def __enter__(self) -> InboundStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<InboundStore {self._store.location}>"
