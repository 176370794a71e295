"""HubSpot Conversations custom channels: the message-status PATCH and OAuth refresh.

Contract source: the vendor notes (``hubspot.md``): ``PublicChannelIntegrationMessageUpdateRequest``
in, ``PublicConversationsMessage`` out, the ``Error`` body (plus the ``"status": "error"``
real bodies carry) and the legacy 429 body. Where HubSpot is silent, the emulator chooses
and says so:

* Unknown body keys are rejected (strict), with HubSpot's Jackson-style wording
  (``Unrecognized field "x"``); exact wording of every validation message is ours.
* A message of another portal, or under another channel, is **404 OBJECT_NOT_FOUND**
  (HubSpot scopes data by portal; unconfirmed), as is an unknown message id in
  ``"reject"`` mode.
* Unknown-token wording, the ``BAD_CLIENT_ID`` / ``BAD_GRANT_TYPE`` OAuth statuses and
  the 5xx categories are unconfirmed.
* Refresh tokens rotate (single-use) by default, like HighLevel's; HubSpot does not say
  whether they do, and a strict emulator catches clients that drop the new one.
  ``configure("hubspot", rotate_refresh_tokens=False)`` keeps them stable.
* Every response carries ``X-HubSpot-Correlation-Id`` (the error bodies' ``correlationId``).
* Order of checks: token (401) → rate limit (429) → ``channelId`` (400) → body (400/415)
  → message lookup (404, or created) → apply.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, InvalidBody, Reject
from msgbridge.emulator.loop import DemoLoop, WebhookKind
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.emulator.routing import Route
from msgbridge.emulator.state import MessageRecord
from msgbridge.emulator.tokens import AccessToken, RefreshOutcome
from msgbridge.emulator.vendor import EmulatedVendor, VendorSettings

if TYPE_CHECKING:
    from msgbridge.emulator.webhooks import InboundPublish
    from msgbridge.inbound.model import IncomingMessage, OutboundRequest
    from msgbridge.inbound.verify import WebhookVerifier

__all__ = [
    "API_VERSIONS",
    "HUBSPOT_RATE_LIMIT",
    "STATUS_TYPES",
    "HubSpot",
    "HubSpotLoop",
    "hubspot_inbound",
    "sign_hubspot",
]

#: Date versions of the custom-channels API that the emulator serves (plus legacy ``v3``).
API_VERSIONS = ("2025-09", "2026-03", "2026-09")
STATUS_TYPES = ("SENT", "FAILED", "READ")
_STATUS_SET = frozenset(STATUS_TYPES)
_UPDATE_KEYS = frozenset({"statusType", "errorMessage"})
_INT32_MAX = 2**31 - 1
_FORM = "application/x-www-form-urlencoded"
_REQUEST_CLASS = "PublicChannelIntegrationMessageUpdateRequest"

#: 110 per 10 s per portal (the widely cited public-app figure; ``hubspot.md`` §4).
HUBSPOT_RATE_LIMIT = RateLimit(max_requests=110, interval=10.0)
#: The portal the demo token (``demo-hubspot-token``) belongs to, and its channel.
DEMO_PORTAL = "1234567"
DEMO_CHANNEL_ID = 1000

MSG_NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
MSG_INVALID_TOKEN = "The OAuth token used to make this call is not valid."  # noqa: S105

_CATEGORY_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "VALIDATION_ERROR",
    409: "CONFLICT",
    415: "VALIDATION_ERROR",
}


def _iso(wall: float) -> str:
    moment = dt.datetime.fromtimestamp(wall, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sign_hubspot(
    secret: str, url: str, body: bytes, at: float, *, method: str = "POST"
) -> dict[str, str]:
    """Headers of a HubSpot v3-signed request sent at *at* (epoch seconds):
    ``X-HubSpot-Signature-v3`` = base64 HMAC-SHA256 with the app's client secret over
    method + the registered URL + body + ``X-HubSpot-Request-Timestamp``."""
    stamp = str(int(at * 1000))
    message = method.encode() + url.encode() + body + stamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def hubspot_inbound(vendor: HubSpot, request: EmulatorRequest) -> EmulatorResponse:
    """``POST …/{channelId}/messages`` with ``messageDirection: INCOMING``; a publish
    with a known ``integrationIdempotencyId`` returns the message already stored."""
    from msgbridge.emulator.webhooks import InboundPublish, inbound_publishes, json_body

    token = vendor._authenticate(request)
    portal = token.account
    vendor._rate_limit(request, portal)
    channel_id = vendor._channel_id(request)
    body = json_body(request, lambda m: vendor._validation(request, f"Invalid input JSON: {m}"))
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


class HubSpotLoop(DemoLoop):
    """How HubSpot plays ``msgbridge demo``'s inbound loop: an
    ``OUTGOING_CHANNEL_MESSAGE_CREATED`` event signed with v3 HMAC and a client secret
    made for the run; a replay is the same request signed ten minutes ago; replies are
    published as ``INCOMING`` messages on the channel."""

    channel_id = 5001
    channel_account = "loop-account-1"

    def __init__(self, name: str) -> None:
        self.name = name
        self.account = "4200001"
        self.secret = secrets.token_urlsafe(24)

    def connection_settings(self) -> dict[str, Any]:
        return {"channel_id": self.channel_id, "channel_account_id": self.channel_account}

    def verifier(self, public_url: str) -> WebhookVerifier:
        from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier

        return HubSpotWebhookVerifier(
            adapter_id=self.name, client_secret=self.secret, public_url=public_url
        )

    def seed(self, vendor: EmulatedVendor, message_id: str, index: int) -> None:
        vendor.seed_message(message_id, account=self.account, channel_id=self.channel_id)

    def webhook(
        self, url: str, message_id: str, index: int, *, at: float, kind: WebhookKind
    ) -> tuple[bytes, dict[str, str]]:
        payload = {
            "type": "OUTGOING_CHANNEL_MESSAGE_CREATED",
            "portalId": int(self.account),
            "channelId": self.channel_id,
            "message": {
                "id": message_id,
                "channelAccountId": self.channel_account,
                "text": f"Hello #{index}",
                "conversationsThreadId": f"thread-{index}",
                "direction": "OUTGOING",
                "recipients": [
                    {
                        "deliveryIdentifier": {
                            "type": "HS_PHONE_NUMBER",
                            "value": f"+1555000{index % 10_000:04d}",
                        }
                    }
                ],
            },
        }
        body = json.dumps(payload).encode()
        secret = "not-the-secret" if kind == "forged" else self.secret
        signed_at = at - 600 if kind == "replayed" else at
        return body, sign_hubspot(secret, url, body, signed_at)

    def status_fields(self, outbound: OutboundRequest) -> dict[str, Any]:
        return {"channel_id": outbound.channel_id}

    def reply(self, outbound: OutboundRequest) -> IncomingMessage | None:
        from msgbridge.inbound.model import IncomingMessage, Party

        return IncomingMessage(
            f"reply-{outbound.message_id}",
            "custom",
            text="Thanks!",
            sender=Party("+15550100", kind="phone"),
        )


class HubSpot(EmulatedVendor):
    """HubSpot custom channels.

    ``PATCH|GET /conversations/custom-channels/{version}/{channelId}/messages/{messageId}``,
    the legacy ``/conversations/v3/custom-channels/...`` and
    ``POST /oauth/{v1,v3,2026-03}/token``.
    """

    seed_statuses = (*STATUS_TYPES, "RECEIVED")
    needs_channel_id = True
    #: HubSpot's request signatures; the recorder masks them.
    secret_headers = frozenset({"x-hubspot-signature", "x-hubspot-signature-v3"})

    def demo_account(self, index: int) -> str:
        """HubSpot accounts are portal ids (numbers)."""
        return str(2_000_001 + index)

    def demo_connection(
        self, base_url: str, account: str, token: str
    ) -> tuple[dict[str, Any], Any]:
        """HubSpot addresses messages under a channel: every demo portal uses the demo one."""
        settings, credentials = super().demo_connection(base_url, account, token)
        return {**settings, "channel_id": DEMO_CHANNEL_ID}, credentials

    def demo_loop(self) -> HubSpotLoop:
        return HubSpotLoop(self.name)

    def __init__(
        self,
        name: str = "hubspot",
        *,
        settings: VendorSettings | None = None,
        api_versions: Sequence[str] = API_VERSIONS,
        integration_app_id: int = 424242,
    ) -> None:
        if settings is None:
            settings = VendorSettings(rate_limit=HUBSPOT_RATE_LIMIT, access_token_ttl=1800.0)
        super().__init__(name, settings=settings)
        self.api_versions = tuple(api_versions)
        self.integration_app_id = integration_app_id

    def demo_token_account(self) -> str:
        return DEMO_PORTAL

    def demo_notes(self) -> list[str]:
        return [f"{self.name} demo channel id: {DEMO_CHANNEL_ID}"]

    def routes(self) -> Sequence[Route]:
        routes: list[Route] = []
        bases = [f"/conversations/custom-channels/{v}" for v in self.api_versions]
        bases.append("/conversations/v3/custom-channels")
        for base in bases:
            path = base + "/{channelId}/messages/{messageId}"
            routes.append(Route("PATCH", path, self._update_message, "update_message_status"))
            routes.append(Route("GET", path, self._get_message, "get_message"))
            routes.append(Route("POST", base + "/{channelId}/messages", self._inbound, "publish"))
        for version in ("v1", "v3", "2026-03"):
            routes.append(
                Route("POST", f"/oauth/{version}/token", self._oauth_token, "oauth_token")
            )
        return routes

    def _inbound(self, request: EmulatorRequest) -> EmulatorResponse:
        return hubspot_inbound(self, request)

    # -- bodies ----------------------------------------------------------------------------
    @staticmethod
    def error_body(
        request: EmulatorRequest,
        status: int,
        message: str,
        category: str,
        **extra: Any,
    ) -> EmulatorResponse:
        payload: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": request.request_id,
            "category": category,
        }
        payload.update(extra)
        return EmulatorResponse(status, payload)

    def error_response(
        self, request: EmulatorRequest, status: int, message: str | None = None
    ) -> EmulatorResponse:
        if status == 429:
            return self._rate_limited(request, request.account, "interval")
        if status == 401:
            return self.error_body(
                request, 401, message or MSG_INVALID_TOKEN, "INVALID_AUTHENTICATION"
            )
        category = _CATEGORY_BY_STATUS.get(status)
        if category is None:
            # Unconfirmed: HubSpot publishes no category for 5xx answers.
            category = "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"
        phrase = HTTPStatus(status).phrase
        return self.error_body(request, status, message or phrase, category)

    def route_not_found(self, request: EmulatorRequest, allowed: list[str]) -> EmulatorResponse:
        if allowed:
            return self.error_body(
                request,
                405,
                f"Method {request.method} is not allowed on {request.path}; "
                f"allowed: {', '.join(allowed)}",
                "VALIDATION_ERROR",
            )
        return self.error_body(
            request, 404, f"No endpoint at {request.method} {request.path}", "OBJECT_NOT_FOUND"
        )

    def decorate(self, request: EmulatorRequest, response: EmulatorResponse) -> None:
        response.headers.append(("X-HubSpot-Correlation-Id", request.request_id))

    def _rate_limited(
        self, request: EmulatorRequest, account: str | None, policy: str
    ) -> EmulatorResponse:
        names = {
            "interval": ("ten_secondly_rolling", "TEN_SECONDLY_ROLLING", "ten-secondly"),
            "secondly": ("secondly", "SECONDLY", "secondly"),
            "daily": ("daily", "DAILY", "daily"),
        }[policy]
        # The legacy shape: no "category" (hubspot.md §4).
        return EmulatorResponse(
            429,
            {
                "status": "error",
                "message": f"You have reached your {names[0]} limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": request.request_id,
                "policyName": names[1],
                "groupName": f"publicapi:oauth-api-calls-{names[2]}:{account or 0}",
            },
        )

    # -- shared checks ---------------------------------------------------------------------
    def _authenticate(self, request: EmulatorRequest) -> AccessToken:
        token, entry = self.lookup_token(request)
        if token is None:
            raise Reject(
                self.error_body(request, 401, MSG_NO_CREDENTIALS, "INVALID_AUTHENTICATION")
            )
        if entry is None:
            raise Reject(self.error_body(request, 401, MSG_INVALID_TOKEN, "INVALID_AUTHENTICATION"))
        if entry.expired(request.now):
            assert entry.expires_at is not None
            assert entry.expires_wall is not None
            ago = max(0, math.floor(request.now - entry.expires_at))
            raise Reject(
                self.error_body(
                    request,
                    401,
                    f"The OAuth token used to make this call expired {ago} second(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                    context={"expire time": [_iso(entry.expires_wall)]},
                )
            )
        return entry

    def _rate_limit(self, request: EmulatorRequest, account: str) -> None:
        verdict = self.count_request(request, account)
        if verdict is None:
            return
        limit = verdict.limit
        headers = request.response_headers
        if limit.daily is not None:
            headers.append(("X-HubSpot-RateLimit-Daily", str(limit.daily)))
            headers.append(("X-HubSpot-RateLimit-Daily-Remaining", str(verdict.daily_remaining)))
        headers.append(
            ("X-HubSpot-RateLimit-Interval-Milliseconds", str(round(limit.interval * 1000)))
        )
        headers.append(("X-HubSpot-RateLimit-Max", str(limit.max_requests)))
        headers.append(("X-HubSpot-RateLimit-Remaining", str(verdict.remaining)))
        if limit.secondly is not None:
            headers.append(("X-HubSpot-RateLimit-Secondly", str(limit.secondly)))
            headers.append(
                ("X-HubSpot-RateLimit-Secondly-Remaining", str(verdict.secondly_remaining))
            )
        if not verdict.allowed:
            if self.settings.retry_after:
                headers.append(("Retry-After", str(verdict.retry_after)))
            raise Reject(self._rate_limited(request, account, verdict.policy or "interval"))

    def _validation(
        self, request: EmulatorRequest, message: str, field: str | None = None, code: str = ""
    ) -> Reject:
        errors = [{"message": message, "in": field, "code": code or "INVALID"}] if field else []
        extra: dict[str, Any] = {"errors": errors} if errors else {}
        return Reject(self.error_body(request, 400, message, "VALIDATION_ERROR", **extra))

    def _channel_id(self, request: EmulatorRequest) -> int:
        raw = request.params["channelId"]
        if not (raw.isascii() and raw.lstrip("-").isdigit()) or not (
            -(2**31) <= int(raw) <= _INT32_MAX
        ):
            raise self._validation(
                request,
                f"Invalid input: channelId {raw!r} is not a valid integer (int32)",
                "channelId",
                "INVALID_INTEGER",
            )
        return int(raw)

    def _parse_update(self, request: EmulatorRequest) -> dict[str, Any]:
        media = request.media_type
        if media != "application/json":
            raise Reject(
                self.error_body(
                    request,
                    415,
                    f"Content type '{media or 'none'}' is not supported; use application/json",
                    "VALIDATION_ERROR",
                )
            )
        try:
            body = request.json()
        except InvalidBody as exc:
            raise self._validation(request, f"Invalid input JSON: {exc}") from None
        if not isinstance(body, dict):
            raise self._validation(
                request, f"Invalid input JSON: expected an object for {_REQUEST_CLASS}"
            )
        for key in body:
            if key not in _UPDATE_KEYS:
                raise self._validation(
                    request,
                    f'Invalid input JSON: Unrecognized field "{key}" (class {_REQUEST_CLASS}), '
                    "not marked as ignorable",
                    key,
                    "UNRECOGNIZED_FIELD",
                )
        status = body.get("statusType")
        if status is None:
            raise self._validation(
                request,
                f"Invalid input JSON: Cannot build {_REQUEST_CLASS}, some of required "
                "attributes are not set [statusType]",
                "statusType",
                "REQUIRED",
            )
        if not isinstance(status, str) or status not in _STATUS_SET:
            raise self._validation(
                request,
                f"Invalid input JSON: Cannot deserialize value of type `StatusType` from "
                f"{_json_repr(status)}: not one of the values accepted for Enum class: "
                f"[{', '.join(STATUS_TYPES)}]",
                "statusType",
                "INVALID_ENUM",
            )
        error_message = body.get("errorMessage")
        if error_message is not None and not isinstance(error_message, str):
            raise self._validation(
                request,
                "Invalid input JSON: errorMessage must be a string",
                "errorMessage",
                "INVALID_STRING",
            )
        return body

    def _not_found(self, request: EmulatorRequest, message_id: str, channel_id: int) -> Reject:
        return Reject(
            self.error_body(
                request,
                404,
                f"Message {message_id} not found in channel {channel_id}",
                "OBJECT_NOT_FOUND",
            )
        )

    # -- PATCH .../{channelId}/messages/{messageId} -------------------------------------------
    def _update_message(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authenticate(request)
        portal = token.account
        self._rate_limit(request, portal)
        channel_id = self._channel_id(request)
        body = self._parse_update(request)
        message_id = request.params["messageId"]
        message = self.messages.get(message_id)
        if message is None:
            if self.settings.unknown_messages != "create":
                raise self._not_found(request, message_id, channel_id)
            message = self.messages.create(
                message_id,
                account=portal,
                now=request.now,
                wall=request.wall,
                channel_id=channel_id,
                origin="auto",
            )
        if message.account != portal or message.channel_id != channel_id:
            raise self._not_found(request, message_id, channel_id)
        status = body["statusType"]
        error_message = body.get("errorMessage")
        self.messages.apply(
            message,
            status,
            error=error_message,
            fields=body,
            wall=request.wall,
            request_id=request.request_id,
        )
        return EmulatorResponse(200, self._message_body(message))

    def _get_message(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authenticate(request)
        self._rate_limit(request, token.account)
        channel_id = self._channel_id(request)
        message_id = request.params["messageId"]
        message = self.messages.get(message_id)
        if message is None or message.account != token.account or message.channel_id != channel_id:
            raise self._not_found(request, message_id, channel_id)
        return EmulatorResponse(200, self._message_body(message))

    def _message_body(self, message: MessageRecord) -> dict[str, Any]:
        attr = message.attribute
        created_by = str(attr("created_by", "A-1"))
        body: dict[str, Any] = {
            "id": message.id,
            "channelId": str(message.channel_id),
            "channelAccountId": str(attr("channel_account_id", f"{message.channel_id}-1")),
            "conversationsThreadId": message.thread_id,
            "createdBy": created_by,
            "text": str(attr("text", "")),
            "createdAt": _iso(message.created_at),
            "archived": False,
            "direction": "OUTGOING",
            "type": "MESSAGE",
            "truncationStatus": "NOT_TRUNCATED",
            "client": {"clientType": "INTEGRATION", "integrationAppId": self.integration_app_id},
            "senders": [{"actorId": created_by}],
            "recipients": [],
            "attachments": [],
        }
        if message.updated_at is not None:
            body["updatedAt"] = _iso(message.updated_at)
        if message.status is not None:
            status: dict[str, Any] = {"statusType": message.status}
            if message.status == "FAILED":
                details: dict[str, Any] = {"errorMessageTokens": {}}
                last = message.history[-1] if message.history else None
                if last is not None and isinstance(last.error, str):
                    details["errorMessage"] = last.error
                status["failureDetails"] = details
            body["status"] = status
        return body

    # -- POST /oauth/{version}/token -------------------------------------------------------
    def _oauth_error(self, request: EmulatorRequest, status: str, message: str) -> Reject:
        return Reject(
            EmulatorResponse(
                400, {"status": status, "message": message, "correlationId": request.request_id}
            )
        )

    def _oauth_token(self, request: EmulatorRequest) -> EmulatorResponse:
        form: dict[str, str] = {}
        if request.media_type == _FORM:
            try:
                form = request.form()
            except InvalidBody:
                form = {}
        if form.get("grant_type") != "refresh_token":
            raise self._oauth_error(
                request,
                "BAD_GRANT_TYPE",
                "missing or unsupported grant_type (the emulator implements refresh_token)",
            )
        result = self.oauth.redeem(
            form.get("client_id", ""),
            form.get("client_secret", ""),
            form.get("refresh_token", ""),
            rotate=self.settings.rotate_refresh_tokens,
        )
        if result.outcome is RefreshOutcome.UNKNOWN_CLIENT:
            raise self._oauth_error(request, "BAD_CLIENT_ID", "missing or unknown client id")
        if result.outcome is RefreshOutcome.BAD_SECRET:
            raise self._oauth_error(
                request, "BAD_CLIENT_SECRET", "missing or invalid client secret"
            )
        if result.outcome is not RefreshOutcome.OK:
            raise self._oauth_error(
                request, "BAD_REFRESH_TOKEN", "missing or invalid refresh token"
            )
        assert result.account is not None
        assert result.client is not None
        ttl = self.settings.access_token_ttl
        access_token = self.mint_access_token(request, result.account, result.client.client_id)
        hub_id: int | str = int(result.account) if result.account.isdigit() else result.account
        return EmulatorResponse(
            200,
            {
                "access_token": access_token,
                "refresh_token": result.refresh_token,
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "token_type": "bearer",
                "token_use": "access_token",
                "hub_id": hub_id,
            },
        )

    # -- seeding ------------------------------------------------------------------------------


def _json_repr(value: Any) -> str:
    if isinstance(value, str):
        return f'String "{value}"'
    return f"{type(value).__name__} {value!r}"
