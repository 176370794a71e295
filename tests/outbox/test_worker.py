"""The worker against the real emulator over loopback, on a real SQLite file."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgbridge import (
    Bridge,
    Connection,
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    Outcome,
    Receipt,
    StatusError,
)
from msgbridge.emulator import Emulator, RateLimit
from msgbridge.guard import Guard
from msgbridge.outbox import EnqueueOutcome, Outbox, OutboxWorker
from msgbridge.retry import RetryPolicy

from .conftest import FakeClock, hl_connection, make_worker, sqlite_rows

S = DeliveryState
#: How HighLevel shows each neutral state (SENT has no own value: "pending").
HL_VALUE = {
    S.PENDING: "pending",
    S.SENT: "pending",
    S.DELIVERED: "delivered",
    S.READ: "read",
    S.FAILED: "failed",
}


def test_drain_applies_final_states_across_connections(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    rng = random.Random(7)
    expected: dict[tuple[str, str], DeliveryState] = {}
    for index in range(60):
        vendor = ("highlevel", "leadway", "hoop")[index % 3]
        final: DeliveryState | None = None
        for state in rng.sample(list(S), k=rng.randint(1, 4)):
            error = StatusError("boom") if state is S.FAILED else None
            outbox.enqueue(vendor, MessageStatus(f"m{index}", state, error=error))
            if final is None or state.may_follow(final):
                final = state
        assert final is not None
        expected[(vendor, f"m{index}")] = final
    with make_worker(outbox, connections, clock, batch_size=25) as worker:
        report = worker.drain()
    assert report.applied == 60
    assert report.dead == 0
    assert report.batches >= 3
    assert outbox.stats().pending == 0
    for (vendor, message_id), state in expected.items():
        assert emu.message(vendor, message_id).statuses == [HL_VALUE[state]]
    applied = dict(
        ((c, m), s)
        for c, m, s in sqlite_rows(
            Path(outbox.store.location),
            "SELECT connection, message_id, state FROM msgbridge_applied",
        )
    )
    assert applied == {key: state.value for key, state in expected.items()}


def test_conversation_updates_are_delivered_merged(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    emu.seed_conversation("highlevel", "c1", account="demo-location", unread_count=5)
    outbox.enqueue("highlevel", ConversationUpdate("c1", unread_count=2))
    outbox.enqueue("highlevel", ConversationUpdate("c1", starred=True))
    outbox.enqueue("highlevel", ConversationUpdate("c1", unread_count=0))
    with make_worker(outbox, connections, clock) as worker:
        assert worker.drain().applied == 1
    state = emu.conversation("highlevel", "c1")
    assert (state.unread_count, state.starred) == (0, True)


def test_newer_version_during_send_is_released_and_sent_next(
    outbox: Outbox, emu: Emulator, connections: list[Connection]
) -> None:
    outbox.enqueue("highlevel", MessageStatus("m1", "delivered"))
    emu.faults.latency(0.4, count=1)
    worker = make_worker(outbox, connections, FakeClock(), heartbeat=False)
    worker.clock = outbox.clock  # same clock for both sides

    def later() -> None:
        time.sleep(0.15)
        assert outbox.enqueue("highlevel", MessageStatus("m1", "read")).version == 2

    thread = threading.Thread(target=later)
    thread.start()
    with worker:
        first = worker.run_once()
        thread.join()
        assert (first.applied, first.released) == (0, 1)
        second = worker.drain()
    assert second.applied == 1
    assert emu.message("highlevel", "m1").statuses == ["delivered", "read"]
    assert outbox.stats().pending == 0


def test_retryable_5xx_is_rescheduled_with_backoff_then_applied(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    outbox.enqueue("highlevel", MessageStatus("m1", "delivered"))
    outbox.enqueue("leadway", MessageStatus("m2", "delivered"))
    emu.faults.script([503, 503], vendor="highlevel")
    start = clock.now
    with make_worker(outbox, connections, clock) as worker:
        report = worker.drain(until_empty=False)
        assert (report.retried, report.applied) == (1, 1)  # leadway was not held up
        [row] = outbox.pending()
        assert row.attempts == 1
        assert row.available_at == pytest.approx(start + 10.0)  # backoff(1), no jitter
        assert row.last_error is not None
        assert "VendorUnavailable" in row.last_error
        assert row.lease_owner is None
        stats = {r.connection: r for r in outbox.stats().rows}
        assert (stats["highlevel"].scheduled, stats["highlevel"].retrying) == (1, 1)
        second = worker.drain(until_empty=False)  # nothing is due yet
        assert second.leased == 0
        clock.advance(10.0)
        worker.drain(until_empty=False)  # the second scripted 503
        [row] = outbox.pending()
        assert row.attempts == 2
        assert row.available_at == pytest.approx(clock.now + 20.0)  # backoff(2)
        final = worker.drain()  # waits (fake sleep) for the retry, then applies
    assert final.applied == 1
    assert sum(clock.sleeps) == pytest.approx(20.0)
    assert emu.message("highlevel", "m1").statuses == ["delivered"]


def test_429_with_retry_after_waits_what_the_vendor_said(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    emu.configure("highlevel", retry_after=True, rate_limits_enabled=True)
    emu.set_rate_limit("highlevel", RateLimit(max_requests=1, interval=30.0))
    outbox.enqueue("highlevel", MessageStatus("m1", "delivered"))
    outbox.enqueue("highlevel", MessageStatus("m2", "delivered"))
    with make_worker(outbox, connections, clock, max_in_flight=1) as worker:
        report = worker.drain(until_empty=False)
        assert (report.applied, report.retried) == (1, 1)
        [row] = outbox.pending()
        assert row.last_error is not None
        assert "RateLimited" in row.last_error
        assert 28.0 <= row.available_at - clock.now <= 30.0
        emu.set_rate_limit("highlevel", None)
        assert worker.drain().applied == 1


def test_provider_race_waits_the_adapter_hint(
    outbox: Outbox, emu: Emulator, clock: FakeClock
) -> None:
    emu.seed_message("highlevel", "m1", account="demo-location", provider_ready_after=60.0)
    connection = hl_connection(emu, provider_retry_after=7.0)
    outbox.enqueue("highlevel", MessageStatus("m1", "delivered"))
    with make_worker(outbox, [connection], clock) as worker:
        assert worker.drain(until_empty=False).retried == 1
    [row] = outbox.pending()
    assert row.available_at == pytest.approx(clock.now + 7.0)
    assert row.last_error is not None
    assert "ProviderNotReady" in row.last_error


def test_permanent_failure_is_dead_lettered_with_reason_and_trace_id(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    emu.configure("highlevel", unknown_messages="reject")
    outbox.enqueue("highlevel", MessageStatus("ghost", "delivered"))
    outbox.enqueue("highlevel", MessageStatus("ghost", "read"))
    with make_worker(outbox, connections, clock) as worker:
        report = worker.drain()
    assert (report.dead, report.applied, report.retried) == (1, 0, 0)
    assert outbox.stats().pending == 0
    [dead] = outbox.dead_letters()
    assert (dead.connection, dead.kind, dead.subject_id, dead.state) == (
        "highlevel",
        "status",
        "ghost",
        S.READ,
    )
    assert dead.update == MessageStatus("ghost", "read")
    assert dead.error_type == "NotFound"
    assert dead.http_status == 404
    assert "Message not found" in dead.reason
    [request] = emu.find_requests(status=404)
    assert dead.trace_id is not None
    assert dead.trace_id == request.response["traceId"]
    assert dead.attempts == 1
    assert outbox.dead_letter(dead.id) == dead
    stats = {(r.connection, r.state): r.dead for r in outbox.stats().rows}
    assert stats == {("highlevel", "read"): 1}


def test_attempts_exhausted_go_to_dead_letters(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    emu.faults.error_rate(1.0, (502,), vendor="highlevel")
    outbox.enqueue("highlevel", MessageStatus("m1", "sent"))
    with make_worker(outbox, connections, clock) as worker:
        report = worker.drain()
    assert (report.retried, report.dead) == (2, 1)  # max_attempts=3
    [dead] = outbox.dead_letters()
    assert dead.reason.startswith("gave up after 3 attempts: VendorUnavailable")
    assert (dead.error_type, dead.http_status, dead.attempts) == ("VendorUnavailable", 502, 3)


def test_requeue_by_id_and_all(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    emu.configure("highlevel", unknown_messages="reject")
    for message_id in ("a", "b", "c"):
        outbox.enqueue("highlevel", MessageStatus(message_id, "delivered"))
    with make_worker(outbox, connections, clock) as worker:
        assert worker.drain().dead == 3
        letters = {d.subject_id: d.id for d in outbox.dead_letters()}
        for message_id in ("a", "b", "c"):
            emu.seed_message("highlevel", message_id, account="demo-location")
        with pytest.raises(KeyError):
            outbox.requeue([letters["a"], 999_999])
        assert len(outbox.dead_letters()) == 3  # nothing was requeued
        results = outbox.requeue(letters["a"])
        assert results[letters["a"]].outcome is EnqueueOutcome.ENQUEUED
        assert worker.drain().applied == 1
        assert {d.subject_id for d in outbox.dead_letters()} == {"b", "c"}
        # "b" was overtaken meanwhile: requeued, it comes back stale and is not resent.
        outbox.enqueue("highlevel", MessageStatus("b", "read"))
        assert worker.drain().applied == 1
        results = outbox.requeue(all=True)
        outcomes = {outbox_id: r.outcome for outbox_id, r in results.items()}
        assert outcomes == {
            letters["b"]: EnqueueOutcome.STALE,
            letters["c"]: EnqueueOutcome.ENQUEUED,
        }
        assert outbox.dead_letters() == []
        assert worker.drain().applied == 1
    assert emu.message("highlevel", "a").statuses == ["delivered"]
    assert emu.message("highlevel", "b").statuses == ["read"]
    assert emu.message("highlevel", "c").statuses == ["delivered"]


def test_expired_leases_of_a_dead_worker_return(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    for index in range(5):
        outbox.enqueue("highlevel", MessageStatus(f"m{index}", "read"))
    with outbox.store.transaction() as tx:  # a worker leases, then dies before sending
        leased = outbox.store.lease(
            tx,
            owner="crashed",
            now=clock.now,
            until=clock.now + 60,
            limit=3,
            scan=100,
            per_connection=100,
            connections=None,
        )
    assert len(leased) == 3
    assert {r.connection: r.leased for r in outbox.stats().rows} == {"highlevel": 3}
    with make_worker(outbox, connections, clock, lease_seconds=60) as worker:
        assert worker.drain(until_empty=False).applied == 2  # the unleased ones
        clock.advance(59)
        assert worker.drain(until_empty=False).leased == 0
        clock.advance(2)
        assert worker.drain(until_empty=False).applied == 3
    assert outbox.stats().pending == 0
    assert all(emu.message("highlevel", f"m{i}").statuses == ["read"] for i in range(5))


def test_heartbeat_keeps_a_slow_batch_leased(
    db_path: Path, emu: Emulator, connections: list[Connection]
) -> None:
    emu.faults.latency(0.8, count=1)
    with Outbox(db_path) as outbox:  # real time
        outbox.enqueue("highlevel", MessageStatus("m1", "read"))
        bridge = Bridge(connections, retry=RetryPolicy.none(), guard=outbox.guard())
        worker = OutboxWorker(outbox, bridge, lease_seconds=0.3, owner="slow")
        thief = OutboxWorker(outbox, bridge, lease_seconds=0.3, owner="thief")
        stolen: list[int] = []

        def steal() -> None:
            for _ in range(8):
                time.sleep(0.1)
                stolen.append(thief.run_once().leased)

        thread = threading.Thread(target=steal)
        thread.start()
        report = worker.run_once()
        thread.join()
        bridge.close()
    assert report.applied == 1
    assert report.lost == 0
    assert sum(stolen) == 0
    assert emu.message("highlevel", "m1").statuses == ["read"]


def test_the_persisted_guard_is_a_guard(outbox: Outbox) -> None:
    guard = outbox.guard()
    assert isinstance(guard, Guard)
    assert guard.check("acme", "m1", S.DELIVERED, "delivered") is None
    guard.record("acme", "m1", S.DELIVERED, "delivered")
    assert guard.last("acme", "m1") is S.DELIVERED
    assert guard.check("acme", "m1", S.SENT, "pending") is Outcome.SKIPPED_STALE
    assert guard.check("acme", "m1", S.DELIVERED, "delivered") is Outcome.SKIPPED_DUPLICATE
    guard.forget("acme")  # in-memory only: the database keeps protecting the message
    assert outbox.guard().last("acme", "m1") is S.DELIVERED
    assert outbox.forget_applied("acme") == 1
    assert guard.last("acme", "m1") is None


def test_stale_row_is_settled_without_a_request(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    outbox.enqueue("highlevel", MessageStatus("m1", "delivered"))
    # Another process applies "read" directly, through the same persisted guard.
    with Bridge(connections, guard=outbox.guard(), rate_limits=False) as direct:
        assert direct.update_status("highlevel", MessageStatus("m1", "read")).outcome is (
            Outcome.APPLIED
        )
    emu.clear_requests()
    with make_worker(outbox, connections, clock) as worker:
        report = worker.drain()
    assert (report.skipped, report.applied) == (1, 0)
    assert emu.request_count == 0
    assert emu.message("highlevel", "m1").statuses == ["read"]


def test_applied_state_survives_restarts_and_processes(
    db_path: Path, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    with Outbox(db_path, clock=clock) as outbox:
        outbox.enqueue("highlevel", MessageStatus("m1", "read"))
        with make_worker(outbox, connections, clock) as worker:
            worker.drain()
    with Outbox(db_path, clock=clock) as reopened:
        assert reopened.enqueue("highlevel", MessageStatus("m1", "delivered")).outcome is (
            EnqueueOutcome.STALE
        )
        emu.clear_requests()
        with Bridge(connections, guard=reopened.guard(), rate_limits=False) as bridge:
            receipt = bridge.update_status("highlevel", MessageStatus("m1", "delivered"))
            duplicate = bridge.update_status("highlevel", MessageStatus("m1", "read"))
        assert receipt.outcome is Outcome.SKIPPED_STALE
        assert duplicate.outcome is Outcome.SKIPPED_DUPLICATE
        assert emu.request_count == 0


def test_worker_leases_only_its_connections(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    outbox.enqueue("highlevel", MessageStatus("m1", "read"))
    outbox.enqueue("elsewhere", MessageStatus("m2", "read"))
    with make_worker(outbox, connections, clock) as worker:
        assert worker.drain().applied == 1
    [row] = outbox.pending()
    assert row.connection == "elsewhere"
    assert row.lease_owner is None


def test_unreadable_stored_update_is_dead_lettered(
    outbox: Outbox, connections: list[Connection], clock: FakeClock
) -> None:
    outbox.enqueue("highlevel", MessageStatus("m1", "read"))
    with outbox.store.transaction() as tx:
        tx.execute("UPDATE msgbridge_outbox SET payload = '{\"message_id\": 3}'")
    with make_worker(outbox, connections, clock) as worker:
        assert worker.drain().dead == 1
    [dead] = outbox.dead_letters()
    assert dead.update is None
    assert dead.error_type == "InvalidStatus"
    assert "cannot be read" in dead.reason
    assert outbox.requeue(all=True) == {}  # left in place for inspection


def test_run_forever_until_stopped(
    db_path: Path, emu: Emulator, connections: list[Connection]
) -> None:
    with Outbox(db_path) as outbox:
        worker = OutboxWorker.create(outbox, connections, rate_limits=False, idle_interval=0.05)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run_forever, args=(stop,))
        thread.start()
        try:
            for index in range(10):
                outbox.enqueue("hoop", MessageStatus(f"m{index}", "delivered"))
            deadline = time.monotonic() + 10
            while outbox.stats().pending and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join(10)
            worker.close()
        assert not thread.is_alive()
        assert outbox.stats().pending == 0
    assert all(emu.message("hoop", f"m{i}").statuses == ["delivered"] for i in range(10))


class InterruptedBridge(Bridge):
    """A real bridge whose caller is interrupted (Ctrl-C) after the first receipt."""

    def update_many(self, items: Any, **options: Any) -> Iterator[Receipt]:
        receipts = super().update_many(items, **options)
        try:
            yield next(receipts)
        finally:
            receipts.close()
        raise KeyboardInterrupt


def test_an_interrupted_batch_is_settled_and_released_at_once(
    outbox: Outbox, emu: Emulator, connections: list[Connection], clock: FakeClock
) -> None:
    for index in range(3):
        outbox.enqueue("highlevel", MessageStatus(f"m{index}", "read"))
    bridge = InterruptedBridge(connections, retry=RetryPolicy.none(), guard=outbox.guard())
    with OutboxWorker(outbox, bridge, clock=clock) as worker, pytest.raises(KeyboardInterrupt):
        worker.run_once()
    bridge.close()
    left = outbox.pending()
    assert len(left) == 2  # the receipt that came back was settled
    assert all(p.lease_owner is None and p.available_at <= clock.now for p in left)
    with make_worker(outbox, connections, clock) as worker:
        worker.drain()
    assert outbox.stats().pending == 0
    assert all(emu.message("highlevel", f"m{i}").status == "read" for i in range(3))
