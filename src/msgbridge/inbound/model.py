"""The neutral inbound model: what a CRM asks the provider to send, and what a contact sent.

Like :class:`~msgbridge.model.MessageStatus`, values are frozen attrs classes whose
validators raise :class:`~msgbridge.errors.InvalidStatus` naming the field, so bad input is
refused before any I/O. Ids go through :func:`msgbridge.model.check_identifier`.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from msgbridge.errors import InvalidStatus
from msgbridge.model import check_identifier

__all__ = [
    "MAX_TEXT_LENGTH",
    "ChannelKind",
    "EventKind",
    "IncomingMessage",
    "OutboundRequest",
    "Party",
    "WebhookEvent",
]

#: Longest text/HTML body accepted (HighLevel and HubSpot document no limit; 256 KiB of
#: text is far above any SMS, chat or e-mail body we have seen and bounds memory).
MAX_TEXT_LENGTH = 256 * 1024
#: Most attachments per message.
MAX_ATTACHMENTS = 100


class ChannelKind(str, enum.Enum):
    """The kind of channel a message travels on."""

    SMS = "sms"
    EMAIL = "email"
    #: A vendor's "custom" channel (HighLevel ``Custom``, a HubSpot custom channel).
    CUSTOM = "custom"
    CHAT = "chat"
    CALL = "call"


class EventKind(str, enum.Enum):
    """What a verified webhook is about."""

    #: The CRM asks the provider to send a message (:class:`OutboundRequest`).
    OUTBOUND_MESSAGE = "outbound_message"
    #: A channel account was created or changed (HubSpot); passed through as raw payload.
    CHANNEL_ACCOUNT = "channel_account"
    #: Any other recognised event, passed through as raw payload.
    OTHER = "other"


def _id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_identifier(attribute.name, value)


def _optional_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_identifier(attribute.name, value)


def _optional_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidStatus(
            f"{attribute.name} must be a string or None, got {type(value).__name__}",
            field=attribute.name,
        )
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidStatus(
            f"{attribute.name} is {len(value)} characters; at most {MAX_TEXT_LENGTH} are allowed",
            field=attribute.name,
        )
    if "\x00" in value:
        raise InvalidStatus(f"{attribute.name} must not contain NUL", field=attribute.name)


def _optional_line(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A short one-line value (phone, address, subject): no control characters."""
    _optional_text(_, attribute, value)
    if isinstance(value, str) and any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidStatus(
            f"{attribute.name} must not contain control characters", field=attribute.name
        )


def _aware(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidStatus(
            f"{attribute.name} must be a timezone-aware datetime", field=attribute.name
        )


def _attachments(value: Iterable[str] | None) -> tuple[str, ...]:
    """Attachment URLs: a sequence of non-empty strings without control characters."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise InvalidStatus(
            "attachments must be a list of URLs, not one string", field="attachments"
        )
    items = tuple(value)
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidStatus(
            f"attachments has {len(items)} items; at most {MAX_ATTACHMENTS}", field="attachments"
        )
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidStatus(
                f"attachments must be non-empty strings, got {item!r}", field="attachments"
            )
        if any(unicodedata.category(c) == "Cc" for c in item):
            raise InvalidStatus(
                "attachments must not contain control characters", field="attachments"
            )
    return items


def _parties(value: Iterable[Party] | None) -> tuple[Party, ...]:
    if value is None:
        return ()
    items = tuple(value)
    for item in items:
        if not isinstance(item, Party):
            raise InvalidStatus(
                f"recipients must be Party values, got {type(item).__name__}", field="recipients"
            )
    return items


def _channel(value: object) -> ChannelKind:
    if isinstance(value, ChannelKind):
        return value
    try:
        return ChannelKind(value)
    except ValueError:
        allowed = ", ".join(c.value for c in ChannelKind)
        raise InvalidStatus(
            f"channel {value!r} is unknown; allowed: {allowed}", field="channel"
        ) from None


def _raw(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidStatus(f"raw must be a JSON object, got {type(value).__name__}", field="raw")
    return dict(value)


@attrs.frozen
class Party:
    """A sender or recipient: a display name and how the channel addresses them."""

    #: The address on the channel (phone number, e-mail, opaque channel id).
    identifier: str = attrs.field(validator=_id)
    name: str | None = attrs.field(default=None, kw_only=True, validator=_optional_line)
    #: The vendor's kind of identifier (HubSpot ``HS_PHONE_NUMBER``, ...), when it has one.
    kind: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)


@attrs.frozen
class OutboundRequest:
    """A message the CRM asks the provider to send (a user wrote to a contact).

    ``raw`` keeps the vendor's payload beside the neutral fields, so nothing the vendor
    sent is lost when the neutral model has no place for it.
    """

    #: The CRM's id of the message; report its status with this id.
    message_id: str = attrs.field(validator=_id)
    channel: ChannelKind = attrs.field(converter=_channel)
    #: The CRM account the message belongs to (HighLevel location, HubSpot portal, ...).
    account_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    contact_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    conversation_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    #: HubSpot's custom channel / channel account the message is on.
    channel_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    channel_account_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    #: The CRM user who wrote it.
    user_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    text: str | None = attrs.field(default=None, kw_only=True, validator=_optional_text)
    html: str | None = attrs.field(default=None, kw_only=True, validator=_optional_text)
    subject: str | None = attrs.field(default=None, kw_only=True, validator=_optional_line)
    #: Attachment URLs.
    attachments: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_attachments)
    #: Where to send it: phone number(s), e-mail address(es) or channel identifiers.
    recipients: tuple[Party, ...] = attrs.field(default=(), kw_only=True, converter=_parties)
    sender: Party | None = attrs.field(default=None, kw_only=True)
    email_message_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    #: The provider's id of the message this one replies to (HighLevel ``replyToAltId``).
    reply_to_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    occurred_at: dt.datetime | None = attrs.field(default=None, kw_only=True, validator=_aware)
    raw: Mapping[str, Any] = attrs.field(factory=dict, kw_only=True, converter=_raw, eq=False)


@attrs.frozen
class IncomingMessage:
    """A message a contact sent, to publish into the CRM's conversation."""

    #: The provider's own id of this message: the idempotency anchor (a retry with the
    #: same id never duplicates) and HighLevel's ``altId``.
    message_id: str = attrs.field(validator=_id)
    channel: ChannelKind = attrs.field(converter=_channel)
    contact_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    conversation_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    account_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    channel_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    channel_account_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    #: The thread on the provider's side (HubSpot ``integrationThreadId``).
    thread_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    text: str | None = attrs.field(default=None, kw_only=True, validator=_optional_text)
    html: str | None = attrs.field(default=None, kw_only=True, validator=_optional_text)
    subject: str | None = attrs.field(default=None, kw_only=True, validator=_optional_line)
    attachments: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_attachments)
    sender: Party | None = attrs.field(default=None, kw_only=True)
    recipients: tuple[Party, ...] = attrs.field(default=(), kw_only=True, converter=_parties)
    #: The CRM message this one answers (HubSpot ``inReplyToId``).
    in_reply_to: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    #: The e-mail thread to add to (HighLevel ``emailMessageId``).
    email_message_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    occurred_at: dt.datetime | None = attrs.field(default=None, kw_only=True, validator=_aware)

    def __attrs_post_init__(self) -> None:
        if not (self.text or self.html or self.attachments):
            raise InvalidStatus(
                "an IncomingMessage needs text, html or attachments (it would be empty)",
                field="text",
            )


@attrs.frozen
class WebhookEvent:
    """One verified, parsed webhook: what the intake stores and hands to the handler."""

    #: The adapter that verified it (``highlevel``, ``hubspot``, ``chatwoot``, ...).
    adapter: str = attrs.field(validator=_id)
    kind: EventKind = attrs.field(converter=EventKind)
    #: The vendor's own event name (``ProviderOutboundMessage``, ...).
    event_type: str = attrs.field(validator=_id)
    #: De-duplication key within the adapter: the same key is stored and handled once.
    dedup_key: str = attrs.field(validator=_id)
    outbound: OutboundRequest | None = attrs.field(default=None, kw_only=True)
    #: When the vendor says the event happened (signed timestamp), if it says.
    occurred_at: dt.datetime | None = attrs.field(default=None, kw_only=True, validator=_aware)
    raw: Mapping[str, Any] = attrs.field(factory=dict, kw_only=True, converter=_raw, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.kind is EventKind.OUTBOUND_MESSAGE and self.outbound is None:
            raise InvalidStatus(
                "an outbound_message event needs its OutboundRequest", field="outbound"
            )
