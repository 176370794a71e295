"""The persisted state guard: the outbox's ``msgbridge_applied`` table as a ``Guard``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from msgbridge.guard import verdict
from msgbridge.model import DeliveryState, Outcome
from msgbridge.outbox import sql
from msgbridge.outbox.store import Store

__all__ = ["PersistentGuard"]

Key = tuple[str, str]
Applied = tuple[DeliveryState, str]


class PersistentGuard:
    """Implements :class:`msgbridge.guard.Guard` over a database every process shares.

    ``check`` reads the last applied state of the message (so another process's work
    counts), ``record`` writes it durably. An :class:`~msgbridge.outbox.OutboxWorker`
    whose bridge holds this guard primes it with the batch's applied states (one query
    per batch) and writes the records itself, in the transaction that completes the
    rows: a row is deleted exactly when its applied state is stored.

    ``forget`` (called by ``Bridge.remove_connection``) only drops in-memory state: the
    database keeps its history, so removing a connection from one process never
    re-opens the door to stale updates. Use ``Outbox.forget_applied`` to delete it.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._known: dict[Key, Applied | None] = {}
        self._staged: dict[Key, Applied] = {}
        self._deferred = False
        self._depth = 0

    def _previous(self, connection: str, message_id: str) -> Applied | None:
        key = (connection, message_id)
        with self._lock:
            if key in self._staged:
                return self._staged[key]
            if key in self._known:
                return self._known[key]
        with self.store.transaction(write=False) as tx:
            return sql.applied_one(tx, connection, message_id)

    def check(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> Outcome | None:
        return verdict(self._previous(connection, message_id), state, vendor_value)

    def record(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> None:
        with self._lock:
            if self._deferred:
                self._staged[(connection, message_id)] = (state, vendor_value)
                return
        with self.store.transaction() as tx:
            sql.record_applied(tx, [(connection, message_id, state, vendor_value, self.clock())])

    def last(self, connection: str, message_id: str) -> DeliveryState | None:
        previous = self._previous(connection, message_id)
        return previous[0] if previous is not None else None

    def forget(self, connection: str) -> None:
        with self._lock:
            for cache in (self._known, self._staged):
                for key in [k for k in cache if k[0] == connection]:
                    del cache[key]

    @contextmanager
    def batch(self, known: Mapping[Key, Applied | None]) -> Iterator[dict[Key, Applied]]:
        """For a worker: answer from *known*, stage records; yields the staged records.

        Re-entrant, so workers sharing one bridge (threads) do not undo each other.
        """
        with self._lock:
            self._known.update(known)
            self._depth += 1
            self._deferred = True
            staged = self._staged
        try:
            yield staged
        finally:
            with self._lock:
                self._depth -= 1
                if not self._depth:
                    self._known = {}
                    self._staged = {}
                    self._deferred = False

    def __repr__(self) -> str:
        return f"<PersistentGuard {self.store.location}>"
