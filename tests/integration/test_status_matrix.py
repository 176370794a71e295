"""Every adapter x every state x every runner, over real HTTP to the emulator.

Each update must reach the emulator as exactly the vendor's request (path, ``Version``,
JSON body), change the emulated message's state, and come back as a receipt naming the
vendor's ids and trace id. States a vendor cannot express are skipped without a request,
or refused on a strict connection.
"""

from __future__ import annotations

import pytest

from msgbridge import (
    AdapterRegistry,
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    Outcome,
    StatusError,
)
from msgbridge.emulator import Emulator
from msgbridge.errors import UnsupportedOperation, UnsupportedStatus

from .support import (
    CHANNEL,
    HIGHLEVEL_FAMILY,
    VENDORS,
    VERSIONS,
    account,
    connection,
    open_runner,
    seed,
    status_body,
    status_path,
    vendor_ids,
    vendor_value,
)

pytestmark = pytest.mark.anyio

ERROR = StatusError("Carrier rejected the message", code="30007", kind="carrier")


def _status(message_id: str, state: DeliveryState) -> MessageStatus:
    error = ERROR if state is DeliveryState.FAILED else None
    return MessageStatus(message_id, state, error=error)


@pytest.mark.parametrize("state", list(DeliveryState), ids=lambda s: s.value)
@pytest.mark.parametrize("vendor", VENDORS)
async def test_update_status_reaches_the_vendor_exactly(
    emu: Emulator,
    registry: AdapterRegistry,
    runner_kind: str,
    vendor: str,
    state: DeliveryState,
) -> None:
    message_id = f"msg-{vendor}-{state.value}"
    seed(emu, vendor, message_id, conversation_id="conv-42")
    update = _status(message_id, state)
    expected_value = vendor_value(vendor, state)

    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        receipt = await runner.update_status(vendor, update)

    if expected_value is None:  # HubSpot has no PENDING
        assert receipt.outcome is Outcome.SKIPPED_UNSUPPORTED
        assert receipt.vendor_value is None
        assert receipt.attempts == 0
        assert receipt.http_status is None
        assert emu.requests == ()
        assert emu.message(vendor, message_id).status is None
        return

    (recorded,) = emu.requests
    assert recorded.method == ("PATCH" if vendor == "hubspot" else "PUT")
    assert recorded.path == status_path(emu, vendor, message_id)
    assert recorded.route == "update_message_status"
    assert recorded.body == status_body(vendor, update)
    assert recorded.query == {}
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.headers["authorization"] == "Bearer ***"
    if vendor == "hubspot":
        assert "version" not in recorded.headers
    else:
        assert recorded.headers["version"] == VERSIONS[vendor]
    assert recorded.status == 200
    assert recorded.account == account(vendor)
    assert recorded.fault is None

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.ok
    assert receipt.connection == vendor
    assert receipt.adapter == vendor
    assert receipt.subject_id == message_id
    assert receipt.state is state
    assert receipt.vendor_value == expected_value
    assert receipt.attempts == 1
    assert receipt.http_status == 200
    assert receipt.vendor_ids == vendor_ids(vendor, message_id, "conv-42")
    assert receipt.trace_id == recorded.id
    assert receipt.detail is None

    message = emu.message(vendor, message_id)
    assert message.status == expected_value
    assert message.statuses == [expected_value]
    (change,) = message.history
    assert change.previous is None
    assert change.request_id == recorded.id
    assert dict(change.fields) == status_body(vendor, update)
    if state is DeliveryState.FAILED:
        expected_error = (
            ERROR.message
            if vendor == "hubspot"
            else {"code": ERROR.code, "type": ERROR.kind, "message": ERROR.message}
        )
        assert change.error == expected_error


@pytest.mark.parametrize("vendor", HIGHLEVEL_FAMILY)
async def test_highlevel_optional_fields_and_error_defaults(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    """``emailMessageId``, ``recipients``, and an error without code or kind."""
    seed(emu, vendor, "msg-email")
    update = MessageStatus(
        "msg-email",
        DeliveryState.FAILED,
        error=StatusError("Mailbox full"),
        email_message_id="email-1",
        recipients=["a@example.com", "b@example.com"],
    )
    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        receipt = await runner.update_status(vendor, update)

    (recorded,) = emu.requests
    assert recorded.body == {
        "status": "failed",
        "error": {"code": "unknown", "type": "unknown", "message": "Mailbox full"},
        "emailMessageId": "email-1",
        "recipients": ["a@example.com", "b@example.com"],
    }
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.vendor_ids["emailMessageId"] == "email-1"
    assert emu.message(vendor, "msg-email").email_message_id == "email-1"


async def test_hubspot_pending_on_a_strict_connection_is_refused(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    seed(emu, "hubspot", "msg-strict")
    conn = connection(emu, "hubspot", strict=True)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        with pytest.raises(UnsupportedStatus) as caught:
            await runner.update_status("hubspot", MessageStatus("msg-strict", "pending"))
        # A state HubSpot can express still goes through on the same strict connection.
        receipt = await runner.update_status("hubspot", MessageStatus("msg-strict", "sent"))

    assert caught.value.connection == "hubspot"
    assert caught.value.subject_id == "msg-strict"
    assert receipt.outcome is Outcome.APPLIED
    assert [r.body for r in emu.requests] == [{"statusType": "SENT"}]


@pytest.mark.parametrize("vendor", HIGHLEVEL_FAMILY)
async def test_highlevel_conversation_update_is_applied(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    emu.seed_conversation(vendor, "conv-7", account=account(vendor), unread_count=3)
    update = ConversationUpdate("conv-7", account_id=account(vendor), unread_count=0, starred=True)
    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        receipt = await runner.update_conversation(vendor, update)

    (recorded,) = emu.requests
    assert recorded.method == "PUT"
    assert recorded.path == f"/{vendor}/conversations/conv-7"
    assert recorded.route == "update_conversation"
    assert recorded.headers["version"] == VERSIONS[vendor]
    assert recorded.body == {"locationId": account(vendor), "unreadCount": 0, "starred": True}
    assert recorded.status == 200

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.subject_id == "conv-7"
    assert receipt.state is None
    assert receipt.attempts == 1
    assert receipt.vendor_ids == {"conversationId": "conv-7"}
    assert receipt.trace_id == recorded.id

    conversation = emu.conversation(vendor, "conv-7")
    assert conversation.unread_count == 0
    assert conversation.starred is True
    assert len(conversation.history) == 1


async def test_highlevel_conversation_update_uses_the_location_setting(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    emu.seed_conversation("highlevel", "conv-8", account=account("highlevel"), starred=True)
    conn = connection(emu, "highlevel", location_id=account("highlevel"))
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        receipt = await runner.update_conversation(
            "highlevel", ConversationUpdate("conv-8", starred=False)
        )
    assert receipt.outcome is Outcome.APPLIED
    assert [r.body for r in emu.requests] == [
        {"locationId": account("highlevel"), "starred": False}
    ]
    assert emu.conversation("highlevel", "conv-8").starred is False
    assert emu.conversation("highlevel", "conv-8").unread_count == 0


async def test_hubspot_conversation_update_is_unsupported(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    update = ConversationUpdate("thread-1", unread_count=0)
    async with open_runner(runner_kind, [connection(emu, "hubspot")], registry=registry) as runner:
        with pytest.raises(UnsupportedOperation) as caught:
            await runner.update_conversation("hubspot", update)
    assert caught.value.adapter == "hubspot"
    assert emu.requests == ()


async def test_hubspot_status_channel_id_wins_over_the_setting(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    emu.seed_message("hubspot", "msg-ch", account=account("hubspot"), channel_id=2024)
    async with open_runner(runner_kind, [connection(emu, "hubspot")], registry=registry) as runner:
        receipt = await runner.update_status(
            "hubspot", MessageStatus("msg-ch", "read", channel_id="2024")
        )
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.vendor_ids["channelId"] == "2024"
    (recorded,) = emu.requests
    assert f"/{CHANNEL}/" not in recorded.path
    assert "/2024/messages/msg-ch" in recorded.path
    assert emu.message("hubspot", "msg-ch").status == "READ"
