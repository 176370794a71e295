"""Connection-affine leasing: one worker at a time sends for a connection (an account).

A vendor's budget, its message ordering and its token pair belong to an account, so the
outbox shares *accounts* between workers, not rows. Each worker:

* keeps a heartbeat row in ``msgbridge_workers`` (live while ``until`` is ahead), so
  every worker knows how many share the work;
* leases whole connections in ``msgbridge_leases``, at most its **fair share**
  ``ceil(connections with pending rows / live workers)``, and releases the ones above it
  (or with nothing left to send) between batches, so connections rebalance as workers
  join and leave;
* takes a **fence** with each acquisition: a per-connection counter bumped by every
  acquisition and never reset. Every row it leases carries that fence and every settle
  statement matches it, so a worker that lost a lease settles nothing;
* renews its leases from a heartbeat thread, and remembers locally (monotonic clock)
  until when each is surely valid. :meth:`ConnectionLeases.check` is called immediately
  before every HTTP attempt: past ``valid_until - margin`` it raises
  :class:`~msgbridge.errors.LeaseLost` and nothing is sent. A paused worker (GC,
  SIGSTOP, VM migration) or one cut off from the database therefore stops sending
  before another worker can take its connections over.

The lease in the database is written from this worker's wall clock (``clock``); the
local validity from its monotonic clock, starting *before* the renewal was sent. The
margin covers clock skew between hosts and the time between the check and the request
leaving the process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence

import attrs

from msgbridge.errors import ConfigurationError
from msgbridge.outbox.errors import LeaseLost, StorageError
from msgbridge.outbox.store import Store, Tx

__all__ = ["ConnectionLeases", "LeaseChange", "LeaseLost"]

log = logging.getLogger("msgbridge.outbox")


@attrs.frozen
class LeaseChange:
    """What one :meth:`ConnectionLeases.rebalance` did."""

    acquired: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    #: Live workers (this one included) and the fair share computed from them.
    workers: int = 1
    share: int = 0


@attrs.define
class _Held:
    fence: int
    #: Monotonic time until which the lease is surely held (renewal start + lease).
    valid_until: float


class ConnectionLeases:
    """The connection leases of one worker (*owner*) in *store*.

    ``connections`` are the names this worker can serve (``None``: any). Thread-safe:
    the worker's loop calls :meth:`rebalance`, a heartbeat thread :meth:`renew`, sending
    threads :meth:`check`.
    """

    def __init__(
        self,
        store: Store,
        owner: str,
        *,
        connections: Iterable[str] | None = None,
        lease_seconds: float = 60.0,
        margin: float | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease_seconds <= 0:
            raise ConfigurationError("lease_seconds must be positive", key="lease_seconds")
        self.margin = lease_seconds / 4 if margin is None else float(margin)
        if not 0 <= self.margin < lease_seconds:
            raise ConfigurationError(
                f"the lease safety margin must be at least 0 and below lease_seconds "
                f"({lease_seconds}), got {self.margin}",
                key="margin",
            )
        self.store = store
        self.owner = owner
        self.connections = sorted(set(connections)) if connections is not None else None
        self.lease_seconds = float(lease_seconds)
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._started = clock()
        self._rebalances = 0
        self._closed = False
        #: Local monotonic time each held connection last had pending rows.
        self._last_active: dict[str, float] = {}

    # -- what sending threads ask ----------------------------------------------------------
    def check(self, connection: str) -> int:
        """The fence if the lease on *connection* is surely still held; else
        :class:`LeaseLost` (send nothing for it)."""
        with self._lock:
            held = self._held.get(connection)
            closed = self._closed
        if closed:
            raise LeaseLost(
                f"this worker is shutting down; not sending for connection {connection!r}",
                connection=connection,
            )
        if held is None:
            raise LeaseLost(
                f"this worker does not hold the lease on connection {connection!r}",
                connection=connection,
            )
        left = held.valid_until - self.margin - self.monotonic()
        if left <= 0:
            raise LeaseLost(
                f"the lease on connection {connection!r} could not be renewed in time "
                f"(it may expire within the {self.margin:g} s safety margin); not sending",
                connection=connection,
            )
        return held.fence

    def holds(self, connection: str) -> bool:
        try:
            self.check(connection)
        except LeaseLost:
            return False
        return True

    @property
    def held(self) -> dict[str, int]:
        """``{connection: fence}`` of the leases held (as last renewed)."""
        with self._lock:
            return {name: h.fence for name, h in self._held.items()}

    def usable(self) -> list[str]:
        """Held connections that pass :meth:`check` now."""
        return sorted(name for name in self.held if self.holds(name))

    # -- heartbeat -------------------------------------------------------------------------
    def _beat(self, tx: Tx, now: float) -> None:
        tx.execute(
            "INSERT INTO msgbridge_workers (owner, started_at, seen_at, until) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET "
            "seen_at = excluded.seen_at, until = excluded.until",
            (self.owner, self._started, now, now + self.lease_seconds),
        )

    def _renew(self, tx: Tx, now: float, started: float) -> list[str]:
        """Extend every held lease whose fence is unchanged; drop (and return) the rest.

        An expired lease that nobody took since (same fence) is renewed: nobody else can
        have sent for the connection in between.
        """
        lost: list[str] = []
        for name, held in sorted(self.held.items()):
            changed = tx.execute(
                "UPDATE msgbridge_leases SET until = ? "
                "WHERE connection = ? AND owner = ? AND fence = ?",
                (now + self.lease_seconds, name, self.owner, held),
            )
            with self._lock:
                if changed:
                    self._held[name] = _Held(held, started + self.lease_seconds)
                else:
                    self._held.pop(name, None)
                    lost.append(name)
        return lost

    def renew(self) -> list[str]:
        """Heartbeat and renew held leases in one transaction; returns the leases lost.

        A storage error is logged and leaves the local validity as it was, so the leases
        run out (and sending stops) if the database stays unreachable.
        """
        started = self.monotonic()
        now = self.clock()
        try:
            with self.store.transaction() as tx:
                self._beat(tx, now)
                lost = self._renew(tx, now, started)
        except StorageError as exc:
            log.warning("msgbridge outbox: could not renew connection leases: %s", exc)
            return []
        if lost:
            log.warning(
                "msgbridge outbox: lost the lease on %s (taken over after it expired)",
                ", ".join(map(repr, lost)),
            )
        return lost

    # -- acquiring and releasing ---------------------------------------------------------
    def _active(self, tx: Tx) -> set[str]:
        if self.connections is None:
            rows = tx.fetchall("SELECT DISTINCT connection FROM msgbridge_outbox")
        else:
            rows = tx.fetchall(
                "SELECT DISTINCT connection FROM msgbridge_outbox "  # noqa: S608
                f"WHERE connection {tx.in_list}",
                (tx.id_list(self.connections),),
            )
        return {str(r[0]) for r in rows}

    def rebalance(self, busy: Collection[str] = ()) -> LeaseChange:
        """Heartbeat, renew, then move toward the fair share (one transaction).

        Releases held connections above the share, or with nothing pending for
        ``lease_seconds`` (never one in *busy*: its rows are being sent), and acquires
        free or expired ones with pending rows up to the share.
        """
        started = self.monotonic()
        now = self.clock()
        with self.store.transaction() as tx:
            self._beat(tx, now)
            lost = self._renew(tx, now, started)
            row = tx.fetchone("SELECT count(*) FROM msgbridge_workers WHERE until > ?", (now,))
            workers = max(1, int(row[0]) if row is not None else 1)
            active = self._active(tx)
            share = math.ceil(len(active) / workers) if active else 0
            held = self.held
            released: list[str] = []
            for name in held:
                if name in active:
                    self._last_active[name] = started
            # A connection with nothing pending is kept for a while (new rows usually
            # follow), then given back so leases exist only where there is work.
            idle = [
                n
                for n in held
                if n not in active
                and n not in busy
                and started - self._last_active.get(n, started) >= self.lease_seconds
            ]
            # Above the share: give back what has nothing pending first.
            # Only connections with pending rows count against the share; idle ones
            # kept for a while do not (they are given back after lease_seconds).
            extra = sorted(n for n in held if n in active and n not in busy)
            surplus = max(0, sum(1 for n in held if n in active) - share)
            for name in idle + extra[:surplus]:
                tx.execute(
                    "UPDATE msgbridge_leases SET owner = NULL, until = 0 "
                    "WHERE connection = ? AND owner = ? AND fence = ?",
                    (name, self.owner, held[name]),
                )
                released.append(name)
            with self._lock:
                for name in released:
                    self._held.pop(name, None)
                    self._last_active.pop(name, None)
            want = share - sum(1 for n in self._held if n in active)
            acquired = self._acquire(tx, sorted(active - set(held)), want, now, started)
            self._rebalances += 1
            if self._rebalances % 20 == 1:  # housekeeping: long-dead workers' heartbeats
                tx.execute(
                    "DELETE FROM msgbridge_workers WHERE until < ?",
                    (now - 10 * self.lease_seconds,),
                )
        return LeaseChange(
            acquired=tuple(acquired),
            released=tuple(released),
            lost=tuple(lost),
            workers=workers,
            share=share,
        )

    def _acquire(
        self, tx: Tx, candidates: Sequence[str], want: int, now: float, started: float
    ) -> list[str]:
        if want <= 0 or not candidates:
            return []
        tx.executemany(
            "INSERT INTO msgbridge_leases (connection) VALUES (?) ON CONFLICT DO NOTHING",
            [(name,) for name in candidates],
        )
        free = tx.fetchall(
            "SELECT connection FROM msgbridge_leases "  # noqa: S608
            f"WHERE connection {tx.in_list} AND (owner IS NULL OR until <= ?) "
            f"ORDER BY until, connection LIMIT ?{tx.skip_locked}",
            (tx.id_list(list(candidates)), now, want),
        )
        acquired: list[str] = []
        for (name,) in free:
            got = tx.fetchone(
                "UPDATE msgbridge_leases SET owner = ?, fence = fence + 1, until = ?, "
                "acquired_at = ? WHERE connection = ? AND (owner IS NULL OR until <= ?) "
                "RETURNING fence",
                (self.owner, now + self.lease_seconds, now, name, now),
            )
            if got is None:
                continue
            with self._lock:
                self._held[str(name)] = _Held(int(got[0]), started + self.lease_seconds)
                self._last_active[str(name)] = started
            acquired.append(str(name))
        return acquired

    def close(self) -> None:
        """Stop vouching for any lease: every later :meth:`check` raises
        :class:`LeaseLost` (a shutdown past its deadline stops sending at once)."""
        with self._lock:
            self._closed = True

    def release_all(self) -> list[str]:
        """Give every lease back now and leave the heartbeat table (shutdown): the
        connections' leases, and the rows this worker still has leased, which become
        ready at once for whoever takes the connections next."""
        held = self.held
        now = self.clock()
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE msgbridge_outbox SET lease_owner = NULL, lease_until = NULL, "
                "available_at = ? WHERE lease_owner = ?",
                (now, self.owner),
            )
            for name, fence in held.items():
                tx.execute(
                    "UPDATE msgbridge_leases SET owner = NULL, until = 0 "
                    "WHERE connection = ? AND owner = ? AND fence = ?",
                    (name, self.owner, fence),
                )
            tx.execute("DELETE FROM msgbridge_workers WHERE owner = ?", (self.owner,))
        with self._lock:
            self._held.clear()
        return sorted(held)

    def __repr__(self) -> str:
        return f"<ConnectionLeases {self.owner} holding {len(self._held)}>"
