"""OpenTelemetry for msgbridge: one span and a few metrics per delivery attempt.

Installed, this plugin observes every bridge through msgbridge's ``delivery_attempted``
hook and reports to the *global* tracer and meter providers, so it costs nothing until
the application configures the OpenTelemetry SDK (and its exporters): until the
application has imported ``opentelemetry`` at all, the hook returns at once without
importing it (an application that never did cannot have configured a provider). To report to
providers of your own instead, register an :class:`OtelObserver` on the registry the
bridge uses and set ``MSGBRIDGE_OTEL_DISABLED=1`` to silence the global one::

    registry = AdapterRegistry.from_entry_points()
    registry.add_plugin(OtelObserver(tracer_provider=tp, meter_provider=mp))
    bridge = Bridge(connections, registry=registry)

Spans (``msgbridge <operation>``, kind CLIENT), one per HTTP attempt, with attributes
``msgbridge.connection``, ``msgbridge.adapter``, ``msgbridge.operation``,
``msgbridge.attempt``, ``http.response.status_code``, ``msgbridge.outcome``
(``applied``, ``retry`` or ``failed``), ``msgbridge.subject_id`` (unless
``record_subject_id=False``), ``error.type`` and the vendor's request id as
``msgbridge.vendor_trace_id``. The hook runs after the attempt, so the span's start is
its end less the attempt's duration.

Metrics (OpenTelemetry names; Prometheus turns dots into underscores and adds
``_total``/unit suffixes):

* ``msgbridge.updates`` (counter): updates that finished sending, by ``outcome``
  (``applied``, ``failed``), connection and adapter. Skipped updates never reach the
  vendor and have no attempt to observe, so they are not counted here.
* ``msgbridge.attempts`` (counter): HTTP attempts by ``outcome`` (``applied``,
  ``retry``, ``failed``) and ``http.response.status_code``.
* ``msgbridge.attempt.duration`` (histogram, seconds): the latency of each attempt.
* ``msgbridge.rate_limited`` (counter): attempts the vendor answered with 429.
* ``msgbridge.retry.delay`` (histogram, seconds): the backoff before each retry.
* ``msgbridge.limiter.wait`` (histogram, seconds): how long each attempt waited for its
  connection's rate limiter (client-side pacing at the vendor's budget) before it was sent.

Trace context: with ``inject_traceparent=True`` (or ``MSGBRIDGE_OTEL_TRACEPARENT=1`` for
the global observer) every vendor request carries the caller's current trace context
(W3C ``traceparent``/``tracestate``, through the globally configured propagator), added
by msgbridge's ``delivery_headers`` hook before the credential signs the request.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from msgbridge.events import DeliveryAttempt
from msgbridge.hookspecs import hookimpl

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = [
    "DISABLE_ENV",
    "TRACEPARENT_ENV",
    "OtelObserver",
    "__version__",
    "delivery_attempted",
    "delivery_headers",
]

__version__ = "0.1.0"

#: Set to 1 to silence the observer this plugin registers on the global providers.
DISABLE_ENV = "MSGBRIDGE_OTEL_DISABLED"
#: Set to 1 to send the caller's trace context (``traceparent``) with vendor requests.
TRACEPARENT_ENV = "MSGBRIDGE_OTEL_TRACEPARENT"
_SCOPE = "msgbridge_otel"


def _outcome(event: DeliveryAttempt) -> str:
    if event.error is None:
        return "applied"
    return "retry" if event.will_retry else "failed"


class OtelObserver:
    """A ``delivery_attempted`` observer reporting to OpenTelemetry providers.

    ``None`` providers mean the global ones (looked up now; the API's proxies follow a
    provider set later). Thread-safe: instruments and tracers are, and it keeps no state.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        record_subject_id: bool = True,
        inject_traceparent: bool = False,
    ) -> None:
        from opentelemetry import metrics, trace

        self.record_subject_id = record_subject_id
        self.inject_traceparent = inject_traceparent
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.updates = meter.create_counter(
            "msgbridge.updates", unit="{update}", description="Updates that finished sending"
        )
        self.attempts = meter.create_counter(
            "msgbridge.attempts", unit="{attempt}", description="HTTP attempts to vendors"
        )
        self.duration = meter.create_histogram(
            "msgbridge.attempt.duration", unit="s", description="Duration of each attempt"
        )
        self.rate_limited = meter.create_counter(
            "msgbridge.rate_limited", unit="{attempt}", description="Attempts answered 429"
        )
        self.retry_delay = meter.create_histogram(
            "msgbridge.retry.delay", unit="s", description="Backoff before each retry"
        )
        self.limiter_wait = meter.create_histogram(
            "msgbridge.limiter.wait",
            unit="s",
            description="Time each attempt waited for its connection's rate limiter",
        )

    @hookimpl
    def delivery_attempted(self, event: DeliveryAttempt) -> None:
        outcome = _outcome(event)
        operation = event.operation.value
        base: dict[str, Any] = {
            "msgbridge.connection": event.connection,
            "msgbridge.adapter": event.adapter,
            "msgbridge.operation": operation,
        }
        attributes: dict[str, Any] = {**base, "msgbridge.outcome": outcome}
        if event.http_status is not None:
            attributes["http.response.status_code"] = event.http_status
        if event.error is not None:
            attributes["error.type"] = event.error
        self.attempts.add(1, attributes)
        self.duration.record(max(0.0, event.elapsed), attributes)
        if event.http_status == 429:
            self.rate_limited.add(1, base)
        if event.will_retry and event.delay is not None:
            self.retry_delay.record(event.delay, base)
        self.limiter_wait.record(max(0.0, event.limiter_wait), base)
        if outcome != "retry":
            self.updates.add(1, {**base, "msgbridge.outcome": outcome})
        self._span(event, outcome, operation, attributes)

    @hookimpl
    def delivery_headers(
        self, connection: str, adapter: str, operation: str, subject_id: str, attempt: int
    ) -> dict[str, str] | None:
        if not self.inject_traceparent:
            return None
        return _trace_context()

    def _span(
        self, event: DeliveryAttempt, outcome: str, operation: str, attributes: dict[str, Any]
    ) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        end = time.time_ns()
        start = end - int(max(0.0, event.elapsed) * 1e9)
        span_attributes = {**attributes, "msgbridge.attempt": event.attempt}
        if self.record_subject_id:
            span_attributes["msgbridge.subject_id"] = event.subject_id
        if event.trace_id is not None:
            span_attributes["msgbridge.vendor_trace_id"] = event.trace_id
        if event.will_retry and event.delay is not None:
            span_attributes["msgbridge.retry_delay"] = event.delay
        span = self.tracer.start_span(
            f"msgbridge {operation}",
            kind=SpanKind.CLIENT,
            attributes=span_attributes,
            start_time=start,
        )
        if outcome != "applied":
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=end)


_default: OtelObserver | None = None


@hookimpl
def delivery_attempted(event: DeliveryAttempt) -> None:
    """The installed plugin's hook: report to the global providers (unless disabled)."""
    global _default
    if os.environ.get(DISABLE_ENV, "").strip() in ("1", "true", "yes"):
        return
    if _default is None:
        if "opentelemetry" not in sys.modules:
            return  # the application never imported OpenTelemetry: nothing to report to
        _default = OtelObserver()
    _default.delivery_attempted(event)


def _trace_context() -> dict[str, str] | None:
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


@hookimpl
def delivery_headers(
    connection: str, adapter: str, operation: str, subject_id: str, attempt: int
) -> dict[str, str] | None:
    """The installed plugin's hook: the current trace context, when asked for."""
    if os.environ.get(TRACEPARENT_ENV, "").strip() not in ("1", "true", "yes"):
        return None
    if os.environ.get(DISABLE_ENV, "").strip() in ("1", "true", "yes"):
        return None
    if "opentelemetry" not in sys.modules:
        return None
    return _trace_context()
