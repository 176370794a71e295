"""HubSpot custom-channel webhooks: signature v3 and the outgoing-message payload.

``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + URI + body +
``X-HubSpot-Request-Timestamp``)), compared in constant time; requests whose timestamp (epoch
milliseconds) is more than five minutes old are refused. The URI is the **public URL the app
registered** (configured, never rebuilt from ``Host``/``X-Forwarded-*`` headers, which an
attacker or a proxy controls), with only the characters HubSpot's docs list URL-decoded.

Payloads (one JSON object per request): ``OUTGOING_CHANNEL_MESSAGE_CREATED`` becomes an
:class:`~msgbridge.inbound.model.OutboundRequest` de-duplicated on ``message.id``;
``CHANNEL_ACCOUNT_CREATED``/``CHANNEL_ACCOUNT_UPDATED`` are passed through (raw payload)
de-duplicated on the SHA-256 of the body. HubSpot publishes no full payload reference; the
fields read here are those seen in production handlers (see ``docs/webhooks.md``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

import attrs

from msgbridge.errors import ConfigurationError, MessagingError
from msgbridge.inbound.errors import MalformedWebhook, SignatureInvalid
from msgbridge.inbound.model import ChannelKind, EventKind, OutboundRequest, Party, WebhookEvent
from msgbridge.inbound.verify import (
    DEFAULT_TOLERANCE,
    Headers,
    WebhookVerifier,
    as_headers,
    aware_now,
    check_window,
    constant_time_equal,
    decode_base64,
    parse_json_object,
)

__all__ = [
    "CHANNEL_ACCOUNT_EVENTS",
    "OUTGOING_MESSAGE_EVENT",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "HubSpotWebhookVerifier",
    "signature_v3",
    "signed_uri",
]

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
OUTGOING_MESSAGE_EVENT = "OUTGOING_CHANNEL_MESSAGE_CREATED"
CHANNEL_ACCOUNT_EVENTS = frozenset({"CHANNEL_ACCOUNT_CREATED", "CHANNEL_ACCOUNT_UPDATED"})

#: The percent-escapes HubSpot's request-validation docs say to decode before signing.
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ESCAPE = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)


def signed_uri(url: str) -> str:
    """*url* as HubSpot signs it: only the listed escapes decoded."""
    return _ESCAPE.sub(lambda m: _DECODED[m.group(0).upper()], url)


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """The base64 v3 signature HubSpot sends for this request."""
    message = method.upper().encode() + signed_uri(url).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _check_public_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value or ""):
        raise ConfigurationError(
            "public_url must be the full webhook URL registered with HubSpot, such as "
            f"'https://hooks.example.com/hubspot', got {value!r}",
            key="public_url",
        )
    return value


@attrs.frozen
class HubSpotWebhookOptions:
    """Options of :class:`HubSpotWebhookVerifier`."""

    client_secret: str = attrs.field(repr=False)
    public_url: str
    tolerance_seconds: float = DEFAULT_TOLERANCE.total_seconds()


class HubSpotWebhookVerifier(WebhookVerifier):
    """Verify HubSpot's v3-signed webhooks; parse custom-channel events."""

    signature_headers = (SIGNATURE_HEADER, TIMESTAMP_HEADER)

    def __init__(
        self,
        *,
        client_secret: str,
        public_url: str,
        adapter_id: str = "hubspot",
        tolerance: dt.timedelta = DEFAULT_TOLERANCE,
    ) -> None:
        if not isinstance(client_secret, str) or not client_secret.strip():
            raise ConfigurationError(
                "client_secret (the HubSpot app's client secret) is required", key="client_secret"
            )
        self.adapter_id = adapter_id
        self._secret = client_secret
        self.public_url = _check_public_url(public_url)
        self.tolerance = tolerance

    @classmethod
    def from_options(cls, adapter_id: str, options: Mapping[str, Any]) -> HubSpotWebhookVerifier:
        from msgbridge.settings import structure_settings

        parsed = structure_settings(options, HubSpotWebhookOptions, adapter=adapter_id)
        return cls(
            client_secret=parsed.client_secret,
            public_url=parsed.public_url,
            adapter_id=adapter_id,
            tolerance=dt.timedelta(seconds=parsed.tolerance_seconds),
        )

    def check_signature(
        self, headers: Headers, body: bytes, now: dt.datetime, *, method: str = "POST"
    ) -> dt.datetime:
        """Check timestamp window and signature; returns the signed time."""
        signature = headers.require(SIGNATURE_HEADER)
        stamp = headers.require(TIMESTAMP_HEADER)
        if not re.fullmatch(r"[0-9]{1,16}", stamp):
            raise SignatureInvalid(
                f"{TIMESTAMP_HEADER} must be epoch milliseconds, got {stamp[:32]!r}",
                header=TIMESTAMP_HEADER,
            )
        signed_at = dt.datetime.fromtimestamp(int(stamp) / 1000, dt.timezone.utc)
        check_window(signed_at, now, tolerance=self.tolerance, header=TIMESTAMP_HEADER)
        decode_base64(signature, header=SIGNATURE_HEADER)  # malformed → refused, typed
        expected = signature_v3(self._secret, method, self.public_url, body, stamp)
        if not constant_time_equal(expected, signature.strip()):
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} does not match (wrong secret, tampered body, or a "
                "public_url other than the one registered with HubSpot)",
                header=SIGNATURE_HEADER,
            )
        return signed_at

    def verify(
        self,
        headers: Headers | Mapping[str, str],
        body: bytes,
        now: dt.datetime,
        *,
        method: str = "POST",
    ) -> WebhookEvent:
        signed_at = self.check_signature(as_headers(headers), body, aware_now(now), method=method)
        data = parse_json_object(body, vendor="HubSpot")
        kind = data.get("type")
        try:
            if kind == OUTGOING_MESSAGE_EVENT:
                outbound = parse_outgoing_message(data)
                return WebhookEvent(
                    self.adapter_id,
                    EventKind.OUTBOUND_MESSAGE,
                    OUTGOING_MESSAGE_EVENT,
                    f"message:{outbound.message_id}",
                    outbound=outbound,
                    occurred_at=signed_at,
                    raw=data,
                )
            if kind in CHANNEL_ACCOUNT_EVENTS:
                return WebhookEvent(
                    self.adapter_id,
                    EventKind.CHANNEL_ACCOUNT,
                    str(kind),
                    f"body:{hashlib.sha256(body).hexdigest()}",
                    occurred_at=signed_at,
                    raw=data,
                )
        except MalformedWebhook:
            raise
        except MessagingError as exc:
            raise MalformedWebhook(f"HubSpot payload: {exc.message}") from None
        known = ", ".join(sorted({OUTGOING_MESSAGE_EVENT, *CHANNEL_ACCOUNT_EVENTS}))
        raise MalformedWebhook(f"HubSpot event type {kind!r} is not one of {known}")


def _id_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MalformedWebhook(f"expected an id (string or integer), got {type(value).__name__}")
    return str(value)


def _party(item: object, field: str) -> Party | None:
    if not isinstance(item, dict):
        raise MalformedWebhook(f"HubSpot message.{field} items must be objects")
    ident = item.get("deliveryIdentifier")
    name = item.get("name") if isinstance(item.get("name"), str) else None
    if isinstance(ident, dict) and isinstance(ident.get("value"), str):
        kind = ident.get("type") if isinstance(ident.get("type"), str) else None
        return Party(ident["value"], name=name, kind=kind)
    actor = item.get("actorId")
    if isinstance(actor, str) and actor:
        return Party(actor, name=name, kind="ACTOR_ID")
    return None


def parse_outgoing_message(data: Mapping[str, Any]) -> OutboundRequest:
    """The neutral :class:`OutboundRequest` of an ``OUTGOING_CHANNEL_MESSAGE_CREATED``."""
    message = data.get("message")
    if not isinstance(message, dict):
        raise MalformedWebhook(f"HubSpot {OUTGOING_MESSAGE_EVENT} has no message object")
    message_id = _id_text(message.get("id"))
    if message_id is None:
        raise MalformedWebhook(f"HubSpot {OUTGOING_MESSAGE_EVENT} message has no id")
    senders = message.get("senders") or []
    recipients = message.get("recipients") or []
    if not isinstance(senders, list) or not isinstance(recipients, list):
        raise MalformedWebhook("HubSpot message.senders and message.recipients must be lists")
    parsed_recipients = [p for p in (_party(r, "recipients") for r in recipients) if p]
    parsed_senders = [p for p in (_party(s, "senders") for s in senders) if p]
    attachments = [
        a["url"]
        for a in (message.get("attachments") or [])
        if isinstance(a, dict) and isinstance(a.get("url"), str) and a["url"]
    ]
    text = message.get("text")
    rich = message.get("richText")
    return OutboundRequest(
        message_id,
        ChannelKind.CUSTOM,
        account_id=_id_text(data.get("portalId")),
        channel_id=_id_text(data.get("channelId") or message.get("channelId")),
        channel_account_id=_id_text(message.get("channelAccountId")),
        conversation_id=_id_text(message.get("conversationsThreadId")),
        text=text if isinstance(text, str) else None,
        html=rich if isinstance(rich, str) else None,
        attachments=attachments,
        recipients=parsed_recipients,
        sender=parsed_senders[0] if parsed_senders else None,
        reply_to_id=_id_text(message.get("inReplyToId")),
        raw=data,
    )
