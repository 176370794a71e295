"""Chatwoot: update the delivery status of a message in an API-channel inbox.

``PATCH /api/v1/accounts/{account_id}/conversations/{conversation_id}/messages/{id}``
(``{id}`` is the message id) with ``{"status": "sent"|"delivered"|"read"|"failed",
"external_error"?: str}`` and the ``api_access_token`` header (see
:class:`msgbridge_chatwoot.auth.ChatwootToken`). Chatwoot answers 200 with the message
JSON. Sources: Chatwoot's API reference ("Update message status") and its code
(``Messages::StatusUpdateService``, ``Api::V1::Accounts::Conversations::MessagesController``).

State mapping:

============  ==========  ==========
neutral       Chatwoot    fidelity
============  ==========  ==========
pending       —           none (Chatwoot has no such value; skipped)
sent          sent        exact
delivered     delivered   exact
read          read        exact
failed        failed      exact (``external_error`` from ``StatusError.message``)
============  ==========  ==========

Chatwoot silently ignores a ``read`` → ``delivered`` regression (200, status unchanged);
msgbridge's state guard never sends one, and the answer's ``status`` shows the truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from msgbridge.adapter import (
    Adapter,
    AdapterDefaults,
    Capabilities,
    Operation,
    RateBudget,
    RequestSpec,
    ResponseView,
    StateMapping,
    VendorResult,
    dropped_fields,
    path_segment,
)
from msgbridge.errors import (
    ConfigurationError,
    InvalidStatus,
    MalformedResponse,
    MessagingError,
    PermissionDenied,
    UnsupportedStatus,
)
from msgbridge.model import DeliveryState, MessageStatus
from msgbridge.wire import error_for_status, error_text, parse_retry_after
from msgbridge_chatwoot.auth import ChatwootToken

__all__ = [
    "CHATWOOT_RATE_BUDGET",
    "NOT_AN_API_INBOX",
    "STATES",
    "ChatwootAdapter",
    "ChatwootSettings",
]

#: Chatwoot Cloud; self-hosted installations set ``base_url`` (it is required).
CLOUD_BASE_URL = "https://app.chatwoot.com"
#: The 403 Chatwoot sends when the conversation's inbox is not an API channel.
NOT_AN_API_INBOX = "Message status update is only allowed for API inboxes"

STATES: Mapping[DeliveryState, StateMapping] = {
    DeliveryState.PENDING: StateMapping.none(),
    DeliveryState.SENT: StateMapping.exact("sent"),
    DeliveryState.DELIVERED: StateMapping.exact("delivered"),
    DeliveryState.READ: StateMapping.exact("read"),
    DeliveryState.FAILED: StateMapping.exact("failed"),
}

#: Chatwoot's rack-attack default throttles every client IP to 3000 requests per minute
#: (``RACK_ATTACK_LIMIT``, fixed one-minute windows; production only). 25 per second is
#: half of that rate, spread evenly: two connections (or the bridge plus another API
#: client behind the same egress IP) stay under the default, and a small self-hosted
#: Puma is never handed a one-second burst of thousands. Override per connection with
#: ``Connection(rate_limit=(requests, per_seconds))`` when your installation allows more.
CHATWOOT_RATE_BUDGET = RateBudget(requests=25, per_seconds=1.0)


def _installation_root(_: object, __: attrs.Attribute[str], value: object) -> None:
    """Chatwoot's own rule (the core checks the URL itself): the root, not its API path,
    which the adapter's paths already carry."""
    if isinstance(value, str) and value.rstrip("/").endswith(("/api/v1", "/api")):
        raise ConfigurationError(
            f"base_url must be the Chatwoot installation root (e.g. 'https://chat.example.com'), "
            f"without the API path; got {ascii(value)[:120]}",
            key="base_url",
        )


#: Largest account id: Chatwoot's ``accounts.id`` is a PostgreSQL ``integer``.
MAX_ACCOUNT_ID = 2**31 - 1


def _account_id(_: object, __: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ACCOUNT_ID:
        raise ConfigurationError(
            f"account_id must be a positive integer up to {MAX_ACCOUNT_ID} (the number in "
            f"Chatwoot's /app/accounts/<id>/ URLs), got {ascii(value)[:40]}",
            key="account_id",
        )


@attrs.frozen
class ChatwootSettings:
    """Connection settings for Chatwoot (both required)."""

    #: The installation root, e.g. ``https://chat.example.com`` or ``https://app.chatwoot.com``
    #: (or the emulator's ``http://127.0.0.1:PORT/chatwoot``). Required: most installations
    #: are self-hosted. The core checks it (https only, except loopback).
    base_url: str = attrs.field(validator=_installation_root)
    #: The Chatwoot account the conversations belong to.
    account_id: int = attrs.field(validator=_account_id)


def _id_text(value: Any) -> str | None:
    """A Chatwoot id (an integer in practice; a non-empty string tolerated) as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


class ChatwootAdapter(Adapter[ChatwootSettings]):
    """Chatwoot API-channel inboxes: message delivery status."""

    def credentials_from_token(self, token: str) -> ChatwootToken:
        """Chatwoot reads its token from the ``api_access_token`` header, not Bearer."""
        return ChatwootToken(token)

    id = "chatwoot"
    settings_type = ChatwootSettings
    description = "Chatwoot API inboxes: message delivery status (sent, delivered, read, failed)"

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPDATE_STATUS}), states=STATES
        )
        self.defaults = AdapterDefaults(base_url=CLOUD_BASE_URL, rate_budget=CHATWOOT_RATE_BUDGET)

    # -- prepare ----------------------------------------------------------------------

    def prepare_status(self, update: MessageStatus, settings: ChatwootSettings) -> RequestSpec:
        value = self.vendor_value(update.state)
        if value is None:
            raise UnsupportedStatus(
                f"Chatwoot has no value for state {update.state.value!r}",
                adapter=self.id,
                subject_id=update.message_id,
            )
        if update.conversation_id is None:
            raise InvalidStatus(
                "Chatwoot addresses messages inside their conversation: set "
                "MessageStatus(conversation_id=...) to the conversation's id (the number in "
                "the conversation's URL)",
                field="conversation_id",
                subject_id=update.message_id,
            )
        body: dict[str, Any] = {"status": value}
        if update.state is DeliveryState.FAILED and update.error is not None:
            body["external_error"] = update.error.message
        conversation = path_segment("conversation_id", update.conversation_id)
        message = path_segment("message_id", update.message_id)
        path = (
            f"/api/v1/accounts/{settings.account_id}"
            f"/conversations/{conversation}/messages/{message}"
        )
        return RequestSpec(
            method="PATCH",
            path=path,
            json=body,
            operation=Operation.UPDATE_STATUS,
            subject_id=update.message_id,
            # No place for email ids, recipients or error codes: say so in the receipt.
            dropped=dropped_fields(update, carried=()),
        )

    def webhook_verifier(self, options: Mapping[str, Any]) -> Any:
        """:class:`msgbridge_chatwoot.webhooks.ChatwootWebhookVerifier` (option ``secret``)."""
        from msgbridge_chatwoot.webhooks import ChatwootWebhookVerifier

        return ChatwootWebhookVerifier.from_options(self.id, options)

    # -- interpret --------------------------------------------------------------------

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: ChatwootSettings
    ) -> VendorResult:
        if 200 <= response.status < 300:
            return self._result(response)
        raise self.error_for(response)

    def _result(self, response: ResponseView) -> VendorResult:
        body = response.json_object()
        if body is None:
            raise MalformedResponse(
                f"Chatwoot message: expected a JSON object, got {response.text(120)!r}",
                http_status=response.status,
            )
        message_id = _id_text(body.get("id"))
        if message_id is None:
            raise MalformedResponse(
                f"Chatwoot message: 'id' must be the message's id, got {body.get('id')!r}",
                http_status=response.status,
            )
        ids = {"id": message_id}
        conversation = _id_text(body.get("conversation_id"))
        if conversation is not None:
            ids["conversation_id"] = conversation
        status = body.get("status")
        return VendorResult(
            http_status=response.status,
            vendor_ids=ids,
            trace_id=response.header("x-request-id"),
            vendor_status=status if isinstance(status, str) else None,
        )

    def error_for(self, response: ResponseView) -> MessagingError:
        """The typed error for a Chatwoot error answer."""
        # Chatwoot's shapes: {"error": "..."} (most errors, the non-API-inbox 403),
        # {"message": "...", "attributes": [...]} (validation), {"errors": ["..."]}
        # (devise-token-auth 401s); rack-attack's 429 is plain text.
        text = error_text(response, keys=("error", "message", "errors"))
        context: dict[str, Any] = {
            "http_status": response.status,
            "vendor_message": text,
            "trace_id": response.header("x-request-id"),
        }
        if response.status == 403 and NOT_AN_API_INBOX.lower() in text.lower():
            return PermissionDenied(
                "Chatwoot only accepts status updates for messages in API-channel inboxes; "
                f"this conversation's inbox is another kind: {text}",
                **context,
            )
        # Chatwoot also answers 401 for tokens that lack the right (an agent bot's token,
        # Pundit denials); the vendor's words, kept in the message, say which.
        retry_after = parse_retry_after(response) if response.status == 429 else None
        return error_for_status(
            response.status, text, vendor="Chatwoot", retry_after=retry_after, **context
        )
