"""The delivery loop, written once for sync and async.

:func:`deliver` is a generator of effects — :class:`Send` ("send these bytes"),
:class:`Sleep` ("wait this long"), :class:`Hold`/:class:`Release` ("take/give back this
credential's refresh lock") — that receives a :class:`~msgbridge.adapter.ResponseView`
or a transport :class:`~msgbridge.errors.MessagingError` back for each send. The sync
and async bridges are thin runners around it, so retry, backoff, deadline, token
refresh, redirects and observation behave the same on every sender, and a token
endpoint's hiccup is retried like any other.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from msgbridge.adapter import (
    Adapter,
    Operation,
    PreparedRequest,
    RequestSpec,
    ResponseView,
    VendorResult,
)
from msgbridge.auth import Credential, RefreshingCredential, RefreshLock
from msgbridge.errors import (
    ConnectFailed,
    MalformedResponse,
    MessagingError,
    OutcomeUnknown,
    RedirectRefused,
    UnexpectedError,
)
from msgbridge.events import DeliveryAttempt
from msgbridge.model import DeliveryState, Outcome, Receipt
from msgbridge.retry import RetryPolicy

__all__ = ["Delivery", "Hold", "Release", "Send", "Sleep", "deliver", "unexpected"]

log = logging.getLogger("msgbridge")


@attrs.define
class Send:
    request: PreparedRequest
    #: Set by the runner: seconds spent waiting for the rate limiter before sending.
    waited: float = 0.0


@attrs.frozen
class Sleep:
    seconds: float
    #: The error that asked for the wait (a ``RateLimited`` pauses the connection).
    reason: MessagingError | None = None


@attrs.frozen
class Hold:
    lock: RefreshLock


@attrs.frozen
class Release:
    lock: RefreshLock


#: Which message (or conversation) a delivery is about: the unit of ordering.
Key = tuple[str, str, str]


@attrs.frozen
class Delivery:
    """Everything the loop needs for one update (no I/O objects)."""

    connection: str
    adapter: Adapter[Any]
    request: RequestSpec
    #: ``request`` as it goes on the wire: its path joined to the connection's base URL.
    prepared: PreparedRequest
    credential: Credential
    key: Key
    state: DeliveryState | None = None
    vendor_value: str | None = None
    #: The connection's parsed settings, for ``adapter.interpret``.
    settings: Any = None


Step = Send | Sleep | Hold | Release
Reply = ResponseView | MessagingError | None


def unexpected(where: str, exc: BaseException, secrets: tuple[str, ...] = ()) -> UnexpectedError:
    """A typed, non-retryable error for something a plugin or library raised."""
    text = f"{type(exc).__name__}: {exc}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return UnexpectedError(f"{where} raised {text[:500]}")


def _redirect(status: int, response: ResponseView) -> RedirectRefused:
    location = response.header("location") or ""
    parts = urlsplit(location)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else "this host"
    return RedirectRefused(
        f"the vendor answered {status} redirecting to {origin}; msgbridge never follows "
        "redirects (they would resend credentials): check base_url/token_url",
        http_status=status,
    )


def deliver(
    job: Delivery,
    *,
    policy: RetryPolicy,
    clock: Callable[[], float],
    rng: random.Random,
    notify: Callable[[DeliveryAttempt], None] | None,
    decorate: Callable[[str, str, str, str, int], Mapping[str, str]] | None = None,
    index: int | None = None,
) -> Generator[Step, Reply, Receipt]:
    """Send until applied, a permanent error, or the policy gives up (then raise).

    *notify* gets a :class:`DeliveryAttempt` per attempt; ``None`` when nobody listens,
    so the hot path builds no events.
    """
    request = job.request
    adapter = job.adapter
    credential = job.credential
    refreshing = credential if isinstance(credential, RefreshingCredential) else None
    prepared = base = job.prepared
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        sent_at = clock()
        waited = 0.0
        operation = request.operation
        result: VendorResult | None = None
        error: MessagingError
        try:
            if refreshing is not None and refreshing.needs_refresh():
                operation = Operation.REFRESH_TOKEN
                yield from _refresh(refreshing, refreshing.generation)
                operation = request.operation
            seen = refreshing.generation if refreshing is not None else 0
            if decorate is not None:  # plugins' headers (traceparent), then the credential
                prepared = base.with_headers(
                    decorate(
                        job.connection,
                        adapter.id,
                        request.operation.value,
                        request.subject_id,
                        attempt,
                    )
                )
            send = Send(prepared.with_headers(_headers(credential, prepared)))
            reply = yield send
            waited = send.waited
            if (
                refreshing is not None
                and isinstance(reply, ResponseView)
                and refreshing.is_expired_response(reply)
            ):
                operation = Operation.REFRESH_TOKEN
                yield from _refresh(refreshing, seen)
                operation = request.operation
                reply = yield Send(prepared.with_headers(_headers(credential, prepared)))
            if isinstance(reply, ResponseView):
                read = _read(adapter, request, reply, job.settings)
                if isinstance(read, MessagingError):
                    error = read
                else:
                    result = read
            elif isinstance(reply, MessagingError):
                error = reply if request.retry_when_ambiguous else _unambiguous(reply)
            else:  # pragma: no cover - a runner bug
                raise TypeError(f"runner sent {reply!r} into the delivery loop")
        except MessagingError as exc:  # from a refresh
            error = exc
        elapsed = clock() - sent_at

        if result is not None:
            if notify is not None:
                notify(
                    _event(
                        job,
                        operation,
                        attempt,
                        elapsed,
                        result.http_status,
                        None,
                        None,
                        result.trace_id,
                        waited,
                    )
                )
            return Receipt(
                outcome=Outcome.APPLIED,
                connection=job.connection,
                adapter=adapter.id,
                subject_id=request.subject_id,
                state=job.state,
                vendor_value=job.vendor_value,
                attempts=attempt,
                http_status=result.http_status,
                vendor_ids=result.vendor_ids,
                trace_id=result.trace_id,
                vendor_status=result.vendor_status,
                detail=result.warning,
                index=index,
                dropped_fields=request.dropped,
            )

        error.with_context(
            connection=job.connection, adapter=adapter.id, subject_id=request.subject_id
        )
        delay = policy.delay(error, attempt, clock() - started, rng)
        if notify is not None:
            notify(
                _event(
                    job,
                    operation,
                    attempt,
                    elapsed,
                    error.http_status,
                    error,
                    delay,
                    error.trace_id,
                    waited,
                )
            )
        if delay is None:
            error.attempts = attempt
            log.warning(
                "msgbridge: giving up after %d attempt(s): %s",
                attempt,
                error,
                extra=_log_context(job),
            )
            raise error
        log.info(
            "msgbridge: attempt %d failed (%s); retrying in %.2fs",
            attempt,
            error,
            delay,
            extra=_log_context(job),
        )
        yield Sleep(delay, error)


def _unambiguous(error: MessagingError) -> MessagingError:
    """A failure of a request that must not be sent twice: kept when it is final or surely
    sent nothing (:class:`ConnectFailed`); otherwise the vendor may have applied the
    request (a transport failure after sending, a 2xx that was not the vendor's answer),
    and a retry could duplicate it, so it becomes :class:`OutcomeUnknown`. The vendor's
    own answers (5xx, 429) never get here: the adapter reads those."""
    if not error.retryable or isinstance(error, ConnectFailed):
        return error
    unknown = OutcomeUnknown(
        f"the request may or may not have been applied by the vendor ({error.message}); "
        "msgbridge did not retry it to avoid a duplicate: check the vendor before sending "
        "it again",
        http_status=error.http_status,
        subject_id=error.subject_id,
        trace_id=error.trace_id,
    )
    unknown.__cause__ = error
    return unknown


def _headers(credential: Credential, prepared: PreparedRequest) -> Any:
    try:
        return credential.headers(prepared)
    except MessagingError:
        raise
    except Exception as exc:
        raise unexpected(f"credential {type(credential).__name__}", exc) from exc


def _read(
    adapter: Adapter[Any], request: RequestSpec, reply: ResponseView, settings: Any
) -> VendorResult | MessagingError:
    """The adapter's reading of an answer, or the typed error it amounts to."""
    status = reply.status
    if 300 <= status < 400:
        return _redirect(status, reply)
    if 200 <= status < 300 and adapter.answers_json and _not_json(reply):
        return _not_the_vendor(adapter, request, reply)
    try:
        return adapter.interpret(request, reply, settings)
    except MessagingError as exc:
        return exc
    except Exception as exc:  # an adapter bug must still end in a typed error
        return MalformedResponse(
            f"adapter {adapter.id!r} could not read the vendor's answer: "
            f"{type(exc).__name__}: {exc}",
            http_status=status,
        )


def _not_json(reply: ResponseView) -> bool:
    """A non-empty body that does not parse as JSON (an empty 2xx is the adapter's call)."""
    body = reply.body
    if not body or not body.strip():
        return False
    return reply.json() is None and body.strip() != b"null"


def _not_the_vendor(
    adapter: Adapter[Any], request: RequestSpec, reply: ResponseView
) -> MessagingError:
    """A 2xx that is not JSON from a JSON API: most likely not the vendor answering, so not
    counted as applied (that would lose the update): retried, then a dead letter. A request
    that must not be repeated may still have reached the vendor through whatever answered
    (:func:`_unambiguous`)."""
    kind = reply.header("content-type") or "no content-type"
    error = MalformedResponse(
        f"HTTP {reply.status} ({kind}) with a body that is not JSON: that is not "
        f"{adapter.id!r}'s API answering (a proxy or maintenance page, or a wrong "
        "base_url?); not counted as applied",
        http_status=reply.status,
        subject_id=request.subject_id,
        retryable=True,
    )
    return error if request.retry_when_ambiguous else _unambiguous(error)


def _refresh(
    credential: RefreshingCredential, seen_generation: int
) -> Generator[Step, Reply, None]:
    """One single-flight refresh: lock, re-read, token request, adopt (or raise)."""
    lock = credential.lock
    yield Hold(lock)
    try:
        token_request = credential.begin_refresh(seen_generation)
        if token_request is not None:
            reply = yield Send(token_request)
            if isinstance(reply, MessagingError):
                raise reply
            assert reply is not None
            if 300 <= reply.status < 400:
                raise _redirect(reply.status, reply)
            credential.finish_refresh(reply)
    except MessagingError:
        yield Release(lock)
        raise
    except Exception as exc:
        yield Release(lock)
        raise unexpected(f"credential {type(credential).__name__}", exc) from exc
    yield Release(lock)


def _log_context(job: Delivery) -> dict[str, str]:
    """``extra`` for log records, so handlers (JSON, OpenTelemetry) get structured fields."""
    return {
        "connection": job.connection,
        "adapter": job.adapter.id,
        "subject_id": job.request.subject_id,
    }


def _event(
    job: Delivery,
    operation: Operation,
    attempt: int,
    elapsed: float,
    http_status: int | None,
    error: MessagingError | None,
    delay: float | None,
    trace_id: str | None,
    waited: float = 0.0,
) -> DeliveryAttempt:
    return DeliveryAttempt(
        connection=job.connection,
        adapter=job.adapter.id,
        operation=operation,
        subject_id=job.request.subject_id,
        attempt=attempt,
        http_status=http_status,
        elapsed=elapsed,
        error=type(error).__name__ if error is not None else None,
        will_retry=delay is not None,
        delay=delay,
        trace_id=trace_id,
        limiter_wait=waited,
    )
