"""One ``PersistentGuard`` shared by a thread's ``Bridge`` and a task's ``AsyncBridge``.

Hostile check of "a message never goes backwards, threads and tasks mixed": a web app
hands its one ``outbox.guard()`` to the sync bridge its request threads use and to the
async bridge (aiohttp sender) its background task uses. Each bridge orders its own
callers per message; across the two bridges only the guard's claim can, and a claim
must keep out the other bridge even though both hold the same guard object.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from msgbridge import AsyncBridge, Bridge, DeliveryState, MessageStatus, Outcome
from msgbridge.emulator import Emulator
from msgbridge.fast import AiohttpSender
from msgbridge.outbox import Outbox
from msgbridge.retry import RetryPolicy

from .conftest import hl_connection


def claimed(box: Outbox, message_id: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with box.store.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT holder FROM msgbridge_claims WHERE message_id = ?", (message_id,)
            )
        if row is not None and row[0] is not None:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.anyio
async def test_a_thread_and_a_task_sharing_one_guard_never_regress(
    emu: Emulator, tmp_path: Path
) -> None:
    connection = hl_connection(emu)
    # The thread's ``delivered`` is held 1.5 s at the vendor before it is applied.
    emu.faults.latency(1.5, vendor="highlevel", route="update_message_status", count=1)
    with Outbox(tmp_path / "outbox.db") as box:
        guard = box.guard()
        sync_bridge = Bridge([connection], guard=guard, rate_limits=False, retry=RetryPolicy.none())
        receipts: list[Outcome] = []
        delivered = MessageStatus("m-mixed", "delivered")

        def send_delivered() -> None:
            receipts.append(sync_bridge.update_status("highlevel", delivered).outcome)

        thread = threading.Thread(target=send_delivered)
        thread.start()
        try:
            assert await asyncio.to_thread(claimed, box, "m-mixed")
            async with AsyncBridge(
                [connection],
                guard=guard,
                sender=AiohttpSender(),
                rate_limits=False,
                retry=RetryPolicy.none(),
            ) as async_bridge:
                read = await async_bridge.update_status(
                    "highlevel", MessageStatus("m-mixed", "read")
                )
        finally:
            await asyncio.to_thread(thread.join, 20)
            sync_bridge.close()
        last = guard.last("highlevel", "m-mixed")
    assert receipts == [Outcome.APPLIED]
    assert read.outcome is Outcome.APPLIED
    history = emu.message("highlevel", "m-mixed").statuses
    assert history[-1] == "read", history
    assert last is DeliveryState.READ
