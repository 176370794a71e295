"""HighLevel and its white labels (Leadway, Hoop): one emulation, configured by data.

Contract source: the vendor notes (``highlevel.md``) and HighLevel's v2 OpenAPI
(``UpdateMessageStatusDto``, ``SendMessageResponseDto``, ``UpdateConversationDto``,
``GetAccessCodebodyDto``). Where the vendor is silent the emulator picks the strict
NestJS/class-validator behaviour the platform is built on and says so:

* Error bodies are NestJS-style ``{"statusCode", "message": str | [str], "error"?}``;
  validation messages use class-validator wording (``property foo should not exist``,
  ``status must be one of the following values: ...``).
* Order of checks: token (401) → rate limit (429) → ``Version`` (400) → body (400) →
  message lookup (404, or created) → location ownership (403) → provider race (403).
* The 404 body for unknown ids, the ``Version`` error wording, the 429 body, the
  401 for bad OAuth client credentials and the 5xx bodies (other than 500's
  ``Internal server error``, seen in issue #6) are **undocumented**; the shapes used here
  are NestJS defaults.
* A body sent with a non-JSON ``Content-Type`` is parsed as empty (what Nest's JSON
  parser does), so validation reports the missing fields.
* Every body carries ``traceId`` (HighLevel returns one with every response).
* ``Version``: each variant accepts what is documented for its paths. The three brands
  share one host, so each accepts ``2021-04-15`` (v2 spec), ``2021-07-28`` (Leadway's and
  Hoop's docs, the official SDK 1.0.0b1's default) and ``v3`` (the v3 spec lists it on
  both conversations paths; the official SDK 3.0.0 always sends it). The v3-only email
  status route accepts only ``v3``. A missing or any other value is refused (400).
* Bodies above 100 KiB answer 413 ``request entity too large``: HighLevel documents no
  limit; 100 KiB is the default of the body parser NestJS uses (an assumption).
* ``PUT /conversations/messages/email/{id}/status`` (v3): see :mod:`.highlevel_email`.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from msgbridge.emulator.highlevel_email import (
    EMAIL_PROVIDERS,
    EMAIL_STATUS_VERSIONS,
    MSG_EMAIL_NOT_FOUND,
    MSG_NOT_CUSTOM,
    EmailProvider,
    EmailRecord,
    apply_email_update,
    unknown_recipients,
    validate_email_status_body,
)
from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, InvalidBody, Reject
from msgbridge.emulator.loop import DemoLoop, WebhookKind
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.emulator.routing import Route
from msgbridge.emulator.state import ConversationChange, MessageRecord, MessageState
from msgbridge.emulator.tokens import AccessToken, RefreshOutcome
from msgbridge.emulator.vendor import EmulatedVendor, VendorSettings

if TYPE_CHECKING:
    from msgbridge.inbound.model import IncomingMessage, OutboundRequest
    from msgbridge.inbound.verify import WebhookVerifier

__all__ = [
    "HIGHLEVEL",
    "HIGHLEVEL_RATE_LIMIT",
    "HOOP",
    "LEADWAY",
    "STATUS_VALUES",
    "HighLevelFamily",
    "HighLevelLoop",
    "HighLevelVariant",
    "highlevel_inbound",
    "sign_highlevel",
]

STATUS_VALUES = ("delivered", "failed", "pending", "read")
_STATUS_SET = frozenset(STATUS_VALUES)
_STATUS_KEYS = frozenset({"status", "error", "emailMessageId", "recipients"})
_ERROR_KEYS = ("code", "type", "message")
_CONVERSATION_KEYS = frozenset({"locationId", "unreadCount", "starred", "feedback"})
_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
_USER_TYPES = ("Company", "Location")
_FORM = "application/x-www-form-urlencoded"

#: Burst 100 per 10 s and 200,000 per day, per location (``highlevel.md`` §6).
HIGHLEVEL_RATE_LIMIT = RateLimit(max_requests=100, interval=10.0, daily=200_000)
#: Largest request body accepted: NestJS's body-parser default (``100kb``); HighLevel
#: documents none, so this is an assumption.
HIGHLEVEL_MAX_BODY = 100 * 1024

MSG_INVALID_TOKEN = "Invalid token: access token is invalid"  # noqa: S105
MSG_FORBIDDEN = "You do not have permission to access this resource"
MSG_NO_PROVIDER = "No conversation provider found for this message"
MSG_BAD_REFRESH = "Invalid grant: refresh token is invalid"
MSG_INACTIVE = "Location is not active"
#: The location the demo token (``demo-<variant>-token``) belongs to.
DEMO_LOCATION = "demo-location"


@dataclass(frozen=True)
class HighLevelVariant:
    """What differs between HighLevel and a white label: name, Version values, body shape."""

    name: str
    #: ``Version`` header values accepted on the conversations endpoints.
    versions: tuple[str, ...]
    #: ``"current"``: ``SendMessageResponseDto`` with ``status``;
    #: ``"legacy"``: the older 5-field DTO (``messageIds``, ``msg``; no ``status``).
    response_style: Literal["current", "legacy"] = "current"
    #: Include ``forwardData`` in status responses.
    forward_data: bool = False

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError("a variant must accept at least one Version")


HIGHLEVEL = HighLevelVariant("highlevel", ("2021-04-15", "2021-07-28", "v3"))
LEADWAY = HighLevelVariant("leadway", ("2021-07-28", "2021-04-15", "v3"), forward_data=True)
HOOP = HighLevelVariant("hoop", ("2021-04-15", "2021-07-28", "v3"), response_style="legacy")


def variants() -> tuple[HighLevelVariant, ...]:
    """HighLevel and its white labels, in the order the emulator mounts them."""
    return (HIGHLEVEL, LEADWAY, HOOP)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def validate_status_body(body: dict[str, Any]) -> list[str]:
    """class-validator style problems with an ``UpdateMessageStatusDto`` (empty = valid)."""
    problems = [f"property {key} should not exist" for key in body if key not in _STATUS_KEYS]
    status = body.get("status")
    if not isinstance(status, str) or status not in _STATUS_SET:
        problems.append("status must be one of the following values: " + ", ".join(STATUS_VALUES))
    error = body.get("error")
    if error is not None:
        if not isinstance(error, dict):
            problems.append("nested property error must be either object or array")
        else:
            problems.extend(
                f"property error.{key} should not exist" for key in error if key not in _ERROR_KEYS
            )
            problems.extend(
                f"error.{key} must be a string"
                for key in _ERROR_KEYS
                if not isinstance(error.get(key), str)
            )
    email = body.get("emailMessageId")
    if email is not None and not isinstance(email, str):
        problems.append("emailMessageId must be a string")
    recipients = body.get("recipients")
    if recipients is not None:
        if not isinstance(recipients, list):
            problems.append("recipients must be an array")
        elif not all(isinstance(item, str) for item in recipients):
            problems.append("each value in recipients must be a string")
    return problems


def validate_conversation_body(body: dict[str, Any]) -> list[str]:
    """class-validator style problems with an ``UpdateConversationDto``."""
    problems = [f"property {key} should not exist" for key in body if key not in _CONVERSATION_KEYS]
    location = body.get("locationId")
    if not isinstance(location, str) or not location:
        problems.append("locationId must be a string")
        problems.append("locationId should not be empty")
    if "unreadCount" in body and body["unreadCount"] is not None:
        count = body["unreadCount"]
        if not _is_number(count):
            problems.append("unreadCount must be a number conforming to the specified constraints")
        elif count < 0:
            problems.append("unreadCount must not be less than 0")
    if body.get("starred") is not None and not isinstance(body["starred"], bool):
        problems.append("starred must be a boolean value")
    if body.get("feedback") is not None and not isinstance(body["feedback"], dict):
        problems.append("feedback must be an object")
    return problems


def sign_highlevel(body: bytes, *, forge: bool = False) -> dict[str, str]:
    """Headers of a HighLevel-signed webhook: ``X-GHL-Signature``, Ed25519 over the raw
    body with the emulator's published test key (``forge=True``: by another key)."""
    from msgbridge.emulator.webhooks import sign_ed25519

    return {"Content-Type": "application/json", "X-GHL-Signature": sign_ed25519(body, forge=forge)}


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


def highlevel_inbound(vendor: HighLevelFamily, request: EmulatorRequest) -> EmulatorResponse:
    """``POST /conversations/messages/inbound`` (``ProcessMessageBodyDto``).

    HighLevel's known trap is reproduced: a publish without ``conversationProviderId``
    for a custom provider answers **201 with an empty body** and the message is not
    stored (highlevel-api-docs #70).
    """
    from msgbridge.emulator.webhooks import InboundPublish, inbound_publishes, json_body

    token = vendor._authenticate(request)
    account = token.account
    vendor._rate_limit(request, account)
    vendor._check_version(request)
    body = json_body(request, lambda m: vendor._bad_request(request, m))
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


class HighLevelLoop(DemoLoop):
    """How a HighLevel variant plays ``msgbridge demo``'s inbound loop: a
    ``ProviderOutboundMessage`` signed with ``X-GHL-Signature`` (the emulator's Ed25519
    test key); a replay is a correctly signed event whose ``timestamp`` is years old;
    replies are published with ``POST /conversations/messages/inbound`` by a custom
    conversation provider."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.account = f"loop-{name}-location-1"

    def connection_settings(self) -> dict[str, Any]:
        return {"conversation_provider_id": f"loop-{self.name}-provider-1"}

    def verifier(self, public_url: str) -> WebhookVerifier:
        from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
        from msgbridge.emulator.webhooks import EMULATOR_ED25519_PUBLIC_KEY

        return HighLevelWebhookVerifier(
            adapter_id=self.name, public_key=EMULATOR_ED25519_PUBLIC_KEY
        )

    def seed(self, vendor: EmulatedVendor, message_id: str, index: int) -> None:
        vendor.seed_message(message_id, account=self.account, conversation_id=f"conv-{index}")

    def webhook(
        self, url: str, message_id: str, index: int, *, at: float, kind: WebhookKind
    ) -> tuple[bytes, dict[str, str]]:
        payload: dict[str, Any] = {
            "type": "SMS",
            "messageId": message_id,
            "locationId": self.account,
            "contactId": f"contact-{index}",
            "phone": f"+1555000{index % 10_000:04d}",
            "message": f"Hello #{index}",
            "userId": "user-1",
        }
        if kind == "replayed":
            payload.update(webhookId=f"wh-{message_id}", timestamp="2020-01-01T00:00:00Z")
        body = json.dumps(payload).encode()
        return body, sign_highlevel(body, forge=kind == "forged")

    def reply(self, outbound: OutboundRequest) -> IncomingMessage | None:
        from msgbridge.inbound.model import IncomingMessage

        return IncomingMessage(
            f"reply-{outbound.message_id}",
            "sms",
            text="Thanks!",
            contact_id=outbound.contact_id or "contact",
        )


class HighLevelFamily(EmulatedVendor):
    """``PUT /conversations/messages/{id}/status``, ``PUT /conversations/{id}``,
    ``POST /oauth/token`` for one HighLevel variant."""

    seed_statuses = STATUS_VALUES
    needs_channel_id = False
    has_provider_race = True

    def __init__(
        self, variant: HighLevelVariant = HIGHLEVEL, *, settings: VendorSettings | None = None
    ) -> None:
        if settings is None:
            settings = VendorSettings(
                rate_limit=HIGHLEVEL_RATE_LIMIT,
                access_token_ttl=86399.0,
                max_body_bytes=HIGHLEVEL_MAX_BODY,
            )
        super().__init__(variant.name, settings=settings)
        self.variant = variant
        self._versions = tuple(variant.versions)
        #: v3 email-status records, by email message id.
        self.emails: dict[str, EmailRecord] = {}
        self._static_headers: dict[RateLimit, list[tuple[str, str]]] = {}

    def routes(self) -> Sequence[Route]:
        return (
            Route(
                "PUT",
                "/conversations/messages/{messageId}/status",
                self._update_status,
                "update_message_status",
            ),
            Route(
                "PUT",
                "/conversations/messages/email/{id}/status",
                self._update_email_status,
                "update_email_status",
            ),
            Route(
                "PUT",
                "/conversations/{conversationId}",
                self._update_conversation,
                "update_conversation",
            ),
            Route("POST", "/oauth/token", self._oauth_token, "oauth_token"),
            Route("POST", "/conversations/messages/inbound", self._inbound, "add_inbound_message"),
        )

    def _inbound(self, request: EmulatorRequest) -> EmulatorResponse:
        return highlevel_inbound(self, request)

    # -- bodies ----------------------------------------------------------------------------
    @staticmethod
    def body(
        request: EmulatorRequest, status: int, message: str | list[str], error: str | None
    ) -> EmulatorResponse:
        payload: dict[str, Any] = {"statusCode": status, "message": message}
        if error is not None:
            payload["error"] = error
        payload["traceId"] = request.request_id
        return EmulatorResponse(status, payload)

    def error_response(
        self, request: EmulatorRequest, status: int, message: str | None = None
    ) -> EmulatorResponse:
        if status == 401:
            return self.body(request, 401, message or MSG_INVALID_TOKEN, "Unauthorized")
        if status == 429:
            # Undocumented: HighLevel publishes no 429 body; this is the NestJS default.
            return self.body(request, 429, message or "Too many requests", "Too Many Requests")
        if status == 500:
            # Issue #6 shows this exact body (no "error" key).
            return self.body(request, 500, message or "Internal server error", None)
        phrase = HTTPStatus(status).phrase
        return self.body(request, status, message or phrase, phrase)

    def route_not_found(self, request: EmulatorRequest, allowed: list[str]) -> EmulatorResponse:
        # NestJS answers 404 "Cannot METHOD /path" for a wrong method as well.
        return self.body(request, 404, f"Cannot {request.method} {request.path}", "Not Found")

    def _bad_request(self, request: EmulatorRequest, message: str | list[str]) -> Reject:
        return Reject(self.body(request, 400, message, "Bad Request"))

    def _forbidden(self, request: EmulatorRequest, message: str = MSG_FORBIDDEN) -> Reject:
        return Reject(self.body(request, 403, message, "Forbidden"))

    # -- shared checks ---------------------------------------------------------------------
    def _authenticate(self, request: EmulatorRequest) -> AccessToken:
        _, entry = self.lookup_token(request)
        if entry is None or entry.expired(request.now):
            raise Reject(self.body(request, 401, MSG_INVALID_TOKEN, "Unauthorized"))
        return entry

    def _rate_limit(self, request: EmulatorRequest, account: str) -> None:
        verdict = self.count_request(request, account)
        if verdict is None:
            return
        limit = verdict.limit
        headers = request.response_headers
        static = self._static_headers.get(limit)
        if static is None:
            static = self._static_headers[limit] = [
                ("X-RateLimit-Interval-Milliseconds", str(round(limit.interval * 1000))),
                ("X-RateLimit-Max", str(limit.max_requests)),
            ]
            if limit.daily is not None:
                static.append(("X-RateLimit-Limit-Daily", str(limit.daily)))
        headers.extend(static)
        if limit.daily is not None:
            headers.append(("X-RateLimit-Daily-Remaining", str(verdict.daily_remaining)))
        headers.append(("X-RateLimit-Remaining", str(verdict.remaining)))
        if not verdict.allowed:
            if self.settings.retry_after:
                headers.append(("Retry-After", str(verdict.retry_after)))
            raise Reject(self.error_response(request, 429))

    def _check_version(
        self, request: EmulatorRequest, accepted: tuple[str, ...] | None = None
    ) -> None:
        versions = self._versions if accepted is None else accepted
        version = request.headers.get("version")
        if version in versions:
            return
        text = ", ".join(versions)
        if version is None:
            message = f"Version header is required; this API accepts: {text}"
        else:
            message = f"Version header value {version!r} is not supported; this API accepts: {text}"
        raise self._bad_request(request, message)

    def _json_object(self, request: EmulatorRequest) -> dict[str, Any]:
        if request.media_type != "application/json" or not request.body:
            return {}
        try:
            body = request.json()
        except InvalidBody as exc:
            raise self._bad_request(request, str(exc)) from None
        if not isinstance(body, dict):
            raise self._bad_request(request, "the request body must be a JSON object")
        return body

    # -- PUT /conversations/messages/{messageId}/status ----------------------------------------
    def _update_status(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authenticate(request)
        account = token.account
        self._rate_limit(request, account)
        self._check_version(request)
        body = self._json_object(request)
        problems = validate_status_body(body)
        if problems:
            raise self._bad_request(request, problems)
        message_id = request.params["messageId"]
        message = self.messages.get(message_id)
        if message is None:
            if self.settings.unknown_messages != "create":
                raise Reject(self.body(request, 404, "Message not found", "Not Found"))
            # No conversation record: in "create" mode conversations appear on first use too.
            message = self.messages.create(
                message_id, account=account, now=request.now, wall=request.wall, origin="auto"
            )
        if message.account != account:
            raise self._forbidden(request)
        race = message.provider_ready_after
        if race is None:
            race = self.settings.provider_race
        if race and request.now < message.created_mono + race:
            raise self._forbidden(request, MSG_NO_PROVIDER)
        email = body.get("emailMessageId")
        if email:
            message.email_message_id = email
        self.messages.apply(
            message,
            body["status"],
            error=body.get("error"),
            fields=body,
            wall=request.wall,
            request_id=request.request_id,
        )
        return EmulatorResponse(200, self._status_body(request, message))

    def _status_body(self, request: EmulatorRequest, message: MessageRecord) -> dict[str, Any]:
        body: dict[str, Any] = {
            "conversationId": message.thread_id,
            "messageId": message.id,
        }
        if self.variant.response_style == "legacy":
            if message.email_message_id:
                body["emailMessageId"] = message.email_message_id
            body["messageIds"] = [message.id]
            body["msg"] = "Message status updated successfully."
        else:
            body["status"] = message.status
            if message.email_message_id:
                body["emailMessageId"] = message.email_message_id
            if self.variant.forward_data:
                forward: dict[str, Any] = {"forwardWholeThread": False, "messageId": message.id}
                if message.email_message_id:
                    forward["emailMessageId"] = message.email_message_id
                body["forwardData"] = forward
        body["traceId"] = request.request_id
        return body

    # -- PUT /conversations/messages/email/{id}/status (v3) ----------------------------------
    def _update_email_status(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authenticate(request)
        account = token.account
        self._rate_limit(request, account)
        self._check_version(request, EMAIL_STATUS_VERSIONS)
        body = self._json_object(request)
        problems = validate_email_status_body(body)
        if problems:
            raise self._bad_request(request, problems)
        email_id = request.params["id"]
        record = self.emails.get(email_id)
        if record is None:
            if self.settings.unknown_messages != "create":
                raise Reject(self.body(request, 404, MSG_EMAIL_NOT_FOUND, "Not Found"))
            record = self.emails[email_id] = EmailRecord(email_id, account)
        if record.account != account:
            raise self._forbidden(request)
        if record.provider != "custom":
            raise self._forbidden(request, MSG_NOT_CUSTOM)
        strangers = unknown_recipients(record, body)
        if strangers:
            raise self._bad_request(request, strangers)
        apply_email_update(record, body, wall=request.wall, request_id=request.request_id)
        return EmulatorResponse(
            200,
            {
                "success": True,
                "message": "Updated email message successfully",
                "traceId": request.request_id,
            },
        )

    # -- PUT /conversations/{conversationId} ------------------------------------------------
    def _update_conversation(self, request: EmulatorRequest) -> EmulatorResponse:
        token = self._authenticate(request)
        account = token.account
        self._rate_limit(request, account)
        self._check_version(request)
        body = self._json_object(request)
        problems = validate_conversation_body(body)
        if problems:
            raise self._bad_request(request, problems)
        conversation_id = request.params["conversationId"]
        item = self.conversations.get(conversation_id)
        if item is None:
            if self.settings.unknown_messages != "create":
                raise Reject(self.body(request, 404, "Conversation not found", "Not Found"))
            if body["locationId"] != account:
                raise self._forbidden(request)
            item = self.conversations.create(conversation_id, account=account, origin="auto")
        if item.account != account or body["locationId"] != item.account:
            raise self._forbidden(request)
        if body.get("unreadCount") is not None:
            item.unread_count = body["unreadCount"]
        if body.get("starred") is not None:
            item.starred = body["starred"]
        if body.get("feedback") is not None:
            item.feedback = body["feedback"]
        self.conversations.record(item, ConversationChange(body, request.wall, request.request_id))
        conversation = {
            "id": item.id,
            "locationId": item.account,
            "contactId": item.contact_id,
            "unreadCount": item.unread_count,
            "inbox": True,
            "starred": item.starred,
            "deleted": item.deleted,
        }
        return EmulatorResponse(
            200, {"success": True, "conversation": conversation, "traceId": request.request_id}
        )

    # -- POST /oauth/token ---------------------------------------------------------------------
    def _oauth_token(self, request: EmulatorRequest) -> EmulatorResponse:
        form: dict[str, str] = {}
        if request.media_type == _FORM:
            try:
                form = request.form()
            except InvalidBody as exc:
                raise self._bad_request(request, str(exc)) from None
        problems = [
            f"{key} should not be empty"
            for key in ("client_id", "client_secret", "grant_type")
            if not form.get(key)
        ]
        grant_type = form.get("grant_type", "")
        if grant_type and grant_type not in _GRANT_TYPES:
            problems.append(
                "grant_type must be one of the following values: " + ", ".join(_GRANT_TYPES)
            )
        user_type = form.get("user_type")
        if user_type is not None and user_type not in _USER_TYPES:
            problems.append(
                "user_type must be one of the following values: " + ", ".join(_USER_TYPES)
            )
        if problems:
            raise Reject(self.body(request, 422, problems, "Unprocessable Entity"))
        if grant_type != "refresh_token":
            raise Reject(
                self.body(
                    request,
                    400,
                    f"Invalid parameter: grant_type ({grant_type} is not emulated; "
                    "only refresh_token is)",
                    None,
                )
            )
        refresh_token = form.get("refresh_token", "")
        if not refresh_token:
            raise Reject(self.body(request, 400, "Missing parameter: refresh_token", None))
        result = self.oauth.redeem(
            form["client_id"],
            form["client_secret"],
            refresh_token,
            rotate=self.settings.rotate_refresh_tokens,
        )
        if result.outcome in (RefreshOutcome.UNKNOWN_CLIENT, RefreshOutcome.BAD_SECRET):
            raise Reject(
                self.body(
                    request, 401, "Invalid client: client credentials are invalid", "Unauthorized"
                )
            )
        if result.outcome is RefreshOutcome.BAD_REFRESH_TOKEN:
            raise Reject(self.body(request, 400, MSG_BAD_REFRESH, None))
        if result.outcome is RefreshOutcome.ACCOUNT_INACTIVE:
            raise Reject(self.body(request, 400, MSG_INACTIVE, None))
        assert result.account is not None
        assert result.client is not None
        ttl = self.settings.access_token_ttl
        access_token = self.mint_access_token(request, result.account, result.client.client_id)
        extra = result.client.extra
        return EmulatorResponse(
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "refresh_token": result.refresh_token,
                "scope": "conversations/message.write conversations.write",
                "userType": user_type or "Location",
                "locationId": result.account,
                "companyId": extra.get("company_id", "emulated-company"),
                "userId": extra.get("user_id", "emulated-user"),
                "traceId": request.request_id,
            },
        )

    # -- seeding -----------------------------------------------------------------------------
    def seed_email(
        self,
        email_id: str,
        *,
        account: str,
        provider: EmailProvider = "custom",
        status: str | None = None,
        recipients: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """Make an email known (v3 email status). ``provider="lc_email"`` or
        ``"mailgun"`` makes its updates answer 403, as HighLevel documents;
        ``recipients`` limits which ``emailId`` values an update may name."""
        if provider not in EMAIL_PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(EMAIL_PROVIDERS)}")
        with self.lock:
            record = EmailRecord(
                email_id,
                str(account),
                provider=provider,
                status=status,
                known_recipients=None if recipients is None else tuple(recipients),
            )
            self.emails[email_id] = record
            return record.to_dict()

    def email(self, email_id: str) -> dict[str, Any] | None:
        """An email's stored status, counters, recipients and history (a copy)."""
        with self.lock:
            record = self.emails.get(email_id)
            return None if record is None else record.to_dict()

    def seed_message(
        self,
        message_id: str,
        *,
        account: str,
        conversation_id: str | None = None,
        channel_id: int | None = None,
        status: str | None = None,
        provider_ready_after: float | None = None,
        email_message_id: str | None = None,
        **attributes: Any,
    ) -> MessageState:
        """As the base; a message with ``email_message_id`` also makes that email known
        (sent by a custom provider) so its v3 email status can be updated."""
        state = super().seed_message(
            message_id,
            account=account,
            conversation_id=conversation_id,
            channel_id=channel_id,
            status=status,
            provider_ready_after=provider_ready_after,
            email_message_id=email_message_id,
            **attributes,
        )
        if email_message_id is not None:
            with self.lock:
                if email_message_id not in self.emails:
                    self.emails[email_message_id] = EmailRecord(email_message_id, str(account))
        return state

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.emails.clear()

    # -- what the CLI needs (``msgbridge emulate``, ``msgbridge demo``) ------------------

    def banner_note(self) -> str:
        return f"(Version: {', '.join(self.variant.versions)})"

    def demo_token_account(self) -> str:
        return DEMO_LOCATION

    def demo_account(self, index: int) -> str:
        return f"{self.name}-location-{index + 1}"

    def demo_connection(
        self, base_url: str, account: str, token: str
    ) -> tuple[dict[str, Any], Any]:
        """Connections name their location; the emulator's provider race is short, so a
        "No conversation provider" 403 is retried after 0.1 s instead of HighLevel's 1 s."""
        settings, credentials = super().demo_connection(base_url, account, token)
        return {**settings, "location_id": account, "provider_retry_after": 0.1}, credentials

    def demo_loop(self) -> HighLevelLoop:
        return HighLevelLoop(self.name)

    def on_message_created(self, conversation_id: str, account: str) -> None:
        if self.conversations.get(conversation_id) is None:
            self.conversations.create(conversation_id, account=account, origin="auto")

    def snapshot(self) -> dict[str, Any]:
        data = super().snapshot()
        data["versions"] = list(self.variant.versions)
        with self.lock:
            data["emails"] = {k: v.to_dict() for k, v in self.emails.items()}
        data["response_style"] = self.variant.response_style
        return data
