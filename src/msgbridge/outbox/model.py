"""What the outbox hands back: enqueue results, dead letters, counts, drain reports."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from msgbridge.inbound.model import IncomingMessage
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus

__all__ = [
    "BatchReport",
    "DeadLetter",
    "EnqueueOutcome",
    "EnqueueResult",
    "OutboxStats",
    "PendingUpdate",
    "StatsRow",
]

Update = MessageStatus | ConversationUpdate | IncomingMessage

#: ``kind`` column values.
STATUS = "status"
CONVERSATION = "conversation"
#: A contact's message to publish (:meth:`~msgbridge.outbox.Outbox.publish`).
INBOUND = "inbound"


class EnqueueOutcome(str, enum.Enum):
    """What ``enqueue`` did with one update."""

    #: A new pending row was written.
    ENQUEUED = "enqueued"
    #: A pending status for the same message was replaced by this later one.
    REPLACED = "replaced"
    #: A pending conversation update was merged with this one (later non-null fields win).
    MERGED = "merged"
    #: Identical to what is already pending: nothing changed (for a publish: the same
    #: message is already waiting to be published).
    UNCHANGED = "unchanged"
    #: Dropped: the pending status for this message is one this may not follow
    #: (e.g. ``delivered`` while ``read`` is pending).
    SUPERSEDED = "superseded"
    #: Refused: the state already applied at the vendor is one this may not follow.
    STALE = "stale"
    #: Refused: this state is the one already applied at the vendor (for a publish: a
    #: different message with the same ``message_id`` is already pending).
    DUPLICATE = "duplicate"

    @property
    def accepted(self) -> bool:
        """Whether the update is now (part of) what the outbox will deliver."""
        return self in (
            EnqueueOutcome.ENQUEUED,
            EnqueueOutcome.REPLACED,
            EnqueueOutcome.MERGED,
            EnqueueOutcome.UNCHANGED,
        )


@attrs.frozen
class EnqueueResult:
    """The outcome of one ``enqueue``; returned only once it is durable."""

    outcome: EnqueueOutcome
    connection: str
    kind: str
    subject_id: str
    #: The pending row now holding this key (``None`` when nothing is pending for it).
    id: int | None = None
    #: The pending row's version after this call (bumped by every change).
    version: int | None = None
    #: For statuses: the state that is pending now (for refusals: what refused it).
    pending_state: DeliveryState | None = None
    #: For statuses: the state last applied at the vendor, when known.
    applied_state: DeliveryState | None = None
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome.accepted


@attrs.frozen
class PendingUpdate:
    """One pending row: the final desired update for its key."""

    id: int
    connection: str
    kind: str
    subject_id: str
    state: DeliveryState | None
    update: Update | None
    version: int
    attempts: int
    created_at: float
    updated_at: float
    available_at: float
    lease_owner: str | None
    lease_until: float | None
    last_error: str | None


@attrs.frozen
class DeadLetter:
    """An update the outbox gave up on, with why."""

    id: int
    connection: str
    kind: str
    subject_id: str
    state: DeliveryState | None
    #: The update as it was stored; ``None`` if the stored form could not be read.
    update: Update | None
    payload: Mapping[str, Any]
    attempts: int
    reason: str
    error_type: str | None
    http_status: int | None
    trace_id: str | None
    created_at: float
    failed_at: float


@attrs.frozen
class StatsRow:
    """Counts for one (connection, state); conversation updates use state
    ``conversation``, publishes ``inbound`` (their kind)."""

    connection: str
    state: str
    #: Ready to send now (including rows whose lease expired).
    ready: int = 0
    #: Waiting for their retry time.
    scheduled: int = 0
    #: Leased by a worker right now.
    leased: int = 0
    #: Pending rows that have failed at least once.
    retrying: int = 0
    dead: int = 0
    #: ``status``, ``conversation`` or ``inbound`` (a publish).
    kind: str = "status"

    @property
    def pending(self) -> int:
        return self.ready + self.scheduled + self.leased


@attrs.frozen
class OutboxStats:
    rows: tuple[StatsRow, ...]
    #: Age in seconds of the oldest pending row (``None`` when nothing is pending).
    oldest_pending_age: float | None = None

    @property
    def pending(self) -> int:
        return sum(r.pending for r in self.rows)

    @property
    def dead(self) -> int:
        return sum(r.dead for r in self.rows)

    def by_connection(self) -> dict[str, dict[str, int]]:
        """``{connection: {"pending": n, "dead": n, ...}}`` summed over states."""
        result: dict[str, dict[str, int]] = {}
        for row in self.rows:
            counts = result.setdefault(
                row.connection,
                {"ready": 0, "scheduled": 0, "leased": 0, "retrying": 0, "pending": 0, "dead": 0},
            )
            counts["ready"] += row.ready
            counts["scheduled"] += row.scheduled
            counts["leased"] += row.leased
            counts["retrying"] += row.retrying
            counts["pending"] += row.pending
            counts["dead"] += row.dead
        return result


@attrs.define
class BatchReport:
    """What one or more worker batches did (``drain`` sums them)."""

    batches: int = 0
    leased: int = 0
    applied: int = 0
    skipped: int = 0
    #: Failed and rescheduled for a later attempt.
    retried: int = 0
    dead: int = 0
    #: Finished, but a newer version arrived meanwhile: released for the next batch.
    released: int = 0
    #: Rows whose lease was lost (expired and taken by another worker) before completion.
    lost: int = 0
    #: Rows not sent because the connection's lease could not be confirmed (fencing).
    fenced: int = 0

    def add(self, other: BatchReport) -> None:
        for field in attrs.fields(BatchReport):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def done(self) -> int:
        return self.applied + self.skipped + self.dead
