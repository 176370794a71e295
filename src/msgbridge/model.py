"""The neutral, vendor-free model every adapter translates from.

Nothing in this module knows about a vendor. Values are frozen attrs classes whose
validators raise :class:`~msgbridge.errors.InvalidStatus` naming the field and what
would be allowed, so bad input is refused before any I/O.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from msgbridge.errors import InvalidStatus

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_UNREAD_COUNT",
    "ConversationUpdate",
    "DeliveryState",
    "MessageStatus",
    "Outcome",
    "Receipt",
    "StatusError",
]

#: Longest identifier accepted. HighLevel ids are 20 characters and HubSpot ids are
#: numeric or UUID-like; 256 leaves room for any vendor without letting a caller send
#: megabytes into a URL path.
MAX_ID_LENGTH = 256
#: Longest error text accepted in a :class:`StatusError`.
MAX_ERROR_MESSAGE_LENGTH = 4096
#: Largest ``unread_count``. HighLevel's schema says only "number"; we assume a signed
#: 32-bit integer (the common bound for counters in JSON APIs), so 2**31 is refused.
MAX_UNREAD_COUNT = 2**31 - 1


class DeliveryState(str, enum.Enum):
    """Where an outbound message is in its life.

    ``PENDING < SENT < DELIVERED < READ`` is the order the state guard enforces;
    ``FAILED`` is terminal and may only follow ``PENDING`` or ``SENT``.
    """

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """Position in the delivery order (``FAILED`` ranks with ``DELIVERED``)."""
        return _RANKS[self]

    def may_follow(self, previous: DeliveryState) -> bool:
        """Whether this state is news after *previous* (False means it is stale)."""
        if previous is DeliveryState.FAILED:
            return self is DeliveryState.FAILED
        if self is DeliveryState.FAILED:
            return previous in (DeliveryState.PENDING, DeliveryState.SENT, DeliveryState.FAILED)
        return self.rank >= previous.rank


_RANKS = {
    DeliveryState.PENDING: 0,
    DeliveryState.SENT: 1,
    DeliveryState.DELIVERED: 2,
    DeliveryState.FAILED: 2,
    DeliveryState.READ: 3,
}


class Outcome(str, enum.Enum):
    """What happened to one update; every update gets exactly one."""

    APPLIED = "applied"
    SKIPPED_UNSUPPORTED = "skipped_unsupported"
    SKIPPED_STALE = "skipped_stale"
    SKIPPED_DUPLICATE = "skipped_duplicate"
    SKIPPED_SUPERSEDED = "skipped_superseded"
    FAILED = "failed"

    @property
    def is_skipped(self) -> bool:
        return self.value.startswith("skipped_")


def check_identifier(field: str, value: object) -> None:
    """Refuse ids that cannot be one honest URL path segment.

    Refused: non-strings, empty or padded with whitespace, longer than
    :data:`MAX_ID_LENGTH`, ``.``/``..``, control characters (category Cc), lone
    surrogates (Cs: not encodable, so they would fail at storage or send time) and
    format characters (Cf: bidi overrides such as U+202E, zero-width U+200B-U+200F,
    BOM U+FEFF), which make one id look like another in logs and UIs.
    """
    if not isinstance(value, str):
        raise InvalidStatus(f"{field} must be a string, got {type(value).__name__}", field=field)
    if not value.strip():
        raise InvalidStatus(f"{field} must not be empty or whitespace", field=field)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidStatus(
            f"{field} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed",
            field=field,
        )
    # Printable ASCII has no Cc, Cs or Cf character: the common case costs two C calls.
    plain = value.isascii() and value.isprintable()
    if not plain and any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidStatus(f"{field} must not contain control characters", field=field)
    for ch in () if plain else value:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise InvalidStatus(
                f"{field} contains a lone surrogate U+{ord(ch):04X}, which is not text "
                "(often a broken JSON \\u escape); ids must be valid Unicode",
                field=field,
            )
        if category == "Cf":
            raise InvalidStatus(
                f"{field} contains the invisible format character U+{ord(ch):04X} "
                f"({unicodedata.name(ch, 'unnamed')}); bidi controls, zero-width characters "
                "and BOM are refused because they spoof logs and UIs",
                field=field,
            )
    if value in {".", ".."}:
        raise InvalidStatus(f"{field} must not be '.' or '..' (a path traversal)", field=field)
    if value != value.strip():
        raise InvalidStatus(f"{field} must not start or end with whitespace", field=field)


def _check_encodable(field: str, value: str) -> None:
    """Refuse lone surrogates in free text: they cannot be encoded as UTF-8, so they
    would fail at storage or send time instead of here."""
    for ch in value:
        if unicodedata.category(ch) == "Cs":
            raise InvalidStatus(
                f"{field} contains a lone surrogate U+{ord(ch):04X}, which is not text "
                "(often a broken JSON \\u escape)",
                field=field,
            )


def _id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_identifier(attribute.name, value)


def _optional_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_identifier(attribute.name, value)


def _aware_datetime(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dt.datetime):
        raise InvalidStatus(
            f"{attribute.name} must be a datetime, got {type(value).__name__}",
            field=attribute.name,
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidStatus(
            f"{attribute.name} must be timezone-aware (for example datetime.now(timezone.utc))",
            field=attribute.name,
        )


def _state(value: object) -> DeliveryState:
    if isinstance(value, DeliveryState):
        return value
    try:
        return DeliveryState(value)
    except ValueError:
        allowed = ", ".join(s.value for s in DeliveryState)
        raise InvalidStatus(
            f"state {value!r} is unknown; allowed: {allowed}", field="state"
        ) from None


def _recipients(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        raise InvalidStatus(
            "recipients must be a sequence of strings, not one string", field="recipients"
        )
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidStatus(
                f"recipients must be non-empty strings, got {item!r}", field="recipients"
            )
        _check_encodable("recipients", item)
    return items


@attrs.frozen
class StatusError:
    """Why a message failed, as the messaging provider reported it."""

    message: str = attrs.field()
    code: str | None = attrs.field(default=None, kw_only=True)
    #: The kind of failure (HighLevel calls it ``type``, e.g. ``"saas"``).
    kind: str | None = attrs.field(default=None, kw_only=True)

    @message.validator
    def _check_message(self, _: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise InvalidStatus("error.message must be a non-empty string", field="error.message")
        if len(value) > MAX_ERROR_MESSAGE_LENGTH:
            raise InvalidStatus(
                f"error.message is {len(value)} characters; at most "
                f"{MAX_ERROR_MESSAGE_LENGTH} are allowed",
                field="error.message",
            )
        _check_encodable("error.message", value)

    @code.validator
    @kind.validator
    def _check_optional_text(self, attribute: attrs.Attribute[str | None], value: object) -> None:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidStatus(
                f"error.{attribute.name} must be a non-empty string or None",
                field=f"error.{attribute.name}",
            )
        if value is not None:
            _check_encodable(f"error.{attribute.name}", value)


@attrs.frozen
class MessageStatus:
    """A delivery status for one outbound message, in neutral terms."""

    message_id: str = attrs.field(validator=_id)
    state: DeliveryState = attrs.field(converter=_state)
    error: StatusError | None = attrs.field(default=None, kw_only=True)
    occurred_at: dt.datetime | None = attrs.field(
        default=None, kw_only=True, validator=_aware_datetime
    )
    conversation_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    #: For vendors that scope messages by channel (HubSpot custom channels).
    channel_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    email_message_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    recipients: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_recipients)

    @error.validator
    def _check_error(self, _: attrs.Attribute[StatusError | None], value: object) -> None:
        if value is None:
            return
        if not isinstance(value, StatusError):
            raise InvalidStatus(
                f"error must be a StatusError, got {type(value).__name__}", field="error"
            )
        if self.state is not DeliveryState.FAILED:
            raise InvalidStatus(
                f"error is only allowed with state 'failed', not {self.state.value!r}",
                field="error",
            )


@attrs.frozen
class ConversationUpdate:
    """Agent-side inbox state of a conversation (not a message receipt)."""

    conversation_id: str = attrs.field(validator=_id)
    #: The account the conversation lives in (HighLevel: the location id).
    account_id: str | None = attrs.field(default=None, kw_only=True, validator=_optional_id)
    unread_count: int | None = attrs.field(default=None, kw_only=True)
    starred: bool | None = attrs.field(default=None, kw_only=True)

    @unread_count.validator
    def _check_unread(self, _: attrs.Attribute[int | None], value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidStatus(
                f"unread_count must be an integer, got {type(value).__name__}",
                field="unread_count",
            )
        if not 0 <= value <= MAX_UNREAD_COUNT:
            raise InvalidStatus(
                f"unread_count must be from 0 to {MAX_UNREAD_COUNT} (2**31 - 1), got {value}",
                field="unread_count",
            )

    @starred.validator
    def _check_starred(self, _: attrs.Attribute[bool | None], value: object) -> None:
        if value is not None and not isinstance(value, bool):
            raise InvalidStatus(
                f"starred must be True, False or None, got {value!r}", field="starred"
            )

    def __attrs_post_init__(self) -> None:
        if self.unread_count is None and self.starred is None:
            raise InvalidStatus(
                "a ConversationUpdate must set unread_count or starred (or both)",
                field="unread_count",
            )


def _frozen_mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Receipt:
    """What happened to one update, always returned (or carried by the error raised)."""

    outcome: Outcome
    connection: str
    adapter: str
    #: The message id (status updates) or conversation id (conversation updates).
    subject_id: str
    #: The neutral state asked for; ``None`` for conversation updates.
    state: DeliveryState | None = None
    #: The vendor's own value that was (or would have been) sent, e.g. ``"pending"``.
    vendor_value: str | None = None
    attempts: int = 0
    http_status: int | None = None
    #: Ids the vendor returned, e.g. ``{"conversationId": "...", "messageId": "..."}``.
    vendor_ids: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: The vendor's trace / correlation id, for support tickets.
    trace_id: str | None = None
    #: The status the vendor reports holding after the update, when it says (a vendor
    #: that silently ignores a regression still reports what it kept).
    vendor_status: str | None = None
    #: Why an update was skipped or failed, in words.
    detail: str | None = None
    #: Position of the input in a batch (``update_many``), else ``None``.
    index: int | None = None
    #: The exception behind a ``FAILED`` outcome in a batch; never carries secrets.
    error: Exception | None = attrs.field(default=None, eq=False, repr=False)
    #: Neutral fields the caller gave that the vendor could not carry (e.g.
    #: ``("email_message_id", "error.code")`` for HubSpot): applied, but not all of it.
    dropped_fields: tuple[str, ...] = attrs.field(default=(), converter=_names)

    @property
    def ok(self) -> bool:
        """True unless the update failed (skips are successes: nothing was lost)."""
        return self.outcome is not Outcome.FAILED
