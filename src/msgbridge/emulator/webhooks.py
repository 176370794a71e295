"""The emulator plays the CRM: it sends signed webhooks and accepts inbound publishes.

Sending (:class:`WebhookSender`): the emulated CRM POSTs a signed webhook to a registered
delivery URL, the way each vendor does —

* HighLevel family: ``X-GHL-Signature``, Ed25519 over the raw body with the emulator's
  **published test key** (:data:`EMULATOR_ED25519_PUBLIC_KEY`; configure the intake's
  ``public_key`` with it; never trust it outside tests). Retried only on 429, as HighLevel
  does for its platform webhooks.
* HubSpot: ``X-HubSpot-Signature-v3`` with the app's client secret over method + the
  registered URL + body + ``X-HubSpot-Request-Timestamp``.
* Any other vendor through a signer callable (the Chatwoot plugin signs its own).

Duplicates, retries, delays, forged signatures and replays of a stale request are
injectable, and time (``clock``/``sleep``) is injectable so tests never wait.

Receiving: ``POST /conversations/messages/inbound`` (HighLevel family) and ``POST
/conversations/custom-channels/{version}/{channelId}/messages`` (HubSpot) are served by
the vendors through :func:`highlevel_inbound` / :func:`hubspot_inbound`, stored per vendor
and shown in the emulator's state (``inbound``). HighLevel's known trap is reproduced: a
publish without ``conversationProviderId`` for a custom provider answers **201 with an
empty body** and the message is not stored (highlevel-api-docs #70). HubSpot publishes
with a known ``integrationIdempotencyId`` return the message already stored.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, InvalidBody, Reject

if TYPE_CHECKING:
    from msgbridge.emulator.highlevel import HighLevelFamily
    from msgbridge.emulator.hubspot import HubSpot
    from msgbridge.emulator.vendor import EmulatedVendor

__all__ = [
    "EMULATOR_ED25519_PUBLIC_KEY",
    "InboundPublish",
    "SentWebhook",
    "WebhookSender",
    "highlevel_inbound",
    "hubspot_inbound",
    "inbound_publishes",
    "sign_highlevel",
    "sign_hubspot",
]

#: Seed of the emulator's Ed25519 **test** key: public on purpose, so anyone can forge
#: "emulator" webhooks. Use :data:`EMULATOR_ED25519_PUBLIC_KEY` only against the emulator.
_TEST_SEED = hashlib.sha256(b"msgbridge emulator webhook test key v1").digest()
#: The emulator's published Ed25519 public key (SPKI DER, base64), HighLevel's format.
EMULATOR_ED25519_PUBLIC_KEY = "MCowBQYDK2VwAyEA2XJmuMhrzFeMy2rO91blHjhq6oSHPpAog1/RuNVwqQM="


def _private_key() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - only without the extra
        raise RuntimeError(
            "signing emulated HighLevel webhooks needs 'cryptography': "
            "pip install 'msgbridge[webhooks]'"
        ) from None
    return ed25519.Ed25519PrivateKey.from_private_bytes(_TEST_SEED)


def sign_highlevel(body: bytes, *, forge: bool = False) -> dict[str, str]:
    """Headers of a HighLevel-signed webhook (``forge=True``: a signature by another key)."""
    if forge:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = _private_key()
    return {
        "Content-Type": "application/json",
        "X-GHL-Signature": base64.b64encode(key.sign(body)).decode(),
    }


def sign_hubspot(
    secret: str, url: str, body: bytes, at: float, *, method: str = "POST"
) -> dict[str, str]:
    """Headers of a HubSpot v3-signed request sent at *at* (epoch seconds)."""
    stamp = str(int(at * 1000))
    message = method.encode() + url.encode() + body + stamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": stamp,
    }


@dataclass
class SentWebhook:
    """One webhook the emulated CRM sent, and every answer it got (retries included)."""

    url: str
    body: bytes
    headers: dict[str, str]
    statuses: list[int] = field(default_factory=list)

    @property
    def final_status(self) -> int | None:
        return self.statuses[-1] if self.statuses else None


class WebhookSender:
    """POST signed webhooks to a delivery URL like the vendor would (sync, injectable time)."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retry_statuses: Sequence[int] = (429,),
        max_retries: int = 6,
        retry_delay: float = 600.0,
    ) -> None:
        self._client = client or httpx.Client(timeout=10.0)
        self._owns = client is None
        self.clock = clock
        self.sleep = sleep
        #: HighLevel retries only on 429, about every 10 minutes, up to 6 times.
        self.retry_statuses = frozenset(retry_statuses)
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.sent: list[SentWebhook] = []

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        duplicates: int = 0,
        delay: float = 0.0,
    ) -> SentWebhook:
        """Send once (after *delay*), retry on the retry statuses, then *duplicates* copies."""
        record = SentWebhook(url, body, dict(headers))
        if delay:
            self.sleep(delay)
        for copy in range(1 + duplicates):
            for attempt in range(self.max_retries + 1):
                try:
                    status = self._client.post(url, content=body, headers=dict(headers)).status_code
                except httpx.TransportError:
                    status = 0
                record.statuses.append(status)
                if status not in self.retry_statuses or attempt == self.max_retries:
                    break
                self.sleep(self.retry_delay)
            del copy
        self.sent.append(record)
        return record

    def highlevel(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        duplicates: int = 0,
        delay: float = 0.0,
        forge: bool = False,
    ) -> SentWebhook:
        """A ``ProviderOutboundMessage`` (or any payload) signed with the emulator's key."""
        body = json.dumps(dict(payload)).encode()
        return self.post(
            url, body, sign_highlevel(body, forge=forge), duplicates=duplicates, delay=delay
        )

    def hubspot(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        secret: str,
        duplicates: int = 0,
        delay: float = 0.0,
        signed_ago: float = 0.0,
        forge: bool = False,
    ) -> SentWebhook:
        """A v3-signed HubSpot event; ``signed_ago`` replays it that many seconds late."""
        body = json.dumps(dict(payload)).encode()
        key = "not-the-secret" if forge else secret
        headers = sign_hubspot(key, url, body, self.clock() - signed_ago)
        return self.post(url, body, headers, duplicates=duplicates, delay=delay)

    def close(self) -> None:
        if self._owns:
            self._client.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- receiving inbound publishes ---------------------------------------------------------


@dataclass
class InboundPublish:
    """A contact's message a provider published into the emulated CRM."""

    id: str
    account: str
    body: dict[str, Any]
    request_id: str
    wall: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "body": self.body,
            "request_id": self.request_id,
            "wall": self.wall,
        }


def inbound_publishes(vendor: EmulatedVendor) -> list[InboundPublish]:
    """The publishes *vendor* accepted (kept on the vendor object; cleared with a new one)."""
    store: list[InboundPublish] = vendor.__dict__.setdefault("_inbound_publishes", [])
    return store


_HL_TYPES = frozenset(
    {
        "SMS",
        "RCS",
        "Email",
        "WhatsApp",
        "GMB",
        "IG",
        "FB",
        "Custom",
        "WebChat",
        "Live_Chat",
        "Call",
        "IVR_Call",
        "Campaign_Call",
        "Campaign_VoiceMail",
        "TIKTOK",
        "ALL_IN_ONE_CHAT",
        "FORM_SUBMISSION",
    }
)


def _json_body(request: EmulatorRequest, bad: Callable[[str], Reject]) -> dict[str, Any]:
    try:
        body = request.json()
    except InvalidBody as exc:
        raise bad(str(exc)) from None
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def highlevel_inbound(vendor: HighLevelFamily, request: EmulatorRequest) -> EmulatorResponse:
    """``POST /conversations/messages/inbound`` (``ProcessMessageBodyDto``)."""
    token = vendor._authenticate(request)
    account = token.account
    vendor._rate_limit(request, account)
    vendor._check_version(request)
    body = _json_body(request, lambda m: vendor._bad_request(request, m))
    problems = []
    if body.get("type") not in _HL_TYPES:
        problems.append("type must be one of the following values: " + ", ".join(sorted(_HL_TYPES)))
    if not isinstance(body.get("contactId"), str) or not body.get("contactId"):
        problems.append("contactId must be a string")
    if problems:
        raise vendor._bad_request(request, problems)
    if not body.get("conversationProviderId") and body.get("type") not in ("SMS", "Email"):
        # The vendor's trap (#70): accepted, empty body, message silently dropped.
        return EmulatorResponse(201, None)
    message_id = "in-" + uuid.uuid4().hex[:16]
    conversation = body.get("conversationId") or f"conv-{body['contactId']}"
    with vendor.lock:
        inbound_publishes(vendor).append(
            InboundPublish(message_id, account, body, request.request_id, request.wall)
        )
    return EmulatorResponse(
        200,
        {
            "success": True,
            "conversationId": conversation,
            "messageId": message_id,
            "message": "Message queued successfully.",
            "contactId": body["contactId"],
            "traceId": request.request_id,
        },
    )


def hubspot_inbound(vendor: HubSpot, request: EmulatorRequest) -> EmulatorResponse:
    """``POST …/{channelId}/messages`` with ``messageDirection: INCOMING``."""
    token = vendor._authenticate(request)
    portal = token.account
    vendor._rate_limit(request, portal)
    channel_id = vendor._channel_id(request)
    body = _json_body(request, lambda m: vendor._validation(request, f"Invalid input JSON: {m}"))
    for key in ("channelAccountId", "messageDirection", "senders"):
        if not body.get(key):
            raise vendor._validation(request, f"{key} is required", key, "REQUIRED")
    if body["messageDirection"] != "INCOMING":
        raise vendor._validation(request, "messageDirection must be INCOMING", "messageDirection")
    idempotency = body.get("integrationIdempotencyId")
    with vendor.lock:
        store = inbound_publishes(vendor)
        if idempotency:
            for item in store:
                if item.body.get("integrationIdempotencyId") == idempotency:
                    return EmulatorResponse(200, _hubspot_message(item, channel_id))
        item = InboundPublish(
            str(10_000_000 + len(store)), portal, body, request.request_id, request.wall
        )
        store.append(item)
    return EmulatorResponse(200, _hubspot_message(item, channel_id))


def _hubspot_message(item: InboundPublish, channel_id: int) -> dict[str, Any]:
    created = dt.datetime.fromtimestamp(item.wall, dt.timezone.utc).isoformat()
    return {
        "id": item.id,
        "channelId": str(channel_id),
        "channelAccountId": str(item.body.get("channelAccountId")),
        "conversationsThreadId": f"thread-{item.body.get('integrationThreadId') or item.id}",
        "direction": "INCOMING",
        "type": "MESSAGE",
        "text": item.body.get("text", ""),
        "createdAt": created,
        "status": {"statusType": "RECEIVED"},
    }
