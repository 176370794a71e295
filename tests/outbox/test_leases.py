"""Connection leases: fair share, rebalancing, fences, and the local validity check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from msgbridge import Connection, MessageStatus
from msgbridge.emulator import Emulator
from msgbridge.errors import ConfigurationError
from msgbridge.outbox import ConnectionLeases, LeaseLost, Outbox, sql
from msgbridge.outbox.sql import LeasedRow

from .conftest import FakeClock, make_worker


@pytest.fixture(params=["sqlite", "postgresql"])
def box(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    target: str = (
        str(tmp_path / "l.db") if request.param == "sqlite" else request.getfixturevalue("pg_dsn")
    )
    with Outbox(target, clock=clock) as outbox:
        yield outbox


def fill(box: Outbox, names: list[str]) -> None:
    box.enqueue_many([(name, MessageStatus("m1", "delivered")) for name in names])


def leases(box: Outbox, owner: str, clock: FakeClock, **options: Any) -> ConnectionLeases:
    return ConnectionLeases(
        box.store, owner, lease_seconds=30, clock=clock, monotonic=clock, **options
    )


def test_workers_split_connections_fairly_and_rebalance_as_they_come_and_go(
    box: Outbox, clock: FakeClock
) -> None:
    names = [f"c{i}" for i in range(6)]
    fill(box, names)
    a = leases(box, "a", clock)
    first = a.rebalance()
    assert (first.workers, first.share, len(first.acquired)) == (1, 6, 6)
    b, c = leases(box, "b", clock), leases(box, "c", clock)
    b.renew(), c.renew()  # b and c join: three live workers, a fair share of 2
    assert b.rebalance().acquired == ()  # nothing free yet
    change = a.rebalance()
    assert (change.workers, change.share, len(change.released)) == (3, 2, 4)
    assert len(b.rebalance().acquired) == 2
    assert len(c.rebalance().acquired) == 2
    assert sorted([*a.held, *b.held, *c.held]) == names  # each connection once
    # c leaves without a word (killed): once its heartbeat and leases expire, a and b
    # take its connections over.
    clock.advance(31)
    a.rebalance(), b.rebalance()
    a.rebalance(), b.rebalance()
    assert sorted([*a.held, *b.held]) == names
    assert (len(a.held), len(b.held)) == (3, 3)


def test_every_acquisition_takes_a_new_fence(box: Outbox, clock: FakeClock) -> None:
    fill(box, ["acme"])
    a, b = leases(box, "a", clock), leases(box, "b", clock)
    a.rebalance()
    first = a.held["acme"]
    clock.advance(31)  # a paused past its lease; b takes over
    assert b.rebalance().acquired == ("acme",)
    assert b.held["acme"] == first + 1
    with pytest.raises(LeaseLost, match="acme"):
        a.check("acme")
    assert a.rebalance().lost == ("acme",)  # a's renewal meets the new fence
    b.release_all()
    a.rebalance()
    assert a.held["acme"] == first + 2


def test_an_expired_lease_nobody_took_is_renewed(box: Outbox, clock: FakeClock) -> None:
    fill(box, ["acme"])
    a = leases(box, "a", clock)
    a.rebalance()
    fence = a.held["acme"]
    clock.advance(100)
    assert a.renew() == []
    assert a.check("acme") == fence


def test_check_stops_before_the_lease_can_expire(box: Outbox, clock: FakeClock) -> None:
    fill(box, ["acme"])
    a = leases(box, "a", clock, margin=5)
    a.rebalance()
    clock.advance(24.9)
    assert a.check("acme") == a.held["acme"]
    clock.advance(0.2)  # within the margin of expiry: not sure any more
    with pytest.raises(LeaseLost, match="safety margin"):
        a.check("acme")
    with pytest.raises(LeaseLost, match="does not hold"):
        a.check("other")


def test_a_worker_settles_nothing_under_a_lost_fence(
    emu: Emulator, connections: list[Connection], clock: FakeClock, tmp_path: Path
) -> None:
    with Outbox(tmp_path / "f.db", clock=clock) as box:
        box.enqueue("highlevel", MessageStatus("m1", "delivered"))
        worker = make_worker(box, connections, clock, lease_seconds=30)
        worker.rebalance()
        with box.store.transaction() as tx:
            raw = box.store.lease(
                tx,
                owner=worker.owner,
                now=clock.now,
                until=clock.now + 30,
                limit=10,
                scan=10,
                per_connection=10,
                connections=["highlevel"],
                fenced=True,
            )
        row = LeasedRow.from_row(raw[0])
        assert worker.leases is not None
        assert row.fence == worker.leases.held["highlevel"]
        with box.store.transaction() as tx:  # the lease changed hands (and back) meanwhile
            tx.execute("UPDATE msgbridge_outbox SET fence = fence + 1")
        with box.store.transaction() as tx:
            assert sql.finish(tx, row, worker.owner, clock.now) == "lost"
            assert not sql.reschedule(tx, row, worker.owner, clock.now, "x", clock.now)
        assert box.stats().pending == 1
        worker.close()


def test_bad_margins_are_refused(box: Outbox, clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError, match="margin"):
        leases(box, "a", clock, margin=30)
