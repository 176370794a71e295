"""HighLevel (LeadConnector) and its white labels Leadway and Hoop.

Contract (``PUT /conversations/messages/{messageId}/status``, ``PUT
/conversations/{conversationId}``) per HighLevel's v2 OpenAPI. Leadway and Hoop are
the same API re-skinned; they are *variants*: the same adapter class with another id,
name and default ``Version`` header, registered as data, not copies.

Email status (``PUT /conversations/messages/email/{id}/status``, v3 OpenAPI, ``Version:
v3`` only) takes :class:`~msgbridge.email_status.EmailStatusUpdate`: its state list and
counters are HighLevel's own, so they are sent as given.

State mapping (vendor enum: ``pending``, ``delivered``, ``read``, ``failed``):

============  ===========  ==========
neutral       HighLevel    fidelity
============  ===========  ==========
pending       pending      exact
sent          pending      coarse (HighLevel has no "sent"; pending is true of it)
delivered     delivered    exact
read          read         exact
failed        failed       exact
============  ===========  ==========
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from msgbridge.adapter import (
    Adapter,
    AdapterDefaults,
    Capabilities,
    Operation,
    RateBudget,
    RateFeedback,
    RequestSpec,
    ResponseView,
    StateMapping,
    VendorResult,
    path_segment,
)
from msgbridge.auth import Credential, RefreshingOAuth, TokenSet, TokenStore
from msgbridge.email_status import EmailStatusUpdate
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidStatus,
    MalformedResponse,
    MessagingError,
    PermissionDenied,
    ProviderNotReady,
    RateLimited,
    VendorRejected,
)
from msgbridge.hookspecs import hookimpl
from msgbridge.inbound.model import ChannelKind, IncomingMessage
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus, check_identifier
from msgbridge.validation import check_header_value, check_number
from msgbridge.wire import (
    error_for_status,
    int_header,
    joined_message,
    lenient_converter,
    parse_retry_after,
    read_model,
)

__all__ = [
    "HIGHLEVEL",
    "HOOP",
    "LEADWAY",
    "PROVIDER_NOT_READY",
    "HighLevelAdapter",
    "HighLevelOAuth",
    "HighLevelSettings",
    "HighLevelVariant",
]

BASE_URL = "https://services.leadconnectorhq.com"
#: The 403 message HighLevel sends until a message has reached its provider.
PROVIDER_NOT_READY = "No conversation provider found for this message"
#: The 400 a refresh gets while a location is paused; the refresh token stays valid.
LOCATION_INACTIVE = "Location is not active"

STATES: Mapping[DeliveryState, StateMapping] = {
    DeliveryState.PENDING: StateMapping.exact("pending"),
    DeliveryState.SENT: StateMapping.coarse("pending"),
    DeliveryState.DELIVERED: StateMapping.exact("delivered"),
    DeliveryState.READ: StateMapping.exact("read"),
    DeliveryState.FAILED: StateMapping.exact("failed"),
}

#: Longest ``provider_retry_after`` accepted (an hour; the vendor says 5-10 s).
MAX_PROVIDER_WAIT = 3600.0

#: HighLevel requires all three keys of ``error``; this stands in when the provider
#: gave no code or kind (our assumption: the vendor documents no defaults). Override it
#: per connection with the ``error_placeholder`` setting.
UNKNOWN_ERROR_FIELD = "unknown"
#: The only ``Version`` the v3 email-status endpoint documents.
EMAIL_STATUS_VERSION = "v3"


#: The ``Version`` header's alphabet. HighLevel documents dates (``2021-04-15``,
#: ``2021-07-28``) and ``v3``; we assume no value needs more than ASCII letters, digits,
#: ``-``, ``.`` and ``_`` (a CR/LF or space would break the header).
VERSION_ALPHABET = string.ascii_letters + string.digits + "-._"
#: Longest ``Version`` value accepted (dates are 10 characters).
MAX_VERSION_LENGTH = 32


def check_version(value: object, *, key: str = "version") -> str:
    """A ``Version`` header value in :data:`VERSION_ALPHABET`, else ``ConfigurationError``."""
    return check_header_value(
        value, key=key, alphabet=VERSION_ALPHABET, max_length=MAX_VERSION_LENGTH
    )


def _variant_version(_: object, __: attrs.Attribute[str], value: object) -> None:
    check_version(value)


@attrs.frozen
class HighLevelVariant:
    """What distinguishes a white label: data only (its version is checked here, its
    host by the core when a connection uses it)."""

    id: str
    name: str
    version: str = attrs.field(validator=_variant_version)
    base_url: str = BASE_URL
    variant_of: str | None = None


HIGHLEVEL = HighLevelVariant("highlevel", "HighLevel", "2021-04-15")
#: Leadway documents ``Version: 2021-07-28`` and the richer response DTO.
LEADWAY = HighLevelVariant("leadway", "Leadway", "2021-07-28", variant_of="highlevel")
#: Hoop's endpoint reference lists ``2021-04-15`` (its general guide says 2021-07-28;
#: override ``version`` in settings if your Hoop account needs it).
HOOP = HighLevelVariant("hoop", "Hoop", "2021-04-15", variant_of="highlevel")


def _optional_version(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None:
        check_version(value)


def _optional_location(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is None:
        return
    try:
        check_identifier("location_id", value)
    except InvalidStatus as exc:
        raise ConfigurationError(exc.message, key="location_id") from None


def _optional_identifier(
    _: object, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is None:
        return
    try:
        check_identifier(attribute.name, value)
    except InvalidStatus as exc:
        raise ConfigurationError(exc.message, key=attribute.name) from None


@attrs.frozen
class HighLevelSettings:
    """Connection settings for HighLevel and its variants (all optional)."""

    #: Override the API host (e.g. the emulator's ``http://127.0.0.1:PORT/highlevel``);
    #: checked by the core when the connection is set up.
    base_url: str | None = None
    #: Override the ``Version`` header (ASCII letters, digits, ``-``, ``.``, ``_``).
    version: str | None = attrs.field(default=None, validator=_optional_version)
    #: Default ``locationId`` for conversation updates without an ``account_id`` (the
    #: identifier rules of :class:`~msgbridge.MessageStatus` ids).
    location_id: str | None = attrs.field(default=None, validator=_optional_location)
    #: Seconds to wait before retrying the "No conversation provider" 403 (vendor: 5-10 s;
    #: 0 to 3,600 accepted).
    provider_retry_after: float = attrs.field(default=5.0)
    #: Sent as ``error.code`` / ``error.type`` when a failure has no code or kind
    #: (HighLevel requires both keys and documents no default).
    error_placeholder: str = attrs.field(default=UNKNOWN_ERROR_FIELD)

    @error_placeholder.validator
    def _check_placeholder(self, _: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                "error_placeholder must be a non-empty string (sent as error.code/error.type "
                "when a failure has none)",
                key="error_placeholder",
            )

    #: The conversation provider's id (``conversationProviderId``) for publishing incoming
    #: messages; required unless ``default_provider`` is true.
    conversation_provider_id: str | None = attrs.field(default=None, validator=_optional_identifier)
    #: True for a provider that *replaces* the default SMS/Email provider (HighLevel does
    #: not need ``conversationProviderId`` then). Custom providers leave it false.
    default_provider: bool = False

    @provider_retry_after.validator
    def _check_delay(self, _: attrs.Attribute[float], value: float) -> None:
        check_number(value, key="provider_retry_after", minimum=0.0, maximum=MAX_PROVIDER_WAIT)


# -- wire formats (lenient: only what we need is required) ----------------------------


@attrs.frozen
class _StatusResponse:
    # Every field optional: an applied update is never failed over its answer's shape.
    conversationId: str | None = None  # noqa: N815 - vendor field names
    messageId: str | None = None  # noqa: N815
    #: The GMB channel answers a list instead of ``messageId`` (``SendMessageResponseDto``).
    messageIds: list[str] | None = None  # noqa: N815
    status: str | None = None
    emailMessageId: str | None = None  # noqa: N815
    traceId: str | None = None  # noqa: N815
    forwardData: dict[str, Any] | None = None  # noqa: N815


def _quick_status(body: Any) -> _StatusResponse | None:
    """The usual answer, read without cattrs (it is on every update's path); ``None``
    when anything is unusual, so :func:`read_model` reads it and says what is wrong."""
    if type(body) is not dict:
        return None
    get = body.get
    conversation, message, status = get("conversationId"), get("messageId"), get("status")
    email, trace = get("emailMessageId"), get("traceId")
    for value in (conversation, message, status, email, trace):
        if value is not None and type(value) is not str:
            return None
    message_ids, forward = get("messageIds"), get("forwardData")
    if message_ids is not None and (
        type(message_ids) is not list or any(type(item) is not str for item in message_ids)
    ):
        return None
    if forward is not None and type(forward) is not dict:
        return None
    return _StatusResponse(
        conversation,
        message,
        None if message_ids is None else list(message_ids),
        status,
        email,
        trace,
        forward,
    )


@attrs.frozen
class _EmailStatusResponse:
    success: bool | None = None
    message: str | None = None
    traceId: str | None = None  # noqa: N815


@attrs.frozen
class _InboundResponse:
    conversationId: str  # noqa: N815
    messageId: str  # noqa: N815
    success: bool | None = None
    emailMessageId: str | None = None  # noqa: N815
    contactId: str | None = None  # noqa: N815
    traceId: str | None = None  # noqa: N815


#: Neutral channel → ``type`` of ``POST /conversations/messages/inbound``. An e-mail
#: custom provider publishes with ``Custom`` (ConversationProviders.md); calls need a call
#: object and are not published through here.
INBOUND_TYPES: Mapping[ChannelKind, str] = {
    ChannelKind.SMS: "SMS",
    ChannelKind.EMAIL: "Email",
    ChannelKind.CUSTOM: "Custom",
    ChannelKind.CHAT: "Custom",
}


@attrs.frozen
class _ConversationDto:
    id: str | None = None
    locationId: str | None = None  # noqa: N815


@attrs.frozen
class _ConversationResponse:
    success: bool | None = None
    conversation: _ConversationDto | None = None
    traceId: str | None = None  # noqa: N815


_wire = lenient_converter()


def _string_list(value: Any, _: type[Any]) -> list[str]:
    # cattrs would turn the string "m1" into ["m", "1"]; a list must be a JSON array.
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {type(value).__name__}")
    return [_wire.structure(item, str) for item in value]


_wire.register_structure_hook_func(lambda t: t == list[str], _string_list)


class HighLevelAdapter(Adapter[HighLevelSettings]):
    """HighLevel-family adapter; one instance per variant."""

    settings_type = HighLevelSettings
    description = "HighLevel conversations: message status and conversation updates"

    def __init__(self, variant: HighLevelVariant = HIGHLEVEL) -> None:
        self.variant = variant
        self.id = variant.id
        self.variant_of = variant.variant_of
        self.capabilities = Capabilities(
            operations=frozenset(
                {
                    Operation.UPDATE_STATUS,
                    Operation.UPDATE_CONVERSATION,
                    Operation.UPDATE_EMAIL_STATUS,
                    Operation.PUBLISH_INBOUND,
                }
            ),
            states=STATES,
        )
        self.defaults = AdapterDefaults(
            base_url=variant.base_url,
            version=variant.version,
            # 100 requests per 10 s and 200,000 per day, per app per location.
            rate_budget=RateBudget(requests=100, per_seconds=10.0, daily=200_000),
        )

    # -- prepare ------------------------------------------------------------------

    def _headers(self, settings: HighLevelSettings) -> dict[str, str]:
        return {"Version": settings.version or self.variant.version}

    def prepare_status(self, update: MessageStatus, settings: HighLevelSettings) -> RequestSpec:
        body: dict[str, Any] = {"status": self.sendable_value(update.state)}
        if update.error is not None:
            body["error"] = {
                "code": update.error.code or settings.error_placeholder,
                "type": update.error.kind or settings.error_placeholder,
                "message": update.error.message,
            }
        if update.email_message_id is not None:
            body["emailMessageId"] = update.email_message_id
        if update.recipients:
            body["recipients"] = list(update.recipients)
        segment = path_segment("message_id", update.message_id)
        return RequestSpec(
            method="PUT",
            path=f"/conversations/messages/{segment}/status",
            headers=self._headers(settings),
            json=body,
            operation=Operation.UPDATE_STATUS,
            subject_id=update.message_id,
        )

    def prepare_conversation(
        self, update: ConversationUpdate, settings: HighLevelSettings
    ) -> RequestSpec:
        location = update.account_id or settings.location_id
        if location is None:
            raise InvalidStatus(
                f"{self.variant.name} needs a location id for conversation updates: set "
                "ConversationUpdate(account_id=...) or the connection setting location_id",
                field="account_id",
            )
        body: dict[str, Any] = {"locationId": location}
        if update.unread_count is not None:
            body["unreadCount"] = update.unread_count
        if update.starred is not None:
            body["starred"] = update.starred
        segment = path_segment("conversation_id", update.conversation_id)
        return RequestSpec(
            method="PUT",
            path=f"/conversations/{segment}",
            headers=self._headers(settings),
            json=body,
            operation=Operation.UPDATE_CONVERSATION,
            subject_id=update.conversation_id,
        )

    def prepare_email_status(
        self, update: EmailStatusUpdate, settings: HighLevelSettings
    ) -> RequestSpec:
        """``PUT /conversations/messages/email/{id}/status``, v3 ``UpdateEmailMessageStatusDto``."""
        body: dict[str, Any] = {"status": update.status.value}
        if update.events is not None:
            body["events"] = update.events.counters()
        if update.recipients:
            recipients = []
            for recipient in update.recipients:
                item = {"emailId": recipient.email, "status": recipient.status.value}
                if recipient.fail_reason is not None:
                    item["failReason"] = recipient.fail_reason
                recipients.append(item)
            body["recipients"] = recipients
        segment = path_segment("message_id", update.message_id)
        return RequestSpec(
            method="PUT",
            path=f"/conversations/messages/email/{segment}/status",
            headers={"Version": EMAIL_STATUS_VERSION},
            json=body,
            operation=Operation.UPDATE_EMAIL_STATUS,
            subject_id=update.message_id,
        )

    def prepare_inbound(self, message: IncomingMessage, settings: HighLevelSettings) -> RequestSpec:
        """``POST /conversations/messages/inbound``; refuses, before any I/O, what
        HighLevel would silently drop (no ``conversationProviderId`` for a custom provider).
        """
        name = self.variant.name
        provider = settings.conversation_provider_id
        if provider is None and not settings.default_provider:
            raise InvalidStatus(
                f"{name} needs conversation_provider_id (the connection setting) to publish an "
                "incoming message from a custom provider; without it HighLevel answers 201 "
                "and drops the message. Set default_provider=true only for a provider that "
                "replaces the default SMS/Email provider",
                field="conversation_provider_id",
            )
        kind = INBOUND_TYPES.get(message.channel)
        if kind is None:
            allowed = ", ".join(c.value for c in INBOUND_TYPES)
            raise InvalidStatus(
                f"{name} cannot publish a {message.channel.value!r} message here; "
                f"allowed channels: {allowed}",
                field="channel",
            )
        if message.contact_id is None:
            raise InvalidStatus(f"{name} needs the contact_id of the sender", field="contact_id")
        body: dict[str, Any] = {"type": kind, "contactId": message.contact_id}
        if provider is not None:
            body["conversationProviderId"] = provider
        if message.conversation_id is not None:
            body["conversationId"] = message.conversation_id
        if message.text is not None:
            body["message"] = message.text
        if message.html is not None:
            body["html"] = message.html
        if message.subject is not None:
            body["subject"] = message.subject
        if message.attachments:
            body["attachments"] = list(message.attachments)
        if message.email_message_id is not None:
            body["emailMessageId"] = message.email_message_id
        if message.channel is ChannelKind.EMAIL or kind == "Custom":
            if message.sender is not None:
                body["emailFrom"] = message.sender.identifier
            if message.recipients:
                body["emailTo"] = message.recipients[0].identifier
        # altId: the provider's message id, echoed as replyToAltId on replies.
        body["altId"] = message.message_id
        if message.occurred_at is not None:
            body["date"] = message.occurred_at.isoformat()
        return RequestSpec(
            method="POST",
            path="/conversations/messages/inbound",
            headers=self._headers(settings),
            json=body,
            operation=Operation.PUBLISH_INBOUND,
            subject_id=message.message_id,
            # No idempotency key: a resend after the request may have arrived could
            # duplicate the message, so an ambiguous failure is OutcomeUnknown.
            retry_when_ambiguous=False,
        )

    def webhook_verifier(self, options: Mapping[str, Any]) -> Any:
        """:class:`~msgbridge.adapters.highlevel_webhooks.HighLevelWebhookVerifier`."""
        from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier

        return HighLevelWebhookVerifier.from_options(self.id, options)

    # -- interpret ----------------------------------------------------------------

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: HighLevelSettings
    ) -> VendorResult:
        if 200 <= response.status < 300:
            if request.operation is Operation.UPDATE_CONVERSATION:
                return self._conversation_result(response)
            if request.operation is Operation.UPDATE_EMAIL_STATUS:
                return self._email_result(response)
            if request.operation is Operation.PUBLISH_INBOUND:
                return self._inbound_result(response)
            return self._status_result(response)
        raise self.error_for(
            response,
            provider_retry_after=settings.provider_retry_after,
            operation=request.operation,
        )

    def _unreadable(self, response: ResponseView, problem: MalformedResponse) -> VendorResult:
        """A 2xx means the vendor applied the update: report it applied, with a warning."""
        return VendorResult(
            http_status=response.status,
            trace_id=response.header("traceid"),
            warning=(
                f"{self.variant.name} answered HTTP {response.status} (applied) but its body "
                f"was not what it documents: {problem.message}"
            ),
        )

    def _status_result(self, response: ResponseView) -> VendorResult:
        data = _quick_status(response.json())
        if data is None:
            try:
                data = read_model(
                    _wire, response, _StatusResponse, what=f"{self.variant.name} status"
                )
            except MalformedResponse as exc:
                return self._unreadable(response, exc)
        ids: dict[str, str] = {}
        if data.conversationId:
            ids["conversationId"] = data.conversationId
        if data.messageId:
            ids["messageId"] = data.messageId
        if data.messageIds and data.messageIds != [data.messageId]:
            # GMB answers a list "instead of" messageId (the old DTO echoes [messageId]).
            for index, value in enumerate(data.messageIds):
                ids[f"messageIds.{index}"] = value
        if data.emailMessageId:
            ids["emailMessageId"] = data.emailMessageId
        for key, value in (data.forwardData or {}).items():
            if isinstance(value, str) and value:
                ids[f"forwardData.{key}"] = value
        warning = None
        if not data.messageId and not data.messageIds:
            warning = (
                f"{self.variant.name} answered HTTP {response.status} (applied) without "
                "messageId or messageIds"
            )
        return VendorResult(
            http_status=response.status,
            vendor_ids=ids,
            trace_id=data.traceId or response.header("traceid"),
            vendor_status=data.status,
            warning=warning,
        )

    def _email_result(self, response: ResponseView) -> VendorResult:
        name = self.variant.name
        try:
            data = read_model(_wire, response, _EmailStatusResponse, what=f"{name} email status")
        except MalformedResponse as exc:
            return self._unreadable(response, exc)
        trace = data.traceId or response.header("traceid")
        if data.success is False:
            # The DTO documents ``success`` as "whether the update was persisted".
            message = data.message or "no message"
            raise VendorRejected(
                f"{name} did not persist the email status (success: false): {message}",
                http_status=response.status,
                vendor_message=message,
                trace_id=trace,
            )
        warning = None
        if data.success is None:
            warning = f"{name} answered HTTP {response.status} (applied) without 'success'"
        return VendorResult(http_status=response.status, trace_id=trace, warning=warning)

    def _inbound_result(self, response: ResponseView) -> VendorResult:
        if not response.body.strip():
            # HighLevel's known failure: 201, empty body, message never appears (#70).
            raise MalformedResponse(
                f"{self.variant.name} accepted the incoming message with an empty body; it "
                "has most likely been dropped (check conversation_provider_id)",
                http_status=response.status,
            )
        data = read_model(_wire, response, _InboundResponse, what=f"{self.variant.name} inbound")
        ids = {"conversationId": data.conversationId, "messageId": data.messageId}
        if data.emailMessageId:
            ids["emailMessageId"] = data.emailMessageId
        return VendorResult(
            http_status=response.status,
            vendor_ids=ids,
            trace_id=data.traceId or response.header("traceid"),
        )

    def _conversation_result(self, response: ResponseView) -> VendorResult:
        try:
            data = read_model(
                _wire, response, _ConversationResponse, what=f"{self.variant.name} conversation"
            )
        except MalformedResponse as exc:
            return self._unreadable(response, exc)
        ids: dict[str, str] = {}
        if data.conversation is not None and data.conversation.id:
            ids["conversationId"] = data.conversation.id
        return VendorResult(
            http_status=response.status,
            vendor_ids=ids,
            trace_id=data.traceId or response.header("traceid"),
        )

    def credentials_from_oauth(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str | None,
        store: TokenStore | None,
        token_url: str | None,
    ) -> Credential:
        return HighLevelOAuth(
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            store=store,
            token_url=token_url,
        )

    def rate_limit_feedback(self, response: ResponseView) -> RateFeedback | None:
        """Burst: ``X-RateLimit-Remaining`` / ``-Max`` / ``-Interval-Milliseconds``;
        day: ``X-RateLimit-Daily-Remaining`` / ``X-RateLimit-Limit-Daily``."""
        remaining = int_header(response, "x-ratelimit-remaining")
        daily_remaining = int_header(response, "x-ratelimit-daily-remaining")
        if remaining is None and daily_remaining is None:
            return None
        interval = int_header(response, "x-ratelimit-interval-milliseconds")
        return RateFeedback(
            remaining=remaining,
            maximum=int_header(response, "x-ratelimit-max"),
            window=interval / 1000.0 if interval else None,
            daily_remaining=daily_remaining,
            daily_maximum=int_header(response, "x-ratelimit-limit-daily"),
        )

    def error_for(
        self,
        response: ResponseView,
        *,
        provider_retry_after: float,
        operation: Operation = Operation.UPDATE_STATUS,
    ) -> MessagingError:
        """The typed error for an error answer: NestJS ``{statusCode, message, error}``,
        or v3's envelope ``{"error": {"message", ...}}``."""
        body = response.json_object() or {}
        raw_error = body.get("error")
        envelope: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        message = (
            joined_message(body.get("message"))
            or joined_message(envelope.get("message"))
            or response.text(200)
            or "no message"
        )
        trace = body.get("traceId") if isinstance(body.get("traceId"), str) else None
        context: dict[str, Any] = {
            "http_status": response.status,
            "vendor_message": message,
            "trace_id": trace or response.header("traceid"),
        }
        name = self.variant.name
        if response.status == 403 and PROVIDER_NOT_READY.lower() in message.lower():
            return ProviderNotReady(
                f"{name} has not handed the message to its provider yet: {message}",
                retry_after=provider_retry_after,
                **context,
            )
        if response.status == 403 and operation is Operation.UPDATE_EMAIL_STATUS:
            return PermissionDenied(
                f"{name} refused the email status update: only emails sent through a custom "
                "conversation provider owned by this token's app can be updated (emails sent "
                f"via LC Email or Mailgun never can). {name} said: {message}",
                **context,
            )
        if response.status == 429 and _daily_budget_spent(response):
            return _daily_limit_error(response, name, message, context)
        retry_after = _rate_limit_wait(response) if response.status == 429 else None
        return error_for_status(
            response.status, message, vendor=name, retry_after=retry_after, **context
        )


def _daily_budget_spent(response: ResponseView) -> bool:
    remaining = int_header(response, "x-ratelimit-daily-remaining")
    return remaining is not None and remaining <= 0


def _daily_limit_error(
    response: ResponseView, name: str, message: str, context: dict[str, Any]
) -> RateLimited:
    """A spent daily budget: not retried today, since HighLevel documents no reset time
    (unless it sends ``Retry-After``, which then says when)."""
    daily = int_header(response, "x-ratelimit-limit-daily")
    cap = f"{daily} requests per day" if daily is not None else "the daily cap"
    retry_after = parse_retry_after(response)
    return RateLimited(
        f"{name}'s daily request budget for this location is spent ({cap}; "
        f"X-RateLimit-Daily-Remaining: 0): {message}. "
        + (
            f"{name} asks to wait {retry_after:g} s."
            if retry_after is not None
            else "Not retried: HighLevel documents no reset time for the daily window."
        ),
        retry_after=retry_after,
        retryable=retry_after is not None,
        **context,
    )


def _rate_limit_wait(response: ResponseView) -> float | None:
    """``Retry-After`` if sent, else a full burst window when it is spent, else backoff."""
    retry_after = parse_retry_after(response)
    if retry_after is not None:
        return retry_after
    remaining = int_header(response, "x-ratelimit-remaining")
    interval = int_header(response, "x-ratelimit-interval-milliseconds")
    if remaining == 0 and interval is not None:
        return interval / 1000.0
    return None


class HighLevelOAuth(RefreshingOAuth):
    """HighLevel OAuth (location token): single-use refresh tokens, rotated on every use.

    Refresh: ``POST /oauth/token`` form ``grant_type=refresh_token&refresh_token=…&
    client_id=…&client_secret=…&user_type=Location``. Any 401 on an API call refreshes
    once (HighLevel's guidance); a 403 never does.
    """

    default_token_url = f"{BASE_URL}/oauth/token"

    def __init__(self, *, user_type: str = "Location", **kwargs: Any) -> None:
        if user_type not in {"Location", "Company"}:
            raise ConfigurationError("user_type must be 'Location' or 'Company'", key="user_type")
        self.user_type = user_type
        super().__init__(**kwargs)

    def refresh_form(self, refresh_token: str) -> dict[str, str]:
        return {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "user_type": self.user_type,
        }

    def is_expired_response(self, response: ResponseView) -> bool:
        return response.status == 401

    def parse_token_response(self, response: ResponseView) -> TokenSet:
        """As the base, but "Location is not active" is a pause, not a lost grant."""
        if response.status == 400 and LOCATION_INACTIVE in response.text(1000):
            raise AuthenticationError(
                "HighLevel says the location is not active (paused or unsubscribed); the "
                "refresh token is kept and works again once the location is reactivated",
                http_status=400,
                vendor_message=LOCATION_INACTIVE,
            )
        return super().parse_token_response(response)


def variants() -> tuple[HighLevelAdapter, ...]:
    return tuple(HighLevelAdapter(v) for v in (HIGHLEVEL, LEADWAY, HOOP))


@hookimpl
def register_adapters(register: Callable[[Adapter[Any]], None]) -> None:
    for adapter in variants():
        register(adapter)


@hookimpl
def register_emulated_vendors(register: Callable[[Any], None]) -> None:
    """The emulated HighLevel and white labels, declared the way plugin vendors are."""
    try:
        from msgbridge.emulator.highlevel import HighLevelFamily
        from msgbridge.emulator.highlevel import variants as emulated_variants
    except ImportError:  # pragma: no cover - the emulator's dependencies are missing
        return
    for variant in emulated_variants():
        register(HighLevelFamily(variant))
