"""Publishing a contact's message: the adapters' requests, with no I/O."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from msgbridge.adapter import Operation, ResponseView
from msgbridge.adapters.highlevel import HighLevelAdapter, variants
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.errors import InvalidStatus, MalformedResponse, VendorUnavailable
from msgbridge.inbound import IncomingMessage, Party

WHEN = dt.datetime(2026, 12, 4, 12, tzinfo=dt.timezone.utc)


def sms(**kw: Any) -> IncomingMessage:
    base: dict[str, Any] = {"contact_id": "c-1", "text": "Hi back", "conversation_id": "conv-1"}
    return IncomingMessage("ext-1", "sms", **{**base, **kw})


@pytest.mark.parametrize("adapter", variants(), ids=lambda a: a.id)
def test_highlevel_inbound_request_per_variant(adapter: HighLevelAdapter) -> None:
    settings = adapter.parse_settings({"conversation_provider_id": "prov-1"})
    spec = adapter.prepare_inbound(sms(occurred_at=WHEN), settings)
    assert (spec.method, spec.operation) == ("POST", Operation.PUBLISH_INBOUND)
    assert spec.path == "/conversations/messages/inbound"
    assert spec.headers["Version"] == adapter.variant.version
    assert spec.json == {
        "type": "SMS",
        "contactId": "c-1",
        "conversationProviderId": "prov-1",
        "conversationId": "conv-1",
        "message": "Hi back",
        "altId": "ext-1",
        "date": "2026-12-04T12:00:00+00:00",
    }


def test_highlevel_refuses_a_custom_provider_publish_without_provider_id() -> None:
    adapter = HighLevelAdapter()
    with pytest.raises(InvalidStatus, match="conversation_provider_id") as info:
        adapter.prepare_inbound(sms(), adapter.parse_settings({}))
    assert info.value.field == "conversation_provider_id"
    # A provider that replaces the default SMS provider does not need one (vendor guide).
    spec = adapter.prepare_inbound(sms(), adapter.parse_settings({"default_provider": True}))
    assert spec.json is not None
    assert "conversationProviderId" not in spec.json


def test_highlevel_email_and_custom_fields() -> None:
    adapter = HighLevelAdapter()
    settings = adapter.parse_settings({"conversation_provider_id": "p", "version": "v3"})
    message = IncomingMessage(
        "mail-1",
        "custom",
        contact_id="c",
        html="<p>x</p>",
        subject="Re: order",
        sender=Party("me@example.com"),
        recipients=[Party("shop@example.com")],
        email_message_id="thread-1",
        attachments=["https://x/y.pdf"],
    )
    spec = adapter.prepare_inbound(message, settings)
    assert spec.headers["Version"] == "v3"
    assert spec.json is not None
    assert spec.json["type"] == "Custom"
    assert spec.json["emailFrom"] == "me@example.com"
    assert spec.json["emailTo"] == "shop@example.com"
    assert spec.json["emailMessageId"] == "thread-1"
    assert spec.json["attachments"] == ["https://x/y.pdf"]
    with pytest.raises(InvalidStatus, match="contact_id"):
        adapter.prepare_inbound(sms(contact_id=None), settings)
    with pytest.raises(InvalidStatus, match="call"):
        adapter.prepare_inbound(IncomingMessage("c1", "call", text="x", contact_id="c"), settings)


def test_highlevel_inbound_answers() -> None:
    adapter = HighLevelAdapter()
    settings = adapter.parse_settings({"conversation_provider_id": "p"})
    spec = adapter.prepare_inbound(sms(), settings)
    ok = adapter.interpret(
        spec,
        ResponseView(
            200, {}, b'{"success":true,"conversationId":"cv","messageId":"mm","message":"ok"}'
        ),
        settings,
    )
    assert dict(ok.vendor_ids) == {"conversationId": "cv", "messageId": "mm"}
    # HighLevel's silent drop: 201 with an empty body is not a success.
    with pytest.raises(MalformedResponse, match="dropped"):
        adapter.interpret(spec, ResponseView(201, {}, b""), settings)
    with pytest.raises(VendorUnavailable):
        adapter.interpret(
            spec,
            ResponseView(500, {}, b'{"statusCode":500,"message":"Internal server error"}'),
            settings,
        )


def test_hubspot_inbound_request_and_stable_idempotency_id() -> None:
    adapter = HubSpotAdapter()
    settings = adapter.parse_settings({"channel_id": 1001, "channel_account_id": "555"})
    message = IncomingMessage(
        "ext-9",
        "custom",
        text="Hello",
        sender=Party("+15550001111", name="Ann", kind="phone"),
        recipients=[Party("biz-1")],
        thread_id="t-1",
        occurred_at=WHEN,
    )
    spec = adapter.prepare_inbound(message, settings)
    assert spec.path == "/conversations/custom-channels/2026-03/1001/messages"
    assert spec.json is not None
    body = dict(spec.json)
    idempotency = body.pop("integrationIdempotencyId")
    assert body == {
        "channelAccountId": "555",
        "messageDirection": "INCOMING",
        "senders": [
            {
                "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+15550001111"},
                "name": "Ann",
            }
        ],
        "recipients": [
            {"deliveryIdentifier": {"type": "CHANNEL_SPECIFIC_OPAQUE_ID", "value": "biz-1"}}
        ],
        "text": "Hello",
        "timestamp": "2026-12-04T12:00:00+00:00",
        "integrationThreadId": "t-1",
    }
    # A retry (new process, same message) gets the same id; another message another one.
    again = adapter.prepare_inbound(message, settings)
    assert again.json is not None
    assert again.json["integrationIdempotencyId"] == idempotency
    other = adapter.prepare_inbound(IncomingMessage("ext-10", "custom", text="x",
                                                    sender=Party("s")), settings)  # fmt: skip
    assert other.json is not None
    assert other.json["integrationIdempotencyId"] != idempotency
    legacy = adapter.prepare_inbound(message, adapter.parse_settings(
        {"channel_id": 1001, "channel_account_id": "555", "api_version": "v3"}))  # fmt: skip
    assert legacy.path == "/conversations/v3/custom-channels/1001/messages"


@pytest.mark.parametrize(
    ("message", "settings", "field"),
    [
        (
            IncomingMessage("e", "custom", text="x", sender=Party("s")),
            {"channel_account_id": "1"},
            "channel_id",
        ),
        (
            IncomingMessage("e", "custom", text="x", sender=Party("s")),
            {"channel_id": 1},
            "channel_account_id",
        ),
        (
            IncomingMessage("e", "custom", text="x"),
            {"channel_id": 1, "channel_account_id": "1"},
            "sender",
        ),
        (
            IncomingMessage("e", "custom", text="x", sender=Party("s", kind="fax")),
            {"channel_id": 1, "channel_account_id": "1"},
            "sender",
        ),
    ],
)
def test_hubspot_inbound_refusals_before_io(
    message: IncomingMessage, settings: dict[str, Any], field: str
) -> None:
    adapter = HubSpotAdapter()
    with pytest.raises(InvalidStatus) as info:
        adapter.prepare_inbound(message, adapter.parse_settings(settings))
    assert info.value.field == field


def test_hubspot_interprets_the_published_message() -> None:
    adapter = HubSpotAdapter()
    settings = adapter.parse_settings({"channel_id": 1, "channel_account_id": "1"})
    spec = adapter.prepare_inbound(
        IncomingMessage("e", "custom", text="x", sender=Party("s")), settings
    )
    result = adapter.interpret(
        spec,
        ResponseView(200, {}, b'{"id":"hs-1","conversationsThreadId":"th","direction":"INCOMING"}'),
        settings,
    )
    assert result.vendor_ids["id"] == "hs-1"
    assert result.vendor_ids["conversationsThreadId"] == "th"
