"""The limiter-wait metric: how long attempts waited for the connection's rate limiter."""

from __future__ import annotations

import httpx
from msgbridge_otel import OtelObserver
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from msgbridge import BearerToken, Bridge, Connection, MessageStatus, Outcome
from msgbridge.registry import AdapterRegistry
from msgbridge.senders import HttpxSender

OK = {"conversationId": "c1", "messageId": "m1"}


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacing_at_the_budget_shows_in_the_limiter_wait_histogram() -> None:
    reader = InMemoryMetricReader()
    observer = OtelObserver(
        tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[reader])
    )
    registry = AdapterRegistry.from_entry_points(environ={"MSGBRIDGE_PLUGINS_ALLOW": "msgbridge"})
    assert registry.add_plugin(observer)
    fake = FakeTime()
    client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=OK)))
    with Bridge(
        [Connection("c", adapter="highlevel", credentials=BearerToken("t"), rate_limit=(1, 10.0))],
        registry=registry,
        sender=HttpxSender(client),
        clock=fake.clock,
        sleep=fake.sleep,
    ) as bridge:
        first = bridge.update_status("c", MessageStatus("m1", "read"))
        second = bridge.update_status("c", MessageStatus("m2", "read"))
    assert (first.outcome, second.outcome) == (Outcome.APPLIED, Outcome.APPLIED)
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "msgbridge.limiter.wait"
        for point in metric.data.data_points
    ]
    assert sum(p.count for p in points) == 2
    # The second update waited one window (10 s, stretched by the limiter's 2% margin).
    assert 10.0 <= sum(p.sum for p in points) <= 10.5
