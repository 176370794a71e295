"""HighLevel's v3 email status: the stored email and how an update changes it.

Contract: ``PUT /conversations/messages/email/{id}/status`` in HighLevel's v3 OpenAPI
(``apps/v3/conversations-v3.json``, ``UpdateEmailMessageStatusDto``), ``Version: v3`` only.
What the emulator does, and where it had to choose:

* ``status`` is overwritten on every call; ``recipients`` are upserted by ``emailId``
  (documented). ``events`` counters are *added* to the stored ones, a ``0`` is a no-op
  (documented: "merged into existing values (additive update, not replacement)"; that
  merging means adding is our reading).
* Event inference (documented): ``clicked``/``complained``/``unsubscribed``/``replied``
  imply ``opened`` and ``delivered``; ``opened`` implies ``delivered``; ``delivered``,
  ``permanent_fail`` or ``temporary_fail`` imply ``accepted``. An implied counter is set to
  1 only when this request does not give it and the stored value is 0. Open tracking is
  assumed to be on. Inferences chain (an inferred ``delivered`` implies ``accepted``).
* The first time ``delivered``, ``opened`` or ``clicked`` becomes non-zero is recorded.
* Emails sent via LC Email or Mailgun answer 403 with the spec's own wording
  ("status updates are only supported for custom conversation provider emails").
* ``recipients[].emailId`` "must match one of the original recipients": enforced (400)
  only for emails seeded with a recipient list; the rejection's wording is ours.
* Unknown ids answer 404 ``Email message not found`` (undocumented wording), or are
  created in ``unknown_messages="create"`` mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "EMAIL_STATES",
    "EMAIL_STATUS_VERSIONS",
    "EmailChange",
    "EmailRecord",
    "apply_email_update",
    "validate_email_status_body",
]

#: ``MessageStatus`` enum of the v3 spec (the overall and per-recipient status).
EMAIL_STATES = (
    "pending",
    "scheduled",
    "sent",
    "delivered",
    "read",
    "undelivered",
    "connected",
    "failed",
    "opened",
    "clicked",
)
_STATES = frozenset(EMAIL_STATES)
#: The only ``Version`` the endpoint documents.
EMAIL_STATUS_VERSIONS = ("v3",)
_BODY_KEYS = frozenset({"status", "events", "recipients"})
_RECIPIENT_KEYS = frozenset({"emailId", "status", "failReason"})
#: Provider counters are sent "using those snake_case keys".
_COUNTER_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_ENGAGEMENT = ("clicked", "complained", "unsubscribed", "replied")
_ACCEPTANCE = ("delivered", "permanent_fail", "temporary_fail")
_TIMESTAMPED = ("delivered", "opened", "clicked")

EmailProvider = Literal["custom", "lc_email", "mailgun"]
EMAIL_PROVIDERS: tuple[EmailProvider, ...] = ("custom", "lc_email", "mailgun")
MSG_NOT_CUSTOM = "Status updates are only supported for custom conversation provider emails"
MSG_EMAIL_NOT_FOUND = "Email message not found"


@dataclass
class EmailChange:
    """One accepted update, as sent."""

    body: dict[str, Any]
    wall: float
    request_id: str


@dataclass
class EmailRecord:
    id: str
    account: str
    #: Who sent the email: only ``"custom"`` provider emails accept status updates.
    provider: EmailProvider = "custom"
    status: str | None = None
    events: dict[str, int] = field(default_factory=dict)
    #: ``emailId`` → ``{"status", "failReason"?}``.
    recipients: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The original recipients, when seeded (updates for others are refused).
    known_recipients: tuple[str, ...] | None = None
    #: Wall time of the first non-zero ``delivered`` / ``opened`` / ``clicked``.
    first_at: dict[str, float] = field(default_factory=dict)
    history: list[EmailChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "provider": self.provider,
            "status": self.status,
            "events": dict(self.events),
            "recipients": {k: dict(v) for k, v in self.recipients.items()},
            "first_at": dict(self.first_at),
            "history": [
                {"body": c.body, "wall": c.wall, "request_id": c.request_id} for c in self.history
            ],
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_email_status_body(body: dict[str, Any]) -> list[str]:
    """class-validator style problems with an ``UpdateEmailMessageStatusDto``."""
    problems = [f"property {key} should not exist" for key in body if key not in _BODY_KEYS]
    if body.get("status") not in _STATES:
        problems.append("status must be one of the following values: " + ", ".join(EMAIL_STATES))
    events = body.get("events")
    if events is not None:
        if not isinstance(events, dict):
            problems.append("nested property events must be either object or array")
        else:
            for key, value in events.items():
                if not isinstance(key, str) or not _COUNTER_KEY.match(key):
                    problems.append(f"events.{key} is not a valid counter name")
                elif not _is_int(value):
                    problems.append(f"events.{key} must be an integer number")
                elif value < 0:
                    problems.append(f"events.{key} must not be less than 0")
    recipients = body.get("recipients")
    if recipients is not None:
        if not isinstance(recipients, list):
            problems.append("recipients must be an array")
        else:
            for index, item in enumerate(recipients):
                where = f"recipients.{index}"
                if not isinstance(item, dict):
                    problems.append(f"nested property {where} must be either object or array")
                    continue
                problems.extend(
                    f"property {where}.{key} should not exist"
                    for key in item
                    if key not in _RECIPIENT_KEYS
                )
                if not isinstance(item.get("emailId"), str) or not item.get("emailId"):
                    problems.append(f"{where}.emailId must be a string")
                if item.get("status") not in _STATES:
                    problems.append(
                        f"{where}.status must be one of the following values: "
                        + ", ".join(EMAIL_STATES)
                    )
                if "failReason" in item and not isinstance(item["failReason"], str):
                    problems.append(f"{where}.failReason must be a string")
    return problems


def unknown_recipients(record: EmailRecord, body: dict[str, Any]) -> list[str]:
    """Recipients an update names that the email was not sent to (seeded lists only)."""
    if record.known_recipients is None:
        return []
    known = {r.lower() for r in record.known_recipients}
    return [
        f"recipients.{i}.emailId {item['emailId']!r} is not a recipient of this email"
        for i, item in enumerate(body.get("recipients") or ())
        if item["emailId"].lower() not in known
    ]


def apply_email_update(
    record: EmailRecord, body: dict[str, Any], *, wall: float, request_id: str
) -> None:
    """Apply a validated body: overwrite status, add counters (with inference), upsert
    recipients, record first-occurrence times."""
    record.status = body["status"]
    given = {k: v for k, v in (body.get("events") or {}).items() if v}
    stored = record.events
    for key, value in given.items():
        stored[key] = stored.get(key, 0) + value

    touched = set(given)

    def imply(key: str) -> None:
        if key not in given and not stored.get(key):
            stored[key] = 1
            touched.add(key)

    if any(k in touched for k in _ENGAGEMENT):
        imply("opened")
        imply("delivered")
    if "opened" in touched:
        imply("delivered")
    if any(k in touched for k in _ACCEPTANCE):
        imply("accepted")
    for key in _TIMESTAMPED:
        if stored.get(key) and key not in record.first_at:
            record.first_at[key] = wall
    for item in body.get("recipients") or ():
        entry = {"status": item["status"]}
        if "failReason" in item:
            entry["failReason"] = item["failReason"]
        record.recipients[item["emailId"]] = entry
    record.history.append(EmailChange(body, wall, request_id))
