"""A durable outbox for delivery statuses: enqueue now, deliver at least once, never regress.

::

    from msgbridge.outbox import Outbox, OutboxWorker

    outbox = Outbox("outbox.db")                      # SQLite; or "postgresql://…"
    outbox.enqueue("acme", MessageStatus("m-1", "delivered"))   # durable when it returns

    with OutboxWorker.create(outbox, connections) as worker:
        worker.drain()                                # or worker.run_forever(stop_event)

The outbox keeps one pending row per (connection, message or conversation) holding the
*final desired* update: later updates coalesce into it under the state guard's rule
(:meth:`msgbridge.DeliveryState.may_follow`), and the state last applied at each vendor is
persisted (:class:`PersistentGuard`), so no process, restart or retry ever regresses a
message. Failures are retried from the database with backoff; permanent ones become dead
letters (inspect, requeue). Storage failures are typed (:mod:`msgbridge.outbox.errors`).
"""

from typing import TYPE_CHECKING

from msgbridge.outbox.errors import (
    ForeignDatabase,
    LeaseLost,
    SchemaTooNew,
    StorageCorrupt,
    StorageError,
    StorageFull,
    StorageLocked,
    StorageUnavailable,
)
from msgbridge.outbox.guard import PersistentGuard
from msgbridge.outbox.leases import ConnectionLeases, LeaseChange
from msgbridge.outbox.model import (
    BatchReport,
    DeadLetter,
    EnqueueOutcome,
    EnqueueResult,
    OutboxStats,
    PendingUpdate,
    StatsRow,
)
from msgbridge.outbox.outbox import Outbox
from msgbridge.outbox.sqlite import SQLiteStore
from msgbridge.outbox.store import APPLICATION_ID, SCHEMA_VERSION, Store, open_store
from msgbridge.outbox.tokens import DatabaseTokenStore
from msgbridge.outbox.worker import BRIDGE_RETRY, OUTBOX_RETRY, OutboxWorker

if TYPE_CHECKING:
    from msgbridge.outbox.postgres import PostgresStore

__all__ = [
    "APPLICATION_ID",
    "BRIDGE_RETRY",
    "OUTBOX_RETRY",
    "SCHEMA_VERSION",
    "BatchReport",
    "ConnectionLeases",
    "DatabaseTokenStore",
    "DeadLetter",
    "EnqueueOutcome",
    "EnqueueResult",
    "ForeignDatabase",
    "LeaseChange",
    "LeaseLost",
    "Outbox",
    "OutboxStats",
    "OutboxWorker",
    "PendingUpdate",
    "PersistentGuard",
    "PostgresStore",
    "SQLiteStore",
    "SchemaTooNew",
    "StatsRow",
    "StorageCorrupt",
    "StorageError",
    "StorageFull",
    "StorageLocked",
    "StorageUnavailable",
    "Store",
    "open_store",
]


def __getattr__(name: str) -> object:
    # PostgresStore needs the optional psycopg: import it only when asked for.
    if name == "PostgresStore":
        from msgbridge.outbox.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'msgbridge.outbox' has no attribute {name!r}")
