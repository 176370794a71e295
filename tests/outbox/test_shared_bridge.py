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
