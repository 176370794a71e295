"""``Bridge`` and ``AsyncBridge``: the caller's entry points.

Both share :class:`_Planner` (validation, state guard, mapping policy, adapter
``prepare``; all pure) and the delivery loop in :mod:`msgbridge.delivery`; they differ
only in how they send and sleep.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
import warnings
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from types import TracebackType
from typing import Any

import attrs
import httpx

from msgbridge.adapter import Adapter, Fidelity, Operation, ResponseView
from msgbridge.batch import END, BatchItem, Emit, Pull, Start, Wait, batch_steps
from msgbridge.connection import Connection
from msgbridge.delivery import Delivery, Send, Sleep, deliver
from msgbridge.errors import (
    ConfigurationError,
    InvalidStatus,
    MessagingError,
    RateLimited,
    UnsupportedOperation,
    UnsupportedStatus,
)
from msgbridge.guard import Guard, StateGuard
from msgbridge.keyed_locks import AsyncKeyedLocks, KeyedLocks
from msgbridge.model import ConversationUpdate, MessageStatus, Outcome, Receipt
from msgbridge.ratelimit import SlidingWindowLimiter
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy
from msgbridge.senders import AsyncHttpxSender, AsyncSender, HttpxSender, SyncSender

__all__ = ["AsyncBridge", "BoundConnection", "Bridge"]


#: What ``update_many`` takes: a connection name and an update.
BatchInput = tuple[str, MessageStatus | ConversationUpdate]


@attrs.frozen
class BoundConnection:
    """A connection with its adapter, parsed settings and rate limiter, checked once."""

    connection: Connection
    adapter: Adapter[Any]
    settings: Any
    limiter: SlidingWindowLimiter | None

    @property
    def name(self) -> str:
        return self.connection.name


class _Planner:
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
        self.guard: Guard | None = (
            StateGuard() if guard is True else None if guard is False or guard is None else guard
        )
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
        bound = BoundConnection(
            connection, adapter, settings, self._limiter_for(connection, adapter)
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
        except ValueError as exc:
            raise ConfigurationError(
                f"rate_limit of connection {connection.name!r}: {exc}", key="rate_limit"
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

        def skipped(outcome: Outcome, detail: str, vendor_value: str | None = None) -> Receipt:
            return Receipt(
                outcome,
                connection=name,
                adapter=adapter.id,
                subject_id=update.message_id,
                state=update.state,
                vendor_value=vendor_value,
                detail=detail,
            )

        if mapping.fidelity is Fidelity.NONE:
            if bound.connection.strict:
                raise UnsupportedStatus(
                    f"adapter {adapter.id!r} has no value for state {update.state.value!r} "
                    "and the connection is strict",
                    connection=name,
                    adapter=adapter.id,
                    subject_id=update.message_id,
                )
            return skipped(
                Outcome.SKIPPED_UNSUPPORTED, f"{adapter.id} has no value for {update.state.value!r}"
            )
        vendor_value = mapping.vendor_value
        assert vendor_value is not None
        guard = self.guard
        if guard is not None:
            verdict = guard.check(name, update.message_id, update.state, vendor_value)
            if verdict is not None:
                last = guard.last(name, update.message_id)
                if verdict is Outcome.SKIPPED_DUPLICATE and last is not update.state:
                    # Same vendor value but further along (HubSpot DELIVERED after SENT):
                    # remember it, so a later FAILED is recognised as stale.
                    guard.record(name, update.message_id, update.state, vendor_value)
                return skipped(
                    verdict,
                    f"last applied state is {last.value if last else 'unknown'!r}",
                    vendor_value,
                )
        try:
            request = adapter.prepare_status(update, bound.settings)
        except MessagingError as exc:
            raise exc.with_context(connection=name, adapter=adapter.id) from None
        except Exception as exc:  # an adapter bug still ends in a typed error
            raise ConfigurationError(
                f"adapter {adapter.id!r} failed to prepare the request: "
                f"{type(exc).__name__}: {exc}",
                connection=name,
                adapter=adapter.id,
            ) from exc

        def applied(receipt: Receipt) -> None:
            if guard is not None:
                guard.record(name, update.message_id, update.state, vendor_value)

        return Delivery(
            connection=name,
            adapter=adapter,
            request=request,
            state=update.state,
            vendor_value=vendor_value,
            on_applied=applied,
        )

    def plan_conversation(self, name: str, update: ConversationUpdate) -> Delivery:
        bound = self.connection(name)
        adapter = bound.adapter
        if not isinstance(update, ConversationUpdate):
            raise InvalidStatus(
                f"expected a ConversationUpdate, got {type(update).__name__}", connection=name
            )
        if Operation.UPDATE_CONVERSATION not in adapter.capabilities.operations:
            raise UnsupportedOperation(
                f"adapter {adapter.id!r} cannot update conversations",
                connection=name,
                adapter=adapter.id,
                subject_id=update.conversation_id,
            )
        try:
            request = adapter.prepare_conversation(update, bound.settings)
        except MessagingError as exc:
            raise exc.with_context(connection=name, adapter=adapter.id) from None
        except Exception as exc:  # an adapter bug still ends in a typed error
            raise ConfigurationError(
                f"adapter {adapter.id!r} failed to prepare the request: "
                f"{type(exc).__name__}: {exc}",
                connection=name,
                adapter=adapter.id,
            ) from exc
        return Delivery(connection=name, adapter=adapter, request=request)

    def plan(self, name: str, update: MessageStatus | ConversationUpdate) -> Receipt | Delivery:
        if isinstance(update, ConversationUpdate):
            return self.plan_conversation(name, update)
        return self.plan_status(name, update)

    def steps(self, job: Delivery) -> Any:
        return deliver(
            job,
            policy=self.retry,
            clock=self.clock,
            rng=self.rng,
            notify=self.registry.notify if self.registry.has_observers else None,
        )

    def batch(self, max_in_flight: int, per_connection: int, max_pending: int | None) -> Any:
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

    def after_reply(self, job: Delivery, reply: ResponseView | MessagingError | None) -> None:
        """Give the slot back (it counts for one more window) and learn from the vendor's
        rate-limit headers. ``reply`` is ``None`` when the send itself blew up."""
        gate = self.limiter(job.connection)
        if gate is None:
            return
        now = self.clock()
        gate.release(now)
        if isinstance(reply, ResponseView):
            feedback = job.adapter.rate_limit_feedback(reply)
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

    def credentials(self, job: Delivery) -> httpx.Auth:
        return self.connection(job.connection).connection.credentials


class _BridgeBase:
    """Connection management shared by both bridges."""

    _planner: _Planner
    _closed: bool

    @property
    def registry(self) -> AdapterRegistry:
        return self._planner.registry

    def add_connection(self, connection: Connection) -> None:
        """Add a connection at runtime; checked (adapter, settings) before any I/O."""
        self._planner.add_connection(connection)

    def remove_connection(self, name: str) -> None:
        self._planner.remove_connection(name)

    @property
    def connections(self) -> Mapping[str, BoundConnection]:
        return self._planner.connections

    @property
    def guard(self) -> Guard | None:
        """The state guard in use (``None`` when disabled)."""
        return self._planner.guard

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy every delivery follows."""
        return self._planner.retry

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} is closed")

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            warnings.warn(
                f"{type(self).__name__} was not closed; use it as a context manager",
                ResourceWarning,
                stacklevel=1,
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} connections={len(self._planner.connections)}>"


class Bridge(_BridgeBase):
    """Send status updates synchronously. Thread-safe; use as a context manager.

    ``http_client`` is an optional caller-owned ``httpx.Client`` (left open on close).
    ``clock`` and ``sleep`` are injectable so retry tests run instantly.
    """

    def __init__(
        self,
        connections: Iterable[Connection] = (),
        *,
        registry: AdapterRegistry | None = None,
        http_client: httpx.Client | None = None,
        sender: SyncSender | None = None,
        retry: RetryPolicy | None = None,
        guard: Guard | bool | None = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        rate_limits: bool = True,
    ) -> None:
        self._planner = _Planner(
            connections,
            registry=registry,
            retry=retry,
            guard=guard,
            clock=clock,
            rng=rng,
            rate_limits=rate_limits,
        )
        self._sender: SyncSender = sender or HttpxSender(http_client)
        self._message_locks = KeyedLocks()
        self._sleep = sleep
        self._closed = False

    def update_status(self, connection: str, status: MessageStatus) -> Receipt:
        """Apply *status*; returns the receipt or raises the typed error.

        Concurrent calls for one message are applied one after the other, in call order.
        """
        self._check_open()
        key = (connection, getattr(status, "message_id", None))
        with self._message_locks.hold(key):
            plan = self._planner.plan_status(connection, status)
            return plan if isinstance(plan, Receipt) else self._run(plan)

    def update_conversation(self, connection: str, update: ConversationUpdate) -> Receipt:
        return self._run(self._planner.plan_conversation(connection, update))

    def update_many(
        self,
        items: Iterable[BatchInput],
        *,
        max_in_flight: int = 32,
        per_connection: int = 8,
        max_pending: int | None = None,
    ) -> Iterator[Receipt]:
        """Apply many updates concurrently; yields receipts in completion order.

        Each receipt's ``index`` is the position of its input. One item's failure is a
        ``FAILED`` receipt, never an exception. Input is read lazily (backpressure).
        """
        self._check_open()
        planner = self._planner
        steps = planner.batch(max_in_flight, per_connection, max_pending)
        source = iter(items)
        running: dict[concurrent.futures.Future[Receipt], BatchItem] = {}
        with concurrent.futures.ThreadPoolExecutor(max_in_flight, "msgbridge") as pool:
            try:
                reply: Any = None
                while True:
                    step = steps.send(reply)
                    reply = None
                    if isinstance(step, Pull):
                        reply = next(source, END)
                    elif isinstance(step, Start):
                        running[pool.submit(self._run, step.job, step.reserved)] = step.item
                    elif isinstance(step, Emit):
                        yield step.receipt
                    elif isinstance(step, Wait):
                        if running:
                            done, _ = concurrent.futures.wait(
                                running, step.timeout, concurrent.futures.FIRST_COMPLETED
                            )
                        else:
                            self._sleep(step.timeout or 0.0)
                            done = set()
                        reply = [(running.pop(f), _outcome(f.exception(), f)) for f in done]
            except StopIteration:
                return
            finally:
                for future in running:
                    future.cancel()

    def _run(self, job: Delivery, reserved: bool = False) -> Receipt:
        self._check_open()
        planner = self._planner
        auth = planner.credentials(job)
        steps = planner.steps(job)
        try:
            step = next(steps)
            while True:
                if isinstance(step, Send):
                    if not reserved:
                        while (wait := planner.wait_before_send(job)) > 0:
                            self._sleep(wait)
                    reserved = False
                    reply: ResponseView | MessagingError | None = None
                    try:
                        reply = self._sender.send(step.request, auth)
                    except MessagingError as exc:  # e.g. a rejected token refresh
                        reply = exc
                    finally:
                        planner.after_reply(job, reply)
                    step = steps.send(reply)
                else:
                    planner.before_sleep(job, step)
                    self._sleep(step.seconds)
                    step = steps.send(None)
        except StopIteration as done:
            receipt: Receipt = done.value
            return receipt

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sender.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncBridge(_BridgeBase):
    """Send status updates from asyncio. Use with ``async with``; one event loop only.

    ``http_client`` is an optional caller-owned ``httpx.AsyncClient``; ``sender`` swaps
    the HTTP layer (e.g. the fast aiohttp sender).
    """

    def __init__(
        self,
        connections: Iterable[Connection] = (),
        *,
        registry: AdapterRegistry | None = None,
        http_client: httpx.AsyncClient | None = None,
        sender: AsyncSender | None = None,
        retry: RetryPolicy | None = None,
        guard: Guard | bool | None = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        rate_limits: bool = True,
    ) -> None:
        self._planner = _Planner(
            connections,
            registry=registry,
            retry=retry,
            guard=guard,
            clock=clock,
            rng=rng,
            rate_limits=rate_limits,
        )
        self._sender: AsyncSender = sender or AsyncHttpxSender(http_client)
        self._message_locks = AsyncKeyedLocks()
        self._sleep = sleep or asyncio.sleep
        self._closed = False

    async def update_status(self, connection: str, status: MessageStatus) -> Receipt:
        """Apply *status*; concurrent calls for one message go one after the other."""
        self._check_open()
        key = (connection, getattr(status, "message_id", None))
        async with self._message_locks.hold(key):
            plan = self._planner.plan_status(connection, status)
            return plan if isinstance(plan, Receipt) else await self._run(plan)

    async def update_conversation(self, connection: str, update: ConversationUpdate) -> Receipt:
        return await self._run(self._planner.plan_conversation(connection, update))

    async def update_many(
        self,
        items: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        max_in_flight: int = 64,
        per_connection: int = 8,
        max_pending: int | None = None,
    ) -> AsyncIterator[Receipt]:
        """Apply many updates concurrently; yields receipts in completion order.

        Takes an iterable or an async iterable. Each receipt's ``index`` is the position
        of its input. One item's failure is a ``FAILED`` receipt, never an exception.
        """
        self._check_open()
        steps = self._planner.batch(max_in_flight, per_connection, max_pending)
        pull = _puller(items)
        running: dict[asyncio.Task[Receipt], BatchItem] = {}
        # Finished tasks announce themselves here: O(1) per completion, where
        # asyncio.wait() would re-arm a callback on every running task each time.
        finished: asyncio.Queue[asyncio.Task[Receipt]] = asyncio.Queue()
        try:
            reply: Any = None
            while True:
                step = steps.send(reply)
                reply = None
                if isinstance(step, Pull):
                    reply = await pull()
                elif isinstance(step, Start):
                    task = asyncio.ensure_future(self._run(step.job, step.reserved))
                    task.add_done_callback(finished.put_nowait)
                    running[task] = step.item
                elif isinstance(step, Emit):
                    yield step.receipt
                elif isinstance(step, Wait):
                    reply = await self._completions(running, finished, step.timeout)
        except StopIteration:
            return
        finally:
            for task in running:
                task.cancel()

    async def _completions(
        self,
        running: dict[asyncio.Task[Receipt], BatchItem],
        finished: asyncio.Queue[asyncio.Task[Receipt]],
        timeout: float | None,
    ) -> list[tuple[BatchItem, Receipt | BaseException]]:
        """Wait for at least one finished delivery (or the timeout); take all that are."""
        if not running:
            await self._sleep(timeout or 0.0)
            return []
        done: list[asyncio.Task[Receipt]] = []
        if finished.empty():
            if timeout is None:
                done.append(await finished.get())  # no timer task on the hot path
            else:
                try:
                    done.append(await asyncio.wait_for(finished.get(), timeout))
                except asyncio.TimeoutError:
                    return []
        while not finished.empty():
            done.append(finished.get_nowait())
        return [(running.pop(t), _outcome(t.exception(), t)) for t in done if t in running]

    async def _run(self, job: Delivery, reserved: bool = False) -> Receipt:
        self._check_open()
        planner = self._planner
        auth = planner.credentials(job)
        steps = planner.steps(job)
        try:
            step = next(steps)
            while True:
                if isinstance(step, Send):
                    if not reserved:
                        while (wait := planner.wait_before_send(job)) > 0:
                            await self._sleep(wait)
                    reserved = False
                    reply: ResponseView | MessagingError | None = None
                    try:
                        reply = await self._sender.send(step.request, auth)
                    except MessagingError as exc:
                        reply = exc
                    finally:
                        planner.after_reply(job, reply)
                    step = steps.send(reply)
                else:
                    planner.before_sleep(job, step)
                    await self._sleep(step.seconds)
                    step = steps.send(None)
        except StopIteration as done:
            receipt: Receipt = done.value
            return receipt

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._sender.aclose()

    async def __aenter__(self) -> AsyncBridge:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _outcome(
    error: BaseException | None, done: concurrent.futures.Future[Receipt] | asyncio.Task[Receipt]
) -> Receipt | BaseException:
    return error if error is not None else done.result()


def _puller(
    items: Iterable[BatchInput] | AsyncIterable[BatchInput],
) -> Callable[[], Awaitable[Any]]:
    """One awaitable "next item or END" over a sync or async iterable."""
    if isinstance(items, AsyncIterable):
        iterator = aiter(items)

        async def pull_async() -> Any:
            return await anext(iterator, END)

        return pull_async
    sync_iterator = iter(items)

    async def pull_sync() -> Any:
        return next(sync_iterator, END)

    return pull_sync
