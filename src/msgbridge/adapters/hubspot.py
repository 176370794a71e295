"""HubSpot Conversations custom channels: update a message's status.

``PATCH /conversations/custom-channels/{version}/{channelId}/messages/{messageId}``
(date-versioned; legacy ``/conversations/v3/custom-channels/…`` with ``api_version="v3"``)
with ``{"statusType": SENT|FAILED|READ, "errorMessage"?}``.

State mapping:

============  ==========  ==========
neutral       HubSpot     fidelity
============  ==========  ==========
pending       —           none (HubSpot has no such value; skipped)
sent          SENT        exact
delivered     SENT        coarse (no DELIVERED; SENT is true of a delivered message)
read          READ        exact
failed        FAILED      exact (``errorMessage`` from ``StatusError.message``)
============  ==========  ==========

HubSpot's body has no place for ``email_message_id``, ``recipients``, ``error.code`` or
``error.kind``; when given they are listed in ``RequestSpec.dropped`` (and so in the
receipt's ``dropped_fields``), never dropped silently.
"""

from __future__ import annotations

import uuid
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
    dropped_fields,
    path_segment,
)
from msgbridge.auth import Credential, RefreshingOAuth, TokenStore
from msgbridge.errors import (
    ConfigurationError,
    InvalidStatus,
    MalformedResponse,
    MessagingError,
)
from msgbridge.hookspecs import hookimpl
from msgbridge.inbound.model import IncomingMessage, Party
from msgbridge.model import DeliveryState, MessageStatus
from msgbridge.validation import ascii_pattern
from msgbridge.wire import (
    error_for_status,
    int_header,
    lenient_converter,
    parse_retry_after,
    read_model,
)

__all__ = ["HubSpotAdapter", "HubSpotOAuth", "HubSpotSettings"]

BASE_URL = "https://api.hubapi.com"
DEFAULT_API_VERSION = "2026-03"
LEGACY_API_VERSION = "v3"
#: ``YYYY-MM`` or ``YYYY-MM-beta``, ASCII digits only, nothing after (no ``\n``).
_DATE_VERSION = ascii_pattern(r"[0-9]{4}-(0[1-9]|1[0-2])(-beta)?")
_DIGITS = ascii_pattern(r"[0-9]+")
_INT32_MAX = 2**31 - 1
#: Wait after a ``TEN_SECONDLY_ROLLING`` 429 without headers (HubSpot's Node SDK: 10 s).
TEN_SECONDLY_WAIT = 10.0

STATES: Mapping[DeliveryState, StateMapping] = {
    DeliveryState.PENDING: StateMapping.none(),
    DeliveryState.SENT: StateMapping.exact("SENT"),
    DeliveryState.DELIVERED: StateMapping.coarse("SENT"),
    DeliveryState.READ: StateMapping.exact("READ"),
    DeliveryState.FAILED: StateMapping.exact("FAILED"),
}


def _channel_id(value: Any, *, error: Callable[[str], MessagingError]) -> int:
    if isinstance(value, bool):
        raise error(f"channel_id must be a whole number, got {value!r}")
    if isinstance(value, str):
        if not _DIGITS.match(value) or len(value) > 10:
            raise error(
                "channel_id must be numeric, ASCII digits only (HubSpot channel ids are integers), "
                f"got {value[:40]!a}"
            )
        value = int(value)
    if not isinstance(value, int) or not 0 < value <= _INT32_MAX:
        raise error(f"channel_id must be a positive 32-bit integer, got {value!r}")
    return value


def _settings_channel(value: Any) -> int | None:
    if value is None:
        return None
    return _channel_id(value, error=lambda m: ConfigurationError(m, key="channel_id"))


def _api_version(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or (
        value != LEGACY_API_VERSION and not _DATE_VERSION.match(value)
    ):
        raise ConfigurationError(
            f"api_version must be a date version such as '2026-03' (or '2026-09-beta') or "
            f"the legacy 'v3', got {value!a}",
            key="api_version",
        )


@attrs.frozen
class HubSpotSettings:
    """Connection settings for HubSpot custom channels."""

    #: The custom channel's id; a status's own ``channel_id`` wins when it has one.
    channel_id: int | None = attrs.field(default=None, converter=_settings_channel)
    api_version: str = attrs.field(default=DEFAULT_API_VERSION, validator=_api_version)
    #: Override the API host (e.g. the emulator's ``http://127.0.0.1:PORT/hubspot``);
    #: checked by the core when the connection is set up.
    base_url: str | None = None
    #: Default channel account for publishing incoming messages.
    channel_account_id: str | None = None


# -- wire formats ------------------------------------------------------------------


@attrs.frozen
class _Status:
    statusType: str | None = None  # noqa: N815


@attrs.frozen
class _Message:
    id: str
    channelId: str | int | None = None  # noqa: N815
    conversationsThreadId: str | None = None  # noqa: N815
    status: _Status | None = None


_wire = lenient_converter()
_wire.register_structure_hook(str | int | None, lambda v, _: None if v is None else str(v))


def _quick_message(body: Any) -> _Message | None:
    """The usual answer, read without cattrs (it is on every update's path); ``None``
    when anything is unusual, so :func:`read_model` reads it and says what is wrong."""
    if type(body) is not dict:
        return None
    get = body.get
    message_id, channel, thread, status = (
        get("id"),
        get("channelId"),
        get("conversationsThreadId"),
        get("status"),
    )
    if type(message_id) is not str or (thread is not None and type(thread) is not str):
        return None
    if channel is not None:
        if type(channel) is int:
            channel = str(channel)
        elif type(channel) is not str:
            return None
    if status is not None:
        if type(status) is not dict:
            return None
        status_type = status.get("statusType")
        if status_type is not None and type(status_type) is not str:
            return None
        status = _Status(status_type)
    return _Message(message_id, channel, thread, status)


class HubSpotAdapter(Adapter[HubSpotSettings]):
    id = "hubspot"
    settings_type = HubSpotSettings
    description = "HubSpot Conversations custom channels: message status"

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPDATE_STATUS, Operation.PUBLISH_INBOUND}),
            states=STATES,
        )
        self.defaults = AdapterDefaults(
            base_url=BASE_URL,
            version=DEFAULT_API_VERSION,
            # Public OAuth apps: 110 per 10 s per portal is the widely cited figure.
            rate_budget=RateBudget(requests=110, per_seconds=10.0),
        )

    def prepare_status(self, update: MessageStatus, settings: HubSpotSettings) -> RequestSpec:
        value = self.sendable_value(update.state)
        if update.channel_id is not None:
            channel = _channel_id(
                update.channel_id, error=lambda m: InvalidStatus(m, field="channel_id")
            )
        elif settings.channel_id is not None:
            channel = settings.channel_id
        else:
            raise InvalidStatus(
                "HubSpot needs a channel id: set MessageStatus(channel_id=...) or the "
                "connection setting channel_id",
                field="channel_id",
            )
        body: dict[str, Any] = {"statusType": value}
        if update.state is DeliveryState.FAILED and update.error is not None:
            body["errorMessage"] = update.error.message
        dropped = dropped_fields(update, carried=())
        message = path_segment("message_id", update.message_id)
        if settings.api_version == LEGACY_API_VERSION:
            path = f"/conversations/v3/custom-channels/{channel}/messages/{message}"
        else:
            version = settings.api_version
            path = f"/conversations/custom-channels/{version}/{channel}/messages/{message}"
        return RequestSpec(
            method="PATCH",
            path=path,
            json=body,
            operation=Operation.UPDATE_STATUS,
            subject_id=update.message_id,
            dropped=dropped,
        )

    def prepare_inbound(self, message: IncomingMessage, settings: HubSpotSettings) -> RequestSpec:
        """``POST …/{channelId}/messages`` with ``messageDirection: INCOMING`` and an
        ``integrationIdempotencyId`` derived from the message's own id, so a retry (by us,
        the outbox or a crashed process) never duplicates it.
        """
        channel = self._channel(message.channel_id, settings)
        account = message.channel_account_id or settings.channel_account_id
        if account is None:
            raise InvalidStatus(
                "HubSpot needs a channel account: set IncomingMessage(channel_account_id=...) "
                "or the connection setting channel_account_id",
                field="channel_account_id",
            )
        if message.sender is None:
            raise InvalidStatus(
                "HubSpot needs the sender (Party with the contact's delivery identifier)",
                field="sender",
            )
        body: dict[str, Any] = {
            "channelAccountId": account,
            "messageDirection": "INCOMING",
            "senders": [_hubspot_party(message.sender, "sender")],
            "integrationIdempotencyId": inbound_idempotency_id(channel, account, message),
        }
        if message.recipients:
            body["recipients"] = [_hubspot_party(p, "recipients") for p in message.recipients]
        if message.text is not None:
            body["text"] = message.text
        if message.html is not None:
            body["richText"] = message.html
        if message.occurred_at is not None:
            body["timestamp"] = message.occurred_at.isoformat()
        if message.thread_id is not None:
            body["integrationThreadId"] = message.thread_id
        if message.in_reply_to is not None:
            body["inReplyToId"] = message.in_reply_to
        if settings.api_version == LEGACY_API_VERSION:
            path = f"/conversations/v3/custom-channels/{channel}/messages"
        else:
            path = f"/conversations/custom-channels/{settings.api_version}/{channel}/messages"
        return RequestSpec(
            method="POST",
            path=path,
            json=body,
            operation=Operation.PUBLISH_INBOUND,
            subject_id=message.message_id,
        )

    def _channel(self, value: str | None, settings: HubSpotSettings) -> int:
        if value is not None:
            return _channel_id(value, error=lambda m: InvalidStatus(m, field="channel_id"))
        if settings.channel_id is not None:
            return settings.channel_id
        raise InvalidStatus(
            "HubSpot needs a channel id: set it on the message or the connection setting "
            "channel_id",
            field="channel_id",
        )

    def webhook_verifier(self, options: Mapping[str, Any]) -> Any:
        """:class:`~msgbridge.adapters.hubspot_webhooks.HubSpotWebhookVerifier`."""
        from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier

        return HubSpotWebhookVerifier.from_options(self.id, options)

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: HubSpotSettings
    ) -> VendorResult:
        correlation = response.header("x-hubspot-correlation-id")
        if 200 <= response.status < 300:
            try:
                data = _quick_message(response.json()) or read_model(
                    _wire, response, _Message, what="HubSpot message"
                )
            except MalformedResponse as exc:
                # A 2xx means HubSpot applied it: applied, with a warning, never failed.
                return VendorResult(
                    http_status=response.status,
                    trace_id=correlation,
                    warning=(
                        f"HubSpot answered HTTP {response.status} (applied) but its body was "
                        f"not a message: {exc.message}"
                    ),
                )
            ids = {"id": data.id}
            if data.channelId is not None:
                ids["channelId"] = str(data.channelId)
            if data.conversationsThreadId:
                ids["conversationsThreadId"] = data.conversationsThreadId
            return VendorResult(
                http_status=response.status,
                vendor_ids=ids,
                trace_id=correlation,
                vendor_status=data.status.statusType if data.status else None,
            )
        raise self.error_for(response)

    def credentials_from_oauth(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str | None,
        store: TokenStore | None,
        token_url: str | None,
    ) -> Credential:
        return HubSpotOAuth(
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            store=store,
            token_url=token_url,
        )

    def rate_limit_feedback(self, response: ResponseView) -> RateFeedback | None:
        """The documented headers first: ``X-HubSpot-RateLimit-Secondly`` /
        ``-Secondly-Remaining`` (a one-second window) and ``-Daily`` / ``-Daily-Remaining``.
        Without the secondly pair, the observed (undocumented) ``-Max`` / ``-Remaining`` /
        ``-Interval-Milliseconds`` are read as a fallback. All are optional: HubSpot
        omits them when it cannot gather the data."""
        daily_remaining = int_header(response, "x-hubspot-ratelimit-daily-remaining")
        daily_maximum = int_header(response, "x-hubspot-ratelimit-daily")
        secondly_remaining = int_header(response, "x-hubspot-ratelimit-secondly-remaining")
        if secondly_remaining is not None:
            remaining: int | None = secondly_remaining
            maximum = int_header(response, "x-hubspot-ratelimit-secondly")
            window: float | None = 1.0
        else:
            remaining = int_header(response, "x-hubspot-ratelimit-remaining")
            maximum = int_header(response, "x-hubspot-ratelimit-max")
            interval = int_header(response, "x-hubspot-ratelimit-interval-milliseconds")
            window = interval / 1000.0 if interval else None
        if remaining is None and daily_remaining is None:
            return None
        return RateFeedback(
            remaining=remaining,
            maximum=maximum,
            window=window,
            daily_remaining=daily_remaining,
            daily_maximum=daily_maximum,
        )

    def error_for(self, response: ResponseView) -> MessagingError:
        """Typed error for HubSpot's ``Error`` body, or its legacy 429 body."""
        body = response.json_object() or {}
        message = body.get("message") if isinstance(body.get("message"), str) else None
        errors = body.get("errors")
        details = [
            e["message"]
            for e in (errors if isinstance(errors, list) else [])
            if isinstance(e, dict) and isinstance(e.get("message"), str)
        ]
        text = (
            "; ".join([m for m in [message, *details] if m]) or response.text(200) or "no message"
        )
        category = body.get("category") or body.get("errorType")
        sub = body.get("subCategory")
        label = f"{category}" + (f"/{sub}" if sub else "") if category else None
        correlation = body.get("correlationId")
        context: dict[str, Any] = {
            "http_status": response.status,
            "vendor_message": f"{label}: {text}" if label else text,
            "trace_id": correlation
            if isinstance(correlation, str)
            else response.header("x-hubspot-correlation-id"),
        }
        if response.status == 429:
            wait, retryable = _rate_limit_wait(response, body)
            return error_for_status(
                429, text, vendor="HubSpot", retry_after=wait, retryable=retryable, **context
            )
        return error_for_status(response.status, text, vendor="HubSpot", **context)


#: Namespace of derived ``integrationIdempotencyId`` values (uuid5; fixed forever, since
#: changing it would let a retry after an upgrade duplicate a message).
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c1d52-4b0e-5e8e-9d3a-6d73676272dd")

#: Neutral ``Party.kind`` shorthands → HubSpot ``deliveryIdentifier.type``.
_IDENTIFIER_TYPES = {
    "phone": "HS_PHONE_NUMBER",
    "email": "HS_EMAIL_ADDRESS",
    "short_code": "HS_SHORT_CODE",
    None: "CHANNEL_SPECIFIC_OPAQUE_ID",
}
_HUBSPOT_TYPES = frozenset(
    {"CHANNEL_SPECIFIC_OPAQUE_ID", "HS_EMAIL_ADDRESS", "HS_PHONE_NUMBER", "HS_SHORT_CODE"}
)


def inbound_idempotency_id(channel: int, account: str, message: IncomingMessage) -> str:
    """Deterministic ``integrationIdempotencyId``: the same message always gets the same id."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{channel}\x1f{account}\x1f{message.message_id}"))


def _hubspot_party(party: Party, field: str) -> dict[str, Any]:
    kind = party.kind if party.kind in _HUBSPOT_TYPES else _IDENTIFIER_TYPES.get(party.kind)
    if kind is None:
        allowed = ", ".join(sorted(_HUBSPOT_TYPES | {"phone", "email", "short_code"}))
        raise InvalidStatus(
            f"{field} kind {party.kind!r} has no HubSpot deliveryIdentifier type; use one of "
            f"{allowed} (or none for an opaque channel id)",
            field=field,
        )
    result: dict[str, Any] = {"deliveryIdentifier": {"type": kind, "value": party.identifier}}
    if party.name is not None:
        result["name"] = party.name
    return result


def _rate_limit_wait(response: ResponseView, body: Mapping[str, Any]) -> tuple[float | None, bool]:
    """How long a 429 asks us to wait, and whether waiting is worth it at all."""
    policy = body.get("policyName")
    daily_remaining = int_header(response, "x-hubspot-ratelimit-daily-remaining")
    if policy == "DAILY" or (daily_remaining is not None and daily_remaining <= 0):
        return None, False  # waiting means waiting for the portal's midnight
    retry_after = parse_retry_after(response)
    if retry_after is not None:
        return retry_after, True
    if policy == "SECONDLY":
        return 1.0, True
    interval = int_header(response, "x-hubspot-ratelimit-interval-milliseconds")
    if policy == "TEN_SECONDLY_ROLLING" or interval is not None:
        return (interval / 1000.0 if interval else TEN_SECONDLY_WAIT), True
    return None, True


class HubSpotOAuth(RefreshingOAuth):
    """HubSpot OAuth: 30-minute access tokens refreshed ahead of ``expires_in``.

    HubSpot says a 401 is not the signal to refresh; only a 401 whose category is
    ``EXPIRED_AUTHENTICATION`` triggers the one fallback refresh.
    """

    default_token_url = f"{BASE_URL}/oauth/2026-03/token"

    def refresh_form(self, refresh_token: str) -> dict[str, str]:
        return {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }

    def is_expired_response(self, response: ResponseView) -> bool:
        if response.status != 401:
            return False
        body = response.json_object()
        return body is not None and body.get("category") == "EXPIRED_AUTHENTICATION"


@hookimpl
def register_adapters(register: Callable[[Adapter[Any]], None]) -> None:
    register(HubSpotAdapter())


@hookimpl
def register_emulated_vendors(register: Callable[[Any], None]) -> None:
    """The emulated HubSpot, declared the way plugin vendors are."""
    try:
        from msgbridge.emulator.hubspot import HubSpot
    except ImportError:  # pragma: no cover - the emulator's dependencies are missing
        return
    register(HubSpot())
