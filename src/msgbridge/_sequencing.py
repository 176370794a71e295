"""The one owner of per-message policy: one update per message at a time, and the guard.

Every entry point (``update_status``, ``update_conversation``, ``update_many``, the
outbox worker; sync and async) runs a delivery inside :meth:`MessagePolicy.turn`
(sync) or :meth:`MessagePolicy.aturn` (async) for its key. Inside the turn, the guard
is asked whether the update is still news (:meth:`admit`) and told what was applied
(:meth:`settle`) before the next update for that message may start. So mixing entry
points on one bridge, from threads or from tasks, can never put an older state on the
wire after a newer one was applied.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from msgbridge._delivery import Delivery, Key
from msgbridge.guard import Guard
from msgbridge.model import Outcome, Receipt

__all__ = ["MessagePolicy"]


class _ThreadTurns:
    """One lock per key, created on demand and dropped when no one holds or waits."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[Key, tuple[threading.Lock, int]] = {}

    def acquire(self, key: Key) -> None:
        with self._mutex:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        lock.acquire()

    def release(self, key: Key) -> None:
        with self._mutex:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
        lock.release()

    def __len__(self) -> int:
        return len(self._locks)


class _TaskTurns:
    """The asyncio twin, for one event loop: a key that nobody holds costs no lock object,
    waiters queue on futures in arrival order."""

    def __init__(self) -> None:
        self._waiters: dict[Key, deque[asyncio.Future[None]]] = {}

    def try_acquire(self, key: Key) -> bool:
        """Take the turn if nobody holds it (no coroutine: the usual, uncontended case)."""
        if key in self._waiters:
            return False
        self._waiters[key] = deque()
        return True

    async def acquire(self, key: Key) -> None:
        waiters = self._waiters.get(key)
        if waiters is None:
            self._waiters[key] = deque()
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(key)  # we were handed the turn as we were cancelled: pass it on
            else:
                waiters.remove(turn)
            raise

    def release(self, key: Key) -> None:
        waiters = self._waiters[key]
        while waiters:
            turn = waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._waiters[key]

    def __len__(self) -> int:
        return len(self._waiters)


class MessagePolicy:
    """Sequencing per (connection, message) and the state guard, for one bridge."""

    def __init__(self, guard: Guard | None) -> None:
        self.guard = guard
        self._threads = _ThreadTurns()
        self._tasks = _TaskTurns()

    @contextmanager
    def turn(self, key: Key) -> Iterator[None]:
        self._threads.acquire(key)
        try:
            yield
        finally:
            self._threads.release(key)

    @asynccontextmanager
    async def aturn(self, key: Key) -> AsyncIterator[None]:
        await self._tasks.acquire(key)
        try:
            yield
        finally:
            self._tasks.release(key)

    async def aacquire(self, key: Key) -> None:
        """:meth:`aturn` without the context manager, for the async hot path."""
        await self._tasks.acquire(key)

    def try_aacquire(self, key: Key) -> bool:
        """Take the async turn at once if it is free; else :meth:`aacquire` must wait."""
        return self._tasks.try_acquire(key)

    def arelease(self, key: Key) -> None:
        self._tasks.release(key)

    def admit(self, job: Delivery) -> Receipt | None:
        """Inside the turn: a skip receipt if the update is not news, else ``None``."""
        guard = self.guard
        state, value = job.state, job.vendor_value
        if guard is None or state is None or value is None:
            return None
        subject = job.request.subject_id
        verdict = guard.check(job.connection, subject, state, value)
        if verdict is None:
            return None
        last = guard.last(job.connection, subject)
        if verdict is Outcome.SKIPPED_DUPLICATE and last is not state:
            # Same vendor value but further along (HubSpot DELIVERED after SENT):
            # remember it, so a later FAILED is recognised as stale.
            guard.record(job.connection, subject, state, value)
        return Receipt(
            verdict,
            connection=job.connection,
            adapter=job.adapter.id,
            subject_id=subject,
            state=state,
            vendor_value=value,
            detail=(
                "a pending outbox update for this message is further along"
                if verdict is Outcome.SKIPPED_SUPERSEDED
                else f"last applied state is {last.value if last else 'unknown'!r}"
            ),
        )

    def stale(self, job: Delivery) -> Receipt | None:
        """A look that takes nothing (no claim, no record): a skip receipt if the update
        is already older than what the guard holds. Used when planning, to save a
        rate-limit slot; :meth:`admit` decides inside the turn."""
        guard = self.guard
        state = job.state
        if guard is None or state is None:
            return None
        last = guard.last(job.connection, job.request.subject_id)
        if last is None or state.may_follow(last):
            return None
        return Receipt(
            Outcome.SKIPPED_STALE,
            connection=job.connection,
            adapter=job.adapter.id,
            subject_id=job.request.subject_id,
            state=state,
            vendor_value=job.vendor_value,
            detail=f"last applied state is {last.value!r}",
        )

    def settle(self, job: Delivery, receipt: Receipt | None) -> None:
        """Inside the turn: remember an applied state (the guard only moves forward), or
        let go of the message when nothing was applied (``receipt`` ``None``: the
        delivery raised), so a guard shared by processes does not hold it."""
        guard = self.guard
        if guard is None or job.state is None or job.vendor_value is None:
            return
        if receipt is not None and receipt.outcome is Outcome.APPLIED:
            guard.record(job.connection, job.request.subject_id, job.state, job.vendor_value)
            return
        release = getattr(guard, "release", None)
        if release is not None:
            release(job.connection, job.request.subject_id)

    def last_applied(self, connection: str, message_id: str) -> object:
        return self.guard.last(connection, message_id) if self.guard is not None else None

    @property
    def turns_held(self) -> int:
        """Keys currently held or waited for (bounded by the work in flight)."""
        return len(self._threads) + len(self._tasks)
