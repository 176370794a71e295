"""A worker's bridge also used directly by the application (``update_status`` from a
request thread) while a batch is in flight.

Hostile check of "never backwards, whatever entry point": ``OutboxWorker(outbox,
bridge)`` takes the caller's bridge, and the application keeps using that bridge for
updates it sends at once. What such a direct update applied must reach the outbox's
applied states like any other, so a late, older callback is refused at enqueue.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from msgbridge import Bridge, MessageStatus, Outcome
from msgbridge.emulator import Emulator
from msgbridge.outbox import EnqueueOutcome, Outbox, OutboxWorker, PersistentGuard

from .conftest import hl_connection

HL_RANK = {"pending": 0, "delivered": 2, "read": 3, "failed": 2}


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.005)
    return False


def test_a_direct_update_during_a_worker_batch_is_recorded(emu: Emulator, tmp_path: Path) -> None:
    connection = hl_connection(emu)
    # The worker's request is held at the vendor, so its batch is in flight for a while.
    emu.faults.latency(1.0, vendor="highlevel", route="update_message_status", count=1)
    with Outbox(tmp_path / "outbox.db") as box:
        guard = box.guard()
        workers: list[OutboxWorker] = []
        bridge = Bridge([connection], guard=guard, fence=lambda name: workers[0].fence(name))
        worker = OutboxWorker(box, bridge)
        workers.append(worker)
        box.enqueue("highlevel", MessageStatus("m-queued", "delivered"))
        drained = threading.Thread(target=worker.drain)
        drained.start()
        try:
            assert wait_for(lambda: guard._depth > 0), "the worker's batch never started"
            # A request thread of the application, on the same bridge, meanwhile.
            direct = bridge.update_status("highlevel", MessageStatus("m-web", "read"))
            assert direct.outcome is Outcome.APPLIED
        finally:
            drained.join(20)
        # The carrier's late "delivered" callback for the message the vendor shows as read.
        late = box.enqueue("highlevel", MessageStatus("m-web", "delivered"))
        worker.drain()
        worker.close()
        bridge.close()
        assert PersistentGuard(box.store).last("highlevel", "m-web") is not None
    history = emu.message("highlevel", "m-web").statuses
    ranks = [HL_RANK[s] for s in history]
    assert ranks == sorted(ranks), history
    assert late.outcome is EnqueueOutcome.STALE


def test_a_direct_update_of_a_message_in_the_batch_is_recorded(
    emu: Emulator, tmp_path: Path
) -> None:
    """The same, for a message the worker is delivering: the direct ``read`` waits for
    the worker's ``pending`` (one turn per message) and goes out while the batch is
    still open (a slower account's row); the outbox must then know ``read``, not only
    the ``pending`` the worker settled."""
    connections = [hl_connection(emu), hl_connection(emu, "leadway")]
    emu.faults.latency(0.5, vendor="highlevel", route="update_message_status", count=1)
    emu.faults.latency(2.5, vendor="leadway", route="update_message_status", count=1)
    with Outbox(tmp_path / "outbox.db") as box:
        guard = box.guard()
        workers: list[OutboxWorker] = []
        bridge = Bridge(connections, guard=guard, fence=lambda name: workers[0].fence(name))
        worker = OutboxWorker(box, bridge)
        workers.append(worker)
        box.enqueue("highlevel", MessageStatus("m-both", "pending"))
        box.enqueue("leadway", MessageStatus("m-slow", "delivered"))
        drained = threading.Thread(target=worker.drain)
        drained.start()
        try:
            assert wait_for(lambda: guard._depth > 0), "the worker's batch never started"
            direct = bridge.update_status("highlevel", MessageStatus("m-both", "read"))
            assert direct.outcome is Outcome.APPLIED
            assert guard._depth > 0, "the batch ended before the direct update: no race"
        finally:
            drained.join(20)
        late = box.enqueue("highlevel", MessageStatus("m-both", "delivered"))
        worker.drain()
        worker.close()
        bridge.close()
    history = emu.message("highlevel", "m-both").statuses
    ranks = [HL_RANK[s] for s in history]
    assert ranks == sorted(ranks), history
    assert late.outcome is EnqueueOutcome.STALE
