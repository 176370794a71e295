"""HighLevel (LeadConnector) and its white labels Leadway and Hoop.

Contract (``PUT /conversations/messages/{messageId}/status``, ``PUT
/conversations/{conversationId}``) per HighLevel's v2 OpenAPI. Leadway and Hoop are
the same API re-skinned; they are *variants*: the same adapter class with another id,
name and default ``Version`` header, registered as data, not copies.

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

import math
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
    check_base_url,
    path_segment,
)
from msgbridge.auth import Credential, RefreshingOAuth, TokenSet, TokenStore
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidStatus,
    MessagingError,
    ProviderNotReady,
)
from msgbridge.hookspecs import hookimpl
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus
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

#: HighLevel requires all three keys of ``error``; these stand in when the provider
#: gave no code or kind (our assumption: the vendor documents no defaults).
UNKNOWN_ERROR_FIELD = "unknown"


@attrs.frozen
class HighLevelVariant:
    """What distinguishes a white label: data only."""

    id: str
    name: str
    version: str
    base_url: str = BASE_URL
    variant_of: str | None = None


HIGHLEVEL = HighLevelVariant("highlevel", "HighLevel", "2021-04-15")
#: Leadway documents ``Version: 2021-07-28`` and the richer response DTO.
LEADWAY = HighLevelVariant("leadway", "Leadway", "2021-07-28", variant_of="highlevel")
#: Hoop's endpoint reference lists ``2021-04-15`` (its general guide says 2021-07-28;
#: override ``version`` in settings if your Hoop account needs it).
HOOP = HighLevelVariant("hoop", "Hoop", "2021-04-15", variant_of="highlevel")


def _optional_base_url(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None:
        check_base_url(value)


def _optional_text(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not value.strip():
        raise ConfigurationError(f"{attribute.name} must not be empty", key=attribute.name)


@attrs.frozen
class HighLevelSettings:
    """Connection settings for HighLevel and its variants (all optional)."""

    #: Override the API host (e.g. the emulator's ``http://127.0.0.1:PORT/highlevel``).
    base_url: str | None = attrs.field(default=None, validator=_optional_base_url)
    #: Override the ``Version`` header.
    version: str | None = attrs.field(default=None, validator=_optional_text)
    #: Default ``locationId`` for conversation updates without an ``account_id``.
    location_id: str | None = attrs.field(default=None, validator=_optional_text)
    #: Seconds to wait before retrying the "No conversation provider" 403 (vendor: 5-10 s).
    provider_retry_after: float = attrs.field(default=5.0)

    @provider_retry_after.validator
    def _check_delay(self, _: attrs.Attribute[float], value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ConfigurationError(
                "provider_retry_after must be a finite number of seconds, zero or more",
                key="provider_retry_after",
            )


# -- wire formats (lenient: only what we need is required) ----------------------------


@attrs.frozen
class _StatusResponse:
    conversationId: str  # noqa: N815 - vendor field names
    messageId: str  # noqa: N815
    status: str | None = None
    emailMessageId: str | None = None  # noqa: N815
    traceId: str | None = None  # noqa: N815
    forwardData: dict[str, Any] | None = None  # noqa: N815


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


class HighLevelAdapter(Adapter[HighLevelSettings]):
    """HighLevel-family adapter; one instance per variant."""

    settings_type = HighLevelSettings
    description = "HighLevel conversations: message status and conversation updates"

    def __init__(self, variant: HighLevelVariant = HIGHLEVEL) -> None:
        self.variant = variant
        self.id = variant.id
        self.variant_of = variant.variant_of
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPDATE_STATUS, Operation.UPDATE_CONVERSATION}),
            states=STATES,
        )
        self.defaults = AdapterDefaults(
            base_url=variant.base_url,
            version=variant.version,
            # 100 requests per 10 s and 200,000 per day, per app per location.
            rate_budget=RateBudget(requests=100, per_seconds=10.0, daily=200_000),
        )

    # -- prepare ------------------------------------------------------------------

    def _url(self, settings: HighLevelSettings, path: str) -> str:
        return (settings.base_url or self.variant.base_url).rstrip("/") + path

    def _headers(self, settings: HighLevelSettings) -> dict[str, str]:
        return {"Version": settings.version or self.variant.version}

    def prepare_status(self, update: MessageStatus, settings: HighLevelSettings) -> RequestSpec:
        body: dict[str, Any] = {"status": self.sendable_value(update.state)}
        if update.error is not None:
            body["error"] = {
                "code": update.error.code or UNKNOWN_ERROR_FIELD,
                "type": update.error.kind or UNKNOWN_ERROR_FIELD,
                "message": update.error.message,
            }
        if update.email_message_id is not None:
            body["emailMessageId"] = update.email_message_id
        if update.recipients:
            body["recipients"] = list(update.recipients)
        segment = path_segment("message_id", update.message_id)
        return RequestSpec(
            method="PUT",
            url=self._url(settings, f"/conversations/messages/{segment}/status"),
            headers=self._headers(settings),
            json=body,
            operation=Operation.UPDATE_STATUS,
            subject_id=update.message_id,
            context={"provider_retry_after": settings.provider_retry_after},
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
            url=self._url(settings, f"/conversations/{segment}"),
            headers=self._headers(settings),
            json=body,
            operation=Operation.UPDATE_CONVERSATION,
            subject_id=update.conversation_id,
            context={"provider_retry_after": settings.provider_retry_after},
        )

    # -- interpret ----------------------------------------------------------------

    def interpret(self, request: RequestSpec, response: ResponseView) -> VendorResult:
        if 200 <= response.status < 300:
            if request.operation is Operation.UPDATE_CONVERSATION:
                return self._conversation_result(response)
            return self._status_result(response)
        raise self.error_for(response, provider_retry_after=_retry_hint(request))

    def _status_result(self, response: ResponseView) -> VendorResult:
        data = read_model(_wire, response, _StatusResponse, what=f"{self.variant.name} status")
        ids = {"conversationId": data.conversationId, "messageId": data.messageId}
        if data.emailMessageId:
            ids["emailMessageId"] = data.emailMessageId
        for key, value in (data.forwardData or {}).items():
            if isinstance(value, str) and value:
                ids[f"forwardData.{key}"] = value
        return VendorResult(
            http_status=response.status,
            vendor_ids=ids,
            trace_id=data.traceId or response.header("traceid"),
            vendor_status=data.status,
        )

    def _conversation_result(self, response: ResponseView) -> VendorResult:
        data = read_model(
            _wire, response, _ConversationResponse, what=f"{self.variant.name} conversation"
        )
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
        """``X-RateLimit-Remaining`` / ``-Max`` / ``-Interval-Milliseconds``."""
        remaining = int_header(response, "x-ratelimit-remaining")
        if remaining is None:
            return None
        interval = int_header(response, "x-ratelimit-interval-milliseconds")
        return RateFeedback(
            remaining=remaining,
            maximum=int_header(response, "x-ratelimit-max"),
            window=interval / 1000.0 if interval else None,
        )

    def error_for(self, response: ResponseView, *, provider_retry_after: float) -> MessagingError:
        """The typed error for an error answer (NestJS ``{statusCode, message, error}``)."""
        body = response.json_object() or {}
        message = joined_message(body.get("message")) or response.text(200) or "no message"
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
        retry_after = _rate_limit_wait(response) if response.status == 429 else None
        return error_for_status(
            response.status, message, vendor=name, retry_after=retry_after, **context
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


def _retry_hint(request: RequestSpec) -> float:
    value = request.context.get("provider_retry_after", 5.0)
    return float(value) if isinstance(value, (int, float)) else 5.0


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
