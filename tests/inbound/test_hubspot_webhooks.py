"""HubSpot v3 webhook signatures (HMAC made here from the documented recipe) and payloads."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier, signed_uri
from msgbridge.errors import ConfigurationError
from msgbridge.inbound import (
    ChannelKind,
    EventKind,
    MalformedWebhook,
    SignatureInvalid,
    SignatureMissing,
    WebhookExpired,
    verifier_for,
)
from msgbridge.registry import AdapterRegistry

from .signing import NOW, hubspot_outgoing, hubspot_v3, millis

SECRET = "hs-client-secret-123"
URL = "https://hooks.example.com/hubspot"


@pytest.fixture
def verifier() -> HubSpotWebhookVerifier:
    return HubSpotWebhookVerifier(client_secret=SECRET, public_url=URL)


def signed(body: bytes, *, at: dt.datetime = NOW, secret: str = SECRET, uri: str = URL,
           method: str = "POST") -> dict[str, str]:  # fmt: skip
    stamp = millis(at)
    return {
        "X-HubSpot-Signature-v3": hubspot_v3(secret, method, uri, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def test_outgoing_message_verifies_and_parses(verifier: HubSpotWebhookVerifier) -> None:
    body = hubspot_outgoing("m-1")
    event = verifier.verify(signed(body), body, NOW)
    assert (event.kind, event.event_type, event.dedup_key) == (
        EventKind.OUTBOUND_MESSAGE,
        "OUTGOING_CHANNEL_MESSAGE_CREATED",
        "message:m-1",
    )
    out = event.outbound
    assert out is not None
    assert out.channel is ChannelKind.CUSTOM
    assert (out.account_id, out.channel_id, out.channel_account_id, out.conversation_id) == (
        "123456",
        "1001",
        "555",
        "7788",
    )
    assert out.text == "Hello from the agent"
    assert [(p.identifier, p.kind) for p in out.recipients] == [("+15550001111", "HS_PHONE_NUMBER")]
    assert out.sender is not None
    assert out.sender.name == "Agent Smith"
    assert event.occurred_at == NOW


@pytest.mark.parametrize("event_type", ["CHANNEL_ACCOUNT_CREATED", "CHANNEL_ACCOUNT_UPDATED"])
def test_channel_account_events_pass_through(
    verifier: HubSpotWebhookVerifier, event_type: str
) -> None:
    body = json.dumps({"type": event_type, "channelAccountId": "555"}).encode()
    event = verifier.verify(signed(body), body, NOW)
    assert event.kind is EventKind.CHANNEL_ACCOUNT
    assert event.raw["channelAccountId"] == "555"
    assert event.dedup_key.startswith("body:")


@pytest.mark.parametrize("missing", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
def test_missing_headers_are_refused(verifier: HubSpotWebhookVerifier, missing: str) -> None:
    body = hubspot_outgoing()
    headers = signed(body)
    del headers[missing]
    with pytest.raises(SignatureMissing) as info:
        verifier.verify(headers, body, NOW)
    assert info.value.header == missing


def test_older_than_five_minutes_is_refused(verifier: HubSpotWebhookVerifier) -> None:
    body = hubspot_outgoing()
    old = signed(body, at=NOW - dt.timedelta(minutes=5, seconds=1))
    with pytest.raises(WebhookExpired):
        verifier.verify(old, body, NOW)
    assert verifier.verify(signed(body, at=NOW - dt.timedelta(minutes=4)), body, NOW)


def test_replay_of_a_captured_request_later_is_refused(verifier: HubSpotWebhookVerifier) -> None:
    body = hubspot_outgoing()
    captured = signed(body)
    assert verifier.verify(captured, body, NOW)
    with pytest.raises(WebhookExpired):
        verifier.verify(captured, body, NOW + dt.timedelta(minutes=10))


@pytest.mark.parametrize(
    "headers_for",
    [
        lambda b: signed(b, secret="wrong-secret"),
        lambda b: signed(b, uri="https://attacker.example.com/hubspot"),
        lambda b: signed(b, method="GET"),
    ],
    ids=["wrong-secret", "other-url", "other-method"],
)
def test_wrong_signatures_are_refused(verifier: HubSpotWebhookVerifier, headers_for) -> None:  # type: ignore[no-untyped-def]
    body = hubspot_outgoing()
    with pytest.raises(SignatureInvalid, match="does not match"):
        verifier.verify(headers_for(body), body, NOW)


def test_tampered_and_reserialised_bodies_are_refused(verifier: HubSpotWebhookVerifier) -> None:
    body = hubspot_outgoing()
    headers = signed(body)
    with pytest.raises(SignatureInvalid):
        verifier.verify(headers, body.replace(b"Hello", b"Jello"), NOW)
    reserialised = json.dumps(json.loads(body), indent=1).encode()
    with pytest.raises(SignatureInvalid):
        verifier.verify(headers, reserialised, NOW)


@pytest.mark.parametrize("stamp", ["yesterday", "-5", "1e12", ""])
def test_malformed_timestamps_are_refused(verifier: HubSpotWebhookVerifier, stamp: str) -> None:
    body = hubspot_outgoing()
    headers = signed(body)
    headers["X-HubSpot-Request-Timestamp"] = stamp
    with pytest.raises((SignatureInvalid, SignatureMissing)):
        verifier.verify(headers, body, NOW)


def test_signed_uri_decodes_only_the_listed_escapes() -> None:
    url = "https://h.example.com/hook%3Fa%3Db?x=%2Fy%2a&z=%20%25"
    assert signed_uri(url) == "https://h.example.com/hook?a%3Db?x=/y*&z=%20%25"


def test_public_url_with_escapes_signs_decoded(verifier: HubSpotWebhookVerifier) -> None:
    url = "https://hooks.example.com/hub%3Aspot"
    escaped = HubSpotWebhookVerifier(client_secret=SECRET, public_url=url)
    body = hubspot_outgoing()
    assert escaped.verify(signed(body, uri="https://hooks.example.com/hub:spot"), body, NOW)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"type": "CONVERSATION_CREATED"}, "not one of"),
        ({"type": "OUTGOING_CHANNEL_MESSAGE_CREATED"}, "no message object"),
        ({"type": "OUTGOING_CHANNEL_MESSAGE_CREATED", "message": {"text": "x"}}, "no id"),
        (
            {"type": "OUTGOING_CHANNEL_MESSAGE_CREATED", "message": {"id": "m", "senders": 3}},
            "lists",
        ),
    ],
)
def test_malformed_payloads_get_a_reason(
    verifier: HubSpotWebhookVerifier, payload: dict[str, object], reason: str
) -> None:
    body = json.dumps(payload).encode()
    with pytest.raises(MalformedWebhook, match=reason):
        verifier.verify(signed(body), body, NOW)


def test_configuration_is_checked_and_secret_never_shown() -> None:
    with pytest.raises(ConfigurationError, match="client_secret"):
        HubSpotWebhookVerifier(client_secret="", public_url=URL)
    with pytest.raises(ConfigurationError, match="public_url"):
        HubSpotWebhookVerifier(client_secret=SECRET, public_url="/hubspot")
    verifier = verifier_for(
        AdapterRegistry.from_entry_points(), "hubspot", {"client_secret": SECRET, "public_url": URL}
    )
    assert SECRET not in repr(verifier)
    body = hubspot_outgoing()
    with pytest.raises(SignatureInvalid) as info:
        verifier.verify(signed(body, secret="nope"), body, NOW)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
