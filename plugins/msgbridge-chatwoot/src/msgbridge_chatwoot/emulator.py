"""An emulated Chatwoot for msgbridge's emulator: the message-status PATCH, strictly.

Needs msgbridge's emulator (``pip install "msgbridge-chatwoot[emulator]"``); importing this
module without it raises ``ImportError``, which the plugin's hook treats as "no vendor".

``PATCH /api/v1/accounts/{account_id}/conversations/{conversation_id}/messages/{message_id}``
mounted at ``/chatwoot`` (so a connection's ``base_url`` is ``<emulator url>/chatwoot``).

Behaviour taken from Chatwoot's code (``Messages::StatusUpdateService``, the messages
controller, ``AccessTokenAuthHelper``, ``RequestExceptionHandler``, ``rack_attack.rb``):

* Order of checks: rate limit (429; rack-attack runs before Rails) → ``api_access_token``
  (401 ``Invalid Access Token``) → account access (401) → conversation lookup (404
  ``Resource could not be found``) → API inbox (403 ``Message status update is only
  allowed for API inboxes``) → message lookup within the conversation (404) → body
  (see below) → apply.
* An unknown ``status`` value is ignored: 200, the message unchanged.
* ``read`` → ``delivered`` is skipped silently: 200, the message stays ``read``. No other
  transition is refused (``read`` → ``sent`` or ``failed`` → ``delivered`` apply).
* ``external_error`` is stored only with ``failed``; any other status clears it.
* Answers 200 with the message JSON (integer ids where the id is numeric).

Where the emulator chooses (stricter than Chatwoot, which drops unpermitted params and
ignores a missing ``status``; ``strict_body=False`` restores Chatwoot's leniency):

* A body that is not a JSON object, has keys other than ``status`` and
  ``external_error``, lacks ``status``, or has a non-string ``status`` or
  ``external_error``, is answered 422 ``{"error": "..."}``. Malformed JSON is a 400
  (Rails' parse error).
* rack-attack's throttle is per client IP in fixed one-minute windows (default 3000);
  the emulator counts every request against one budget in a sliding window and answers
  429 with rack-attack's plain-text ``Retry later`` body, no ``Retry-After`` (unless
  ``retry_after`` is configured).
* 5xx bodies are ``{"error": "<reason phrase>"}`` (Chatwoot's real 5xx pages are
  unconfirmed).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, InvalidBody, Reject
from msgbridge.emulator.loop import DemoLoop, WebhookKind
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.emulator.routing import Route
from msgbridge.emulator.state import ConversationState, MessageRecord, MessageState
from msgbridge.emulator.vendor import EmulatedVendor, VendorSettings
from msgbridge_chatwoot.adapter import NOT_AN_API_INBOX
from msgbridge_chatwoot.auth import HEADER

if TYPE_CHECKING:
    from msgbridge.inbound.model import OutboundRequest
    from msgbridge.inbound.verify import WebhookVerifier

__all__ = [
    "CHATWOOT_RATE_LIMIT",
    "INBOX_TYPES",
    "STATUS_VALUES",
    "ChatwootLoop",
    "ChatwootVendor",
]

#: ``Message.statuses`` in Chatwoot.
STATUS_VALUES = ("sent", "delivered", "read", "failed")
_STATUS_SET = frozenset(STATUS_VALUES)
_BODY_KEYS = frozenset({"status", "external_error"})
#: Inbox channel kinds a seeded conversation may have; only ``api`` accepts updates.
INBOX_TYPES = ("api", "web_widget", "email", "whatsapp", "sms", "telegram", "facebook")

#: rack-attack's default ``req/ip`` throttle: 3000 requests per minute.
CHATWOOT_RATE_LIMIT = RateLimit(max_requests=3000, interval=60.0)
#: The one key rack-attack's per-IP throttle counts against (every client is loopback).
_THROTTLE_KEY = "req/ip"

MSG_INVALID_TOKEN = "Invalid Access Token"  # noqa: S105 - an error text, not a secret
MSG_NO_ACCOUNT_ACCESS = "You are not authorized to access this account"
MSG_NOT_FOUND = "Resource could not be found"
MSG_THROTTLED = b"Retry later\n"


class ChatwootLoop(DemoLoop):
    """How Chatwoot plays ``msgbridge demo``'s inbound loop: an agent's reply in an API
    inbox makes Chatwoot POST a signed ``message_created`` (``X-Chatwoot-Signature`` over
    ``"{timestamp}.{body}"`` with the inbox's webhook secret, made for the run); a replay
    is the same request signed ten minutes ago. The adapter does not publish incoming
    messages, so contacts' replies are not part of Chatwoot's loop."""

    def __init__(self, name: str) -> None:
        import secrets

        self.name = name
        self.account = "1"
        self._secret = secrets.token_urlsafe(24)

    def verifier(self, public_url: str) -> WebhookVerifier:
        from msgbridge_chatwoot.webhooks import ChatwootWebhookVerifier

        return ChatwootWebhookVerifier(secret=self._secret, adapter_id=self.name)

    def seed(self, vendor: EmulatedVendor, message_id: str, index: int) -> None:
        vendor.seed_message(message_id, account=self.account, conversation_id=str(100 + index))

    def webhook(
        self, url: str, message_id: str, index: int, *, at: float, kind: WebhookKind
    ) -> tuple[bytes, dict[str, str]]:
        return ChatwootVendor.agent_reply_webhook(
            message_id,
            secret="not-the-secret" if kind == "forged" else self._secret,
            at=at - 600 if kind == "replayed" else at,
            account=int(self.account),
            conversation_id=100 + index,
            content=f"Hello #{index}",
            delivery=f"delivery-{message_id}",
        )

    def status_fields(self, outbound: OutboundRequest) -> dict[str, Any]:
        """Chatwoot addresses a message inside its conversation."""
        return {"conversation_id": outbound.conversation_id}


def _number_or_text(value: str) -> int | str:
    return int(value) if value.isascii() and value.isdigit() else value


class ChatwootVendor(EmulatedVendor):
    """Chatwoot's ``PATCH .../messages/{message_id}`` (message status) for one installation.

    Tokens map to one account each: ``vendor.add_token("tok", account="1")``. Seed messages
    with their conversation (``conversation_id=``) and, for a non-API inbox,
    ``inbox_type="web_widget"``; a conversation's inbox is set by its first message.
    """

    seed_statuses = STATUS_VALUES
    needs_channel_id = False

    #: Chatwoot's token travels in its own header; the recorder masks it.
    secret_headers = frozenset({"api_access_token"})
    #: Not a bearer token: the header Chatwoot reads (``AccessTokenAuthHelper``).
    credential_scheme = f"{HEADER}: <token>"

    # -- the recipe ``msgbridge demo`` uses -------------------------------------------

    def demo_account(self, index: int) -> str:
        """Chatwoot account ids are numbers."""
        return str(index + 1)

    def demo_connection(
        self, base_url: str, account: str, token: str
    ) -> tuple[dict[str, Any], Any]:
        from msgbridge_chatwoot.auth import ChatwootToken

        return {"base_url": base_url, "account_id": int(account)}, ChatwootToken(token)

    def demo_message_fields(self, message_id: str) -> dict[str, str]:
        """Chatwoot addresses a message inside its conversation: one per message here."""
        return {"conversation_id": str(zlib.crc32(message_id.encode()) % 900_000 + 100_000)}

    # -- the emulated Chatwoot as a webhook sender ---------------------------------------

    def demo_loop(self) -> ChatwootLoop:
        return ChatwootLoop(self.name)

    @staticmethod
    def agent_reply_webhook(
        message_id: int | str,
        *,
        secret: str,
        at: float,
        account: int = 1,
        conversation_id: int = 100,
        source_id: str = "contact-1",
        content: str = "Hello from the agent",
        delivery: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Body and headers of the signed ``message_created`` Chatwoot sends to an API
        inbox's webhook when an agent replies (post them with
        :class:`msgbridge.emulator.webhooks.WebhookSender`)."""
        import json
        import uuid

        from msgbridge_chatwoot.webhooks import chatwoot_signature

        body = json.dumps(
            {
                "event": "message_created",
                "id": message_id,
                "content": content,
                "message_type": "outgoing",
                "private": False,
                "account": {"id": account},
                "sender": {"id": 1, "type": "user"},
                "conversation": {"id": conversation_id, "contact_inbox": {"source_id": source_id}},
            }
        ).encode()
        stamp = str(int(at))
        headers = {
            "Content-Type": "application/json",
            "X-Chatwoot-Signature": chatwoot_signature(secret, stamp, body),
            "X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Delivery": delivery or str(uuid.uuid4()),
        }
        return body, headers

    def __init__(
        self,
        name: str = "chatwoot",
        *,
        settings: VendorSettings | None = None,
        strict_body: bool = True,
    ) -> None:
        if settings is None:
            settings = VendorSettings(rate_limit=CHATWOOT_RATE_LIMIT)
        super().__init__(name, settings=settings)
        self.strict_body = strict_body
        #: (account, conversation display id) -> inbox channel kind.
        self._inboxes: dict[tuple[str, str], str] = {}

    def routes(self) -> Sequence[Route]:
        path = "/api/v1/accounts/{account_id}/conversations/{conversation_id}/messages/{message_id}"
        return (Route("PATCH", path, self._update_status, "update_message_status"),)

    # -- bodies ------------------------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str) -> EmulatorResponse:
        return EmulatorResponse(status, {"error": message})

    def error_response(
        self, request: EmulatorRequest, status: int, message: str | None = None
    ) -> EmulatorResponse:
        if status == 429:
            return EmulatorResponse(429, MSG_THROTTLED)
        if status == 401:
            return self.error_body(401, message or MSG_INVALID_TOKEN)
        if status == 404:
            return self.error_body(404, message or MSG_NOT_FOUND)
        return self.error_body(status, message or HTTPStatus(status).phrase)

    def route_not_found(self, request: EmulatorRequest, allowed: list[str]) -> EmulatorResponse:
        if allowed:
            return self.error_body(
                405, f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
            )
        return self.error_body(404, MSG_NOT_FOUND)

    def decorate(self, request: EmulatorRequest, response: EmulatorResponse) -> None:
        # Rails' ActionDispatch::RequestId sets this on every response.
        response.headers.append(("X-Request-Id", request.request_id))

    # -- checks ------------------------------------------------------------------------
    def _throttle(self, request: EmulatorRequest) -> None:
        verdict = self.limiter.check(_THROTTLE_KEY, request.now, request.wall)
        if verdict is None or verdict.allowed:
            return
        if self.settings.retry_after:
            request.response_headers.append(("Retry-After", str(verdict.retry_after)))
        raise Reject(self.error_response(request, 429))

    def _authenticate(self, request: EmulatorRequest, account: str) -> None:
        token = request.headers.get(HEADER)
        entry = self.tokens.get(token) if token else None
        if entry is None or entry.expired(request.now):
            raise Reject(self.error_body(401, MSG_INVALID_TOKEN))
        if entry.account != account:
            raise Reject(self.error_body(401, MSG_NO_ACCOUNT_ACCESS))
        request.account = account

    def _parse_body(self, request: EmulatorRequest) -> dict[str, Any]:
        media = request.media_type
        if media != "application/json":
            if not self.strict_body:
                # Rails reads form parameters too.
                form = request.form() if media == "application/x-www-form-urlencoded" else {}
                return {k: v for k, v in form.items() if k in _BODY_KEYS}
            raise Reject(
                self.error_body(
                    422, f"Content type '{media or 'none'}' is not supported; use application/json"
                )
            )
        try:
            body = request.json()
        except InvalidBody as exc:
            raise Reject(self.error_body(400, str(exc))) from None
        if not isinstance(body, dict):
            if not self.strict_body:
                return {}
            raise Reject(self.error_body(422, "the request body must be a JSON object"))
        if not self.strict_body:
            return {k: v for k, v in body.items() if k in _BODY_KEYS}
        problems = [f"unpermitted parameter: {key}" for key in body if key not in _BODY_KEYS]
        if "status" not in body:
            problems.append("status is required")
        elif not isinstance(body["status"], str):
            problems.append("status must be a string")
        error = body.get("external_error")
        if error is not None and not isinstance(error, str):
            problems.append("external_error must be a string")
        if problems:
            raise Reject(self.error_body(422, "; ".join(problems)))
        return body

    # -- PATCH .../messages/{message_id} ---------------------------------------------------
    def _update_status(self, request: EmulatorRequest) -> EmulatorResponse:
        self._throttle(request)
        account = request.params["account_id"]
        conversation_id = request.params["conversation_id"]
        message_id = request.params["message_id"]
        self._authenticate(request, account)
        create = self.settings.unknown_messages == "create"
        key = (account, conversation_id)
        inbox = self._inboxes.get(key)
        if inbox is None and create:
            inbox = self._inboxes[key] = "api"
        if inbox is None:
            raise Reject(self.error_body(404, MSG_NOT_FOUND))  # no such conversation
        if inbox != "api":
            raise Reject(self.error_body(403, NOT_AN_API_INBOX))
        message = self.messages.get(message_id)
        if message is None and create:
            message = self.messages.create(
                message_id,
                account=account,
                now=request.now,
                wall=request.wall,
                conversation_id=conversation_id,
                status="sent",
                origin="auto",
            )
        if message is None or message.account != account or message.thread_id != conversation_id:
            raise Reject(self.error_body(404, MSG_NOT_FOUND))
        body = self._parse_body(request)
        status = body.get("status")
        if isinstance(status, str) and self._valid_transition(message, status):
            error = body.get("external_error") if status == "failed" else None
            self.messages.apply(
                message,
                status,
                error=error,
                fields=body,
                wall=request.wall,
                request_id=request.request_id,
            )
        return EmulatorResponse(200, self._message_body(message))

    @staticmethod
    def _valid_transition(message: MessageRecord, status: str) -> bool:
        """``Messages::StatusUpdateService#valid_status_transition?``, exactly."""
        if status not in _STATUS_SET:
            return False
        return not (message.status == "read" and status == "delivered")

    @staticmethod
    def _external_error(message: MessageRecord) -> Any:
        """What Chatwoot stores: the last applied update's ``external_error`` (failed only)."""
        if message.history:
            return message.history[-1].error
        return message.attribute("external_error") if message.status == "failed" else None

    def _message_body(self, message: MessageRecord) -> dict[str, Any]:
        content_attributes: dict[str, Any] = {}
        external_error = self._external_error(message)
        if external_error:
            content_attributes["external_error"] = external_error
        body: dict[str, Any] = {
            "id": _number_or_text(message.id),
            "content": str(message.attribute("content", "")),
            "account_id": _number_or_text(message.account),
            "inbox_id": message.attribute("inbox_id", 1),
            "conversation_id": _number_or_text(message.thread_id),
            "message_type": 1,  # outgoing
            "content_type": "text",
            "status": message.status,
            "content_attributes": content_attributes,
            "created_at": int(message.created_at),
            "private": False,
            "source_id": message.attribute("source_id"),
        }
        if message.updated_at is not None:
            body["updated_at"] = int(message.updated_at)
        return body

    # -- seeding -----------------------------------------------------------------------
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
        inbox_type: str | None = None,
        **attributes: Any,
    ) -> MessageState:
        """A message of *account* in *conversation_id* (default ``conv_<id>``).

        Chatwoot messages start ``sent``; ``inbox_type`` (default ``api``) sets the
        conversation's inbox when given or when the conversation is new.
        """
        if inbox_type is not None and inbox_type not in INBOX_TYPES:
            raise ValueError(f"inbox_type must be one of {', '.join(INBOX_TYPES)}")
        status = status or "sent"
        self.check_seed(
            channel_id=channel_id, status=status, provider_ready_after=provider_ready_after
        )
        if conversation_id is None:
            conversation_id = f"conv_{message_id}"
        with self.lock:
            key = (str(account), conversation_id)
            if inbox_type is not None or key not in self._inboxes:
                self._inboxes[key] = inbox_type or "api"
            return super().seed_message(
                message_id,
                account=account,
                conversation_id=conversation_id,
                channel_id=channel_id,
                status=status,
                provider_ready_after=provider_ready_after,
                email_message_id=email_message_id,
                **attributes,
            )

    def seed_conversation(
        self,
        conversation_id: str,
        *,
        account: str,
        contact_id: str | None = None,
        unread_count: float = 0,
        starred: bool = False,
    ) -> ConversationState:
        """A conversation of *account* in an API inbox (``set_inbox_type`` to change it)."""
        with self.lock:
            self._inboxes.setdefault((str(account), conversation_id), "api")
            return super().seed_conversation(
                conversation_id,
                account=account,
                contact_id=contact_id,
                unread_count=unread_count,
                starred=starred,
            )

    def set_inbox_type(self, conversation_id: str, inbox_type: str, *, account: str) -> None:
        """Make *conversation_id*'s inbox an API channel (``api``) or another kind."""
        if inbox_type not in INBOX_TYPES:
            raise ValueError(f"inbox_type must be one of {', '.join(INBOX_TYPES)}")
        with self.lock:
            self._inboxes[(str(account), conversation_id)] = inbox_type

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._inboxes.clear()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            data = super().snapshot()
            data["inboxes"] = {
                f"{account}/{conversation}": kind
                for (account, conversation), kind in sorted(self._inboxes.items())
            }
            return data
