"""Webhook intake that never loses or doubles a message: verify, store, answer, hand over.

``Intake.handle(headers, body)`` is the framework-free entry point (the ASGI app in
:mod:`msgbridge.inbound.asgi` is a thin layer over it):

1. refuse an oversize body (413) or a request over the concurrency bound (429);
2. verify the signature over the raw bytes and parse (401 / 400 with a reason; nothing
   is stored for any refusal);
3. store the event durably under its idempotency key, once (a duplicate is answered 200
   and not stored again);
4. answer 2xx — only now;
5. hand the event to the product's handler (sync or async) at least once, with the stable
   key ``InboundDelivery.key``; a handler that raises, or a process that dies first,
   leaves the row pending and :meth:`Intake.process_pending` hands it over again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs

from msgbridge.errors import MessagingError
from msgbridge.inbound.errors import (
    IntakeBusy,
    PayloadTooLarge,
    UnknownWebhookSource,
    WebhookRejected,
)
from msgbridge.inbound.model import WebhookEvent
from msgbridge.inbound.store import InboundRecord, InboundStore
from msgbridge.inbound.verify import Headers, WebhookVerifier, as_headers
from msgbridge.outbox.errors import StorageError

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_CONCURRENCY",
    "Handler",
    "InboundDelivery",
    "Intake",
    "IntakeResponse",
]

log = logging.getLogger("msgbridge.inbound")

#: 1 MiB: far above any documented payload (an e-mail's HTML included) and small enough
#: that a flood of large bodies cannot exhaust memory.
DEFAULT_MAX_BODY = 1024 * 1024
#: Requests verified/stored at once; more are answered 429 (which every vendor retries).
DEFAULT_MAX_CONCURRENCY = 32
#: How long a claimed event is owned by one process before another may take it over.
DEFAULT_LEASE = 60.0
#: First retry delay after a handler failure (doubled per attempt, capped at an hour).
DEFAULT_RETRY_DELAY = 5.0


@attrs.frozen
class InboundDelivery:
    """What the product's handler gets: the event and its stable idempotency key."""

    #: ``"{source}:{dedup key}"``; the same for every delivery and retry of one event.
    key: str
    source: str
    event: WebhookEvent
    #: 1 the first time; more when an earlier hand-over failed or its process died.
    attempt: int


Handler = Callable[[InboundDelivery], Awaitable[None] | None]


@attrs.frozen
class IntakeResponse:
    """The HTTP answer to one webhook request, and what happened."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = attrs.field(factory=dict)
    key: str | None = None
    #: True when this request stored the event (False for duplicates and refusals).
    stored: bool = False
    duplicate: bool = False
    error: MessagingError | None = attrs.field(default=None, eq=False, repr=False)

    def body_bytes(self) -> bytes:
        return json.dumps(dict(self.body), separators=(",", ":")).encode()


class Intake:
    """Verified, durable, de-duplicated webhook intake for one or more sources.

    *sources* maps a name (used in URLs and idempotency keys, e.g. ``"highlevel"``) to
    the verifier for it. *clock* returns epoch seconds and is used for both signature
    windows and leases, so tests control time.
    """

    def __init__(
        self,
        store: InboundStore,
        sources: Mapping[str, WebhookVerifier],
        handler: Handler | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_body: int = DEFAULT_MAX_BODY,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        lease: float = DEFAULT_LEASE,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        owner: str | None = None,
    ) -> None:
        if not sources:
            raise ValueError("an Intake needs at least one source (name → WebhookVerifier)")
        if max_body <= 0 or max_concurrency <= 0 or lease <= 0:
            raise ValueError("max_body, max_concurrency and lease must be positive")
        self.store = store
        self.sources = dict(sources)
        self.handler = handler
        self.clock = clock
        self.max_body = max_body
        self.max_concurrency = max_concurrency
        self.lease = lease
        self.retry_delay = retry_delay
        self.owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._slots = threading.BoundedSemaphore(max_concurrency)

    # -- receiving -------------------------------------------------------------------------

    def _source(self, source: str | None) -> tuple[str, WebhookVerifier]:
        if source is None and len(self.sources) == 1:
            name = next(iter(self.sources))
            return name, self.sources[name]
        if source is not None and source in self.sources:
            return source, self.sources[source]
        known = ", ".join(sorted(self.sources))
        raise UnknownWebhookSource(f"no webhook source {source!r}; configured: {known}")

    def verify(
        self,
        headers: Headers | Mapping[str, str] | Iterable[tuple[Any, Any]],
        body: bytes,
        *,
        source: str | None = None,
        method: str = "POST",
    ) -> tuple[str, WebhookEvent]:
        """Check size and signature and parse; stores nothing. Returns (source, event)."""
        if len(body) > self.max_body:
            raise PayloadTooLarge(
                f"the body is {len(body)} bytes; at most {self.max_body} are accepted"
            )
        name, verifier = self._source(source)
        now = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        event = verifier.verify(as_headers(headers), body, now, method=method)
        return name, event

    def receive(
        self,
        headers: Headers | Mapping[str, str] | Iterable[tuple[Any, Any]],
        body: bytes,
        *,
        source: str | None = None,
        method: str = "POST",
    ) -> IntakeResponse:
        """Verify and store, without handing over: the 2xx is safe to send when this returns."""
        if not self._slots.acquire(blocking=False):
            return _refusal(
                IntakeBusy(f"more than {self.max_concurrency} webhook requests in flight"),
                retry_after=1,
            )
        try:
            try:
                name, event = self.verify(headers, body, source=source, method=method)
            except WebhookRejected as exc:
                log.info("msgbridge: webhook refused (%s): %s", type(exc).__name__, exc.message)
                return _refusal(exc)
            key = f"{name}:{event.dedup_key}"
            try:
                outcome = self.store.save(name, key, event)
            except StorageError as exc:
                # Not stored, so not acknowledged; 429 is the one status every vendor
                # (HighLevel included) retries.
                log.error("msgbridge: webhook %s not stored: %s", key, exc)
                return IntakeResponse(
                    429,
                    {"error": "StorageError", "reason": "the event could not be stored; retry"},
                    {"retry-after": "5"},
                    key=key,
                    error=exc,
                )
        finally:
            self._slots.release()
        return IntakeResponse(
            200,
            {"ok": True, "key": key, "duplicate": not outcome.new},
            key=key,
            stored=outcome.new,
            duplicate=not outcome.new,
        )

    def handle(
        self,
        headers: Headers | Mapping[str, str] | Iterable[tuple[Any, Any]],
        body: bytes,
        *,
        source: str | None = None,
        method: str = "POST",
    ) -> IntakeResponse:
        """:meth:`receive`, then hand the stored event to the handler (sync).

        The event is on disk before the handler runs, so a handler failure or a crash
        cannot lose it; the answer is 2xx once stored, whatever the handler does. An async
        handler is run with ``asyncio.run``; inside a running event loop use :meth:`ahandle`.
        """
        response = self.receive(headers, body, source=source, method=method)
        if response.key is not None and response.status == 200:
            self.dispatch(response.key)
        return response

    async def ahandle(
        self,
        headers: Headers | Mapping[str, str] | Iterable[tuple[Any, Any]],
        body: bytes,
        *,
        source: str | None = None,
        method: str = "POST",
    ) -> IntakeResponse:
        """:meth:`handle` for async code (store in a worker thread, async handlers awaited).

        The response is returned after the hand-over; the ASGI app instead answers first.
        """
        response = await asyncio.to_thread(
            self.receive, headers, body, source=source, method=method
        )
        if response.key is not None and response.status == 200:
            await self.adispatch(response.key)
        return response

    # -- handing over ----------------------------------------------------------------------

    def _claim(self, key: str) -> InboundRecord | None:
        return self.store.claim(key, owner=self.owner, lease=self.lease)

    @contextmanager
    def _held(self, key: str) -> Iterator[None]:
        """Renew the lease on *key* every third of it while the handler runs, so a slow
        handler in a live process is not joined by another process's sweep."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease / 3):
                try:
                    if not self.store.renew(key, owner=self.owner, lease=self.lease):
                        return
                except StorageError as exc:
                    log.error("msgbridge: lease on %s not renewed: %s", key, exc)

        renewer = threading.Thread(target=renew, name=f"msgbridge-lease-{key}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            # Not joined (an async caller's loop must not wait): a late renewal matches
            # nothing once the row is handled or given back.
            done.set()

    def _delivery(self, record: InboundRecord) -> InboundDelivery:
        return InboundDelivery(record.key, record.source, record.event, record.attempt)

    def _failed(self, record: InboundRecord, exc: BaseException) -> None:
        delay = min(self.retry_delay * 2 ** (record.attempt - 1), 3600.0)
        log.warning(
            "msgbridge: handler failed for %s (attempt %d): %s: %s; retry in %.0f s",
            record.key,
            record.attempt,
            type(exc).__name__,
            exc,
            delay,
        )
        self.store.mark_failed(
            record.key, owner=self.owner, error=f"{type(exc).__name__}: {exc}", retry_in=delay
        )

    def dispatch(self, key: str) -> bool:
        """Hand the stored event *key* to the handler if it is pending and free; True if handled."""
        if self.handler is None:
            return False
        record = self._claim(key)
        if record is None:
            return False
        try:
            with self._held(key):
                result = self.handler(self._delivery(record))
                if inspect.isawaitable(result):
                    asyncio.run(_awaited(result))
        except Exception as exc:
            self._failed(record, exc)
            return False
        return self.store.mark_handled(key, owner=self.owner)

    async def adispatch(self, key: str) -> bool:
        """:meth:`dispatch` for async code: async handlers awaited, sync ones in a thread."""
        if self.handler is None:
            return False
        record = await asyncio.to_thread(self._claim, key)
        if record is None:
            return False
        try:
            delivery = self._delivery(record)
            with self._held(key):
                if inspect.iscoroutinefunction(self.handler):
                    await self.handler(delivery)
                else:
                    result = await asyncio.to_thread(self.handler, delivery)
                    if inspect.isawaitable(result):
                        await result
        except Exception as exc:
            await asyncio.to_thread(self._failed, record, exc)
            return False
        return await asyncio.to_thread(self.store.mark_handled, key, owner=self.owner)

    def process_pending(self, *, limit: int = 100) -> int:
        """Hand over every pending event that is ready (after a crash or a handler failure)."""
        return sum(self.dispatch(key) for key in self.store.ready(limit=limit))

    async def aprocess_pending(self, *, limit: int = 100) -> int:
        keys = await asyncio.to_thread(self.store.ready, limit=limit)
        handled = 0
        for key in keys:
            handled += await self.adispatch(key)
        return handled

    def run_pending_forever(self, stop: threading.Event, *, interval: float = 1.0) -> None:
        """Sweep pending events until *stop* is set (run it next to ``outbox work``)."""
        while not stop.is_set():
            try:
                self.process_pending()
            except StorageError as exc:
                log.error("msgbridge: inbound sweep failed: %s", exc)
            stop.wait(interval)

    def asgi(self) -> Any:
        """This intake as an ASGI application (see :class:`msgbridge.inbound.asgi.IntakeApp`)."""
        from msgbridge.inbound.asgi import IntakeApp

        return IntakeApp(self)

    def __repr__(self) -> str:
        return f"<Intake sources={sorted(self.sources)} store={self.store.location}>"


async def _awaited(value: Awaitable[None]) -> None:
    await value


def _refusal(exc: WebhookRejected, *, retry_after: int | None = None) -> IntakeResponse:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    body: dict[str, Any] = {"error": type(exc).__name__, "reason": exc.message}
    if exc.header:
        body["header"] = exc.header
    return IntakeResponse(exc.response_status, body, headers, error=exc)
