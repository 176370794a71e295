"""The state guard and the batch queue against the emulator: stale and duplicate updates
never reach the vendor, and what does reach it follows the neutral model's order."""

from __future__ import annotations

import pytest

from msgbridge import AdapterRegistry, DeliveryState, MessageStatus, Outcome, StatusError
from msgbridge.emulator import Emulator

from .support import connection, open_runner, seed

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
async def test_stale_and_duplicate_updates_are_not_sent(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    seed(emu, vendor, "m-guard")
    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        outcomes = [
            (await runner.update_status(vendor, MessageStatus("m-guard", state))).outcome
            for state in ("delivered", "sent", "read", "read", "delivered")
        ]
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.SKIPPED_STALE,
        Outcome.APPLIED,
        Outcome.SKIPPED_DUPLICATE,
        Outcome.SKIPPED_STALE,
    ]
    expected = ["SENT", "READ"] if vendor == "hubspot" else ["delivered", "read"]
    assert emu.message(vendor, "m-guard").statuses == expected
    assert len(emu.requests) == 2


async def test_failed_after_a_coarsely_mapped_delivered_is_stale(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    seed(emu, "hubspot", "m-coarse")
    conn = connection(emu, "hubspot")
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        sent = await runner.update_status("hubspot", MessageStatus("m-coarse", "sent"))
        delivered = await runner.update_status("hubspot", MessageStatus("m-coarse", "delivered"))
        failed = await runner.update_status(
            "hubspot",
            MessageStatus("m-coarse", "failed", error=StatusError("late bounce")),
        )
    assert sent.outcome is Outcome.APPLIED
    assert delivered.outcome is Outcome.SKIPPED_DUPLICATE
    assert failed.outcome is Outcome.SKIPPED_STALE
    assert emu.message("hubspot", "m-coarse").statuses == ["SENT"]


async def test_update_queued_behind_a_stale_one_is_not_lost(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    seed(emu, "highlevel", "m-batch")
    seed(emu, "hubspot", "m-other")
    # Keep DELIVERED in flight while the rest of the batch arrives behind it.
    emu.faults.latency(0.15, vendor="highlevel", count=1)
    items = [
        ("highlevel", MessageStatus("m-batch", DeliveryState.DELIVERED)),
        ("hubspot", MessageStatus("m-other", DeliveryState.SENT)),
        ("highlevel", MessageStatus("m-batch", DeliveryState.FAILED)),
        ("highlevel", MessageStatus("m-batch", DeliveryState.READ)),
    ]
    conns = [connection(emu, "highlevel"), connection(emu, "hubspot")]
    async with open_runner(runner_kind, conns, registry=registry) as runner:
        receipts = await runner.update_many(items, max_in_flight=2, max_pending=2)

    by_index = {r.index: r.outcome for r in receipts}
    assert by_index[0] is Outcome.APPLIED
    assert by_index[1] is Outcome.APPLIED
    assert by_index[2] is Outcome.SKIPPED_STALE, by_index
    assert emu.message("highlevel", "m-batch").statuses == ["delivered", "read"], by_index
    assert by_index[3] is Outcome.APPLIED
