"""The OpenTelemetry observer, asserted from the SDK's in-memory exporters.

Unit tests feed it events; the end-to-end test runs a real ``Bridge`` over HTTP against
msgbridge's emulator with injected 503s and a 429.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the tests need opentelemetry-sdk")
pytest.importorskip("msgbridge_otel", reason="install plugins/msgbridge-otel[test]")

from msgbridge_otel import DISABLE_ENV, OtelObserver
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from msgbridge import Bridge, Connection, MessageStatus, Outcome, RetryPolicy
from msgbridge.adapter import Operation
from msgbridge.auth import BearerToken
from msgbridge.events import DeliveryAttempt
from msgbridge.registry import AdapterRegistry

FAST_RETRY = RetryPolicy(
    max_attempts=4, initial_backoff=0.01, max_backoff=0.05, jitter=0.0, max_retry_after=0.2
)


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        self.observer = OtelObserver(tracer_provider=tracer_provider, meter_provider=meter_provider)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str, **attributes: Any) -> float:
        return sum(
            p.value
            for p in self.points(name)
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        )


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


def _event(**overrides: Any) -> DeliveryAttempt:
    values: dict[str, Any] = {
        "connection": "acme",
        "adapter": "highlevel",
        "operation": Operation.UPDATE_STATUS,
        "subject_id": "m-1",
        "attempt": 1,
        "http_status": 200,
        "elapsed": 0.25,
        "trace_id": "req-1",
    }
    values.update(overrides)
    return DeliveryAttempt(**values)


def test_an_applied_attempt_is_one_client_span_with_its_attributes(telemetry: Telemetry) -> None:
    telemetry.observer.delivery_attempted(_event())
    [span] = telemetry.finished()
    assert span.name == f"msgbridge {Operation.UPDATE_STATUS.value}"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "msgbridge.connection": "acme",
        "msgbridge.adapter": "highlevel",
        "msgbridge.operation": Operation.UPDATE_STATUS.value,
        "msgbridge.outcome": "applied",
        "msgbridge.attempt": 1,
        "msgbridge.subject_id": "m-1",
        "msgbridge.vendor_trace_id": "req-1",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None
    assert span.start_time is not None
    assert span.end_time - span.start_time == pytest.approx(0.25e9, abs=1e6)


def test_a_retried_and_a_failed_attempt_are_errors(telemetry: Telemetry) -> None:
    telemetry.observer.delivery_attempted(
        _event(http_status=503, error="VendorUnavailable", will_retry=True, delay=0.5)
    )
    telemetry.observer.delivery_attempted(
        _event(attempt=2, http_status=None, error="TransportError", elapsed=0.1)
    )
    retry, failed = telemetry.finished()
    assert retry.attributes is not None
    assert failed.attributes is not None
    assert retry.attributes["msgbridge.outcome"] == "retry"
    assert retry.attributes["error.type"] == "VendorUnavailable"
    assert retry.attributes["msgbridge.retry_delay"] == 0.5
    assert failed.attributes["msgbridge.outcome"] == "failed"
    assert "http.response.status_code" not in failed.attributes
    assert retry.status.status_code is StatusCode.ERROR
    assert failed.status.description == "TransportError"
    assert telemetry.total("msgbridge.updates", **{"msgbridge.outcome": "failed"}) == 1
    assert telemetry.total("msgbridge.attempts") == 2
    [delay] = telemetry.points("msgbridge.retry.delay")
    assert (delay.count, delay.sum) == (1, 0.5)


def test_subject_ids_can_be_left_out() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = OtelObserver(tracer_provider=provider, record_subject_id=False)
    observer.delivery_attempted(_event())
    [span] = exporter.get_finished_spans()
    assert "msgbridge.subject_id" not in (span.attributes or {})


@pytest.fixture
def emulator() -> Iterator[Any]:
    pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")
    from msgbridge.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(unknown_messages="create")) as emu:
        emu.add_token("highlevel", "otel-token", account="loc-otel")
        yield emu


def test_a_real_bridge_reports_spans_and_metrics(
    telemetry: Telemetry, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DISABLE_ENV, "1")  # only our providers, not the global ones
    registry = AdapterRegistry.from_entry_points()
    assert registry.plugin_manager.has_plugin("otel")  # installed: loaded by entry point
    registry.add_plugin(telemetry.observer)
    connection = Connection(
        "acme",
        adapter="highlevel",
        credentials=BearerToken("otel-token"),
        settings={"base_url": emulator.base_url("highlevel"), "location_id": "loc-otel"},
    )
    emulator.faults.fail_next(503, times=2, route="update_message_status")
    with Bridge([connection], registry=registry, retry=FAST_RETRY) as bridge:
        first = bridge.update_status("acme", MessageStatus("m-1", "delivered"))
        emulator.faults.fail_next(429, times=1, route="update_message_status")
        second = bridge.update_status("acme", MessageStatus("m-2", "read"))
        stale = bridge.update_status("acme", MessageStatus("m-1", "sent"))
    assert (first.outcome, first.attempts) == (Outcome.APPLIED, 3)
    assert (second.outcome, second.attempts) == (Outcome.APPLIED, 2)
    assert stale.outcome is Outcome.SKIPPED_STALE  # never sent: no attempt, no span
    spans = telemetry.finished()
    seen = [
        (
            s.attributes["msgbridge.subject_id"],
            s.attributes["msgbridge.attempt"],
            s.attributes.get("http.response.status_code"),
            s.attributes["msgbridge.outcome"],
        )
        for s in spans
        if s.attributes is not None
    ]
    assert seen == [
        ("m-1", 1, 503, "retry"),
        ("m-1", 2, 503, "retry"),
        ("m-1", 3, 200, "applied"),
        ("m-2", 1, 429, "retry"),
        ("m-2", 2, 200, "applied"),
    ]
    assert all(s.attributes and s.attributes["msgbridge.connection"] == "acme" for s in spans)
    assert telemetry.total("msgbridge.updates", **{"msgbridge.outcome": "applied"}) == 2
    assert telemetry.total("msgbridge.attempts") == 5
    assert telemetry.total("msgbridge.attempts", **{"http.response.status_code": 503}) == 2
    assert telemetry.total("msgbridge.rate_limited", **{"msgbridge.connection": "acme"}) == 1
    [latency] = telemetry.points("msgbridge.attempt.duration")[:1]
    assert sum(p.count for p in telemetry.points("msgbridge.attempt.duration")) == 5
    assert latency.sum > 0
