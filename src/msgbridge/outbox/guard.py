"""The persisted state guard: the outbox's ``msgbridge_applied`` table as a ``Guard``."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from msgbridge.errors import ConfigurationError
from msgbridge.guard import verdict
from msgbridge.model import DeliveryState, Outcome
from msgbridge.outbox import sql
from msgbridge.outbox.store import Store, Tx

__all__ = ["PersistentGuard"]

Key = tuple[str, str]
Applied = tuple[DeliveryState, str]


def _superseded(tx: Tx, connection: str, message_id: str, state: DeliveryState) -> Outcome | None:
    """``SKIPPED_SUPERSEDED`` if the outbox holds a pending status for the message that
    *state* may not follow: the vendor may already have it (a worker's request whose
    answer was lost, or a worker paused after sending), and the outbox delivers it."""
    row = tx.fetchone(
        "SELECT state FROM msgbridge_outbox WHERE connection = ? AND kind = 'status' "
        "AND subject_id = ?",
        (connection, message_id),
    )
    ahead = sql.state_or_none(row[0]) if row is not None else None
    if ahead is not None and not state.may_follow(ahead):
        return Outcome.SKIPPED_SUPERSEDED
    return None


class PersistentGuard:
    """Implements :class:`msgbridge.guard.Guard` over a database every process shares.

    ``check`` reads the last applied state of the message (so another process's work
    counts) and ``record`` writes it durably and *monotonically*: a state that may not
    follow the stored one is ignored, whatever order processes record in.

    Used by a plain :class:`~msgbridge.Bridge` in several processes, check → send →
    record is made atomic per message by a **claim**: a ``check`` that lets an update
    through claims the message (``msgbridge_claims``) until its ``record`` (or
    :meth:`release`, or ``claim_seconds``); a ``check`` in another process for a message
    claimed by someone else waits for the claim to end, then decides on what was
    recorded. Each claim is its own: bridges in one process sharing one guard object
    (threads and tasks) keep each other out as processes do. So two processes never have
    requests for one message in flight at once, and a lower state is never sent after a
    higher one was. A bridge releases a claim whose delivery applied nothing at once
    (:meth:`release`); a claim whose process died expires after ``claim_seconds``: choose
    it longer than the bridge's retry deadline plus its request timeout. (Known limit: a
    request that reached the vendor but whose answer was lost is released unrecorded,
    see docs/operating-many-workers.md.)

    An :class:`~msgbridge.outbox.OutboxWorker` claims its batch's messages itself, all at
    once in the transaction that leases the rows (so plain bridges wait for its batch,
    and it gives back rows a plain bridge is sending): it primes the guard with the
    batch's applied states (one query per batch) and writes the records itself, in the
    transaction that completes the rows. Only the batch's own
    messages are treated so: other messages checked meanwhile through the same guard (the
    application calling ``update_status`` on the worker's bridge) are claimed and
    recorded as usual.

    ``forget`` (called by ``Bridge.remove_connection``) only drops in-memory state: the
    database keeps its history, so removing a connection from one process never
    re-opens the door to stale updates. Use ``Outbox.forget_applied`` to delete it.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        claim_seconds: float = 90.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if claim_seconds <= 0:
            raise ConfigurationError("claim_seconds must be positive", key="claim_seconds")
        self.store = store
        self.clock = clock
        self.claim_seconds = float(claim_seconds)
        self.sleep = sleep
        #: The prefix of this guard's claims. Each claim gets its own holder (this prefix
        #: and a counter), so bridges sharing one guard object (a thread's ``Bridge`` and
        #: a task's ``AsyncBridge``) keep each other out as processes do.
        self.holder = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._claim_ids = itertools.count(1)
        #: This guard's live claims: message → its claim's holder.
        self._claims: dict[Key, str] = {}
        self._lock = threading.Lock()
        self._known: dict[Key, Applied | None] = {}
        self._staged: dict[Key, Applied] = {}
        self._deferred = False
        self._depth = 0

    def _cached(self, key: Key) -> tuple[bool, Applied | None]:
        with self._lock:
            if key in self._staged:
                return True, self._staged[key]
            if key in self._known:
                return True, self._known[key]
            return False, None

    def _previous(self, connection: str, message_id: str) -> Applied | None:
        found, previous = self._cached((connection, message_id))
        if found:
            return previous
        with self.store.transaction(write=False) as tx:
            return sql.applied_one(tx, connection, message_id)

    def check(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> Outcome | None:
        found, previous = self._cached((connection, message_id))
        if found:  # a message of a worker's batch: its connection lease makes it ours
            return verdict(previous, state, vendor_value)
        # Any other message (a direct call on a bridge a worker also uses included) is
        # decided under a claim, as in any process.
        # Cheap path first: what is already applied may settle it without a claim.
        quick = verdict(self._previous(connection, message_id), state, vendor_value)
        if quick is not None:
            return quick
        return self._claim(connection, message_id, state, vendor_value)

    def _claim(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> Outcome | None:
        """Decide under a claim: wait for another holder's claim to end first."""
        key = (connection, message_id)
        me = f"{self.holder}:{next(self._claim_ids)}"
        while True:
            now = self.clock()
            with self.store.transaction() as tx:
                tx.execute(
                    "INSERT INTO msgbridge_claims (connection, message_id) VALUES (?, ?) "
                    "ON CONFLICT (connection, message_id) DO NOTHING",
                    (connection, message_id),
                )
                row = tx.fetchone(
                    "SELECT holder, until FROM msgbridge_claims "  # noqa: S608
                    "WHERE connection = ? AND message_id = ?" + tx.for_update,
                    (connection, message_id),
                )
                if row is None:  # pruned between the two statements: start again
                    continue
                holder, until = row[0], float(row[1])
                if holder is None or until <= now:
                    outcome = verdict(
                        sql.applied_one(tx, connection, message_id), state, vendor_value
                    ) or _superseded(tx, connection, message_id, state)
                    if outcome is None:
                        tx.execute(
                            "UPDATE msgbridge_claims SET holder = ?, state = ?, until = ? "
                            "WHERE connection = ? AND message_id = ?",
                            (
                                me,
                                state.value,
                                now + self.claim_seconds,
                                connection,
                                message_id,
                            ),
                        )
                        with self._lock:
                            self._claims[key] = me
                    return outcome
            # Another process has a request for this message in flight: wait for it.
            self.sleep(min(0.02, max(0.001, until - now)))

    def record(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> None:
        key = (connection, message_id)
        with self._lock:
            # Only a worker batch's own messages are staged (the worker writes them with
            # the rows it settles); anything else is written now, or it would be lost.
            if self._deferred and (key in self._known or key in self._staged):
                previous = self._staged.get(key, self._known.get(key))
                if previous is None or state.may_follow(previous[0]):
                    self._staged[key] = (state, vendor_value)
                return
        with self.store.transaction() as tx:
            sql.record_applied(tx, [(connection, message_id, state, vendor_value, self.clock())])
            self._unclaim(tx, connection, message_id)

    def release(self, connection: str, message_id: str) -> None:
        """End this guard's claim on a message whose update was not applied (failed), so
        other processes need not wait for the claim to expire."""
        with self.store.transaction() as tx:
            self._unclaim(tx, connection, message_id)

    def _unclaim(self, tx: Tx, connection: str, message_id: str) -> None:
        with self._lock:
            me = self._claims.pop((connection, message_id), None)
        if me is None:
            return
        tx.execute(
            "UPDATE msgbridge_claims SET holder = NULL, until = 0 "
            "WHERE connection = ? AND message_id = ? AND holder = ?",
            (connection, message_id, me),
        )

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
