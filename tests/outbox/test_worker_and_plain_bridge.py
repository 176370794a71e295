"""An outbox worker and a plain bridge (another process) sending for one account.

Hostile check of "never backwards, whatever entry point, across processes": a web
process calls ``Bridge.update_status`` with ``guard=outbox.guard()`` (claims keep plain
bridges apart) while an outbox worker drains the same connection. A connection lease
only excludes other *workers*, so the worker claims its batch's messages too: whichever
of the two has a request for a message in flight, the other waits for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from msgbridge import Bridge, MessageStatus, Outcome
from msgbridge.emulator import Emulator
from msgbridge.emulator.faults import FaultRule
from msgbridge.errors import VendorUnavailable
from msgbridge.outbox import Outbox, OutboxWorker, PersistentGuard
from msgbridge.retry import RetryPolicy

from .conftest import hl_connection

HL_RANK = {"pending": 0, "delivered": 2, "read": 3, "failed": 2}


def arrived(emu: Emulator, rule: FaultRule, timeout: float = 10.0) -> bool:
    """True once the one request *rule* holds has reached the vendor."""
    deadline = time.monotonic() + timeout
    while rule in emu.faults.rules and time.monotonic() < deadline:
        time.sleep(0.005)
    return rule not in emu.faults.rules


def in_thread(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work)
    thread.start()
    return thread


def assert_never_backwards(emu: Emulator, message_id: str) -> None:
    history = emu.message("highlevel", message_id).statuses
    ranks = [HL_RANK[s] for s in history]
    assert ranks == sorted(ranks), history


def test_a_plain_bridge_waits_for_the_workers_request(emu: Emulator, target: str) -> None:
    connection = hl_connection(emu)
    # The worker's request is held 1.5 s at the vendor before it is applied.
    held = emu.faults.latency(1.5, vendor="highlevel", route="update_message_status", count=1)
    with Outbox(target) as box:
        box.enqueue("highlevel", MessageStatus("m-1", "delivered"))
        with OutboxWorker.create(box, [connection]) as worker:
            drained = in_thread(worker.drain)
            try:
                assert arrived(emu, held), "the worker's request never arrived"
                # The web process, with its own guard over the same outbox.
                with Bridge(
                    [connection], guard=box.guard(), rate_limits=False, retry=RetryPolicy.none()
                ) as web:
                    read = web.update_status("highlevel", MessageStatus("m-1", "read"))
            finally:
                drained.join(20)
    assert read.outcome is Outcome.APPLIED
    assert_never_backwards(emu, "m-1")
    assert emu.message("highlevel", "m-1").statuses[-1] == "read"


def test_a_worker_gives_back_a_message_a_plain_bridge_is_sending(
    emu: Emulator, target: str
) -> None:
    connection = hl_connection(emu)
    # The web process's request is held 1.5 s at the vendor before it is applied.
    held = emu.faults.latency(1.5, vendor="highlevel", route="update_message_status", count=1)
    with Outbox(target) as box:
        receipts: list[Outcome] = []

        def web_sends_read() -> None:
            with Bridge(
                [connection], guard=box.guard(), rate_limits=False, retry=RetryPolicy.none()
            ) as web:
                read = web.update_status("highlevel", MessageStatus("m-2", "read"))
                receipts.append(read.outcome)

        web = in_thread(web_sends_read)
        try:
            assert arrived(emu, held), "the web process's request never arrived"
            box.enqueue("highlevel", MessageStatus("m-2", "delivered"))  # a late callback
            with OutboxWorker.create(box, [connection], idle_interval=0.05) as worker:
                report = worker.drain(timeout=20)
        finally:
            web.join(20)
        assert box.stats().pending == 0
    assert receipts == [Outcome.APPLIED]
    assert report.applied == 0  # "delivered" came after "read": dropped as stale
    assert_never_backwards(emu, "m-2")


def test_a_plain_bridge_does_not_undercut_a_pending_row_the_vendor_may_have(
    emu: Emulator, target: str
) -> None:
    """The worker's ``read`` reached the vendor but its answer was lost (connection cut
    after the vendor applied it): the row is rescheduled, ``read`` is not recorded as
    applied, and no one holds a claim. A plain bridge's ``delivered`` for the message
    must not go out meanwhile: the outbox still means to deliver ``read``."""
    connection = hl_connection(emu)
    with Outbox(target) as box:
        box.enqueue("highlevel", MessageStatus("m-3", "read"))
        cut = emu.faults.drop(vendor="highlevel", route="update_message_status", after=True)
        with OutboxWorker.create(box, [connection], bridge_retry=RetryPolicy.none()) as worker:
            assert worker.run_once().retried == 1
        emu.faults.remove(cut)
        assert emu.message("highlevel", "m-3").statuses == ["read"]  # applied, unknown to us
        with Bridge(
            [connection], guard=box.guard(), rate_limits=False, retry=RetryPolicy.none()
        ) as web:
            delivered = web.update_status("highlevel", MessageStatus("m-3", "delivered"))
        assert box.stats().pending == 1  # the outbox still delivers "read" later
    assert delivered.outcome is Outcome.SKIPPED_SUPERSEDED
    assert_never_backwards(emu, "m-3")


@pytest.mark.xfail(
    strict=True,
    reason=(
        "a plain bridge's request whose answer was lost after the vendor applied it fails "
        "(VendorUnavailable); MessagePolicy.settle then releases the claim and nothing records "
        "that the state may be at the vendor, so another process's older update is sent "
        "and applied. Preventing it needs the guard to remember an uncertain state (from "
        "a failure after the request left) and to treat it as possibly applied until a "
        "later attempt settles it: a product decision (the caller that got FAILED may "
        "never retry, and its older updates would then be skipped)."
    ),
)
def test_an_update_whose_answer_was_lost_is_not_undercut_by_another_process(
    emu: Emulator, target: str
) -> None:
    connection = hl_connection(emu)
    with Outbox(target) as box:
        cut = emu.faults.drop(vendor="highlevel", route="update_message_status", after=True)
        with (
            Bridge(
                [connection], guard=box.guard(), rate_limits=False, retry=RetryPolicy.none()
            ) as first,
            pytest.raises(VendorUnavailable),
        ):  # the answer was lost
            first.update_status("highlevel", MessageStatus("m-4", "read"))
        emu.faults.remove(cut)
        assert emu.message("highlevel", "m-4").statuses == ["read"]  # applied all the same
        with Bridge(
            [connection], guard=box.guard(), rate_limits=False, retry=RetryPolicy.none()
        ) as second:
            second.update_status("highlevel", MessageStatus("m-4", "delivered"))
    assert_never_backwards(emu, "m-4")


class _Clock:
    """Epoch seconds for the worker (its leases, claims and local validity) and the web
    process's guard; the test moves it forward to play a pause of the worker."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_worker_paused_past_its_claims_does_not_send_the_rest_of_its_batch(
    emu: Emulator, tmp_path: Path
) -> None:
    """The worker is paused (SIGSTOP, GC) mid-batch for longer than its lease. Nobody
    took the connection, so on resumption its heartbeat simply renews the lease (same
    fence); but its claims on the batch's messages lapsed meanwhile and a web process
    claimed ``m-6`` and applied ``read``. The worker must not send the ``delivered`` it
    leased before the pause."""
    connection = hl_connection(emu)
    # The first message's request is held, so the worker is mid-batch for a while.
    held = emu.faults.latency(1.0, vendor="highlevel", route="update_message_status", count=1)
    with Outbox(tmp_path / "outbox.db") as box:
        box.enqueue("highlevel", MessageStatus("m-5", "delivered"))
        box.enqueue("highlevel", MessageStatus("m-6", "delivered"))
        clock = _Clock()  # after the enqueues: the rows are ready by this clock
        with OutboxWorker.create(
            box, [connection], clock=clock, heartbeat=False, lease_seconds=10, per_connection=1
        ) as worker:
            batch = in_thread(worker.run_once)
            try:
                assert arrived(emu, held), "the worker's first request never arrived"
                clock.now += 11  # the pause: past the lease and the batch's claims
                with Bridge(
                    [connection],
                    guard=PersistentGuard(box.store, clock=clock),
                    rate_limits=False,
                    retry=RetryPolicy.none(),
                ) as web:
                    read = web.update_status("highlevel", MessageStatus("m-6", "read"))
                assert read.outcome is Outcome.APPLIED
                assert worker.leases is not None
                worker.leases.renew()  # resumed: the heartbeat renews the untaken lease
            finally:
                batch.join(20)
            worker.drain(timeout=20)
    assert_never_backwards(emu, "m-6")
    assert emu.message("highlevel", "m-6").statuses[-1] == "read"
