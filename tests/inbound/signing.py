"""Test-side signers: keys generated here, signatures made the way each vendor documents.

These are written independently of the library's verifiers (HubSpot's HMAC is computed
from the documented recipe, not with :func:`signature_v3`), so a shared mistake cannot
make both sides agree.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

#: HighLevel's documented SMS example payload (ProviderOutboundMessage.md), raw bytes as sent.
HL_SMS_EXAMPLE = (
    b'{\n  "contactId": "GKBhT6BfwY9mjzXAU3sq",\n  "locationId": "GKAWb4yu7A4LSc0skQ6g",\n'
    b'  "messageId": "GKJxs4P5L8dWc5CFUITM",\n  "type": "SMS",\n  "phone": "+15864603685",\n'
    b'  "message": "The text message to be sent to the contact",\n  "attachments": '
    b'["https://www.google.com/images/branding/googlelogo/1x/googlelogo_color_272x92dp.png"],\n'
    b'  "userId": "GK56r6wdJDrkUPd0xsmx"\n}'
)
#: HighLevel's documented Email example payload.
HL_EMAIL_EXAMPLE = json.dumps(
    {
        "contactId": "GKKFF0QB9gV8fGA6zEbr",
        "locationId": "GKifVDyQeo7nwe27vMP0",
        "messageId": "GK56r6wdJDrkUPd0xsmx",
        "emailMessageId": "GK56r6wdJDrkUPd0xsmx",
        "type": "Email",
        "emailTo": ["abc@gmail.com"],
        "emailFrom": "From Name <email@gmail.com>",
        "attachments": [
            "https://www.google.com/images/branding/googlelogo/1x/googlelogo_color_272x92dp.png"
        ],
        "html": '<div style="font-family: verdana, geneva; font-size: 11pt;"><p>Testing an '
        "outobund email from custom provider.</p></div>",
        "subject": "Subject from Conversation Page",
        "userId": "GK56r6wdJDrkUPd0xsmx",
    },
    indent=2,
).encode()

NOW = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.timezone.utc)


class Ed25519Signer:
    """A throwaway Ed25519 key pair standing in for HighLevel's."""

    def __init__(self) -> None:
        self._key = ed25519.Ed25519PrivateKey.generate()
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        #: SPKI DER, base64: the form HighLevel publishes its key in.
        self.public_b64 = base64.b64encode(der).decode()
        self.public_pem = (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self._key.sign(body)).decode()


class RsaSigner:
    """A throwaway RSA key pair standing in for HighLevel's legacy key."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, body: bytes) -> str:
        signature = self._key.sign(body, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's documented recipe: base64(HMAC-SHA256(secret, method+uri+body+timestamp))."""
    source = f"{method}{uri}{body.decode('utf-8')}{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def chatwoot_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Chatwoot's recipe: ``sha256=`` + hex HMAC-SHA256 over ``"{timestamp}.{body}"``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def millis(moment: dt.datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def hubspot_outgoing(message_id: str = "msg-1", **extra: Any) -> bytes:
    """An ``OUTGOING_CHANNEL_MESSAGE_CREATED`` body shaped like production handlers see it."""
    payload: dict[str, Any] = {
        "type": "OUTGOING_CHANNEL_MESSAGE_CREATED",
        "portalId": 123456,
        "channelId": 1001,
        "channelIntegrationThreadIds": ["thread-9"],
        "message": {
            "id": message_id,
            "channelAccountId": "555",
            "conversationsThreadId": "7788",
            "direction": "OUTGOING",
            "text": "Hello from the agent",
            "senders": [{"actorId": "A-12", "name": "Agent Smith"}],
            "recipients": [
                {"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+15550001111"}}
            ],
        },
        **extra,
    }
    return json.dumps(payload).encode()


class FakeClock:
    """Epoch seconds under the test's control."""

    def __init__(self, start: dt.datetime = NOW) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
