"""Connections and planning: everything before and after I/O, shared by both bridges.

Planning is pure: validate the update, pick the adapter's mapping (skipping states it
cannot express), and let the adapter describe the request. What happens per message
(ordering, the guard) is :mod:`msgbridge._sequencing`'s; the retry loop is
:mod:`msgbridge._delivery`'s.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from msgbridge._batch import batch_steps
from msgbridge._delivery import Delivery, Sleep, deliver
from msgbridge._sequencing import MessagePolicy
from msgbridge.adapter import (
    Adapter,
    Fidelity,
    Operation,
    PreparedRequest,
    RequestSpec,
    ResponseView,
    resolve_base_url,
)
from msgbridge.connection import Connection
from msgbridge.email_status import EmailStatusUpdate
from msgbridge.errors import (
    ConfigurationError,
    InvalidStatus,
    MessagingError,
    RateLimited,
    UnsupportedOperation,
    UnsupportedStatus,
)
from msgbridge.guard import Guard, StateGuard
from msgbridge.model import ConversationUpdate, MessageStatus, Outcome, Receipt
from msgbridge.ratelimit import SlidingWindowLimiter
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy

__all__ = ["BoundConnection", "Planner"]

log = logging.getLogger("msgbridge")


@attrs.frozen
class BoundConnection:
    """A connection with its adapter, parsed settings, base URL and rate limiter,
    checked once."""

    connection: Connection
    adapter: Adapter[Any]
    settings: Any
    limiter: SlidingWindowLimiter | None
    #: The checked base URL without its trailing ``/``: request paths are appended to it.
    base_url: str = ""

    @property
    def name(self) -> str:
        return self.connection.name


class Planner:
    """Everything before and after I/O, shared by both bridges."""

    def __init__(
        self,
        connections: Iterable[Connection],
        *,
        registry: AdapterRegistry | None,
        retry: RetryPolicy | None,
        guard: Guard | bool | None,
        clock: Callable[[], float],
        rng: random.Random | None,
        rate_limits: bool,
    ) -> None:
        self.rate_limits = rate_limits
        self.registry = registry if registry is not None else AdapterRegistry.from_entry_points()
        self.retry = retry or RetryPolicy()
        if guard is True:
            guard = StateGuard()
        elif guard is False or guard is None:
            guard = None
        elif not isinstance(guard, Guard):
            raise ConfigurationError(
                f"guard must be True, False or a msgbridge Guard (check/record/last/forget), "
                f"got {type(guard).__name__}",
                key="guard",
            )
        self.guard: Guard | None = guard
        #: Sequencing and the guard, for every entry point of the bridge.
        self.policy = MessagePolicy(guard)
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._connections: dict[str, BoundConnection] = {}
        self._lock = threading.Lock()
        for connection in connections:
            self.add_connection(connection)

    # -- connections ----------------------------------------------------------------

    def add_connection(self, connection: Connection) -> BoundConnection:
        """Check and add a connection (at runtime too); raises before any I/O."""
        if not isinstance(connection, Connection):
            raise ConfigurationError(
                f"expected a msgbridge.Connection, got {type(connection).__name__}"
            )
        adapter = self.registry.get(connection.adapter)
        settings = adapter.parse_settings(connection.settings)
        base_url = resolve_base_url(adapter, settings, connection=connection.name)
        bound = BoundConnection(
            connection, adapter, settings, self._limiter_for(connection, adapter), base_url
        )
        with self._lock:
            if connection.name in self._connections:
                raise ConfigurationError(
                    f"a connection named {connection.name!r} already exists; "
                    "remove it first or pick another name",
                    connection=connection.name,
                )
            self._connections[connection.name] = bound
        return bound

    def _limiter_for(
        self, connection: Connection, adapter: Adapter[Any]
    ) -> SlidingWindowLimiter | None:
        if not self.rate_limits:
            return None
        if connection.rate_limit is not None:
            requests, per_seconds = connection.rate_limit
        else:
            budget = adapter.defaults.rate_budget
            requests, per_seconds = budget.requests, budget.per_seconds
        try:
            return SlidingWindowLimiter(requests, per_seconds)
        except (ValueError, ConfigurationError) as exc:
            where = (
                "rate_limit"
                if connection.rate_limit is not None
                else (f"adapter {adapter.id!r}'s default rate budget")
            )
            message = exc.message if isinstance(exc, ConfigurationError) else str(exc)
            raise ConfigurationError(
                f"{where} of connection {connection.name!r}: {message}",
                key="rate_limit",
                connection=connection.name,
            ) from None

    def remove_connection(self, name: str) -> None:
        with self._lock:
            self._connections.pop(name, None)
        if self.guard is not None:
            self.guard.forget(name)

    def connection(self, name: str) -> BoundConnection:
        try:
            return self._connections[name]
        except KeyError:
            known = ", ".join(sorted(self._connections)[:20]) or "none"
            raise ConfigurationError(
                f"unknown connection {name!r}; configured: {known}", connection=name
            ) from None

    @property
    def connections(self) -> Mapping[str, BoundConnection]:
        return dict(self._connections)

    # -- planning (pure) ------------------------------------------------------------

    def plan_status(self, name: str, update: MessageStatus) -> Receipt | Delivery:
        bound = self.connection(name)
        adapter = bound.adapter
        if not isinstance(update, MessageStatus):
            raise InvalidStatus(
                f"expected a MessageStatus, got {type(update).__name__}", connection=name
            )
        if Operation.UPDATE_STATUS not in adapter.capabilities.operations:
            raise UnsupportedOperation(
                f"adapter {adapter.id!r} cannot update message statuses",
                connection=name,
                adapter=adapter.id,
            )
        mapping = adapter.capabilities.mapping(update.state)

        if mapping.fidelity is Fidelity.NONE:
            if bound.connection.strict:
                raise UnsupportedStatus(
                    f"adapter {adapter.id!r} has no value for state {update.state.value!r} "
                    "and the connection is strict",
                    connection=name,
                    adapter=adapter.id,
                    subject_id=update.message_id,
                )
            return Receipt(
                Outcome.SKIPPED_UNSUPPORTED,
                connection=name,
                adapter=adapter.id,
                subject_id=update.message_id,
                state=update.state,
                detail=f"{adapter.id} has no value for {update.state.value!r}",
            )
        vendor_value = mapping.vendor_value
        assert vendor_value is not None
        request, prepared = _prepared(bound, adapter.prepare_status, update, bound.settings)

        job = Delivery(
            connection=name,
            adapter=adapter,
            request=request,
            prepared=prepared,
            credential=bound.connection.credentials,
            key=(name, "status", update.message_id),
            state=update.state,
            vendor_value=vendor_value,
            settings=bound.settings,
        )
        # An early look saves a rate-limit slot; the guard only moves forward, so a
        # stale update now is stale later. The deciding look is inside the message's turn.
        return self.policy.stale(job) or job

    def plan_conversation(self, name: str, update: ConversationUpdate) -> Delivery:
        return self._plan_unguarded(
            name,
            update,
            ConversationUpdate,
            Operation.UPDATE_CONVERSATION,
            "update conversations",
            "conversation",
            lambda adapter, settings: adapter.prepare_conversation(update, settings),
        )

    def plan_email_status(self, name: str, update: EmailStatusUpdate) -> Delivery:
        """Like a conversation update: no state guard (the vendor overwrites the status
        and adds the counters), one at a time per email."""
        return self._plan_unguarded(
            name,
            update,
            EmailStatusUpdate,
            Operation.UPDATE_EMAIL_STATUS,
            "update email statuses",
            "email",
            lambda adapter, settings: adapter.prepare_email_status(update, settings),
        )

    def plan_inbound(self, name: str, message: Any) -> Delivery:
        """A contact's message to publish: guard-free (it is not a status), and keyed by
        the message's own id so two publishes of one message go one after the other."""
        from msgbridge.inbound.model import IncomingMessage

        return self._plan_unguarded(
            name,
            message,
            IncomingMessage,
            Operation.PUBLISH_INBOUND,
            "publish incoming messages",
            "inbound",
            lambda adapter, settings: adapter.prepare_inbound(message, settings),
        )

    def _plan_unguarded(
        self,
        name: str,
        update: Any,
        expected: type,
        operation: Operation,
        what: str,
        kind: str,
        prepare: Callable[[Adapter[Any], Any], RequestSpec],
    ) -> Delivery:
        """Plan an operation the state guard does not judge: check the type and the
        adapter's capability, let it prepare, key the delivery by kind and subject."""
        bound = self.connection(name)
        adapter = bound.adapter
        if not isinstance(update, expected):
            raise InvalidStatus(
                f"expected {'an' if expected.__name__[0] in 'AEIOU' else 'a'} "
                f"{expected.__name__}, got {type(update).__name__}",
                connection=name,
            )
        item: Any = update  # checked above; conversations go by conversation_id
        subject: str = (
            item.message_id
            if kind == "inbound"
            else getattr(item, "conversation_id", None) or item.message_id
        )
        if operation not in adapter.capabilities.operations:
            raise UnsupportedOperation(
                f"adapter {adapter.id!r} cannot {what}",
                connection=name,
                adapter=adapter.id,
                subject_id=subject,
            )
        request, prepared = _prepared(bound, prepare, adapter, bound.settings)
        return Delivery(
            connection=name,
            adapter=adapter,
            request=request,
            prepared=prepared,
            credential=bound.connection.credentials,
            key=(name, kind, subject),
            settings=bound.settings,
        )

    def plan(
        self, name: str, update: MessageStatus | ConversationUpdate | EmailStatusUpdate
    ) -> Receipt | Delivery:
        if isinstance(update, ConversationUpdate):
            return self.plan_conversation(name, update)
        if isinstance(update, EmailStatusUpdate):
            return self.plan_email_status(name, update)
        if not isinstance(update, MessageStatus) and _is_incoming(update):
            return self.plan_inbound(name, update)  # what the outbox publishes
        return self.plan_status(name, update)

    def steps(self, job: Delivery, index: int = -1) -> Any:
        """The delivery loop for *job*; *index* (a batch position, ``-1`` for none) goes
        into its receipt."""
        return deliver(
            job,
            index=None if index < 0 else index,
            policy=self.retry,
            clock=self.clock,
            rng=self.rng,
            notify=self.registry.notify if self.registry.has_observers else None,
            decorate=self.registry.headers_for if self.registry.has_header_hooks else None,
        )

    def batch(self, max_in_flight: int, per_connection: int, max_pending: int | None) -> Any:
        for name, value in (("max_in_flight", max_in_flight), ("per_connection", per_connection)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"{name} must be an integer of at least 1, got {value!r}", key=name
                )
        if max_pending is not None and (
            isinstance(max_pending, bool)
            or not isinstance(max_pending, int)
            or max_pending < max_in_flight
        ):
            raise ConfigurationError(
                f"max_pending must be an integer of at least max_in_flight ({max_in_flight}), "
                f"got {max_pending!r}",
                key="max_pending",
            )
        return batch_steps(
            self.plan,
            self.limiter,
            lambda name: self._connections[name].adapter.id if name in self._connections else "",
            self.clock,
            self.guard.last if self.guard is not None else None,
            max_in_flight=max_in_flight,
            per_connection=per_connection,
            max_pending=max_pending or max(1024, 8 * max_in_flight),
        )

    def limiter(self, name: str) -> SlidingWindowLimiter | None:
        bound = self._connections.get(name)
        return bound.limiter if bound is not None else None

    # -- what both runners do around each step ----------------------------------------

    def wait_before_send(self, job: Delivery) -> float:
        """Take a rate-limit slot for this attempt: 0.0 when taken, else how long to wait
        before asking again."""
        gate = self.limiter(job.connection)
        return 0.0 if gate is None else gate.acquire(self.clock())

    def give_back(self, job: Delivery) -> None:
        """A slot was taken for a request that will not be sent (skipped, fenced)."""
        gate = self.limiter(job.connection)
        if gate is not None:
            gate.release(self.clock())

    def after_reply(self, job: Delivery, reply: ResponseView | MessagingError | None) -> None:
        """Give the slot back (it counts for one more window) and learn from the vendor's
        rate-limit headers. ``reply`` is ``None`` when the send itself blew up."""
        gate = self.limiter(job.connection)
        if gate is None:
            return
        now = self.clock()
        gate.release(now)
        if isinstance(reply, ResponseView):
            try:
                feedback = job.adapter.rate_limit_feedback(reply)
            except Exception:  # an adapter bug must not lose the answer
                log.exception(
                    "msgbridge: adapter %r failed to read rate-limit headers", job.adapter.id
                )
                feedback = None
            if feedback is not None:
                if reply.header("retry-after") is not None:
                    # The vendor's explicit wait wins over a window guessed from headers.
                    feedback = attrs.evolve(feedback, remaining=None)
                gate.learn(feedback, now)

    def before_sleep(self, job: Delivery, step: Sleep) -> None:
        """A 429 pauses the whole connection, not just this request."""
        gate = self.limiter(job.connection)
        if gate is not None and isinstance(step.reason, RateLimited):
            gate.pause_until(self.clock() + step.seconds)


def _is_incoming(value: object) -> bool:
    from msgbridge.inbound.model import IncomingMessage

    return isinstance(value, IncomingMessage)


def _prepared(
    bound: BoundConnection, prepare: Callable[..., RequestSpec], *args: Any
) -> tuple[RequestSpec, PreparedRequest]:
    """The adapter's request, and its bytes joined to the connection's base URL; its
    errors (an unsafe path included) get their context, its bugs a typed error."""
    adapter, name = bound.adapter, bound.connection.name
    try:
        request = prepare(*args)
        return request, request.prepare(bound.base_url)
    except MessagingError as exc:
        raise exc.with_context(connection=name, adapter=adapter.id) from None
    except Exception as exc:  # an adapter bug still ends in a typed error
        raise ConfigurationError(
            f"adapter {adapter.id!r} failed to prepare the request: {type(exc).__name__}: {exc}",
            connection=name,
            adapter=adapter.id,
        ) from exc
