"""The :class:`Outbox`: durable enqueue, inspection, dead letters and requeue."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from msgbridge.errors import ConfigurationError, InvalidStatus
from msgbridge.inbound.model import IncomingMessage
from msgbridge.model import ConversationUpdate, MessageStatus
from msgbridge.outbox import sql
from msgbridge.outbox.codec import encode
from msgbridge.outbox.guard import PersistentGuard
from msgbridge.outbox.model import DeadLetter, EnqueueResult, OutboxStats, PendingUpdate
from msgbridge.outbox.store import Store, open_store

__all__ = ["Outbox"]


class Outbox:
    """A durable queue of the *final desired* update per message or conversation.

    ``store`` is a :class:`~msgbridge.outbox.store.Store` (left open on close) or anything
    :func:`~msgbridge.outbox.store.open_store` takes: a SQLite path, ``sqlite://PATH``, a
    PostgreSQL URL or DSN, a psycopg connection or pool (opened here, closed on close).
    ``clock`` gives epoch seconds (``time.time``); inject one in tests.

    Coalescing: one pending row per (connection, kind, subject id). A status replaces the
    pending one only if its state may follow the pending state (else it is
    ``SUPERSEDED``); a status that may not follow the state already *applied* at the
    vendor is refused as ``STALE`` (the same state: ``DUPLICATE``). Conversation updates
    merge field by field, the later non-null value winning. Contacts' messages to publish
    (:meth:`publish`) are never coalesced: one row per message id.
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str] | Any,
        *,
        clock: Callable[[], float] = time.time,
        **store_options: Any,
    ) -> None:
        self._owns_store = not isinstance(store, Store)
        self.store: Store = open_store(store, **store_options)
        self.clock = clock

    # -- enqueue --------------------------------------------------------------------------
    def enqueue(
        self,
        connection: str,
        update: MessageStatus | ConversationUpdate | IncomingMessage,
        *,
        conn: Any = None,
    ) -> EnqueueResult:
        """Store *update* for *connection*; returns once durable (committed to disk).

        Invalid input raises :class:`~msgbridge.errors.InvalidStatus` before the database
        is touched; storage failures raise :class:`~msgbridge.outbox.errors.StorageError`
        subclasses and store nothing. With ``conn=`` (PostgreSQL: the caller's psycopg
        connection) the row is written inside the caller's open transaction and is not
        committed here: it exists exactly when the caller's transaction commits.
        """
        encoded = encode(connection, update)
        now = self.clock()
        with self._transaction(conn) as tx:
            return sql.enqueue(tx, encoded, now)

    def publish(
        self,
        connection: str,
        message: IncomingMessage,
        *,
        conn: Any = None,
    ) -> EnqueueResult:
        """Store a contact's *message* to publish into *connection*'s CRM; returns once
        durable (``conn=`` as for :meth:`enqueue`).

        Publishes are not coalesced: each ``message_id`` is one row (``ENQUEUED``); the
        same message again while it is pending is ``UNCHANGED``, and a different message
        reusing a pending id is refused as ``DUPLICATE``. A worker publishes it through
        the bridge's publish path (no state guard). HubSpot's derived idempotency id makes
        a repeat harmless, so its publishes are applied exactly once; a HighLevel publish
        whose outcome is unknown (the connection dropped after sending, or its worker died
        mid-request) is never sent again but dead-lettered as ``OutcomeUnknown``: at most
        once. Invalid input raises :class:`~msgbridge.errors.InvalidStatus` first.
        """
        if not isinstance(message, IncomingMessage):
            raise InvalidStatus(
                f"publish expects an IncomingMessage, got {type(message).__name__}",
                connection=connection if isinstance(connection, str) else None,
                field="message",
            )
        return self.enqueue(connection, message, conn=conn)

    def enqueue_many(
        self,
        items: Iterable[tuple[str, MessageStatus | ConversationUpdate | IncomingMessage]],
        *,
        conn: Any = None,
    ) -> list[EnqueueResult]:
        """Several updates in one transaction (one disk sync): all are stored, or none.

        Every item is checked before the database is touched; results are in input order.
        """
        encoded = []
        for index, item in enumerate(items):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise InvalidStatus(f"item {index} must be a (connection, update) pair")
            encoded.append(encode(item[0], item[1]))
        if not encoded:
            return []
        now = self.clock()
        with self._transaction(conn) as tx:
            return [sql.enqueue(tx, item, now) for item in encoded]

    def _transaction(self, conn: Any) -> Any:
        if conn is not None:
            return self.store.external_transaction(conn)
        return self.store.transaction()

    # -- inspection -----------------------------------------------------------------------
    def pending(self, connection: str | None = None, *, limit: int = 100) -> list[PendingUpdate]:
        """Pending rows, next to be sent first."""
        with self.store.transaction(write=False) as tx:
            return sql.pending(tx, connection, limit)

    def stats(self) -> OutboxStats:
        """Counts by connection and state: ready, scheduled, leased, retrying, dead."""
        now = self.clock()
        with self.store.transaction(write=False) as tx:
            rows, oldest = sql.stats(tx, now)
        return OutboxStats(tuple(rows), oldest)

    def dead_letters(
        self, connection: str | None = None, *, limit: int | None = 100
    ) -> list[DeadLetter]:
        """Dead letters, oldest first (``limit=None``: all of them)."""
        with self.store.transaction(write=False) as tx:
            return sql.dead_letters(tx, connection, None, limit)

    def dead_letter(self, dead_id: int) -> DeadLetter:
        """One dead letter; ``KeyError`` if there is none with this id."""
        with self.store.transaction(write=False) as tx:
            found = sql.dead_letters(tx, None, [int(dead_id)], None)
        if not found:
            raise KeyError(f"no dead letter with id {dead_id}")
        return found[0]

    # -- dead letters -----------------------------------------------------------------------
    def requeue(
        self,
        ids: int | Iterable[int] | None = None,
        *,
        all: bool = False,
        connection: str | None = None,
    ) -> dict[int, EnqueueResult]:
        """Put dead letters back in the outbox; returns ``{dead letter id: result}``.

        Each dead letter is enqueued again under the usual rules (so one that a newer
        update has overtaken comes back ``SUPERSEDED``/``STALE`` and is not resent) and is
        removed from the dead letters. Give ``ids``, or ``all=True`` (optionally with
        ``connection``). Unknown ids raise ``KeyError`` and requeue nothing; with
        ``all=True`` a dead letter whose stored update cannot be read stays where it is.
        """
        if ids is None and not all:
            raise ConfigurationError("requeue needs dead letter ids or all=True")
        wanted: list[int] | None = None
        if ids is not None:
            wanted = [int(ids)] if isinstance(ids, int) else [int(i) for i in ids]
        now = self.clock()
        results: dict[int, EnqueueResult] = {}
        with self.store.transaction() as tx:
            letters = sql.dead_letters(tx, connection, wanted, None)
            if wanted is not None:
                missing = sorted(set(wanted) - {d.id for d in letters})
                if missing:
                    raise KeyError(f"no dead letter with id {', '.join(map(str, missing))}")
            for letter in letters:
                update = letter.update
                if update is None:
                    if wanted is None:
                        continue  # unreadable: left in place for inspection
                    raise InvalidStatus(
                        f"dead letter {letter.id} holds an update that cannot be read; "
                        "inspect it and discard it"
                    )
                results[letter.id] = sql.enqueue(tx, encode(letter.connection, update), now)
                sql.delete_dead(tx, letter.id)
        return results

    def discard_dead_letters(self, ids: Iterable[int]) -> int:
        """Delete dead letters for good; returns how many were deleted."""
        count = 0
        with self.store.transaction() as tx:
            for dead_id in ids:
                count += tx.execute(
                    "DELETE FROM msgbridge_dead_letters WHERE id = ?", (int(dead_id),)
                )
        return count

    # -- the persisted state guard ----------------------------------------------------------
    def guard(self) -> PersistentGuard:
        """A :class:`~msgbridge.guard.Guard` over this outbox's applied states.

        Hand it to a :class:`~msgbridge.Bridge` (``guard=``) so stale updates never
        regress what was applied, across processes and restarts.
        """
        return PersistentGuard(self.store, clock=self.clock)

    def prune_applied(self, older_than: float) -> int:
        """Forget applied states recorded more than *older_than* seconds ago.

        Keeps the table bounded; a forgotten message loses its protection against stale
        updates (choose longer than any update can arrive late).
        """
        now = self.clock()
        with self.store.transaction() as tx:
            # Ended or expired guard claims go too (they only matter while in flight).
            tx.execute("DELETE FROM msgbridge_claims WHERE until < ?", (now,))
            return tx.execute(
                "DELETE FROM msgbridge_applied WHERE applied_at < ?", (now - older_than,)
            )

    def forget_applied(self, connection: str) -> int:
        """Drop every applied state of *connection* (for instance after deleting it)."""
        with self.store.transaction() as tx:
            return tx.execute("DELETE FROM msgbridge_applied WHERE connection = ?", (connection,))

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Outbox {self.store!r}>"
