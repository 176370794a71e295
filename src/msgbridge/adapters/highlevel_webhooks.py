"""HighLevel (and white labels) webhooks: signature checks and the provider-outbound payload.

* ``X-GHL-Signature``: Ed25519 over the **raw** body, base64, checked against HighLevel's
  published key (:data:`HIGHLEVEL_ED25519_KEY`, overridable for tests and key rotations).
* ``X-WH-Signature``: the legacy RSA-SHA256 (PKCS#1 v1.5) signature, deprecated by HighLevel
  on 2026-07-01; checked **only** when ``legacy_rsa=True`` and no ``X-GHL-Signature`` came.
* Replay: a payload ``timestamp`` outside five minutes is refused. De-duplication key: the
  ``messageId`` of a ``ProviderOutboundMessage`` (one send per message, whatever webhook
  carried it), else the ``webhookId``; a payload with neither cannot be de-duplicated and is
  refused as malformed.

Needs the ``webhooks`` extra (``cryptography``); importing this module does not.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from msgbridge.errors import ConfigurationError, MessagingError
from msgbridge.inbound.errors import MalformedWebhook, SignatureInvalid, SignatureMissing
from msgbridge.inbound.model import (
    ChannelKind,
    EventKind,
    OutboundRequest,
    Party,
    WebhookEvent,
)
from msgbridge.inbound.verify import (
    DEFAULT_TOLERANCE,
    Headers,
    WebhookVerifier,
    as_headers,
    aware_now,
    check_window,
    decode_base64,
    parse_json_object,
)

__all__ = [
    "ED25519_HEADER",
    "HIGHLEVEL_ED25519_KEY",
    "HIGHLEVEL_RSA_KEY",
    "PROVIDER_OUTBOUND_TYPES",
    "RSA_HEADER",
    "HighLevelWebhookVerifier",
    "load_public_key",
]

ED25519_HEADER = "X-GHL-Signature"
RSA_HEADER = "X-WH-Signature"

#: HighLevel's published Ed25519 webhook key (SPKI, base64 DER), from
#: marketplace.gohighlevel.com/docs/webhook/ProviderOutboundMessage and the Webhook
#: Integration Guide; the same key signs platform webhooks.
HIGHLEVEL_ED25519_KEY = "MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg="

#: HighLevel's legacy RSA key for ``X-WH-Signature`` (docs/oauth/WebhookAuthentication.md).
HIGHLEVEL_RSA_KEY = """-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
"""

#: ``type`` values of the provider outbound-message webhook ("Custom": custom providers,
#: highlevel-api-docs issue #55; "Call": call providers).
PROVIDER_OUTBOUND_TYPES: Mapping[str, ChannelKind] = {
    "SMS": ChannelKind.SMS,
    "Email": ChannelKind.EMAIL,
    "Custom": ChannelKind.CUSTOM,
    "Call": ChannelKind.CALL,
}


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigurationError(
            "verifying HighLevel webhooks needs the 'cryptography' package: "
            "pip install 'msgbridge[webhooks]'",
            key="webhooks",
        ) from None
    return serialization


def load_public_key(value: str | bytes, *, kind: str) -> Any:
    """A public key from PEM, or from base64 SPKI DER (how HighLevel publishes its key)."""
    serialization = _crypto()
    raw = value.encode() if isinstance(value, str) else value
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
        else:
            key = serialization.load_der_public_key(base64.b64decode(raw, validate=True))
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"the {kind} public key is neither PEM nor base64 SPKI DER ({exc})", key="public_key"
        ) from None
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    expected = ed25519.Ed25519PublicKey if kind == "Ed25519" else rsa.RSAPublicKey
    if not isinstance(key, expected):
        raise ConfigurationError(
            f"the public key is a {type(key).__name__}, not an {kind} key", key="public_key"
        )
    return key


@attrs.frozen
class HighLevelWebhookOptions:
    """Options of :class:`HighLevelWebhookVerifier` (``webhook`` settings of a connection)."""

    #: Ed25519 key, PEM or base64 SPKI DER; HighLevel's published key by default.
    public_key: str = HIGHLEVEL_ED25519_KEY
    #: Accept the deprecated ``X-WH-Signature`` (RSA) when no ``X-GHL-Signature`` came.
    legacy_rsa: bool = False
    rsa_public_key: str = HIGHLEVEL_RSA_KEY
    #: Replay window for the payload's ``timestamp``, in seconds.
    tolerance_seconds: float = DEFAULT_TOLERANCE.total_seconds()


class HighLevelWebhookVerifier(WebhookVerifier):
    """Verify HighLevel's signed webhooks; parse ``ProviderOutboundMessage``."""

    signature_headers = (ED25519_HEADER, RSA_HEADER)

    def __init__(
        self,
        *,
        adapter_id: str = "highlevel",
        public_key: str | bytes = HIGHLEVEL_ED25519_KEY,
        legacy_rsa: bool = False,
        rsa_public_key: str | bytes = HIGHLEVEL_RSA_KEY,
        tolerance: dt.timedelta = DEFAULT_TOLERANCE,
    ) -> None:
        self.adapter_id = adapter_id
        self._ed25519 = load_public_key(public_key, kind="Ed25519")
        self.legacy_rsa = legacy_rsa
        self._rsa = load_public_key(rsa_public_key, kind="RSA") if legacy_rsa else None
        self.tolerance = tolerance

    @classmethod
    def from_options(cls, adapter_id: str, options: Mapping[str, Any]) -> HighLevelWebhookVerifier:
        from msgbridge.settings import structure_settings

        parsed = structure_settings(options, HighLevelWebhookOptions, adapter=adapter_id)
        return cls(
            adapter_id=adapter_id,
            public_key=parsed.public_key,
            legacy_rsa=parsed.legacy_rsa,
            rsa_public_key=parsed.rsa_public_key,
            tolerance=dt.timedelta(seconds=parsed.tolerance_seconds),
        )

    # -- signature ---------------------------------------------------------------------

    def check_signature(self, headers: Headers, body: bytes) -> str:
        """Check the signature over the raw *body*; returns the header that verified it."""
        from cryptography.exceptions import InvalidSignature

        ghl = headers.one(ED25519_HEADER)
        if ghl is not None:
            signature = decode_base64(ghl, header=ED25519_HEADER)
            if len(signature) != 64:
                raise SignatureInvalid(
                    f"{ED25519_HEADER} must be a 64-byte Ed25519 signature, got "
                    f"{len(signature)} bytes",
                    header=ED25519_HEADER,
                )
            try:
                self._ed25519.verify(signature, body)
            except InvalidSignature:
                raise SignatureInvalid(
                    f"{ED25519_HEADER} does not match the raw body (forged, tampered, or "
                    "re-serialised JSON)",
                    header=ED25519_HEADER,
                ) from None
            return ED25519_HEADER
        legacy = headers.one(RSA_HEADER)
        if legacy is not None and self._rsa is None:
            raise SignatureMissing(
                f"{ED25519_HEADER} is missing; only the deprecated {RSA_HEADER} came, which "
                "is refused unless legacy_rsa=True",
                header=ED25519_HEADER,
            )
        if legacy is None or self._rsa is None:
            raise SignatureMissing(
                f"header {ED25519_HEADER} is missing; unsigned requests are refused",
                header=ED25519_HEADER,
            )
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = decode_base64(legacy, header=RSA_HEADER)
        try:
            self._rsa.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SignatureInvalid(
                f"{RSA_HEADER} does not match the raw body", header=RSA_HEADER
            ) from None
        return RSA_HEADER

    # -- verify ------------------------------------------------------------------------

    def verify(
        self,
        headers: Headers | Mapping[str, str],
        body: bytes,
        now: dt.datetime,
        *,
        method: str = "POST",
    ) -> WebhookEvent:
        now = aware_now(now)
        hdrs = as_headers(headers)
        self.check_signature(hdrs, body)
        data = parse_json_object(body, vendor="HighLevel")
        signed_at = _timestamp(data.get("timestamp"))
        if signed_at is not None:
            check_window(signed_at, now, tolerance=self.tolerance, what="the payload timestamp")
        try:
            return self._event(data, signed_at)
        except MessagingError as exc:
            if isinstance(exc, MalformedWebhook):
                raise
            raise MalformedWebhook(f"HighLevel payload: {exc.message}") from None

    def _event(self, data: dict[str, Any], signed_at: dt.datetime | None) -> WebhookEvent:
        kind = data.get("type")
        webhook_id = _text(data, "webhookId")
        if isinstance(kind, str) and kind in PROVIDER_OUTBOUND_TYPES:
            outbound = parse_provider_outbound(data)
            return WebhookEvent(
                self.adapter_id,
                EventKind.OUTBOUND_MESSAGE,
                "ProviderOutboundMessage",
                f"message:{outbound.message_id}",
                outbound=outbound,
                occurred_at=signed_at,
                raw=data,
            )
        if isinstance(kind, str) and kind.strip() and webhook_id is not None:
            # Another platform webhook signed with the same key: passed through.
            return WebhookEvent(
                self.adapter_id,
                EventKind.OTHER,
                kind,
                f"webhook:{webhook_id}",
                occurred_at=signed_at,
                raw=data,
            )
        allowed = ", ".join(PROVIDER_OUTBOUND_TYPES)
        raise MalformedWebhook(
            f"HighLevel payload type {kind!r} is not a provider outbound message ({allowed}) "
            "and the payload has no webhookId to de-duplicate it by"
        )


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedWebhook(
            f"HighLevel payload {key} must be a string, got {type(value).__name__}"
        )
    return value


def _timestamp(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # epoch ms or s
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return (
                parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=dt.timezone.utc)
            )
    raise MalformedWebhook(
        f"HighLevel payload timestamp {value!r} is not an ISO 8601 time such as "
        "2025-01-28T14:35:00Z"
    )


def _addresses(value: object, key: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    raise MalformedWebhook(f"HighLevel payload {key} must be a string or a list of strings")


def parse_provider_outbound(data: Mapping[str, Any]) -> OutboundRequest:
    """The neutral :class:`OutboundRequest` of a ``ProviderOutboundMessage`` payload."""
    message_id = _text(data, "messageId")
    if message_id is None:
        raise MalformedWebhook("HighLevel ProviderOutboundMessage has no messageId")
    channel = PROVIDER_OUTBOUND_TYPES[str(data["type"])]
    recipients: list[Party] = []
    phone = _text(data, "phone")
    if phone is not None:
        recipients.append(Party(phone, kind="phone"))
    recipients.extend(Party(a, kind="email") for a in _addresses(data.get("emailTo"), "emailTo"))
    sender_address = _text(data, "emailFrom")
    attachments = data.get("attachments") or []
    if not isinstance(attachments, list) or not all(isinstance(a, str) for a in attachments):
        raise MalformedWebhook("HighLevel payload attachments must be a list of URL strings")
    return OutboundRequest(
        message_id,
        channel,
        account_id=_text(data, "locationId"),
        contact_id=_text(data, "contactId"),
        conversation_id=_text(data, "conversationId"),
        user_id=_text(data, "userId"),
        text=_text(data, "message"),
        html=_text(data, "html"),
        subject=_text(data, "subject"),
        attachments=attachments,
        recipients=recipients,
        sender=Party(sender_address, kind="email") if sender_address else None,
        email_message_id=_text(data, "emailMessageId"),
        reply_to_id=_text(data, "replyToAltId"),
        raw=data,
    )
