"""Bridge.publish_inbound / AsyncBridge.publish_inbound against the emulator over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from msgbridge import AsyncBridge, BearerToken, Bridge, Connection
from msgbridge.emulator import Emulator
from msgbridge.errors import InvalidStatus, UnsupportedOperation
from msgbridge.inbound import IncomingMessage, Party
from msgbridge.model import Outcome
from msgbridge.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.add_token("highlevel", "hl-token", account="loc-1")
        emulator.add_token("hubspot", "hs-token", account="900")
        yield emulator


def connections(emu: Emulator) -> list[Connection]:
    return [
        Connection("hl", adapter="highlevel", credentials=BearerToken("hl-token"),
                   settings={"base_url": emu.base_url("highlevel"),
                             "conversation_provider_id": "prov-1"}),
        Connection("hl-missing", adapter="highlevel", credentials=BearerToken("hl-token"),
                   settings={"base_url": emu.base_url("highlevel")}),
        Connection("hs", adapter="hubspot", credentials=BearerToken("hs-token"),
                   settings={"base_url": emu.base_url("hubspot"), "channel_id": 3001,
                             "channel_account_id": "55"}),
    ]  # fmt: skip


def test_publish_through_the_bridge_and_refusal_before_io(emu: Emulator) -> None:
    reply = IncomingMessage("carrier-1", "sms", contact_id="c-1", text="Thanks")
    with Bridge(connections(emu), retry=FAST) as bridge:
        receipt = bridge.publish_inbound("hl", reply)
        assert receipt.outcome is Outcome.APPLIED
        assert receipt.subject_id == "carrier-1"
        assert receipt.vendor_ids["messageId"].startswith("in-")
        emu.clear_requests()
        with pytest.raises(InvalidStatus, match="conversation_provider_id") as info:
            bridge.publish_inbound("hl-missing", reply)
        assert info.value.connection == "hl-missing"
        assert emu.find_requests(vendor="highlevel") == []  # nothing sent
        with pytest.raises(InvalidStatus, match="IncomingMessage"):
            bridge.publish_inbound("hl", "not a message")  # type: ignore[arg-type]
    assert [m["body"]["altId"] for m in emu.inbound_messages("highlevel")] == ["carrier-1"]


def test_hubspot_retry_after_a_dropped_answer_never_duplicates(emu: Emulator) -> None:
    # The vendor stores the message, then the connection drops: the bridge retries with
    # the same integrationIdempotencyId and HubSpot answers with the stored message.
    emu.faults.drop(vendor="hubspot", route="publish", count=1, after=True)
    message = IncomingMessage("carrier-2", "custom", text="Hi", sender=Party("+1555", kind="phone"))
    with Bridge(connections(emu), retry=FAST) as bridge:
        receipt = bridge.publish_inbound("hs", message)
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 2
    assert len(emu.inbound_messages("hubspot")) == 1


def test_unsupported_adapter_is_refused(emu: Emulator) -> None:
    from msgbridge.registry import AdapterRegistry

    registry = AdapterRegistry.from_entry_points()
    if "front" not in registry:
        pytest.skip("the Front plugin is not installed")
    front = Connection("fr", adapter="front", credentials=BearerToken("t"),
                       settings={"base_url": "http://127.0.0.1:9"})  # fmt: skip
    with Bridge([front], registry=registry) as bridge, pytest.raises(UnsupportedOperation):
        bridge.publish_inbound("fr", IncomingMessage("m", "chat", text="x"))


@pytest.mark.anyio
async def test_async_bridge_publishes(emu: Emulator) -> None:
    message = IncomingMessage("carrier-3", "custom", text="Yo", sender=Party("s-1"))
    async with AsyncBridge(connections(emu), retry=FAST) as bridge:
        receipt = await bridge.publish_inbound("hs", message)
        again = await bridge.publish_inbound("hs", message)
    assert receipt.vendor_ids["id"] == again.vendor_ids["id"]
    assert len(emu.inbound_messages("hubspot")) == 1
