"""The emulator as the CRM: signed webhooks into a real intake, inbound publishes it stores."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from msgbridge.adapter import Adapter, RequestSpec, ResponseView, VendorResult, resolve_base_url
from msgbridge.adapters.highlevel import HighLevelAdapter
from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier
from msgbridge.emulator import Emulator
from msgbridge.emulator.highlevel import sign_highlevel
from msgbridge.emulator.hubspot import sign_hubspot
from msgbridge.emulator.server import ServerThread
from msgbridge.emulator.webhooks import EMULATOR_ED25519_PUBLIC_KEY, WebhookSender
from msgbridge.errors import MalformedResponse
from msgbridge.inbound import InboundDelivery, InboundStore, IncomingMessage, Intake, Party

HS_SECRET = "emulated-app-secret"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def intake_url(tmp_path: Path) -> Iterator[tuple[str, list[InboundDelivery]]]:
    seen: list[InboundDelivery] = []

    def handler(delivery: InboundDelivery) -> None:
        seen.append(delivery)

    url_placeholder = "http://127.0.0.1:0/hubspot"
    intake = Intake(
        InboundStore(tmp_path / "in.db"),
        {
            "highlevel": HighLevelWebhookVerifier(public_key=EMULATOR_ED25519_PUBLIC_KEY),
            "hubspot": HubSpotWebhookVerifier(client_secret=HS_SECRET, public_url=url_placeholder),
        },
        handler,
    )
    server = ServerThread(intake.asgi())
    server.start()
    # The public URL HubSpot signs is the one registered: now that the port is known.
    intake.sources["hubspot"] = HubSpotWebhookVerifier(
        client_secret=HS_SECRET, public_url=f"{server.url}/hubspot"
    )
    try:
        yield server.url, seen
    finally:
        server.stop()
        intake.store.close()


def test_signed_webhooks_duplicates_forgeries_and_replays(
    intake_url: tuple[str, list[InboundDelivery]],
) -> None:
    url, seen = intake_url
    payload = {"type": "SMS", "messageId": "emu-1", "locationId": "loc", "message": "hi",
               "phone": "+15550001"}  # fmt: skip
    hs_payload = {"type": "OUTGOING_CHANNEL_MESSAGE_CREATED", "portalId": 1, "channelId": 9,
                  "message": {"id": "hs-emu-1", "text": "yo", "channelAccountId": "2"}}  # fmt: skip
    body, hs_body = json.dumps(payload).encode(), json.dumps(hs_payload).encode()
    hs_url = f"{url}/hubspot"
    with WebhookSender() as sender:
        hl_url = f"{url}/highlevel"
        assert sender.post(hl_url, body, sign_highlevel(body), duplicates=2).statuses == [200] * 3
        assert sender.post(hl_url, body, sign_highlevel(body, forge=True)).statuses == [401]
        ok = sender.post(hs_url, hs_body, sign_hubspot(HS_SECRET, hs_url, hs_body, time.time()))
        assert ok.statuses == [200]
        stale = sign_hubspot(HS_SECRET, hs_url, hs_body, time.time() - 600)
        assert sender.post(hs_url, hs_body, stale).statuses == [401]
        forged = sign_hubspot("not-the-secret", hs_url, hs_body, time.time())
        assert sender.post(hs_url, hs_body, forged).statuses == [401]
    # The app answers first and hands over after: wait for the hand-overs (not a timing test).
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(d.key for d in seen) == ["highlevel:message:emu-1", "hubspot:message:hs-emu-1"]


def test_sender_retries_only_on_429_with_injected_sleep() -> None:
    answers = iter([429, 429, 200, 500])
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(next(answers))))
    slept: list[float] = []
    sender = WebhookSender(client=client, sleep=slept.append)
    body = b'{"type": "SMS"}'
    headers = sign_highlevel(body)
    assert sender.post("http://127.0.0.1:9/x", body, headers).statuses == [429, 429, 200]
    assert slept == [600.0, 600.0]
    assert sender.post("http://127.0.0.1:9/x", body, headers).statuses == [500]  # final
    client.close()


def _send(emu: Emulator, vendor: str, adapter: Adapter[Any], spec: RequestSpec,
          token: str, settings: Any) -> VendorResult:  # fmt: skip
    prepared = spec.prepare(resolve_base_url(adapter, settings))
    headers = {**prepared.headers, "Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=10) as client:
        answer = client.request(prepared.method, prepared.url, content=prepared.body,
                                headers=headers)  # fmt: skip
    return adapter.interpret(
        spec, ResponseView(answer.status_code, dict(answer.headers), answer.content), settings
    )


def test_highlevel_publish_is_stored_and_the_silent_drop_is_caught(emu: Emulator) -> None:
    emu.add_token("highlevel", "tok-hl", account="loc-1")
    adapter = HighLevelAdapter()
    settings = adapter.parse_settings(
        {"base_url": emu.base_url("highlevel"), "conversation_provider_id": "prov-1"}
    )
    message = IncomingMessage("ext-1", "sms", contact_id="c-1", text="Hi from the contact")
    result = _send(emu, "highlevel", adapter, adapter.prepare_inbound(message, settings), "tok-hl",
                   settings)  # fmt: skip
    assert result.vendor_ids["messageId"].startswith("in-")
    stored = emu.inbound_messages("highlevel")
    assert stored[-1]["body"]["altId"] == "ext-1"
    assert emu.snapshot()["inbound"]["highlevel"][-1]["account"] == "loc-1"
    # What the vendor does when the provider id is missing (bypassing our own refusal):
    spec = adapter.prepare_inbound(
        IncomingMessage("ext-2", "custom", contact_id="c-1", text="lost"),
        adapter.parse_settings({"base_url": emu.base_url("highlevel"), "default_provider": True}),
    )
    with pytest.raises(MalformedResponse, match="dropped"):
        _send(emu, "highlevel", adapter, spec, "tok-hl", settings)
    assert [m["body"].get("altId") for m in emu.inbound_messages("highlevel")].count("ext-2") == 0


def test_hubspot_publish_is_idempotent_on_the_derived_id(emu: Emulator) -> None:
    emu.add_token("hubspot", "tok-hs", account="777")
    adapter = HubSpotAdapter()
    settings = adapter.parse_settings(
        {"base_url": emu.base_url("hubspot"), "channel_id": 4001, "channel_account_id": "55"}
    )
    message = IncomingMessage("ext-hs", "custom", text="hello", sender=Party("+1555", kind="phone"))
    first = _send(emu, "hubspot", adapter, adapter.prepare_inbound(message, settings), "tok-hs",
                  settings)  # fmt: skip
    again = _send(emu, "hubspot", adapter, adapter.prepare_inbound(message, settings), "tok-hs",
                  settings)  # fmt: skip
    assert first.vendor_ids["id"] == again.vendor_ids["id"]
    bodies = [m["body"] for m in emu.inbound_messages("hubspot") if m["account"] == "777"]
    assert len(bodies) == 1
    assert json.dumps(bodies[0]["senders"]) == json.dumps(
        [{"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+1555"}}]
    )
