"""Chatwoot webhooks (API inbox): HMAC signature, timestamp window, de-duplication.

Since Chatwoot 4.13 an API inbox's outgoing webhooks carry ``X-Chatwoot-Signature:
sha256=<hex>`` = HMAC-SHA256 with the webhook secret over ``"{timestamp}.{raw body}"``,
``X-Chatwoot-Timestamp`` (epoch seconds) and ``X-Chatwoot-Delivery`` (a UUID stable across
retries) — chatwoot/chatwoot PRs #13573 and #13892, and the same recipe in several
independent receivers. A request older than five minutes is refused.

De-duplication: ``message_created`` is keyed on the **message id**, not the delivery id:
Chatwoot sends duplicate ``message_created`` events under load with distinct deliveries
(chatwoot/chatwoot#11901), and one message must be sent once. Other events are keyed on
``X-Chatwoot-Delivery`` (or the body's SHA-256 when it is absent).

An agent's public reply (``message_type: outgoing``) becomes an
:class:`~msgbridge.inbound.model.OutboundRequest`; everything else (incoming echoes,
private notes, conversation events) is passed through as raw payload.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

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
    parse_json_object,
)

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ChatwootWebhookVerifier",
    "chatwoot_signature",
]

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


def chatwoot_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The header value Chatwoot sends: ``sha256=`` + hex HMAC over ``"{ts}.{body}"``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _id(value: object) -> str | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, str)):
        return str(value)
    raise MalformedWebhook(f"Chatwoot payload id must be a number or string, got {value!r}")


class ChatwootWebhookVerifier(WebhookVerifier):
    """Verify Chatwoot's signed webhooks; parse agents' outgoing messages."""

    signature_headers = (SIGNATURE_HEADER, TIMESTAMP_HEADER)

    def __init__(
        self,
        *,
        secret: str,
        adapter_id: str = "chatwoot",
        tolerance: dt.timedelta = DEFAULT_TOLERANCE,
    ) -> None:
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigurationError(
                "secret (the Chatwoot webhook's secret) is required", key="secret"
            )
        self.adapter_id = adapter_id
        self._secret = secret
        self.tolerance = tolerance

    @classmethod
    def from_options(cls, adapter_id: str, options: Mapping[str, Any]) -> ChatwootWebhookVerifier:
        unknown = set(options) - {"secret", "tolerance_seconds"}
        if unknown:
            raise ConfigurationError(
                f"unknown webhook option(s) {sorted(unknown)}; allowed: secret, tolerance_seconds",
                key=sorted(unknown)[0],
            )
        seconds = options.get("tolerance_seconds", DEFAULT_TOLERANCE.total_seconds())
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ConfigurationError("tolerance_seconds must be a positive number", key="tolerance")
        return cls(
            secret=options.get("secret", ""),
            adapter_id=adapter_id,
            tolerance=dt.timedelta(seconds=seconds),
        )

    def check_signature(self, headers: Headers, body: bytes, now: dt.datetime) -> dt.datetime:
        signature = headers.require(SIGNATURE_HEADER)
        stamp = headers.require(TIMESTAMP_HEADER)
        if not re.fullmatch(r"[0-9]{1,12}", stamp):
            raise SignatureInvalid(
                f"{TIMESTAMP_HEADER} must be epoch seconds, got {stamp[:32]!r}",
                header=TIMESTAMP_HEADER,
            )
        signed_at = dt.datetime.fromtimestamp(int(stamp), dt.timezone.utc)
        check_window(signed_at, now, tolerance=self.tolerance, header=TIMESTAMP_HEADER)
        match = _SIGNATURE.fullmatch(signature)
        if match is None:
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} must be 'sha256=' and 64 hex digits (other algorithms "
                "are refused)",
                header=SIGNATURE_HEADER,
            )
        expected = chatwoot_signature(self._secret, stamp, body)
        if not constant_time_equal(expected, "sha256=" + match.group(1).lower()):
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} does not match the raw body", header=SIGNATURE_HEADER
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
        hdrs = as_headers(headers)
        signed_at = self.check_signature(hdrs, body, aware_now(now))
        data = parse_json_object(body, vendor="Chatwoot")
        event = data.get("event")
        if not isinstance(event, str) or not event:
            raise MalformedWebhook("Chatwoot payload has no event name")
        delivery = hdrs.one(DELIVERY_HEADER)
        try:
            if event == "message_created":
                message_id = _id(data.get("id"))
                if message_id is None:
                    raise MalformedWebhook("Chatwoot message_created has no message id")
                key = f"message_created:{message_id}"
                if data.get("message_type") == "outgoing" and not data.get("private"):
                    return WebhookEvent(
                        self.adapter_id,
                        EventKind.OUTBOUND_MESSAGE,
                        event,
                        key,
                        outbound=parse_outgoing(data, message_id),
                        occurred_at=signed_at,
                        raw=data,
                    )
                return WebhookEvent(
                    self.adapter_id, EventKind.OTHER, event, key, occurred_at=signed_at, raw=data
                )
            key = f"delivery:{delivery}" if delivery else f"body:{hashlib.sha256(body).hexdigest()}"
            return WebhookEvent(
                self.adapter_id, EventKind.OTHER, event, key, occurred_at=signed_at, raw=data
            )
        except MalformedWebhook:
            raise
        except MessagingError as exc:
            raise MalformedWebhook(f"Chatwoot payload: {exc.message}") from None


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def parse_outgoing(data: Mapping[str, Any], message_id: str) -> OutboundRequest:
    """The neutral request of an agent's ``message_created`` (``message_type: outgoing``)."""
    conversation = _object(data, "conversation")
    contact_inbox = _object(conversation, "contact_inbox")
    account = _object(data, "account")
    sender = _object(data, "sender")
    inbox = _object(data, "inbox")
    source_id = _id(contact_inbox.get("source_id"))
    attachments = [
        a["data_url"]
        for a in data.get("attachments") or []
        if isinstance(a, dict) and isinstance(a.get("data_url"), str) and a["data_url"]
    ]
    content = data.get("content")
    return OutboundRequest(
        message_id,
        ChannelKind.CHAT,
        account_id=_id(account.get("id")),
        conversation_id=_id(conversation.get("id")),
        contact_id=_id(contact_inbox.get("contact_id")),
        channel_id=_id(inbox.get("id")),
        user_id=_id(sender.get("id")) if sender.get("type") == "user" else None,
        text=content if isinstance(content, str) else None,
        attachments=attachments,
        recipients=[Party(source_id, kind="source_id")] if source_id else [],
        raw=data,
    )
