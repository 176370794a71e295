"""The email step of ``msgbridge demo``: an email's delivery status, checked end to end.

For every emulated vendor whose adapter offers ``Operation.UPDATE_EMAIL_STATUS`` and
whose emulation stores emails (:class:`EmailStatusVendor`), the step seeds two emails in
an account of its own: one sent by a custom conversation provider, which takes a
realistic run of provider callbacks (delivered, opened by one recipient, bounced for
another, clicked), and one sent via Mailgun, which the vendor refuses (403). It pushes
them through ``Bridge.update_many`` and then compares the emulator's stored status,
counters and recipients with what the vendor documents: status overwritten, counters
added (``opened`` implies ``delivered``, ``delivered`` implies ``accepted``), recipients
upserted. Faults are off during the step: counters are additive at the vendor, so an
update retried after a lost answer would count twice (see the adapter's page).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from msgbridge.adapter import Operation
from msgbridge.bridge import Bridge
from msgbridge.connection import Connection
from msgbridge.email_status import EmailEvents, EmailRecipientStatus, EmailStatusUpdate
from msgbridge.errors import PermissionDenied
from msgbridge.model import Outcome
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy

if TYPE_CHECKING:
    from msgbridge.emulator import Emulator

__all__ = ["EmailStatusVendor", "EmailStepResult", "run_email_step"]

ACCOUNT = "email-demo-location"
RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.2)

#: The provider callbacks for the custom-provider email, in order.
CALLBACKS = (
    EmailStatusUpdate(
        "{id}",
        "delivered",
        events=EmailEvents(delivered=1),
        recipients=[
            EmailRecipientStatus("ana@example.com", "delivered"),
            EmailRecipientStatus("ben@example.com", "delivered"),
        ],
    ),
    EmailStatusUpdate(
        "{id}",
        "opened",
        events=EmailEvents(opened=1, provider={"permanent_fail": 1}),
        recipients=[
            EmailRecipientStatus("ana@example.com", "opened"),
            EmailRecipientStatus("cy@example.com", "failed", fail_reason="Mailbox not found"),
        ],
    ),
    EmailStatusUpdate("{id}", "clicked", events=EmailEvents(clicked=2, opened=0)),
)
#: What the vendor documents the email then holds.
EXPECTED: dict[str, Any] = {
    "status": "clicked",
    "events": {"delivered": 1, "accepted": 1, "opened": 1, "permanent_fail": 1, "clicked": 2},
    "recipients": {
        "ana@example.com": {"status": "opened"},
        "ben@example.com": {"status": "delivered"},
        "cy@example.com": {"status": "failed", "failReason": "Mailbox not found"},
    },
}


@runtime_checkable
class EmailStatusVendor(Protocol):
    """An emulated vendor that stores emails and their delivery status."""

    def seed_email(
        self,
        email_id: str,
        *,
        account: str,
        provider: Any = ...,
        status: str | None = ...,
        recipients: tuple[str, ...] | None = ...,
    ) -> dict[str, Any]: ...

    def email(self, email_id: str) -> dict[str, Any] | None: ...


@attrs.define
class EmailStepResult:
    """How the email step went, per vendor."""

    vendors: list[str] = attrs.field(factory=list)
    emails: int = 0
    problems: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "vendors": self.vendors,
            "emails": self.emails,
            "problems": self.problems,
        }

    def summary(self) -> str:
        if not self.vendors:
            return "email status: no emulated vendor offers it"
        verdict = "OK" if self.ok else f"FAILED ({len(self.problems)} problems)"
        return (
            f"email status {verdict}: {self.emails} emails on {', '.join(self.vendors)} "
            "(events, recipients; Mailgun email refused with 403)"
        )


def _updates(email_id: str, mailgun_id: str) -> list[EmailStatusUpdate]:
    updates = [attrs.evolve(u, message_id=email_id) for u in CALLBACKS]
    updates.append(EmailStatusUpdate(mailgun_id, "delivered"))
    return updates


def run_email_step(
    emu: Emulator, registry: AdapterRegistry, vendors: Iterable[str]
) -> EmailStepResult:
    """Drive the email step on *vendors* (those without the operation are left out)."""
    result = EmailStepResult()
    emu.faults.reset()
    for name in vendors:
        emulated = emu.vendor(name)
        if name not in registry or not isinstance(emulated, EmailStatusVendor):
            continue
        adapter = registry.get(name)
        if Operation.UPDATE_EMAIL_STATUS not in adapter.capabilities.operations:
            continue
        result.vendors.append(name)
        email_id, mailgun_id = f"{name}-email-1", f"{name}-email-2"
        emulated.seed_email(
            email_id,
            account=ACCOUNT,
            recipients=("ana@example.com", "ben@example.com", "cy@example.com"),
        )
        emulated.seed_email(mailgun_id, account=ACCOUNT, provider="mailgun")
        result.emails += 2
        token = secrets.token_urlsafe(18)  # never printed
        emu.add_token(name, token, account=ACCOUNT)
        settings, credentials = emu.vendor(name).demo_connection(emu.base_url(name), ACCOUNT, token)
        connection = Connection(name, adapter=name, credentials=credentials, settings=settings)
        with Bridge([connection], registry=registry, retry=RETRY) as bridge:
            items = [(name, u) for u in _updates(email_id, mailgun_id)]
            # One at a time per email, in order: the vendor overwrites the status.
            receipts = list(bridge.update_many(items, per_connection=1, max_in_flight=1))
        for receipt in receipts:
            refused = receipt.subject_id == mailgun_id
            if refused and not isinstance(receipt.error, PermissionDenied):
                result.problems.append(f"{name} {mailgun_id}: expected 403, got {receipt.detail}")
            if not refused and receipt.outcome is not Outcome.APPLIED:
                result.problems.append(f"{name} {email_id}: {receipt.detail}")
        stored = emulated.email(email_id) or {}
        for key, expected in EXPECTED.items():
            if stored.get(key) != expected:
                result.problems.append(
                    f"{name} {email_id} {key}: expected {expected!r}, emulator has "
                    f"{stored.get(key)!r}"
                )
    return result
