"""Chatwoot webhook verification in the plugin: HMAC made here, fail closed, de-dup keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from msgbridge_chatwoot.webhooks import ChatwootWebhookVerifier

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

SECRET = "cw-webhook-secret"
NOW = dt.datetime(2026, 12, 4, 12, tzinfo=dt.timezone.utc)


def sign(body: bytes, *, at: dt.datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(at.timestamp()))
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Chatwoot-Signature": f"sha256={mac}",
        "X-Chatwoot-Timestamp": stamp,
        "X-Chatwoot-Delivery": "6f1b3c1e-0000-4000-8000-000000000001",
    }


def message_created(message_id: int = 42, **extra: Any) -> bytes:
    payload: dict[str, Any] = {
        "event": "message_created",
        "id": message_id,
        "content": "Agent reply",
        "message_type": "outgoing",
        "private": False,
        "account": {"id": 1},
        "inbox": {"id": 7},
        "sender": {"id": 3, "type": "user", "name": "Agent"},
        "conversation": {"id": 99, "contact_inbox": {"contact_id": 5, "source_id": "wa-123"}},
        "attachments": [{"data_url": "https://cw.example/a.png"}],
        **extra,
    }
    return json.dumps(payload).encode()


@pytest.fixture
def verifier() -> ChatwootWebhookVerifier:
    return ChatwootWebhookVerifier(secret=SECRET)


def test_agent_reply_verifies_and_parses(verifier: ChatwootWebhookVerifier) -> None:
    body = message_created()
    event = verifier.verify(sign(body), body, NOW)
    assert (event.kind, event.dedup_key) == (EventKind.OUTBOUND_MESSAGE, "message_created:42")
    out = event.outbound
    assert out is not None
    assert out.channel is ChannelKind.CHAT
    assert (out.account_id, out.conversation_id, out.contact_id, out.user_id) == (
        "1",
        "99",
        "5",
        "3",
    )
    assert [p.identifier for p in out.recipients] == ["wa-123"]
    assert out.attachments == ("https://cw.example/a.png",)


def test_duplicate_message_created_with_new_delivery_id_has_the_same_key(
    verifier: ChatwootWebhookVerifier,
) -> None:
    body = message_created()
    first = sign(body)
    second = {**sign(body), "X-Chatwoot-Delivery": "another-delivery"}
    assert (
        verifier.verify(first, body, NOW).dedup_key == verifier.verify(second, body, NOW).dedup_key
    )


def test_private_notes_and_incoming_echoes_are_not_sent(verifier: ChatwootWebhookVerifier) -> None:
    for extra in ({"private": True}, {"message_type": "incoming"}):
        body = message_created(**extra)
        assert verifier.verify(sign(body), body, NOW).kind is EventKind.OTHER


def test_other_events_keyed_by_delivery(verifier: ChatwootWebhookVerifier) -> None:
    body = json.dumps({"event": "conversation_status_changed", "id": 99}).encode()
    assert verifier.verify(sign(body), body, NOW).dedup_key == (
        "delivery:6f1b3c1e-0000-4000-8000-000000000001"
    )


@pytest.mark.parametrize("missing", ["X-Chatwoot-Signature", "X-Chatwoot-Timestamp"])
def test_missing_headers_refused(verifier: ChatwootWebhookVerifier, missing: str) -> None:
    body = message_created()
    headers = sign(body)
    del headers[missing]
    with pytest.raises(SignatureMissing):
        verifier.verify(headers, body, NOW)


@pytest.mark.parametrize(
    "signature", ["sha1=" + "0" * 40, "sha256=xyz", "0" * 64, "sha256=" + "0" * 64]
)
def test_unknown_algorithm_malformed_or_wrong_signature_refused(
    verifier: ChatwootWebhookVerifier, signature: str
) -> None:
    body = message_created()
    with pytest.raises(SignatureInvalid):
        verifier.verify({**sign(body), "X-Chatwoot-Signature": signature}, body, NOW)


def test_tampered_reserialised_stale_and_wrong_secret_refused(
    verifier: ChatwootWebhookVerifier,
) -> None:
    body = message_created()
    headers = sign(body)
    with pytest.raises(SignatureInvalid):
        verifier.verify(headers, body.replace(b"Agent reply", b"Pay me"), NOW)
    with pytest.raises(SignatureInvalid):
        verifier.verify(headers, json.dumps(json.loads(body)).encode().replace(b", ", b","), NOW)
    with pytest.raises(SignatureInvalid):
        verifier.verify(sign(body, secret="guess"), body, NOW)
    with pytest.raises(WebhookExpired):
        verifier.verify(sign(body, at=NOW - dt.timedelta(minutes=6)), body, NOW)


def test_signed_payload_without_event_is_malformed(verifier: ChatwootWebhookVerifier) -> None:
    body = b'{"id": 1}'
    with pytest.raises(MalformedWebhook, match="event"):
        verifier.verify(sign(body), body, NOW)


def test_found_through_the_registry_and_secret_is_required() -> None:
    registry = AdapterRegistry.from_entry_points()
    verifier = verifier_for(registry, "chatwoot", {"secret": SECRET})
    body = message_created()
    assert verifier.verify(sign(body), body, NOW).adapter == "chatwoot"
    assert SECRET not in repr(verifier)
    with pytest.raises(ConfigurationError, match="secret"):
        verifier_for(registry, "chatwoot", {})
    with pytest.raises(ConfigurationError, match="unknown"):
        verifier_for(registry, "chatwoot", {"secret": SECRET, "algo": "md5"})


def test_emulated_chatwoot_sends_signed_webhooks_into_an_intake(tmp_path: Any) -> None:
    import time

    pytest.importorskip("uvicorn")
    from msgbridge_chatwoot.emulator import ChatwootVendor

    from msgbridge.emulator.server import ServerThread
    from msgbridge.emulator.webhooks import WebhookSender
    from msgbridge.inbound import InboundDelivery, InboundStore, Intake

    seen: list[InboundDelivery] = []
    intake = Intake(
        InboundStore(tmp_path / "in.db"), {"chatwoot": ChatwootWebhookVerifier(secret=SECRET)},
        seen.append,
    )  # fmt: skip
    server = ServerThread(intake.asgi())
    server.start()
    try:
        with WebhookSender() as sender:
            # The same reply twice with new delivery ids (chatwoot#11901), and a forgery.
            for _ in range(2):
                body, headers = ChatwootVendor.agent_reply_webhook(7, secret=SECRET, at=time.time())
                assert sender.post(f"{server.url}/chatwoot", body, headers).statuses == [200]
            body, headers = ChatwootVendor.agent_reply_webhook(8, secret="wrong", at=time.time())
            assert sender.post(f"{server.url}/chatwoot", body, headers).statuses == [401]
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.stop()
        intake.store.close()
    assert [d.key for d in seen] == ["chatwoot:message_created:7"]


def test_chatwoot_plays_msgbridge_demos_inbound_loop_like_a_built_in() -> None:
    """The plugin's ``ChatwootLoop`` (declared by its emulated vendor) is all the demo
    needs: agent replies are signed, forged and replayed ones refused, statuses land."""
    pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")
    from msgbridge_chatwoot.emulator import ChatwootVendor

    from msgbridge.cli.demo_loop import run_demo_loop
    from msgbridge.emulator import Emulator

    registry = AdapterRegistry.from_entry_points()
    with Emulator(vendors=[ChatwootVendor()], builtins=False) as emu:
        report = run_demo_loop(9, seed=2, registry=registry, emulator=emu)
    assert report.ok, report.problems
    assert report.vendors == ["chatwoot"]
    assert report.forged_refused == report.forged_sent > 0
    assert report.replays_refused == report.replays_sent > 0
    assert {actual for actual, _ in report.finals.values()} == {"delivered", "read", "failed"}
    assert report.replies_expected == 0  # the adapter does not publish incoming messages
