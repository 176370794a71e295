"""An email's delivery events, in neutral terms, and its strict JSON form.

Email providers report more than a delivery state: opens, clicks, replies, bounces,
per-recipient outcomes. ``opened`` and ``clicked`` are engagement, not delivery, so they
do not belong in :class:`~msgbridge.model.DeliveryState` and its ordering guard; they
live here. HighLevel's v3 ``PUT /conversations/messages/email/{id}/status`` is the first
vendor call that takes them (``highlevel.md`` §9): its ``status`` list is
:class:`EmailState`, its ``events`` counters :class:`EmailEvents` (additive: the vendor
merges counters, and a ``0`` is a no-op), its ``recipients`` :class:`EmailRecipientStatus`.

Validators raise :class:`~msgbridge.errors.InvalidStatus` naming the field, like the rest
of the model, so bad input is refused before any I/O.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from msgbridge.errors import InvalidStatus
from msgbridge.model import MAX_ERROR_MESSAGE_LENGTH, check_identifier
from msgbridge.strict import make_strict_converter, structure_strictly

__all__ = [
    "EVENT_COUNTERS",
    "EmailEvents",
    "EmailRecipientStatus",
    "EmailState",
    "EmailStatusUpdate",
    "email_status_from_json",
    "email_status_to_json",
]

#: Longest address accepted (RFC 5321: 64 + 1 + 255).
MAX_EMAIL_LENGTH = 320
#: Largest counter accepted: a 64-bit signed integer, what any JSON peer can store.
MAX_COUNTER = 2**63 - 1
#: The counters HighLevel's ``EmailEventsDto`` names; other keys are provider counters.
EVENT_COUNTERS = (
    "delivered",
    "opened",
    "clicked",
    "replied",
    "failed",
    "accepted",
    "rejected",
    "unsubscribed",
    "complained",
    "stored",
)
#: Provider counter keys are snake_case words (``permanent_fail``, ``esp_isp_block``).
_PROVIDER_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class EmailState(str, enum.Enum):
    """The overall (or one recipient's) status of an email.

    Unlike :class:`~msgbridge.model.DeliveryState` there is no order: the vendor
    overwrites the status on every call (last write wins).
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    CONNECTED = "connected"
    FAILED = "failed"
    OPENED = "opened"
    CLICKED = "clicked"


def _email_state(value: object) -> EmailState:
    if isinstance(value, EmailState):
        return value
    try:
        return EmailState(value)
    except ValueError:
        allowed = ", ".join(s.value for s in EmailState)
        raise InvalidStatus(
            f"email status {value!r} is unknown; allowed: {allowed}", field="status"
        ) from None


def _check_counter(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidStatus(
            f"{field} must be a whole number, got {type(value).__name__}", field=field
        )
    if not 0 <= value <= MAX_COUNTER:
        raise InvalidStatus(
            f"{field} must be between 0 and {MAX_COUNTER}, got {value}", field=field
        )


def _counter(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_counter(f"events.{attribute.name}", value)


def _provider_counters(value: Mapping[str, int] | None) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidStatus(
            f"events.provider must be a mapping of counter name to number, got "
            f"{type(value).__name__}",
            field="events.provider",
        )
    result: dict[str, int] = {}
    for key, count in value.items():
        if not isinstance(key, str) or not _PROVIDER_KEY.match(key):
            raise InvalidStatus(
                f"events.provider key {key!r} must be a snake_case name such as "
                "'permanent_fail' (lower-case letters, digits, underscores)",
                field="events.provider",
            )
        if key in EVENT_COUNTERS:
            raise InvalidStatus(
                f"events.provider key {key!r} is a named counter; set EmailEvents({key}=...)",
                field="events.provider",
            )
        _check_counter(f"events.provider.{key}", count)
        result[key] = count
    return result


@attrs.frozen
class EmailEvents:
    """Aggregate event counters for one email; the vendor adds them to what it holds.

    A ``0`` (or ``None``) changes nothing at HighLevel: counters cannot be reset.
    ``provider`` carries counters the vendor does not name (``permanent_fail``,
    ``temporary_fail``, ``esp_isp_block``), sent under their own keys.
    """

    delivered: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    opened: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    clicked: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    replied: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    failed: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    accepted: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    rejected: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    unsubscribed: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    complained: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    stored: int | None = attrs.field(default=None, kw_only=True, validator=_counter)
    provider: Mapping[str, int] = attrs.field(
        factory=dict, kw_only=True, converter=_provider_counters, hash=False
    )

    def __attrs_post_init__(self) -> None:
        if not self.counters():
            raise InvalidStatus(
                "EmailEvents must set at least one counter (or pass events=None)",
                field="events",
            )

    def counters(self) -> dict[str, int]:
        """Every counter that was given, named ones first, by its wire key."""
        named = {name: getattr(self, name) for name in EVENT_COUNTERS}
        result = {name: value for name, value in named.items() if value is not None}
        result.update(self.provider)
        return result


def _email(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    field = f"recipients.{attribute.name}"
    if not isinstance(value, str):
        raise InvalidStatus(f"{field} must be a string, got {type(value).__name__}", field=field)
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidStatus(
            f"{field} is {len(value)} characters; at most {MAX_EMAIL_LENGTH} are allowed",
            field=field,
        )
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value)
    ):
        raise InvalidStatus(
            f"{field} must be an email address such as 'jo@example.com', got {value!r}",
            field=field,
        )


@attrs.frozen
class EmailRecipientStatus:
    """One recipient's outcome; the vendor keys it by address and overwrites it."""

    email: str = attrs.field(validator=_email)
    status: EmailState = attrs.field(converter=_email_state)
    #: Bounce or rejection text; only with ``FAILED`` (the vendor documents it so).
    fail_reason: str | None = attrs.field(default=None, kw_only=True)

    @fail_reason.validator
    def _check_reason(self, _: attrs.Attribute[str | None], value: object) -> None:
        if value is None:
            return
        field = "recipients.fail_reason"
        if not isinstance(value, str) or not value.strip():
            raise InvalidStatus(f"{field} must be a non-empty string or None", field=field)
        if len(value) > MAX_ERROR_MESSAGE_LENGTH:
            raise InvalidStatus(
                f"{field} is {len(value)} characters; at most {MAX_ERROR_MESSAGE_LENGTH} "
                "are allowed",
                field=field,
            )
        if self.status is not EmailState.FAILED:
            raise InvalidStatus(
                f"{field} is only allowed with status 'failed', not {self.status.value!r}",
                field=field,
            )


def _recipients(value: Iterable[EmailRecipientStatus] | None) -> tuple[EmailRecipientStatus, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Mapping)):
        raise InvalidStatus(
            "recipients must be a sequence of EmailRecipientStatus", field="recipients"
        )
    items = tuple(value)
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, EmailRecipientStatus):
            raise InvalidStatus(
                f"recipients must hold EmailRecipientStatus values, got {type(item).__name__}",
                field="recipients",
            )
        key = item.email.lower()
        if key in seen:
            raise InvalidStatus(
                f"recipient {item.email!r} is listed twice; give each address once",
                field="recipients",
            )
        seen.add(key)
    return items


def _message_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_identifier(attribute.name, value)


@attrs.frozen
class EmailStatusUpdate:
    """An email's overall status, plus optional event counters and recipient outcomes.

    ``message_id`` is the vendor's id of the *email* (HighLevel: the ``emailMessageId``
    its provider webhook carried, not the conversation ``messageId``).
    """

    message_id: str = attrs.field(validator=_message_id)
    status: EmailState = attrs.field(converter=_email_state)
    events: EmailEvents | None = attrs.field(default=None, kw_only=True)
    recipients: tuple[EmailRecipientStatus, ...] = attrs.field(
        default=(), kw_only=True, converter=_recipients
    )

    @events.validator
    def _check_events(self, _: attrs.Attribute[EmailEvents | None], value: object) -> None:
        if value is not None and not isinstance(value, EmailEvents):
            raise InvalidStatus(
                f"events must be an EmailEvents, got {type(value).__name__}", field="events"
            )


# -- strict JSON form (JSON lines input, storage) --------------------------------------

_converter = make_strict_converter()


def _state_hook(value: Any, _: type[Any]) -> EmailState:
    allowed = ", ".join(s.value for s in EmailState)
    if not isinstance(value, str):
        raise TypeError(f"expected one of {allowed}, got {type(value).__name__}")
    try:
        return EmailState(value)
    except ValueError:
        raise ValueError(f"expected one of {allowed}, got {value!r}") from None


def _provider_hook(value: Any, _: type[Any]) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of counters, got {type(value).__name__}")
    return {str(k): _converter.structure(v, int) for k, v in value.items()}


def _recipients_hook(value: Any, _: type[Any]) -> tuple[EmailRecipientStatus, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(_converter.structure(item, EmailRecipientStatus) for item in value)


_converter.register_structure_hook(EmailState, _state_hook)
_converter.register_unstructure_hook(EmailState, lambda s: s.value)
_converter.register_structure_hook_func(lambda t: t == Mapping[str, int], _provider_hook)
_converter.register_unstructure_hook_func(lambda t: t == Mapping[str, int], dict)
_converter.register_structure_hook_func(
    lambda t: t == tuple[EmailRecipientStatus, ...], _recipients_hook
)


def _invalid(message: str, field: str | None) -> InvalidStatus:
    return InvalidStatus(message, field=field)


def email_status_from_json(data: Mapping[str, Any]) -> EmailStatusUpdate:
    """Parse the strict JSON form; unknown keys and wrong types raise ``InvalidStatus``."""
    return structure_strictly(_converter, data, EmailStatusUpdate, _invalid)


def email_status_to_json(update: EmailStatusUpdate) -> dict[str, Any]:
    """The JSON form :func:`email_status_from_json` reads back (defaults omitted)."""
    result: dict[str, Any] = _converter.unstructure(update)
    return result
