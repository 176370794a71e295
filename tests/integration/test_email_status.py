"""``update_email_status`` end to end: bridge → HighLevel adapter → sender → emulator.

Sync, async and ``update_many`` (mixed with message statuses), over real HTTP on loopback.
"""

from __future__ import annotations

import anyio
import pytest

from msgbridge import (
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    EmailEvents,
    EmailRecipientStatus,
    EmailStatusUpdate,
    MessageStatus,
    Outcome,
)
from msgbridge.emulator import Emulator, demo_token
from msgbridge.emulator.highlevel import HighLevelFamily
from msgbridge.errors import PermissionDenied, UnsupportedOperation

ACCOUNT = "demo-location"


def _connection(emu: Emulator, vendor: str = "highlevel") -> Connection:
    return Connection(
        vendor,
        adapter=vendor,
        credentials=BearerToken(demo_token(vendor)),
        settings={"base_url": emu.base_url(vendor)},
    )


def _emails(emu: Emulator, vendor: str = "highlevel") -> HighLevelFamily:
    family = emu.vendor(vendor)
    assert isinstance(family, HighLevelFamily)
    return family


UPDATE = EmailStatusUpdate(
    "em-1",
    "clicked",
    events=EmailEvents(clicked=1, provider={"esp_isp_block": 0}),
    recipients=[EmailRecipientStatus("a@example.com", "clicked")],
)


@pytest.mark.parametrize("vendor", ["highlevel", "leadway", "hoop"])
def test_sync(emu: Emulator, vendor: str) -> None:
    _emails(emu, vendor).seed_email("em-1", account=ACCOUNT)
    with Bridge([_connection(emu, vendor)]) as bridge:
        receipt = bridge.update_email_status(vendor, UPDATE)
    assert receipt.outcome is Outcome.APPLIED
    assert (receipt.subject_id, receipt.http_status, receipt.detail) == ("em-1", 200, None)
    stored = _emails(emu, vendor).email("em-1")
    assert stored is not None
    assert stored["status"] == "clicked"
    assert stored["events"] == {"clicked": 1, "opened": 1, "delivered": 1, "accepted": 1}
    assert stored["recipients"] == {"a@example.com": {"status": "clicked"}}
    [sent] = emu.find_requests(vendor=vendor, route="update_email_status")
    assert sent.headers["version"] == "v3"
    assert sent.body == {
        "status": "clicked",
        "events": {"clicked": 1, "esp_isp_block": 0},
        "recipients": [{"emailId": "a@example.com", "status": "clicked"}],
    }


def test_async(emu: Emulator) -> None:
    _emails(emu).seed_email("em-1", account=ACCOUNT)

    async def run() -> Outcome:
        async with AsyncBridge([_connection(emu)]) as bridge:
            receipt = await bridge.update_email_status("highlevel", UPDATE)
        return receipt.outcome

    assert anyio.run(run) is Outcome.APPLIED
    assert _emails(emu).email("em-1")["status"] == "clicked"  # type: ignore[index]


def test_update_many_mixes_email_and_message_updates(emu: Emulator) -> None:
    _emails(emu).seed_email("em-1", account=ACCOUNT)
    _emails(emu).seed_email("em-2", account=ACCOUNT, provider="mailgun")
    emu.seed_message("highlevel", "m-1", account=ACCOUNT)
    items = [
        ("highlevel", EmailStatusUpdate("em-1", "delivered", events=EmailEvents(delivered=1))),
        ("highlevel", MessageStatus("m-1", "delivered")),
        ("highlevel", EmailStatusUpdate("em-2", "delivered")),
    ]
    with Bridge([_connection(emu)]) as bridge:
        receipts = sorted(bridge.update_many(items), key=lambda r: r.index or 0)
    assert [r.outcome for r in receipts] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.FAILED]
    assert isinstance(receipts[2].error, PermissionDenied)
    assert "LC Email or Mailgun" in str(receipts[2].error)
    assert _emails(emu).email("em-1")["events"] == {"delivered": 1, "accepted": 1}  # type: ignore[index]


def test_adapter_without_the_operation(emu: Emulator) -> None:
    with (
        Bridge([_connection(emu, "hubspot")]) as bridge,
        pytest.raises(UnsupportedOperation, match="cannot update email statuses"),
    ):
        bridge.update_email_status("hubspot", UPDATE)
    assert emu.find_requests(vendor="hubspot") == []
