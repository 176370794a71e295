"""HighLevel webhook verification: real Ed25519/RSA signatures made here, fail closed."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from msgbridge.adapters.highlevel_webhooks import (
    HIGHLEVEL_ED25519_KEY,
    HighLevelWebhookVerifier,
    load_public_key,
)
from msgbridge.errors import ConfigurationError
from msgbridge.inbound import (
    ChannelKind,
    EventKind,
    MalformedWebhook,
    SignatureInvalid,
    SignatureMissing,
    WebhookExpired,
)
from msgbridge.registry import AdapterRegistry

from .signing import HL_EMAIL_EXAMPLE, HL_SMS_EXAMPLE, NOW, Ed25519Signer, RsaSigner


@pytest.fixture(scope="module")
def signer() -> Ed25519Signer:
    return Ed25519Signer()


@pytest.fixture(scope="module")
def rsa_signer() -> RsaSigner:
    return RsaSigner()


@pytest.fixture
def verifier(signer: Ed25519Signer) -> HighLevelWebhookVerifier:
    return HighLevelWebhookVerifier(public_key=signer.public_b64)


def test_documented_sms_example_verifies_and_parses(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    event = verifier.verify({"X-GHL-Signature": signer.sign(HL_SMS_EXAMPLE)}, HL_SMS_EXAMPLE, NOW)
    assert event.kind is EventKind.OUTBOUND_MESSAGE
    assert event.dedup_key == "message:GKJxs4P5L8dWc5CFUITM"
    out = event.outbound
    assert out is not None
    assert out.channel is ChannelKind.SMS
    assert (out.message_id, out.account_id, out.contact_id, out.user_id) == (
        "GKJxs4P5L8dWc5CFUITM",
        "GKAWb4yu7A4LSc0skQ6g",
        "GKBhT6BfwY9mjzXAU3sq",
        "GK56r6wdJDrkUPd0xsmx",
    )
    assert out.text == "The text message to be sent to the contact"
    assert [(p.identifier, p.kind) for p in out.recipients] == [("+15864603685", "phone")]
    assert len(out.attachments) == 1
    assert out.raw["type"] == "SMS"  # the vendor's payload is kept beside the neutral form


def test_documented_email_example_parses_addresses_and_threading(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    event = verifier.verify(
        {"x-ghl-signature": signer.sign(HL_EMAIL_EXAMPLE)}, HL_EMAIL_EXAMPLE, NOW
    )
    out = event.outbound
    assert out is not None
    assert out.channel is ChannelKind.EMAIL
    assert [p.identifier for p in out.recipients] == ["abc@gmail.com"]
    assert out.sender is not None
    assert out.sender.identifier == "From Name <email@gmail.com>"
    assert out.subject == "Subject from Conversation Page"
    assert out.html is not None
    assert out.html.startswith("<div")
    assert out.email_message_id == "GK56r6wdJDrkUPd0xsmx"


def test_custom_type_and_reply_to_alt_id(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    body = json.dumps(
        {
            "type": "Custom",
            "messageId": "m-9",
            "locationId": "L",
            "replyToAltId": "alt-1",
            "message": "hi",
        }
    ).encode()
    out = verifier.verify({"X-GHL-Signature": signer.sign(body)}, body, NOW).outbound
    assert out is not None
    assert out.channel is ChannelKind.CUSTOM
    assert out.reply_to_id == "alt-1"


def test_missing_signature_is_refused_never_skipped(verifier: HighLevelWebhookVerifier) -> None:
    with pytest.raises(SignatureMissing) as info:
        verifier.verify({"Content-Type": "application/json"}, HL_SMS_EXAMPLE, NOW)
    assert info.value.response_status == 401
    assert info.value.header == "X-GHL-Signature"


def test_empty_signature_header_is_refused(verifier: HighLevelWebhookVerifier) -> None:
    with pytest.raises(SignatureInvalid):
        verifier.verify({"X-GHL-Signature": ""}, HL_SMS_EXAMPLE, NOW)


def test_signature_by_another_key_is_refused(verifier: HighLevelWebhookVerifier) -> None:
    forger = Ed25519Signer()
    with pytest.raises(SignatureInvalid, match="does not match"):
        verifier.verify({"X-GHL-Signature": forger.sign(HL_SMS_EXAMPLE)}, HL_SMS_EXAMPLE, NOW)


def test_tampered_body_is_refused(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    signature = signer.sign(HL_SMS_EXAMPLE)
    tampered = HL_SMS_EXAMPLE.replace(b"+15864603685", b"+15550000000")
    with pytest.raises(SignatureInvalid):
        verifier.verify({"X-GHL-Signature": signature}, tampered, NOW)


def test_reserialised_json_is_refused_only_raw_bytes_verify(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    # The official SDK's mistake: verify JSON.stringify(parsed body) instead of the bytes.
    signature = signer.sign(HL_SMS_EXAMPLE)
    reserialised = json.dumps(json.loads(HL_SMS_EXAMPLE), separators=(",", ":")).encode()
    assert reserialised != HL_SMS_EXAMPLE
    with pytest.raises(SignatureInvalid):
        verifier.verify({"X-GHL-Signature": signature}, reserialised, NOW)
    assert verifier.verify({"X-GHL-Signature": signature}, HL_SMS_EXAMPLE, NOW).outbound


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not base64!!", "base64"),
        (base64.b64encode(b"short").decode(), "64-byte"),
        (base64.b64encode(b"x" * 256).decode(), "64-byte"),
    ],
)
def test_malformed_signatures_are_refused(
    verifier: HighLevelWebhookVerifier, value: str, reason: str
) -> None:
    with pytest.raises(SignatureInvalid, match=reason):
        verifier.verify({"X-GHL-Signature": value}, HL_SMS_EXAMPLE, NOW)


def test_two_different_signature_headers_are_refused(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    good = signer.sign(HL_SMS_EXAMPLE)
    headers = [("x-ghl-signature", good), ("x-ghl-signature", Ed25519Signer().sign(b"x"))]
    from msgbridge.inbound import Headers

    with pytest.raises(SignatureInvalid, match="more than once"):
        verifier.verify(Headers(headers), HL_SMS_EXAMPLE, NOW)


def test_legacy_rsa_alone_is_refused_by_default(
    verifier: HighLevelWebhookVerifier, rsa_signer: RsaSigner
) -> None:
    with pytest.raises(SignatureMissing, match="legacy_rsa"):
        verifier.verify({"X-WH-Signature": rsa_signer.sign(HL_SMS_EXAMPLE)}, HL_SMS_EXAMPLE, NOW)


def test_legacy_rsa_verifies_when_enabled_and_forgery_still_fails(
    signer: Ed25519Signer, rsa_signer: RsaSigner
) -> None:
    verifier = HighLevelWebhookVerifier(
        public_key=signer.public_b64, legacy_rsa=True, rsa_public_key=rsa_signer.public_pem
    )
    event = verifier.verify(
        {"X-WH-Signature": rsa_signer.sign(HL_SMS_EXAMPLE)}, HL_SMS_EXAMPLE, NOW
    )
    assert event.outbound is not None
    with pytest.raises(SignatureInvalid):
        verifier.verify({"X-WH-Signature": RsaSigner().sign(HL_SMS_EXAMPLE)}, HL_SMS_EXAMPLE, NOW)


def test_ed25519_wins_over_legacy_when_both_came(
    signer: Ed25519Signer, rsa_signer: RsaSigner
) -> None:
    verifier = HighLevelWebhookVerifier(
        public_key=signer.public_b64, legacy_rsa=True, rsa_public_key=rsa_signer.public_pem
    )
    headers = {
        "X-GHL-Signature": Ed25519Signer().sign(HL_SMS_EXAMPLE),  # forged
        "X-WH-Signature": rsa_signer.sign(HL_SMS_EXAMPLE),  # valid, but not consulted
    }
    with pytest.raises(SignatureInvalid):
        verifier.verify(headers, HL_SMS_EXAMPLE, NOW)


def _with_replay_fields(timestamp: str, webhook_id: str = "wh-1") -> bytes:
    data = json.loads(HL_SMS_EXAMPLE)
    data.update(timestamp=timestamp, webhookId=webhook_id)
    return json.dumps(data).encode()


def test_stale_payload_timestamp_is_refused(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    body = _with_replay_fields((NOW - dt.timedelta(minutes=6)).isoformat())
    with pytest.raises(WebhookExpired, match="old"):
        verifier.verify({"X-GHL-Signature": signer.sign(body)}, body, NOW)
    fresh = _with_replay_fields((NOW - dt.timedelta(minutes=4)).isoformat())
    assert verifier.verify({"X-GHL-Signature": signer.sign(fresh)}, fresh, NOW).occurred_at


def test_unparseable_timestamp_is_malformed(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    body = _with_replay_fields("yesterday")
    with pytest.raises(MalformedWebhook, match="timestamp"):
        verifier.verify({"X-GHL-Signature": signer.sign(body)}, body, NOW)


def test_other_platform_webhooks_pass_through_keyed_by_webhook_id(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer
) -> None:
    body = json.dumps(
        {"type": "ContactCreate", "webhookId": "wh-77", "timestamp": NOW.isoformat()}
    ).encode()
    event = verifier.verify({"X-GHL-Signature": signer.sign(body)}, body, NOW)
    assert (event.kind, event.event_type, event.dedup_key) == (
        EventKind.OTHER,
        "ContactCreate",
        "webhook:wh-77",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "JSON object"),
        (b"{not json", "not JSON"),
        (b'{"type": "SMS"}', "messageId"),
        (b'{"type": "Fax", "messageId": "m"}', "Fax"),
        (b'{"type": "SMS", "messageId": "m", "attachments": "x"}', "attachments"),
        (b'{"type": "SMS", "messageId": ".."}', "message_id"),
    ],
)
def test_signed_but_malformed_payloads_get_a_reason(
    verifier: HighLevelWebhookVerifier, signer: Ed25519Signer, body: bytes, reason: str
) -> None:
    with pytest.raises(MalformedWebhook, match=reason) as info:
        verifier.verify({"X-GHL-Signature": signer.sign(body)}, body, NOW)
    assert info.value.response_status == 400


def test_default_key_is_highlevels_published_ed25519_key() -> None:
    verifier = HighLevelWebhookVerifier()
    assert load_public_key(HIGHLEVEL_ED25519_KEY, kind="Ed25519") is not None
    # Our own signature cannot pass for HighLevel's.
    with pytest.raises(SignatureInvalid):
        verifier.verify({"X-GHL-Signature": Ed25519Signer().sign(HL_SMS_EXAMPLE)},
                        HL_SMS_EXAMPLE, NOW)  # fmt: skip


def test_pem_key_accepted_and_wrong_key_type_refused(
    signer: Ed25519Signer, rsa_signer: RsaSigner
) -> None:
    verifier = HighLevelWebhookVerifier(public_key=signer.public_pem)
    assert verifier.verify({"X-GHL-Signature": signer.sign(HL_SMS_EXAMPLE)}, HL_SMS_EXAMPLE, NOW)
    with pytest.raises(ConfigurationError, match="not an Ed25519"):
        HighLevelWebhookVerifier(public_key=rsa_signer.public_pem)
    with pytest.raises(ConfigurationError, match="PEM"):
        HighLevelWebhookVerifier(public_key="nonsense")


def test_registry_finds_the_verifier_for_every_variant(signer: Ed25519Signer) -> None:
    registry = AdapterRegistry.from_entry_points()
    from msgbridge.inbound import verifier_for

    for adapter_id in ("highlevel", "leadway", "hoop"):
        verifier = verifier_for(registry, adapter_id, {"public_key": signer.public_b64})
        event = verifier.verify(
            {"X-GHL-Signature": signer.sign(HL_SMS_EXAMPLE)}, HL_SMS_EXAMPLE, NOW
        )
        assert event.adapter == adapter_id
    with pytest.raises(ConfigurationError, match="unknown key"):
        verifier_for(registry, "highlevel", {"publickey": "x"})


def test_repr_shows_no_key_material(signer: Ed25519Signer) -> None:
    text = repr(HighLevelWebhookVerifier(public_key=signer.public_b64))
    assert signer.public_b64 not in text
    assert "highlevel" in text
