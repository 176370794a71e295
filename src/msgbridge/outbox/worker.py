"""``OutboxWorker``: lease rows, send them through a ``Bridge``, settle each by its receipt.

One batch:

0. **connections**: the worker holds leases on whole connections (its fair share, see
   :mod:`msgbridge.outbox.leases`) and only ever sends for those, so one account's
   order, budget, guard and token refresh live in one process at a time;
1. **lease** up to ``batch_size`` ready rows of the held connections in one short
   transaction (SQLite ``BEGIN IMMEDIATE`` + ``UPDATE … RETURNING``; PostgreSQL
   ``FOR UPDATE SKIP LOCKED``), interleaving connections so one busy account cannot fill
   the batch; the lease sets ``lease_owner`` and ``lease_until`` (and ``available_at``
   to the same time, so an expired lease simply makes the row ready again);
2. rows whose status is stale against the applied state are settled without a request;
   the rest go through ``bridge.update_many`` while a heartbeat renews the leases; right
   before each HTTP attempt the connection's lease is checked (fencing): a worker that
   could not renew it in time sends nothing more for it;
3. **settle** every row in one transaction, with the applied states of the batch:

   * ``APPLIED``/``SKIPPED_*`` → the row is deleted if its ``version`` is unchanged,
     else released (a newer update arrived meanwhile and goes next);
   * ``FAILED`` and retryable (or an operator-fixable error, ``retry_errors``) →
     rescheduled at ``now + (retry_after or backoff)`` with ``attempts + 1``; other
     accounts are not held up, and the bridge's own short ``RetryPolicy`` keeps long
     waits in the database instead of in a thread;
   * ``FAILED`` otherwise, or after ``retry.max_attempts`` → a dead letter with the
     reason, error type, HTTP status and the vendor's trace id.

Publishes (kind ``inbound``) go through the same ``update_many`` (the bridge's publish
path, no guard). Before they are sent, their rows are marked ``sent_at`` in one commit; a
row leased again with that mark (its worker died or lost the lease mid-request) whose
publish must not be repeated (``retry_when_ambiguous=False``: HighLevel) is dead-lettered
as ``OutcomeUnknown`` instead of being sent twice; HubSpot's is simply sent again.

A worker that dies leaves leases that expire after ``lease_seconds`` and return; every
settle statement matches the row's owner *and* its connection lease's fence, so a worker
that lost a lease settles nothing. Delivery is at least once; the state guard turns a
repeat into a skip (or, when the vendor saw a request whose answer was lost, into one
harmless identical update).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from types import TracebackType
from typing import Any

from msgbridge.bridge import Bridge
from msgbridge.connection import Connection
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidStatus,
    MessagingError,
    OutcomeUnknown,
)
from msgbridge.inbound.model import IncomingMessage
from msgbridge.model import ConversationUpdate, MessageStatus, Outcome, Receipt
from msgbridge.outbox import sql
from msgbridge.outbox.codec import decode
from msgbridge.outbox.errors import LeaseLost, StorageError
from msgbridge.outbox.guard import Applied, Key, PersistentGuard
from msgbridge.outbox.leases import ConnectionLeases
from msgbridge.outbox.model import INBOUND, STATUS, BatchReport
from msgbridge.outbox.outbox import Outbox
from msgbridge.outbox.sql import LeasedRow
from msgbridge.outbox.store import Store
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy

__all__ = ["BRIDGE_RETRY", "OUTBOX_RETRY", "OutboxWorker"]

log = logging.getLogger("msgbridge.outbox")

#: The worker bridge's in-process retries: short, so long waits go back to the database.
BRIDGE_RETRY = RetryPolicy(
    max_attempts=2, initial_backoff=0.5, max_backoff=2.0, deadline=5.0, max_retry_after=5.0
)
#: Retries across batches: attempts before a dead letter, and the backoff between them.
OUTBOX_RETRY = RetryPolicy(
    max_attempts=10, initial_backoff=2.0, max_backoff=900.0, multiplier=3.0, deadline=1e12
)

Update = MessageStatus | ConversationUpdate | IncomingMessage
#: Settlement of a row that was sent but has no receipt: give it back.
NO_RECEIPT = "no receipt"
#: A row whose message a plain bridge (another process) has claimed: given back unsent.
CLAIMED = "claimed elsewhere"


def default_owner() -> str:
    """``host:pid:random``, unique per worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _bridge_guard(bridge: Bridge) -> object:
    return bridge.guard


class OutboxWorker:
    """Drains an outbox through a :class:`~msgbridge.Bridge`.

    ``bridge`` should hold the outbox's :class:`PersistentGuard` (``guard=outbox.guard()``)
    and a short :class:`~msgbridge.RetryPolicy` such as :data:`BRIDGE_RETRY`;
    :meth:`create` builds one so. Rows are leased only for the bridge's connections (or
    ``connections``). ``clock`` is epoch seconds; ``sleep`` is what :meth:`drain` waits
    with (inject both in tests); ``monotonic`` times the leases locally (default
    ``time.monotonic``, or ``clock`` when only that is injected). Several workers, threads
    or processes, may drain one outbox at once: each sends only for the connections it
    holds leases on (``affinity=False`` restores per-row leasing). A bridge you build
    yourself should check the leases before every attempt:
    ``Bridge(..., fence=lambda name: worker.fence(name))`` (:meth:`create` does so).
    """

    def __init__(
        self,
        store: Store | Outbox,
        bridge: Bridge,
        *,
        owner: str | None = None,
        batch_size: int = 200,
        lease_seconds: float = 60.0,
        max_in_flight: int = 32,
        per_connection: int = 8,
        per_connection_batch: int | None = None,
        retry: RetryPolicy = OUTBOX_RETRY,
        retry_errors: tuple[type[MessagingError], ...] = (
            AuthenticationError,
            ConfigurationError,
        ),
        connections: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        idle_interval: float = 1.0,
        heartbeat: bool = True,
        rng: random.Random | None = None,
        affinity: bool = True,
        lease_margin: float | None = None,
        rebalance_interval: float | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1", key="batch_size")
        if lease_seconds <= 0:
            raise ConfigurationError("lease_seconds must be positive", key="lease_seconds")
        if idle_interval <= 0:
            raise ConfigurationError("idle_interval must be positive", key="idle_interval")
        self.store = store.store if isinstance(store, Outbox) else store
        self.bridge = bridge
        self.owner = owner or default_owner()
        self.batch_size = batch_size
        self.lease_seconds = float(lease_seconds)
        self.max_in_flight = max_in_flight
        self.per_connection = per_connection
        self.per_connection_batch = per_connection_batch or batch_size
        self.retry = retry
        self.retry_errors = retry_errors
        self.connections = sorted(set(connections)) if connections is not None else None
        self.clock = clock
        self.sleep = sleep
        self.idle_interval = idle_interval
        self.heartbeat = heartbeat
        self.rng = rng or random.Random()  # noqa: S311 - jitter
        # An injected clock drives the lease timing too, unless a monotonic one is given.
        self.monotonic = monotonic or (time.monotonic if clock is time.time else clock)
        #: Connection leases (``None`` with ``affinity=False``: rows are leased one by one
        #: and any worker may send for any connection, as before version 2).
        self.leases: ConnectionLeases | None = (
            ConnectionLeases(
                self.store,
                self.owner,
                connections=self.connections,
                lease_seconds=self.lease_seconds,
                margin=lease_margin,
                clock=clock,
                monotonic=self.monotonic,
            )
            if affinity
            else None
        )
        #: How often leases are renewed and rebalanced between batches: a newcomer gets
        #: its fair share within about this long.
        self.rebalance_interval = (
            min(1.0, self.lease_seconds / 3) if rebalance_interval is None else rebalance_interval
        )
        self._last_rebalance: float | None = None
        #: The fence each connection's rows in the current batch were leased under.
        self._batch_fences: dict[str, int] = {}
        #: The current batch's claims on its messages (holder, keys), and when a row whose
        #: message is claimed by a plain bridge may be leased again.
        self._batch_claims: tuple[str, list[Key]] = ("", [])
        self._claimed_until: dict[int, float] = {}
        self._batch_ids = itertools.count(1)
        #: Until when (``monotonic``) this batch's claims surely hold, while it is sent;
        #: like the connection leases, from before each successful extension.
        self._claims_valid_until = math.inf
        self._sending = False
        self._rebalance_now = False
        #: Set to stop leasing new rows (graceful shutdown); the batch in flight finishes.
        self.stopping = threading.Event()
        #: Everything this worker did so far (for status lines).
        self.totals = BatchReport()
        self._owns_bridge = False
        guard = _bridge_guard(bridge)
        self._guard: PersistentGuard | None = None
        if isinstance(guard, PersistentGuard):
            if guard.store is not self.store:
                raise ConfigurationError(
                    "the bridge's PersistentGuard belongs to another store than the worker's"
                )
            self._guard = guard
        if self.leases is not None:
            self.join()

    @classmethod
    def create(
        cls,
        store: Store | Outbox,
        connections: Iterable[Connection],
        *,
        registry: AdapterRegistry | None = None,
        bridge_retry: RetryPolicy = BRIDGE_RETRY,
        rate_limits: bool = True,
        http_client: Any = None,
        **options: Any,
    ) -> OutboxWorker:
        """A worker with its own bridge (closed by :meth:`close`) over *connections*.

        The bridge checks this worker's connection lease immediately before every HTTP
        attempt (retries included): a lease that could not be renewed in time turns the
        attempt into a ``FAILED`` receipt carrying :class:`LeaseLost`, and nothing is sent.
        """
        real = store.store if isinstance(store, Outbox) else store
        clock = options.get("clock", time.time)
        built: list[OutboxWorker] = []

        def fence(connection: str) -> None:
            if built:
                built[0].fence(connection)

        bridge = Bridge(
            connections,
            registry=registry,
            http_client=http_client,
            retry=bridge_retry,
            guard=PersistentGuard(real, clock=clock),
            rate_limits=rate_limits,
            fence=fence,
        )
        try:
            worker = cls(real, bridge, **options)
        except BaseException:
            bridge.close()
            raise
        built.append(worker)
        worker._owns_bridge = True
        return worker

    # -- one batch ------------------------------------------------------------------------
    def _names(self) -> list[str]:
        if self.connections is not None:
            return self.connections
        return sorted(self.bridge.connections)

    def rebalance(self, *, force: bool = False) -> None:
        """Renew, release and acquire connection leases when due (every
        ``rebalance_interval``, or at once when ready rows of a connection nobody holds
        were seen)."""
        leases = self.leases
        if leases is None:
            return
        now = self.monotonic()
        due = (
            force
            or self._rebalance_now
            or self._last_rebalance is None
            or now - self._last_rebalance >= self.rebalance_interval
        )
        if not due:
            return
        self._rebalance_now = False
        leases.connections = self._names()
        change = leases.rebalance()
        self._last_rebalance = now
        if change.acquired or change.released:
            log.info(
                "msgbridge outbox: %s now holds %d connection(s) of a fair share of %d "
                "(%d worker(s)); acquired %s, released %s",
                self.owner,
                len(leases.held),
                change.share,
                change.workers,
                list(change.acquired),
                list(change.released),
            )

    def join(self) -> None:
        """Announce this worker (heartbeat row) so others count it in their fair share
        from now on. Storage errors are logged: the first rebalance announces it too."""
        assert self.leases is not None
        try:
            self.leases.renew()
        except StorageError as exc:  # pragma: no cover - renew logs and swallows these
            log.warning("msgbridge outbox: could not announce this worker: %s", exc)

    def fence(self, connection: str) -> None:
        """Raise :class:`LeaseLost` unless this worker surely holds *connection* now.

        The bridge calls it immediately before every HTTP attempt.
        """
        if self.leases is not None:
            current = self.leases.check(connection)
            expected = self._batch_fences.get(connection)
            if expected is not None and current != expected:
                # Lost and taken again (a pause past the lease, then the heartbeat won
                # it back): this batch's rows were leased under the old fence and another
                # worker may have sent newer updates meanwhile.
                raise LeaseLost(
                    f"the lease on connection {connection!r} was lost and re-taken since "
                    "this batch was leased; not sending its rows",
                    connection=connection,
                )
        if self._sending:
            margin = self.leases.margin if self.leases is not None else self.lease_seconds / 4
            if self.monotonic() > self._claims_valid_until - margin:
                # Paused past them (then the untaken lease was simply renewed): a plain
                # bridge may have claimed and sent a newer state for a message meanwhile.
                raise LeaseLost(
                    f"this batch's claims on its messages of {connection!r} may have "
                    "lapsed (a pause longer than the lease?); not sending its rows",
                    connection=connection,
                )

    def run_once(self) -> BatchReport:
        """Lease one batch, send it, settle it. Returns what happened."""
        report = BatchReport()
        names = self._names()
        if not names or self.stopping.is_set():
            return report
        if self.leases is not None:
            self.rebalance()
            names = [n for n in self.leases.usable() if n in set(names)]
            if not names:
                return report
        now = self.clock()
        started = self.monotonic()
        with self.store.transaction() as tx:
            raw = self.store.lease(
                tx,
                owner=self.owner,
                now=now,
                until=now + self.lease_seconds,
                limit=self.batch_size,
                scan=self.batch_size * 4,
                per_connection=self.per_connection_batch,
                connections=names,
                fenced=self.leases is not None,
            )
            rows = [LeasedRow.from_row(r) for r in raw]
            # Claimed before the applied states are read: a plain bridge that ends its
            # claim has recorded what it applied in the same transaction.
            holder = f"{self.owner}:batch-{next(self._batch_ids)}"
            keys = sorted({(r.connection, r.subject_id) for r in rows if r.kind == STATUS})
            elsewhere = sql.claim_batch(tx, keys, holder, now, now + self.lease_seconds)
            applied = sql.applied_for(tx, [r.id for r in rows if r.kind == STATUS])
            interrupted = sql.interrupted(tx, [r.id for r in rows if r.kind == INBOUND])
        self._batch_claims = (holder, keys)
        self._claimed_until = {}
        self._claims_valid_until = started + self.lease_seconds
        if not rows:
            return report
        report.batches = 1
        report.leased = len(rows)
        settled: dict[int, Receipt | str] = {}
        to_send: list[LeasedRow] = []
        items: list[tuple[str, Update]] = []
        for row in rows:
            try:
                update = decode(row.kind, row.payload)
            except InvalidStatus as exc:
                settled[row.id] = f"the stored update cannot be read: {exc.message}"
                continue
            if row.kind == STATUS and (row.connection, row.subject_id) in elsewhere:
                # A plain bridge has a request for this message in flight: after it.
                settled[row.id] = CLAIMED
                self._claimed_until[row.id] = min(
                    elsewhere[(row.connection, row.subject_id)], now + self.idle_interval
                )
                continue
            previous = applied.get(row.id)
            if (
                isinstance(update, MessageStatus)
                and previous is not None
                and not update.state.may_follow(previous[0])
            ):
                settled[row.id] = _stale(row, update, previous)
                continue
            if row.id in interrupted and not self._repeat_safe(row.connection, update):
                settled[row.id] = _interrupted(row, self._adapter_id(row.connection))
                continue
            if self.leases is not None and self._fence_now(row.connection) != row.fence:
                settled[row.id] = NO_RECEIPT  # the lease is not surely ours: give it back
                report.fenced += 1
                continue
            to_send.append(row)
            items.append((row.connection, update))
        receipts: list[Receipt | None] = [None] * len(items)
        #: What the guard recorded during the batch: the rows' own deliveries and any
        #: update sent directly through the same bridge meanwhile, written at settle.
        staged: dict[Key, Applied] = {}
        self._batch_fences = {r.connection: r.fence for r in to_send if r.fence is not None}
        publishes = [r for r in to_send if r.kind == INBOUND]
        if publishes:  # durably, before any of them can reach the vendor
            with self.store.transaction() as tx:
                sql.mark_sending(tx, publishes, self.owner, self.clock())
        if items:
            known: dict[Key, Applied | None] = {
                (r.connection, r.subject_id): applied.get(r.id) for r in to_send if r.kind == STATUS
            }
            guarding = self._guard.batch(known) if self._guard is not None else nullcontext(staged)
            try:
                with guarding as staged, self._heartbeat(rows):
                    self._sending = True
                    try:
                        for receipt in self.bridge.update_many(
                            items,
                            max_in_flight=self.max_in_flight,
                            per_connection=self.per_connection,
                        ):
                            if receipt.index is not None:
                                receipts[receipt.index] = receipt
                    finally:
                        self._sending = False
            except BaseException:
                # Interrupted (Ctrl-C, a bug): settle what is known, give the rest back now
                # rather than when the leases expire.
                self._settle_quietly(rows, settled, to_send, receipts, report, staged)
                raise
        self._settle(rows, self._with_receipts(settled, to_send, receipts), report, staged)
        self.totals.add(report)
        return report

    def _adapter_id(self, connection: str) -> str:
        bound = self.bridge.connections.get(connection)
        return bound.adapter.id if bound is not None else ""

    def _repeat_safe(self, connection: str, update: Update) -> bool:
        """Whether sending this publish again is safe after an attempt whose outcome is
        unknown (its adapter's ``retry_when_ambiguous``; HubSpot yes, HighLevel no)."""
        bound = self.bridge.connections.get(connection)
        if bound is None or not isinstance(update, IncomingMessage):
            return True
        try:
            return bound.adapter.prepare_inbound(update, bound.settings).retry_when_ambiguous
        except Exception:  # refused before any I/O: sending it again sends nothing
            return True

    def _fence_now(self, connection: str) -> int | None:
        assert self.leases is not None
        try:
            return self.leases.check(connection)
        except LeaseLost:
            return None

    @staticmethod
    def _with_receipts(
        settled: dict[int, Receipt | str],
        to_send: Sequence[LeasedRow],
        receipts: Sequence[Receipt | None],
    ) -> dict[int, Receipt | str]:
        for row, maybe in zip(to_send, receipts, strict=True):
            settled[row.id] = maybe if maybe is not None else NO_RECEIPT
        return settled

    def _settle_quietly(
        self,
        rows: Sequence[LeasedRow],
        settled: dict[int, Receipt | str],
        to_send: Sequence[LeasedRow],
        receipts: Sequence[Receipt | None],
        report: BatchReport,
        staged: Mapping[Key, Applied],
    ) -> None:
        try:
            self._settle(rows, self._with_receipts(settled, to_send, receipts), report, staged)
        except Exception as exc:  # the original error matters more; leases will expire
            log.warning("msgbridge outbox: could not settle an interrupted batch: %s", exc)

    def _settle(
        self,
        rows: Sequence[LeasedRow],
        settled: dict[int, Receipt | str],
        report: BatchReport,
        staged: Mapping[Key, Applied] | None = None,
    ) -> None:
        now = self.clock()
        records = [
            (r.connection, r.subject_id, r.state, r.vendor_value, now)
            for r in settled.values()
            if isinstance(r, Receipt)
            and r.outcome is Outcome.APPLIED
            and r.state is not None
            and r.vendor_value is not None
        ]
        if staged:
            mine = {(c, m, s) for c, m, s, _, _ in records}
            records += [
                (c, m, state, value, now)
                for (c, m), (state, value) in staged.items()
                if (c, m, state) not in mine
            ]
        holder, claims = self._batch_claims
        with self.store.transaction() as tx:
            if records:
                sql.record_applied(tx, records)
            sql.end_claims(tx, claims, holder)
            for row in rows:
                result = settled[row.id]
                if isinstance(result, str):
                    if result == NO_RECEIPT:  # interrupted, or a bridge contract violation
                        # It may have been sent: a publish keeps its "being sent" mark.
                        released = sql.release(tx, row, self.owner, now, unsent=False)
                        self._count(report, released)
                        continue
                    if result == CLAIMED:
                        at = self._claimed_until.get(row.id, now)
                        self._count(report, sql.release(tx, row, self.owner, at))
                        continue
                    outcome = sql.bury(
                        tx,
                        row,
                        self.owner,
                        now,
                        reason=result,
                        error_type="InvalidStatus",
                        http_status=None,
                        trace_id=None,
                    )
                    self._count(report, outcome)
                elif result.outcome is Outcome.FAILED and isinstance(result.error, LeaseLost):
                    # Not sent: give the row back if it is still ours (fence), untouched.
                    outcome = sql.release(tx, row, self.owner, now)
                    report.fenced += 1
                    if outcome == "lost":
                        report.lost += 1
                elif result.outcome is Outcome.FAILED:
                    self._failed(tx, row, result, now, report)
                else:
                    outcome = sql.finish(tx, row, self.owner, now)
                    if outcome == "done":
                        if result.outcome is Outcome.APPLIED:
                            report.applied += 1
                        else:
                            report.skipped += 1
                    else:
                        self._count(report, outcome)
        if report.lost:
            log.warning(
                "msgbridge outbox: %d row(s) were taken over by another worker before this "
                "one finished (lease_seconds=%s is too short?)",
                report.lost,
                self.lease_seconds,
            )

    def _failed(
        self, tx: Any, row: LeasedRow, receipt: Receipt, now: float, report: BatchReport
    ) -> None:
        error = receipt.error
        retryable = isinstance(error, MessagingError) and (
            error.retryable or isinstance(error, self.retry_errors)
        )
        attempts = row.attempts + 1
        text = f"{type(error).__name__}: {error}" if error is not None else str(receipt.detail)
        if retryable and attempts < self.retry.max_attempts:
            assert isinstance(error, MessagingError)
            wait = (
                error.retry_after
                if error.retry_after is not None
                else self.retry.backoff(attempts, self.rng)
            )
            if sql.reschedule(tx, row, self.owner, now + max(0.0, wait), text, now):
                report.retried += 1
            else:
                report.lost += 1
            return
        reason = text if not retryable else f"gave up after {attempts} attempts: {text}"
        outcome = sql.bury(
            tx,
            row,
            self.owner,
            now,
            reason=reason,
            error_type=type(error).__name__ if error is not None else None,
            http_status=receipt.http_status,
            trace_id=receipt.trace_id,
        )
        self._count(report, outcome)

    @staticmethod
    def _count(report: BatchReport, outcome: str) -> None:
        if outcome.startswith("dead"):
            report.dead += 1
        if outcome.endswith("released"):
            report.released += 1
        if outcome == "lost":
            report.lost += 1

    @contextmanager
    def _heartbeat(self, rows: Sequence[LeasedRow]) -> Iterator[None]:
        """Renew the connection leases and extend this batch's row leases every third of
        ``lease_seconds`` while it is sent."""
        if not self.heartbeat:
            yield
            return
        stop = threading.Event()
        holder, claims = self._batch_claims

        def beat() -> None:
            while not stop.wait(self.lease_seconds / 3):
                if self.leases is not None:
                    self.leases.renew()  # logs its own storage errors
                try:
                    started = self.monotonic()
                    with self.store.transaction() as tx:
                        until = self.clock() + self.lease_seconds
                        sql.extend(tx, rows, self.owner, until)
                        sql.extend_claims(tx, claims, holder, until)
                    if started < self._claims_valid_until:  # not lapsed: still all ours
                        self._claims_valid_until = started + self.lease_seconds
                except StorageError as exc:  # the next beat may get through
                    log.warning("msgbridge outbox: could not extend leases: %s", exc)

        thread = threading.Thread(target=beat, name="msgbridge-outbox-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # -- loops ------------------------------------------------------------------------------
    def _pending(self) -> tuple[int, float | None]:
        """(rows pending for this worker's connections, when the next one it may send is
        ready). With leases, rows of connections another worker holds do not count for
        the second: this worker cannot send them, so it waits ``idle_interval`` rather
        than polling for them; ready rows of a connection nobody holds make the next
        batch rebalance at once."""
        names = self._names()
        with self.store.transaction(write=False) as tx:
            count, earliest = sql.next_available(tx, names)
            if self.leases is not None and count:
                now = self.clock()
                mine = [n for n in self.leases.held if n in set(names)]
                earliest = sql.next_available(tx, mine)[1] if mine else None
                free = sql.next_sendable(tx, names, self.owner, now)
                last = self._last_rebalance
                if (
                    free is not None
                    and free <= now
                    and (last is None or self.monotonic() - last >= self.rebalance_interval / 10)
                ):
                    # Ready rows of a connection nobody holds: rebalance at once.
                    self._rebalance_now = True
                    earliest = now
        return count, earliest

    def drain(self, until_empty: bool = True, *, timeout: float | None = None) -> BatchReport:
        """Send batches until nothing is ready (``until_empty=False``) or nothing is left.

        With ``until_empty`` it also waits (with ``sleep``) for rows scheduled for a later
        retry and for other workers' leases, so it returns when the outbox holds nothing
        for these connections, or when ``timeout`` seconds (of ``clock``) have passed.
        """
        total = BatchReport()
        started = self.clock()
        while True:
            report = self.run_once()
            total.add(report)
            if report.leased:
                continue
            if not until_empty:
                return total
            count, earliest = self._pending()
            if count == 0:
                return total
            now = self.clock()
            if timeout is not None and now - started >= timeout:
                return total
            wait = self._idle_wait(earliest, now)
            if timeout is not None:
                wait = min(wait, max(0.0, started + timeout - now))
            self.sleep(wait)

    def run_forever(self, stop_event: threading.Event) -> BatchReport:
        """Work until *stop_event* is set; storage hiccups are logged and retried."""
        total = BatchReport()
        while not stop_event.is_set():
            try:
                report = self.run_once()
                total.add(report)
                if report.leased:
                    continue
                _, earliest = self._pending()
            except StorageError as exc:
                if not exc.retryable:
                    raise
                log.warning("msgbridge outbox: %s; trying again", exc)
                stop_event.wait(self.idle_interval)
                continue
            stop_event.wait(self._idle_wait(earliest, self.clock()))
        return total

    def _idle_wait(self, earliest: float | None, now: float) -> float:
        """How long to wait for work: until the next row this worker may send is ready,
        at most ``idle_interval``."""
        wait = self.idle_interval if earliest is None else earliest - now
        return min(max(wait, 0.01), self.idle_interval)

    # -- lifecycle ------------------------------------------------------------------------
    def abandon(self) -> None:
        """Stop sending now (a shutdown past its deadline): every later attempt of the
        batch in flight fails its lease check and its row is given back unsent."""
        self.stopping.set()
        if self.leases is not None:
            self.leases.close()

    def release_leases(self) -> list[str]:
        """Give every connection lease back now (so another worker need not wait for them
        to expire); returns their names. Storage errors are logged: leases then expire."""
        if self.leases is None:
            return []
        try:
            return self.leases.release_all()
        except StorageError as exc:
            log.warning("msgbridge outbox: could not release connection leases: %s", exc)
            return []

    def close(self) -> None:
        """Release the connection leases and close the bridge this worker created."""
        self.release_leases()
        if self._owns_bridge:
            self.bridge.close()

    def __enter__(self) -> OutboxWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OutboxWorker {self.owner} on {self.store.location}>"


def _interrupted(row: LeasedRow, adapter: str) -> Receipt:
    """A publish that must not repeat, found half-sent: its worker died or lost the lease
    while sending it, so whether the vendor applied it is unknown."""
    error = OutcomeUnknown(
        "a previous attempt to publish this message was interrupted (its worker stopped or "
        "lost its lease while sending); the vendor may or may not have applied it, and "
        "msgbridge did not send it again to avoid a duplicate",
        connection=row.connection,
        subject_id=row.subject_id,
    )
    return Receipt(
        Outcome.FAILED,
        connection=row.connection,
        adapter=adapter,
        subject_id=row.subject_id,
        error=error,
        detail=error.message,
    )


def _stale(row: LeasedRow, update: MessageStatus, previous: Applied) -> Receipt:
    return Receipt(
        Outcome.SKIPPED_STALE,
        connection=row.connection,
        adapter="",
        subject_id=row.subject_id,
        state=update.state,
        detail=f"last applied state is {previous[0].value!r}",
    )
