"""The neutral inbound model: validated like MessageStatus, strict JSON both ways."""

from __future__ import annotations

import datetime as dt

import pytest

from msgbridge.errors import InvalidStatus
from msgbridge.inbound import (
    ChannelKind,
    EventKind,
    IncomingMessage,
    OutboundRequest,
    Party,
    WebhookEvent,
)
from msgbridge.inbound.serialization import (
    event_from_json,
    event_to_json,
    incoming_from_json,
    incoming_to_json,
    outbound_from_json,
    outbound_to_json,
)

WHEN = dt.datetime(2026, 12, 4, 12, tzinfo=dt.timezone.utc)


def test_outbound_round_trips_through_strict_json() -> None:
    request = OutboundRequest(
        "m-1",
        "email",
        account_id="loc",
        text="hi",
        html="<p>hi</p>",
        subject="S",
        attachments=["https://x/a.png"],
        recipients=[Party("a@example.com", kind="email")],
        sender=Party("b@example.com", name="B"),
        occurred_at=WHEN,
        raw={"vendor": {"field": [1, 2]}},
    )
    data = outbound_to_json(request)
    assert data["channel"] == "email"
    again = outbound_from_json(data)
    assert again == request
    assert again.raw == {"vendor": {"field": [1, 2]}}


def test_incoming_and_event_round_trip() -> None:
    message = IncomingMessage("ext-1", ChannelKind.SMS, text="yo", contact_id="c", occurred_at=WHEN)
    assert incoming_from_json(incoming_to_json(message)) == message
    event = WebhookEvent(
        "highlevel",
        EventKind.OUTBOUND_MESSAGE,
        "ProviderOutboundMessage",
        "message:m",
        outbound=OutboundRequest("m", "sms"),
    )
    assert event_from_json(event_to_json(event)) == event


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: OutboundRequest("", "sms"), "message_id"),
        (lambda: OutboundRequest("..", "sms"), "message_id"),
        (lambda: OutboundRequest("m", "fax"), "channel"),
        (lambda: OutboundRequest("m", "sms", contact_id="a\nb"), "contact_id"),
        (lambda: OutboundRequest("m", "sms", attachments="https://x"), "attachments"),
        (lambda: OutboundRequest("m", "sms", recipients=["+1"]), "recipients"),
        (lambda: OutboundRequest("m", "sms", subject="a\rb"), "subject"),
        (lambda: OutboundRequest("m", "sms", occurred_at=dt.datetime(2026, 1, 1)), "occurred_at"),
        (lambda: IncomingMessage("m", "sms"), "text"),
        (lambda: IncomingMessage("m", "sms", text="x" * 300_000), "text"),
        (lambda: WebhookEvent("hl", "outbound_message", "T", "k"), "outbound"),
    ],
)
def test_bad_values_are_refused_naming_the_field(build, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidStatus) as info:
        build()
    assert info.value.field == field


def test_strict_json_refuses_unknown_keys_and_coercion() -> None:
    with pytest.raises(InvalidStatus, match="unknown key"):
        outbound_from_json({"message_id": "m", "channel": "sms", "colour": "red"})
    with pytest.raises(InvalidStatus, match="expected a string"):
        incoming_from_json({"message_id": 5, "channel": "sms", "text": "x"})
    with pytest.raises(InvalidStatus, match="expected one of"):
        incoming_from_json({"message_id": "m", "channel": "pigeon", "text": "x"})
