"""``Bridge`` and ``AsyncBridge``: the caller's entry points.

Both plan with :class:`msgbridge._planner.Planner` (pure), run every delivery inside
its message's turn (:mod:`msgbridge._sequencing`: ordering and the guard, whatever the
entry point) and drive the one delivery loop of :mod:`msgbridge._delivery`; they differ
only in how they send, sleep and wait.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import time
import warnings
from collections import deque
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
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from msgbridge._batch import END, BatchItem, Emit, Pull, Start, Wait
from msgbridge._delivery import Delivery, Hold, Send, Sleep, unexpected
from msgbridge._planner import BoundConnection, Planner
from msgbridge.adapter import PreparedRequest, ResponseView
from msgbridge.auth import RefreshLock
from msgbridge.connection import Connection
from msgbridge.email_status import EmailStatusUpdate
from msgbridge.errors import ConfigurationError, MessagingError
from msgbridge.guard import Guard
from msgbridge.model import ConversationUpdate, MessageStatus, Receipt
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy
from msgbridge.senders import AsyncHttpxSender, AsyncSender, HttpxSender, SyncSender

if TYPE_CHECKING:
    from msgbridge.inbound.model import IncomingMessage

__all__ = ["AsyncBridge", "BoundConnection", "Bridge", "Fence", "Unsettled"]

log = logging.getLogger("msgbridge")

#: What ``update_many`` takes: a connection name and an update (or an incoming message
#: to publish, as the outbox does).
BatchInput = tuple[str, "MessageStatus | ConversationUpdate | EmailStatusUpdate | IncomingMessage"]

#: Called with a connection name right before every HTTP attempt for it; raising
#: :class:`~msgbridge.errors.LeaseLost` (or any MessagingError) stops that attempt.
Fence = Callable[[str], None]

#: Headers whose values are never secret (everything else is redacted from errors).
_PLAIN_HEADERS = frozenset({"accept", "content-type", "user-agent", "version"})


@attrs.frozen
class Unsettled:
    """An update ``update_many`` had sent when the caller stopped reading: the vendor may
    have applied it, but no receipt reached the caller."""

    index: int
    connection: str
    subject_id: str


def _secrets(request: PreparedRequest) -> tuple[str, ...]:
    return tuple(v for k, v in request.headers.items() if k.lower() not in _PLAIN_HEADERS)


def _stopped(job: Delivery) -> MessagingError:
    return MessagingError(
        "update_many was stopped before this update was sent", subject_id=job.request.subject_id
    )


def _report_unsettled(
    unsettled: list[Unsettled], on_unsettled: Callable[[list[Unsettled]], None] | None
) -> None:
    if not unsettled:
        return
    shown = ", ".join(f"{u.connection}/{u.subject_id}" for u in unsettled[:50])
    more = f" and {len(unsettled) - 50} more" if len(unsettled) > 50 else ""
    log.warning(
        "msgbridge: update_many stopped early; %d update(s) had been sent and their outcome "
        "is unknown (the vendor may have applied them): %s%s",
        len(unsettled),
        shown,
        more,
    )
    if on_unsettled is not None:
        try:
            on_unsettled(unsettled)
        except Exception:
            log.exception("msgbridge: the on_unsettled callback failed")


class _BridgeBase:
    """Connection management shared by both bridges."""

    _planner: Planner
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

    ``http_client`` is an optional caller-owned ``httpx.Client`` (left open on close);
    ``sender`` swaps the HTTP layer. ``clock`` and ``sleep`` are injectable so retry
    tests run instantly. ``fence`` is called with the connection name before every HTTP
    attempt (the outbox uses it to stop sending for a connection whose lease it lost).
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
        fence: Fence | None = None,
    ) -> None:
        self._closed = True  # until fully built (``__del__`` stays quiet on a failed init)
        self._planner = Planner(
            connections,
            registry=registry,
            retry=retry,
            guard=guard,
            clock=clock,
            rng=rng,
            rate_limits=rate_limits,
        )
        self._sender: SyncSender = sender or HttpxSender(http_client)
        self._sleep = sleep
        self._fence = fence
        self._closed = False

    def update_status(self, connection: str, status: MessageStatus) -> Receipt:
        """Apply *status*; returns the receipt or raises the typed error.

        Updates for one message are applied one after the other, in call order, whatever
        the entry point (``update_many`` included).
        """
        self._check_open()
        plan = self._planner.plan_status(connection, status)
        return plan if isinstance(plan, Receipt) else self._deliver(plan)

    def update_conversation(self, connection: str, update: ConversationUpdate) -> Receipt:
        self._check_open()
        return self._deliver(self._planner.plan_conversation(connection, update))

    def update_email_status(self, connection: str, update: EmailStatusUpdate) -> Receipt:
        """Report an email's status, event counters and recipient outcomes (adapters
        with ``Operation.UPDATE_EMAIL_STATUS``, e.g. HighLevel's v3 call)."""
        self._check_open()
        return self._deliver(self._planner.plan_email_status(connection, update))

    def publish_inbound(self, connection: str, message: IncomingMessage) -> Receipt:
        """Publish a contact's *message* into the CRM (retries and rate limits as for
        statuses; no state guard). HubSpot de-duplicates retries by a derived
        ``integrationIdempotencyId``; see the adapters' docs for HighLevel."""
        self._check_open()
        return self._deliver(self._planner.plan_inbound(connection, message))

    def update_many(
        self,
        items: Iterable[BatchInput],
        *,
        max_in_flight: int = 32,
        per_connection: int = 8,
        max_pending: int | None = None,
        on_unsettled: Callable[[list[Unsettled]], None] | None = None,
    ) -> Iterator[Receipt]:
        """Apply many updates concurrently; yields receipts in completion order.

        Each receipt's ``index`` is the position of its input. One item's failure is a
        ``FAILED`` receipt, never an exception. Input is read lazily (backpressure).
        Leaving early (``break``, ``close()``) stops sending at once; updates already
        sent are logged and passed to *on_unsettled*, since their outcome is unknown.
        """
        self._check_open()
        steps = self._planner.batch(max_in_flight, per_connection, max_pending)
        return self._many(steps, iter(items), max_in_flight, on_unsettled)

    def _many(
        self,
        steps: Any,
        source: Iterator[BatchInput],
        max_in_flight: int,
        on_unsettled: Callable[[list[Unsettled]], None] | None,
    ) -> Iterator[Receipt]:
        stop = threading.Event()
        running: dict[concurrent.futures.Future[Receipt], BatchItem] = {}
        sent: set[int] = set()
        # One in flight: deliver in the caller's thread when the scheduler waits (nothing
        # else could start meanwhile), without a hop to a pool thread and back.
        inline: list[Start] = []
        holding: list[BatchItem] = []
        pool = (
            None
            if max_in_flight == 1
            else concurrent.futures.ThreadPoolExecutor(max_in_flight, "msgbridge")
        )
        finished = False
        try:
            reply: Any = None
            while True:
                step = steps.send(reply)
                reply = None
                if isinstance(step, Pull):
                    reply = next(source, END)
                elif isinstance(step, Start):
                    item = step.item
                    if pool is None:
                        inline.append(step)
                        continue
                    future = pool.submit(
                        self._deliver, step.job, step.reserved, stop, sent, item.index
                    )
                    running[future] = item
                elif inline and isinstance(step, Wait):
                    start = inline.pop()
                    holding.append(start.item)
                    outcome: Receipt | BaseException
                    try:
                        outcome = self._deliver(
                            start.job, start.reserved, stop, sent, start.item.index
                        )
                    except Exception as exc:  # contained: the scheduler makes it a receipt
                        outcome = exc
                    holding.clear()
                    reply = [(start.item, outcome)]
                elif isinstance(step, Emit):
                    yield step.receipt
                elif isinstance(step, Wait):
                    if running:
                        done, _ = concurrent.futures.wait(
                            running, step.timeout, concurrent.futures.FIRST_COMPLETED
                        )
                    else:
                        self._pause(step.timeout or 0.0, stop)
                        done = set()
                    reply = [(running.pop(f), _outcome(f)) for f in done]
        except StopIteration:
            finished = True
        finally:
            stop.set()
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            if not finished:
                _report_unsettled(
                    [
                        Unsettled(item.index, item.connection, item.key[2])
                        for item in [*running.values(), *holding]
                        if item.index in sent
                    ],
                    on_unsettled,
                )

    def _deliver(
        self,
        job: Delivery,
        reserved: bool = False,
        stop: threading.Event | None = None,
        sent: set[int] | None = None,
        index: int = -1,
    ) -> Receipt:
        policy = self._planner.policy
        with policy.turn(job.key):
            skipped = policy.admit(job)
            if skipped is not None:
                if reserved:
                    self._planner.give_back(job)
                return skipped
            receipt = None
            try:
                receipt = self._drive(job, reserved, stop, sent, index)
                return receipt
            finally:
                policy.settle(job, receipt)

    def _drive(
        self,
        job: Delivery,
        reserved: bool,
        stop: threading.Event | None,
        sent: set[int] | None,
        index: int,
    ) -> Receipt:
        planner = self._planner
        steps = planner.steps(job, index)
        held: list[RefreshLock] = []
        try:
            step = next(steps)
            while True:
                kind = type(step)
                if kind is Send:
                    # Marked before the request goes out, so an interrupt during it still
                    # reports the update as unsettled; unmarked if it never went out.
                    earlier = sent is not None and index in sent
                    if sent is not None:
                        sent.add(index)
                    reply = self._send(job, step, reserved, stop)
                    if reply is _NOT_SENT and sent is not None and not earlier:
                        sent.discard(index)
                    reserved = False
                    step = steps.send(reply if reply is not _NOT_SENT else _stopped(job))
                elif kind is Sleep:
                    planner.before_sleep(job, step)
                    self._pause(step.seconds, stop)
                    step = steps.send(None)
                elif kind is Hold:
                    step.lock.acquire()
                    held.append(step.lock)
                    step = next(steps)
                else:  # Release
                    held.remove(step.lock)
                    step.lock.release()
                    step = next(steps)
        except StopIteration as done:
            receipt: Receipt = done.value
            return receipt
        finally:
            for lock in reversed(held):
                lock.release()

    def _send(
        self,
        job: Delivery,
        step: Send,
        reserved: bool,
        stop: threading.Event | None,
    ) -> ResponseView | MessagingError | object:
        planner = self._planner
        request = step.request
        if stop is not None and stop.is_set():
            return _NOT_SENT
        if not reserved:
            while (wait := planner.wait_before_send(job)) > 0:
                step.waited += wait
                self._pause(wait, stop)
                if stop is not None and stop.is_set():
                    return _NOT_SENT
        if self._fence is not None:  # right before the request: no wait in between
            refused = _fenced(self._fence, job)
            if refused is not None:
                planner.give_back(job)
                return refused
        reply: ResponseView | MessagingError | None = None
        try:
            reply = self._sender.send(request)
        except MessagingError as exc:
            reply = exc
        except Exception as exc:  # contained to this update
            reply = unexpected(f"sender {type(self._sender).__name__}", exc, _secrets(request))
        finally:
            planner.after_reply(job, reply)
        return reply

    def _pause(self, seconds: float, stop: threading.Event | None) -> None:
        """Sleep, but wake at once when ``update_many`` is asked to stop."""
        if stop is not None and self._sleep is time.sleep:
            stop.wait(seconds)
        else:
            self._sleep(seconds)

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
    the HTTP layer (e.g. the fast aiohttp sender). ``fence`` is as for :class:`Bridge`.
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
        fence: Fence | None = None,
    ) -> None:
        self._closed = True  # until fully built (``__del__`` stays quiet on a failed init)
        self._planner = Planner(
            connections,
            registry=registry,
            retry=retry,
            guard=guard,
            clock=clock,
            rng=rng,
            rate_limits=rate_limits,
        )
        self._sender: AsyncSender = sender or AsyncHttpxSender(http_client)
        self._sleep = sleep or asyncio.sleep
        self._fence = fence
        self._closed = False

    async def update_status(self, connection: str, status: MessageStatus) -> Receipt:
        """Apply *status*; updates for one message go one after the other, in call order,
        whatever the entry point."""
        self._check_open()
        plan = self._planner.plan_status(connection, status)
        return plan if isinstance(plan, Receipt) else await self._deliver(plan)

    async def update_conversation(self, connection: str, update: ConversationUpdate) -> Receipt:
        self._check_open()
        return await self._deliver(self._planner.plan_conversation(connection, update))

    async def update_email_status(self, connection: str, update: EmailStatusUpdate) -> Receipt:
        """Report an email's status, event counters and recipient outcomes."""
        self._check_open()
        return await self._deliver(self._planner.plan_email_status(connection, update))

    async def publish_inbound(self, connection: str, message: IncomingMessage) -> Receipt:
        """:meth:`Bridge.publish_inbound` for async code."""
        self._check_open()
        return await self._deliver(self._planner.plan_inbound(connection, message))

    def update_many(
        self,
        items: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        max_in_flight: int = 64,
        per_connection: int = 8,
        max_pending: int | None = None,
        on_unsettled: Callable[[list[Unsettled]], None] | None = None,
    ) -> AsyncIterator[Receipt]:
        """Apply many updates concurrently; yields receipts in completion order.

        Takes an iterable or an async iterable. Each receipt's ``index`` is the position
        of its input. One item's failure is a ``FAILED`` receipt, never an exception.
        Leaving early cancels what is in flight; updates already sent are logged and
        passed to *on_unsettled*, since their outcome is unknown.
        """
        self._check_open()
        steps = self._planner.batch(max_in_flight, per_connection, max_pending)
        return self._many(steps, _puller(items), on_unsettled, inline=max_in_flight == 1)

    async def _many(
        self,
        steps: Any,
        pull: Callable[[], Awaitable[Any]],
        on_unsettled: Callable[[list[Unsettled]], None] | None,
        *,
        inline: bool = False,
    ) -> AsyncIterator[Receipt]:
        crew: _Crew | _Inline = _Inline(self._deliver) if inline else _Crew(self._deliver)
        completed = False
        try:
            reply: Any = None
            while True:
                step = steps.send(reply)
                reply = None
                kind = type(step)
                if kind is Start:
                    crew.start(step)
                elif kind is Emit:
                    yield step.receipt
                elif kind is Wait:
                    if crew.busy:
                        reply = await crew.completions(step.timeout)
                    else:
                        await self._sleep(step.timeout or 0.0)
                        reply = []
                else:  # Pull
                    reply = await pull()
        except StopIteration:
            completed = True
        finally:
            unsettled = crew.stop()
            if not completed:
                _report_unsettled(unsettled, on_unsettled)

    async def _deliver(
        self,
        job: Delivery,
        reserved: bool = False,
        sent: set[int] | None = None,
        index: int = -1,
    ) -> Receipt:
        policy = self._planner.policy
        key = job.key
        if not policy.try_aacquire(key):  # the message's turn; usually free at once
            await policy.aacquire(key)
        try:
            skipped = policy.admit(job)
            if skipped is not None:
                if reserved:
                    self._planner.give_back(job)
                return skipped
            receipt = None
            try:
                receipt = await self._drive(job, reserved, sent, index)
                return receipt
            finally:
                policy.settle(job, receipt)
        finally:
            policy.arelease(key)

    async def _drive(
        self, job: Delivery, reserved: bool, sent: set[int] | None, index: int
    ) -> Receipt:
        planner = self._planner
        steps = planner.steps(job, index)
        held: list[RefreshLock] = []
        try:
            step = next(steps)
            while True:
                kind = type(step)
                if kind is Send:
                    if sent is not None:
                        sent.add(index)
                    reply = await self._send(job, step, reserved)
                    reserved = False
                    step = steps.send(reply)
                elif kind is Sleep:
                    planner.before_sleep(job, step)
                    await self._sleep(step.seconds)
                    step = steps.send(None)
                elif kind is Hold:
                    await step.lock.aacquire()
                    held.append(step.lock)
                    step = next(steps)
                else:  # Release
                    held.remove(step.lock)
                    await step.lock.arelease()
                    step = next(steps)
        except StopIteration as done:
            receipt: Receipt = done.value
            return receipt
        finally:
            for lock in reversed(held):
                await lock.arelease()

    async def _send(
        self, job: Delivery, step: Send, reserved: bool
    ) -> ResponseView | MessagingError:
        planner = self._planner
        request = step.request
        if not reserved:
            while (wait := planner.wait_before_send(job)) > 0:
                step.waited += wait
                await self._sleep(wait)
        if self._fence is not None:  # right before the request: no wait in between
            refused = _fenced(self._fence, job)
            if refused is not None:
                planner.give_back(job)
                return refused
        reply: ResponseView | MessagingError | None = None
        try:
            reply = await self._sender.send(request)
        except MessagingError as exc:
            reply = exc
        except Exception as exc:  # contained to this update
            reply = unexpected(f"sender {type(self._sender).__name__}", exc, _secrets(request))
        finally:
            planner.after_reply(job, reply)
        return reply

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


class _Crew:
    """The async ``update_many``'s workers: at most one coroutine per in-flight slot, each
    taking the next started delivery itself, so an update costs no task, no done-callback
    and no queue hop; the scheduler is woken once per batch of completions."""

    def __init__(
        self, deliver: Callable[[Delivery, bool, set[int], int], Awaitable[Receipt]]
    ) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._jobs: deque[Start] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._workers: list[asyncio.Task[None]] = []
        self._done: list[tuple[BatchItem, Receipt | BaseException]] = []
        self._wake: asyncio.Future[None] | None = None
        #: Deliveries a worker holds, and the indices of those whose request went out.
        self._holding: dict[int, BatchItem] = {}
        self.sent: set[int] = set()
        self.busy = 0

    def start(self, step: Start) -> None:
        self.busy += 1
        self._jobs.append(step)
        while self._idle:
            waiting = self._idle.popleft()
            if not waiting.done():
                waiting.set_result(None)
                return
        if len(self._workers) < self.busy:
            self._workers.append(self._loop.create_task(self._work()))

    async def _work(self) -> None:
        jobs, holding, done = self._jobs, self._holding, self._done
        while True:
            if not jobs:
                # Let the scheduler run first (it was just woken, so it runs before us in
                # this loop iteration) and take the delivery it starts at once: a finished
                # worker usually has its next job without an idle future or a second hop.
                await asyncio.sleep(0)
                if not jobs:
                    waiting = self._loop.create_future()
                    self._idle.append(waiting)
                    await waiting
                    continue
            step = jobs.popleft()
            item = step.item
            holding[item.index] = item
            try:
                outcome: Receipt | BaseException = await self._deliver(
                    step.job, step.reserved, self.sent, item.index
                )
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # contained: the scheduler turns it into a receipt
                outcome = exc
            del holding[item.index]
            done.append((item, outcome))
            wake = self._wake
            if wake is not None and not wake.done():
                wake.set_result(None)

    async def completions(
        self, timeout: float | None
    ) -> list[tuple[BatchItem, Receipt | BaseException]]:
        """At least one finished delivery (or none after *timeout*); all that are."""
        if not self._done:
            wake = self._wake = self._loop.create_future()
            timer = None if timeout is None else self._loop.call_later(timeout, _wake_up, wake)
            try:
                await wake
            finally:
                self._wake = None
                if timer is not None:
                    timer.cancel()
        finished = self._done[:]
        self._done.clear()  # in place: workers hold a reference to this list
        self.busy -= len(finished)
        return finished

    def stop(self) -> list[Unsettled]:
        """Cancel every worker; what they held and had sent is unsettled."""
        unsettled = [
            Unsettled(item.index, item.connection, item.key[2])
            for item in self._holding.values()
            if item.index in self.sent
        ]
        for worker in self._workers:
            worker.cancel()
        return unsettled


class _Inline:
    """One in flight: the scheduler's own task delivers, when it waits for the
    completion (nothing else could start meanwhile), so an update costs no hop to a
    worker and back. Same interface as :class:`_Crew`."""

    def __init__(
        self, deliver: Callable[[Delivery, bool, set[int], int], Awaitable[Receipt]]
    ) -> None:
        self._deliver = deliver
        self._job: Start | None = None
        self._holding: BatchItem | None = None
        self.sent: set[int] = set()
        self.busy = 0

    def start(self, step: Start) -> None:
        assert self._job is None, "one in flight"
        self.busy = 1
        self._job = step

    async def completions(
        self, timeout: float | None
    ) -> list[tuple[BatchItem, Receipt | BaseException]]:
        step, self._job = self._job, None
        assert step is not None
        item = self._holding = step.item
        try:
            outcome: Receipt | BaseException = await self._deliver(
                step.job, step.reserved, self.sent, item.index
            )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # contained: the scheduler turns it into a receipt
            outcome = exc
        self._holding = None
        self.busy = 0
        return [(item, outcome)]

    def stop(self) -> list[Unsettled]:
        """The delivery under way when the caller left, if its request went out."""
        item = self._holding
        if item is None or item.index not in self.sent:
            return []
        return [Unsettled(item.index, item.connection, item.key[2])]


def _wake_up(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)


_NOT_SENT = object()


def _fenced(fence: Fence, job: Delivery) -> MessagingError | None:
    try:
        fence(job.connection)
    except MessagingError as exc:
        return exc
    except Exception as exc:
        return unexpected("the fence", exc)
    return None


def _outcome(
    done: concurrent.futures.Future[Receipt] | asyncio.Task[Receipt],
) -> Receipt | BaseException:
    if done.cancelled():
        return MessagingError("the update was cancelled before it finished")
    error = done.exception()
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
