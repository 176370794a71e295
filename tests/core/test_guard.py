"""The state guard: no stale or duplicate status reaches the vendor."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from msgbridge import (
    AsyncBridge,
    DeliveryState,
    MessageStatus,
    Outcome,
    RetryPolicy,
    StateGuard,
    StatusError,
)
from msgbridge.errors import UnsupportedStatus, VendorRejected, VendorUnavailable

from .support import (
    AsyncYieldingVendor,
    FakeClock,
    FakeVendor,
    Harness,
    fresh_registry,
    hl_connection,
    hl_error,
    hs_connection,
)

pytestmark = pytest.mark.anyio


def status(state: str, message_id: str = "m1") -> MessageStatus:
    if state == "failed":
        return MessageStatus(message_id, state, error=StatusError("undeliverable"))
    return MessageStatus(message_id, state)


@pytest.mark.parametrize(
    ("adapter", "first", "second", "outcome"),
    [
        ("highlevel", "delivered", "delivered", Outcome.SKIPPED_DUPLICATE),
        ("highlevel", "read", "delivered", Outcome.SKIPPED_STALE),
        ("highlevel", "read", "sent", Outcome.SKIPPED_STALE),
        ("highlevel", "read", "pending", Outcome.SKIPPED_STALE),
        ("highlevel", "delivered", "pending", Outcome.SKIPPED_STALE),
        ("highlevel", "delivered", "failed", Outcome.SKIPPED_STALE),
        ("highlevel", "failed", "delivered", Outcome.SKIPPED_STALE),
        ("highlevel", "failed", "read", Outcome.SKIPPED_STALE),
        ("highlevel", "failed", "sent", Outcome.SKIPPED_STALE),
        ("highlevel", "failed", "pending", Outcome.SKIPPED_STALE),
        ("highlevel", "failed", "failed", Outcome.SKIPPED_DUPLICATE),
        ("highlevel", "pending", "sent", Outcome.SKIPPED_DUPLICATE),  # both are "pending"
        ("highlevel", "read", "read", Outcome.SKIPPED_DUPLICATE),
        ("hubspot", "sent", "delivered", Outcome.SKIPPED_DUPLICATE),  # both are "SENT"
        ("hubspot", "delivered", "sent", Outcome.SKIPPED_STALE),
        ("hubspot", "read", "delivered", Outcome.SKIPPED_STALE),
        ("hubspot", "failed", "read", Outcome.SKIPPED_STALE),
    ],
)
async def test_second_update_is_skipped_without_a_request(
    mode: str, adapter: str, first: str, second: str, outcome: Outcome
) -> None:
    vendor = FakeVendor()
    connection = hl_connection("c") if adapter == "highlevel" else hs_connection("c")
    async with Harness(mode, vendor, [connection]) as h:
        applied = await h.update_status("c", status(first))
        skipped = await h.update_status("c", status(second))
    assert applied.outcome is Outcome.APPLIED
    assert skipped.outcome is outcome
    assert skipped.outcome.is_skipped
    assert skipped.ok
    assert skipped.attempts == 0
    assert skipped.http_status is None
    assert skipped.state is DeliveryState(second)
    assert skipped.detail == f"last applied state is {first!r}"
    assert len(vendor.api) == 1


@pytest.mark.parametrize(
    ("adapter", "states", "values"),
    [
        ("highlevel", ["pending", "delivered", "read"], ["pending", "delivered", "read"]),
        ("highlevel", ["sent", "failed"], ["pending", "failed"]),
        ("highlevel", ["pending", "failed"], ["pending", "failed"]),
        ("hubspot", ["sent", "read"], ["SENT", "READ"]),
        ("hubspot", ["delivered", "read"], ["SENT", "READ"]),
        ("hubspot", ["sent", "failed"], ["SENT", "FAILED"]),
    ],
)
async def test_forward_progress_is_sent(
    mode: str, adapter: str, states: list[str], values: list[str]
) -> None:
    vendor = FakeVendor()
    connection = hl_connection("c") if adapter == "highlevel" else hs_connection("c")
    async with Harness(mode, vendor, [connection]) as h:
        receipts = [await h.update_status("c", status(s)) for s in states]
    assert [r.outcome for r in receipts] == [Outcome.APPLIED] * len(states)
    key = "status" if adapter == "highlevel" else "statusType"
    assert [s.body[key] for s in vendor.api] == values


async def test_guard_is_per_connection_and_message(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection("a"), hl_connection("b")]) as h:
        await h.update_status("a", status("read", "m1"))
        other_connection = await h.update_status("b", status("delivered", "m1"))
        other_message = await h.update_status("a", status("delivered", "m2"))
    assert other_connection.outcome is Outcome.APPLIED
    assert other_message.outcome is Outcome.APPLIED
    assert len(vendor.api) == 3


async def test_hubspot_pending_is_unsupported_and_skipped(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hs_connection()]) as h:
        receipt = await h.update_status("hs", MessageStatus("m1", "pending"))
    assert receipt.outcome is Outcome.SKIPPED_UNSUPPORTED
    assert receipt.vendor_value is None
    assert receipt.ok
    assert receipt.detail == "hubspot has no value for 'pending'"
    assert vendor.seen == []


async def test_strict_connection_raises_unsupported_status(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hs_connection(strict=True)]) as h:
        with pytest.raises(UnsupportedStatus) as info:
            await h.update_status("hs", MessageStatus("m1", "pending"))
        # strict only concerns unmappable states: coarse mappings still go out
        receipt = await h.update_status("hs", MessageStatus("m1", "delivered"))
    assert info.value.connection == "hs"
    assert info.value.adapter == "hubspot"
    assert info.value.message_id == "m1"
    assert "pending" in info.value.message
    assert receipt.outcome is Outcome.APPLIED
    assert [s.body for s in vendor.api] == [{"statusType": "SENT"}]


async def test_a_failed_update_records_nothing(mode: str) -> None:
    vendor = FakeVendor([hl_error(503, "down"), hl_error(400, "Bad Request")])
    async with Harness(mode, vendor, [hl_connection()], retry=RetryPolicy.none()) as h:
        with pytest.raises(VendorUnavailable):
            await h.update_status("hl", status("delivered"))
        with pytest.raises(VendorRejected):
            await h.update_status("hl", status("delivered"))
        retried = await h.update_status("hl", status("delivered"))
        # and after the successful one, the guard does know
        duplicate = await h.update_status("hl", status("delivered"))
    assert retried.outcome is Outcome.APPLIED
    assert duplicate.outcome is Outcome.SKIPPED_DUPLICATE
    assert len(vendor.api) == 3


async def test_guard_is_bounded(mode: str) -> None:
    guard = StateGuard(max_entries=2)
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()], guard=guard) as h:
        for message_id in ("m1", "m2", "m3"):
            await h.update_status("hl", status("read", message_id))
        assert len(guard) == 2
        forgotten = await h.update_status("hl", status("delivered", "m1"))
        remembered = await h.update_status("hl", status("delivered", "m3"))
    assert forgotten.outcome is Outcome.APPLIED  # m1 was evicted, so it is news again
    assert remembered.outcome is Outcome.SKIPPED_STALE
    assert len(vendor.api) == 4


async def test_guard_false_disables_it(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()], guard=False) as h:
        receipts = [await h.update_status("hl", status(s)) for s in ("read", "read", "delivered")]
    assert [r.outcome for r in receipts] == [Outcome.APPLIED] * 3
    assert [s.body["status"] for s in vendor.api] == ["read", "read", "delivered"]


async def test_removed_connection_is_forgotten(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection("a")]) as h:
        await h.update_status("a", status("read"))
        h.bridge.remove_connection("a")
        h.bridge.add_connection(hl_connection("a"))
        receipt = await h.update_status("a", status("delivered"))
    assert receipt.outcome is Outcome.APPLIED
    assert len(vendor.api) == 2


def test_state_guard_refuses_zero_entries() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StateGuard(max_entries=0)


async def test_concurrent_updates_for_one_message_do_not_regress(clock: FakeClock) -> None:
    vendor = FakeVendor()
    guard = StateGuard()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(AsyncYieldingVendor(vendor))) as client,
        AsyncBridge(
            [hl_connection()],
            registry=fresh_registry(),
            http_client=client,
            guard=guard,
            clock=clock,
            sleep=clock.asleep,
        ) as bridge,
    ):
        read, delivered = await asyncio.gather(
            bridge.update_status("hl", status("read")),
            bridge.update_status("hl", status("delivered")),
        )
    assert read.outcome is Outcome.APPLIED
    assert [s.body["status"] for s in vendor.api] == ["read"]
    assert delivered.outcome is Outcome.SKIPPED_STALE
    assert guard.last("hl", "m1") is DeliveryState.READ
