"""Batch dispatch, written once: the scheduling loop behind ``update_many``.

:func:`batch_steps` is a generator of effects — :class:`Pull` (give me the next input),
:class:`Start` (run this delivery), :class:`Wait` (wait for completions or a timeout),
:class:`Emit` (hand this receipt to the caller) — so the sync runner (threads) and the
async runner (tasks) share every rule:

- bounded memory: at most ``max_pending`` inputs are held (queued or in flight); the
  input is read only when there is room (backpressure, never unbounded read-ahead);
- bounded concurrency overall and per connection; a connection whose rate limiter has
  no slot is passed over (its waits hold no in-flight slot) while others keep going;
- updates for one message are never reordered: at most one is in flight, and a burst
  still queued behind it collapses to its final state (the others are
  ``SKIPPED_SUPERSEDED``, saving vendor budget);
- one item's failure is a ``FAILED`` receipt, never an exception.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import attrs

from msgbridge._delivery import Delivery
from msgbridge.email_status import EmailStatusUpdate
from msgbridge.errors import InvalidStatus, MessagingError, UnexpectedError
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus, Outcome, Receipt
from msgbridge.ratelimit import SlidingWindowLimiter

__all__ = ["END", "BatchItem", "Emit", "Pull", "Start", "Wait", "batch_steps", "failed_receipt"]

#: Seconds between looks at a limiter whose whole budget is in flight elsewhere.
LIMITER_POLL = 0.05

#: What a runner sends back for :class:`Pull` when the input is exhausted.
END: Any = object()

Update = MessageStatus | ConversationUpdate | EmailStatusUpdate


@attrs.define(eq=False)
class BatchItem:
    index: int
    connection: str
    update: Update
    key: tuple[str, str, str]


@attrs.frozen
class Pull:
    pass


@attrs.frozen
class Start:
    item: BatchItem
    job: Delivery
    #: Whether a rate-limit slot was already taken for the first attempt.
    reserved: bool


@attrs.frozen
class Wait:
    #: Seconds until a rate limiter frees a slot; ``None`` means "until a completion".
    timeout: float | None


@attrs.frozen
class Emit:
    receipt: Receipt


Step = Pull | Start | Wait | Emit

#: The one ``Pull`` (it carries nothing), and the wait for a completion.
PULL = Pull()
UNTIL_COMPLETION = Wait(None)


def failed_receipt(error: MessagingError, *, connection: str, update: object) -> Receipt:
    """A ``FAILED`` receipt carrying *error* (which never holds a secret)."""
    state = update.state if isinstance(update, MessageStatus) else None
    subject = (
        update.message_id
        if isinstance(update, (MessageStatus, EmailStatusUpdate))
        else update.conversation_id
        if isinstance(update, ConversationUpdate)
        else str(getattr(update, "message_id", ""))  # an IncomingMessage, or nothing
    )
    return Receipt(
        Outcome.FAILED,
        connection=connection,
        adapter=error.adapter or "",
        subject_id=subject,
        state=state,
        attempts=error.attempts or 0,
        http_status=error.http_status,
        trace_id=error.trace_id,
        detail=str(error),
        error=error,
    )


class _Queues:
    """Per-message queues and a round-robin of connections with work ready."""

    def __init__(
        self, last_applied: Callable[[str, str], DeliveryState | None] | None = None
    ) -> None:
        self.last_applied = last_applied
        self.queued: dict[tuple[str, str, str], deque[BatchItem]] = {}
        #: The item in flight for each busy key.
        self.busy: dict[tuple[str, str, str], BatchItem] = {}
        self.ready: dict[str, deque[tuple[str, str, str]]] = {}
        self.rotation: deque[str] = deque()
        self.in_flight: dict[str, int] = {}

    def add(self, item: BatchItem) -> tuple[BatchItem, Outcome] | None:
        """Queue *item*; returns an item it pushed out (and why), if any."""
        queue = self.queued.get(item.key)
        if queue:
            last = queue[-1]
            if isinstance(last.update, MessageStatus) and isinstance(item.update, MessageStatus):
                reference = self._reference_state(item)
                tail_is_stale = reference is not None and not last.update.state.may_follow(
                    reference
                )
                if tail_is_stale:
                    queue[-1] = item
                    return last, Outcome.SKIPPED_STALE
                if item.update.state.may_follow(last.update.state):
                    queue[-1] = item
                    return last, Outcome.SKIPPED_SUPERSEDED
                return item, Outcome.SKIPPED_SUPERSEDED
        if queue is None:
            queue = self.queued[item.key] = deque()
        queue.append(item)
        if item.key not in self.busy and len(queue) == 1:
            self._mark_ready(item.key)
        return None

    def _reference_state(self, item: BatchItem) -> DeliveryState | None:
        """What the queued tail must follow: the update in flight, else the applied one."""
        flying = self.busy.get(item.key)
        if flying is not None and isinstance(flying.update, MessageStatus):
            return flying.update.state
        if self.last_applied is not None and isinstance(item.update, MessageStatus):
            return self.last_applied(item.connection, item.update.message_id)
        return None

    def _mark_ready(self, key: tuple[str, str, str]) -> None:
        connection = key[0]
        keys = self.ready.get(connection)
        if keys is None:
            keys = self.ready[connection] = deque()
            self.rotation.append(connection)
        keys.append(key)

    def take(self, connection: str) -> BatchItem:
        keys = self.ready[connection]
        key = keys.popleft()
        if not keys:
            del self.ready[connection]
        else:
            self.rotation.append(connection)
        queue = self.queued[key]
        item = queue.popleft()
        if not queue:
            del self.queued[key]
        self.busy[key] = item
        self.in_flight[connection] = self.in_flight.get(connection, 0) + 1
        return item

    def finish(self, item: BatchItem) -> None:
        self.busy.pop(item.key, None)
        self.in_flight[item.connection] -= 1
        if not self.in_flight[item.connection]:
            del self.in_flight[item.connection]
        if item.key in self.queued:
            self._mark_ready(item.key)


def _is_incoming(value: Any) -> bool:
    """An :class:`~msgbridge.inbound.IncomingMessage` to publish (imported late: the
    inbound package is not needed by a bridge that only reports statuses)."""
    from msgbridge.inbound.model import IncomingMessage

    return isinstance(value, IncomingMessage)


def _key(connection: str, update: Update) -> tuple[str, str, str]:
    if isinstance(update, MessageStatus):
        return (connection, "status", update.message_id)
    if isinstance(update, EmailStatusUpdate):
        return (connection, "email", update.message_id)
    if isinstance(update, ConversationUpdate):
        return (connection, "conversation", update.conversation_id)
    # An IncomingMessage to publish (the outbox's kind "inbound"); anything else is
    # refused by the planner and only needs some key here.
    return (connection, "inbound", str(getattr(update, "message_id", "")))


def batch_steps(
    plan: Callable[[str, Update], Receipt | Delivery],
    limiter: Callable[[str], SlidingWindowLimiter | None],
    adapter_id: Callable[[str], str],
    clock: Callable[[], float],
    last_applied: Callable[[str, str], DeliveryState | None] | None = None,
    *,
    max_in_flight: int,
    per_connection: int,
    max_pending: int,
) -> Generator[Step, Any, None]:
    """The scheduling loop; see the module docstring for its rules."""
    if max_in_flight < 1 or per_connection < 1 or max_pending < max_in_flight:
        raise ValueError(
            "need max_in_flight >= 1, per_connection >= 1, max_pending >= max_in_flight"
        )
    queues = _Queues(last_applied)
    pending = 0  # queued + in flight
    in_flight = 0
    index = 0
    exhausted = False
    while True:
        while not exhausted and pending < max_pending:
            raw = yield PULL
            if raw is END:
                exhausted = True
                break
            item_index, index = index, index + 1
            if not (isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], str)):
                error = InvalidStatus(
                    f"batch item {item_index} must be a (connection, update) pair, got {raw!r}"
                )
                yield Emit(
                    attrs.evolve(
                        failed_receipt(error, connection="", update=None), index=item_index
                    )
                )
                continue
            connection, update = raw
            if not isinstance(
                update, (MessageStatus, ConversationUpdate, EmailStatusUpdate)
            ) and not _is_incoming(update):
                error = InvalidStatus(
                    f"batch item {item_index}: expected a MessageStatus, ConversationUpdate, "
                    f"EmailStatusUpdate or IncomingMessage, got {type(update).__name__}",
                    connection=connection,
                )
                yield Emit(
                    attrs.evolve(
                        failed_receipt(error, connection=connection, update=None), index=item_index
                    )
                )
                continue
            pushed_out = queues.add(
                BatchItem(item_index, connection, update, _key(connection, update))
            )
            pending += 1
            if pushed_out is not None:
                pending -= 1
                loser, why = pushed_out
                yield Emit(_skipped(loser, why, adapter_id(loser.connection)))

        wake: float | None = None
        blocked_rounds = 0
        while (
            in_flight < max_in_flight and queues.rotation and blocked_rounds < len(queues.rotation)
        ):
            connection = queues.rotation.popleft()
            if connection not in queues.ready:
                continue  # drained since it was queued in the rotation
            if queues.in_flight.get(connection, 0) >= per_connection:
                queues.rotation.append(connection)
                blocked_rounds += 1
                continue
            gate = limiter(connection)
            now = clock()
            if gate is not None:
                at = gate.available_at(now)
                if math.isinf(at):  # its budget is all in flight (maybe another caller's)
                    at = now + LIMITER_POLL
                if at > now:
                    queues.rotation.append(connection)
                    wake = at if wake is None else min(wake, at)
                    blocked_rounds += 1
                    continue
            blocked_rounds = 0
            item = queues.take(connection)
            try:
                planned = plan(item.connection, item.update)
            except MessagingError as exc:
                planned = failed_receipt(exc, connection=item.connection, update=item.update)
            if isinstance(planned, Receipt):
                queues.finish(item)
                pending -= 1
                yield Emit(_indexed(planned, item.index))
                continue
            reserved = gate.try_acquire(now) if gate is not None else False
            in_flight += 1
            yield Start(item, planned, reserved)

        if exhausted and pending == 0:
            return
        completions: list[tuple[BatchItem, Receipt | BaseException]] = yield (
            UNTIL_COMPLETION if wake is None else Wait(max(0.0, wake - clock()))
        )
        for item, outcome in completions or ():
            queues.finish(item)
            in_flight -= 1
            pending -= 1
            if isinstance(outcome, MessagingError):
                receipt = failed_receipt(outcome, connection=item.connection, update=item.update)
            elif isinstance(outcome, Exception):  # a bug below the runner: contained too
                unexpected = UnexpectedError(
                    f"delivering this update raised {type(outcome).__name__}: {outcome}"
                )
                receipt = failed_receipt(unexpected, connection=item.connection, update=item.update)
            elif isinstance(outcome, BaseException):  # KeyboardInterrupt, SystemExit
                raise outcome
            else:
                receipt = outcome
            yield Emit(_indexed(receipt, item.index))


def _indexed(receipt: Receipt, index: int) -> Receipt:
    """*receipt* with its batch position (the runners usually built it in already)."""
    return receipt if receipt.index == index else attrs.evolve(receipt, index=index)


def _skipped(item: BatchItem, outcome: Outcome, adapter: str) -> Receipt:
    update = item.update
    assert isinstance(update, MessageStatus)
    detail = (
        "the message is already further along; a later update took its place"
        if outcome is Outcome.SKIPPED_STALE
        else "a later update for this message replaced it before it was sent"
    )
    return Receipt(
        outcome,
        connection=item.connection,
        adapter=adapter,
        subject_id=update.message_id,
        state=update.state,
        detail=detail,
        index=item.index,
    )
