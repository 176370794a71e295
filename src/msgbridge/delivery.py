"""The delivery loop, written once for sync and async.

:func:`deliver` is a generator that yields :class:`Send` ("send this request") and
:class:`Sleep` ("wait this long") and receives a :class:`~msgbridge.adapter.ResponseView`
or a transport :class:`~msgbridge.errors.MessagingError` back. The sync and async bridges
are thin runners around it, so retry, backoff, deadline and observation behave the same
on every sender.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator
from typing import Any

import attrs

from msgbridge.adapter import Adapter, RequestSpec, ResponseView, VendorResult
from msgbridge.errors import MalformedResponse, MessagingError
from msgbridge.events import DeliveryAttempt
from msgbridge.model import DeliveryState, Outcome, Receipt
from msgbridge.retry import RetryPolicy

__all__ = ["Delivery", "Send", "Sleep", "deliver"]

log = logging.getLogger("msgbridge")


@attrs.frozen
class Send:
    request: RequestSpec


@attrs.frozen
class Sleep:
    seconds: float
    #: The error that asked for the wait (a ``RateLimited`` pauses the connection).
    reason: MessagingError | None = None


@attrs.frozen
class Delivery:
    """Everything the loop needs for one update (no I/O objects)."""

    connection: str
    adapter: Adapter[Any]
    request: RequestSpec
    state: DeliveryState | None = None
    vendor_value: str | None = None
    #: Called once with the receipt when the vendor applied the update.
    on_applied: Callable[[Receipt], None] | None = None


Step = Send | Sleep
Reply = ResponseView | MessagingError | None


def deliver(
    job: Delivery,
    *,
    policy: RetryPolicy,
    clock: Callable[[], float],
    rng: random.Random,
    notify: Callable[[DeliveryAttempt], None] | None,
) -> Generator[Step, Reply, Receipt]:
    """Send until applied, a permanent error, or the policy gives up (then raise).

    *notify* gets a :class:`DeliveryAttempt` per attempt; ``None`` when nobody listens,
    so the hot path builds no events.
    """
    request = job.request
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        sent_at = clock()
        reply = yield Send(request)
        elapsed = clock() - sent_at
        result: VendorResult | None = None
        if isinstance(reply, ResponseView):
            try:
                result = job.adapter.interpret(request, reply)
            except MessagingError as exc:
                error: MessagingError = exc
            except Exception as exc:  # an adapter bug must still end in a typed error
                error = MalformedResponse(
                    f"adapter {job.adapter.id!r} could not read the vendor's answer: "
                    f"{type(exc).__name__}: {exc}",
                    http_status=reply.status,
                )
        elif isinstance(reply, MessagingError):
            error = reply
        else:  # pragma: no cover - a runner bug
            raise TypeError(f"runner sent {reply!r} into the delivery loop")

        if result is not None:
            receipt = Receipt(
                outcome=Outcome.APPLIED,
                connection=job.connection,
                adapter=job.adapter.id,
                subject_id=request.subject_id,
                state=job.state,
                vendor_value=job.vendor_value,
                attempts=attempt,
                http_status=result.http_status,
                vendor_ids=result.vendor_ids,
                trace_id=result.trace_id,
                vendor_status=result.vendor_status,
            )
            if notify is not None:
                notify(
                    _event(job, attempt, elapsed, result.http_status, None, None, result.trace_id)
                )
            if job.on_applied is not None:
                job.on_applied(receipt)
            return receipt

        error.with_context(
            connection=job.connection, adapter=job.adapter.id, subject_id=request.subject_id
        )
        delay = policy.delay(error, attempt, clock() - started, rng)
        if notify is not None:
            notify(_event(job, attempt, elapsed, error.http_status, error, delay, error.trace_id))
        if delay is None:
            error.attempts = attempt
            log.warning(
                "msgbridge: giving up after %d attempt(s): %s",
                attempt,
                error,
                extra=_log_context(job, request.subject_id),
            )
            raise error
        log.info(
            "msgbridge: attempt %d failed (%s); retrying in %.2fs",
            attempt,
            error,
            delay,
            extra=_log_context(job, request.subject_id),
        )
        yield Sleep(delay, error)


def _log_context(job: Delivery, subject_id: str) -> dict[str, str]:
    """``extra`` for log records, so handlers (JSON, OpenTelemetry) get structured fields."""
    return {"connection": job.connection, "adapter": job.adapter.id, "subject_id": subject_id}


def _event(
    job: Delivery,
    attempt: int,
    elapsed: float,
    http_status: int | None,
    error: MessagingError | None,
    delay: float | None,
    trace_id: str | None,
) -> DeliveryAttempt:
    return DeliveryAttempt(
        connection=job.connection,
        adapter=job.adapter.id,
        operation=job.request.operation,
        subject_id=job.request.subject_id,
        attempt=attempt,
        http_status=http_status,
        elapsed=elapsed,
        error=type(error).__name__ if error is not None else None,
        will_retry=delay is not None,
        delay=delay,
        trace_id=trace_id,
    )
