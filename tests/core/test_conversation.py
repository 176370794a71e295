"""Conversation (inbox) updates."""

from __future__ import annotations

import pytest

from msgbridge import ConversationUpdate, DeliveryAttempt, Outcome
from msgbridge.adapter import Operation
from msgbridge.errors import InvalidStatus, NotFound, UnsupportedOperation

from .support import FakeVendor, Harness, hl_connection, hl_error, hs_connection

pytestmark = pytest.mark.anyio


async def test_highlevel_conversation_update_body_and_path(mode: str) -> None:
    vendor = FakeVendor()
    events: list[DeliveryAttempt] = []
    async with Harness(mode, vendor, [hl_connection()]) as h:
        h.registry.add_observer(events.append)
        receipt = await h.update_conversation(
            "hl", ConversationUpdate("conv/1", account_id="loc-1", unread_count=0, starred=True)
        )
    [seen] = vendor.api
    assert seen.method == "PUT"
    assert seen.host == "services.leadconnectorhq.com"
    assert seen.raw_path == "/conversations/conv%2F1"
    assert seen.headers["version"] == "2021-04-15"
    assert seen.headers["authorization"] == "Bearer tok-SECRET-123"
    assert seen.body == {"locationId": "loc-1", "unreadCount": 0, "starred": True}
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.subject_id == "conv/1"
    assert receipt.state is None
    assert receipt.vendor_ids == {"conversationId": "conv/1"}
    assert receipt.trace_id == "trace-conv"
    assert [(e.operation, e.subject_id) for e in events] == [
        (Operation.UPDATE_CONVERSATION, "conv/1")
    ]


async def test_highlevel_location_from_settings_and_only_set_fields(mode: str) -> None:
    vendor = FakeVendor()
    connection = hl_connection(settings={"location_id": "loc-default", "version": "2021-07-28"})
    async with Harness(mode, vendor, [connection]) as h:
        await h.update_conversation("hl", ConversationUpdate("c1", starred=False))
    [seen] = vendor.api
    assert seen.body == {"locationId": "loc-default", "starred": False}
    assert seen.headers["version"] == "2021-07-28"


async def test_highlevel_needs_a_location_before_io(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()]) as h:
        with pytest.raises(InvalidStatus) as info:
            await h.update_conversation("hl", ConversationUpdate("c1", unread_count=1))
    assert info.value.field == "account_id"
    assert info.value.connection == "hl"
    assert vendor.seen == []


async def test_highlevel_conversation_errors_are_typed(mode: str) -> None:
    vendor = FakeVendor([hl_error(404, "Conversation not found", trace_id="t-404")])
    async with Harness(mode, vendor, [hl_connection()]) as h:
        with pytest.raises(NotFound) as info:
            await h.update_conversation(
                "hl", ConversationUpdate("c1", account_id="loc", unread_count=0)
            )
    assert info.value.subject_id == "c1"
    assert info.value.trace_id == "t-404"
    assert info.value.attempts == 1


async def test_hubspot_conversation_update_is_unsupported_before_io(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hs_connection()]) as h:
        with pytest.raises(UnsupportedOperation) as info:
            await h.update_conversation("hs", ConversationUpdate("c1", unread_count=0))
    assert info.value.connection == "hs"
    assert info.value.adapter == "hubspot"
    assert info.value.subject_id == "c1"
    assert vendor.seen == []


async def test_not_a_conversation_update_is_refused(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()]) as h:
        with pytest.raises(InvalidStatus, match="ConversationUpdate"):
            await h.update_conversation("hl", {"conversation_id": "c1"})  # type: ignore[arg-type]
    assert vendor.seen == []
