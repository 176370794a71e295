"""``traceparent`` reaches the vendor: the caller's trace context on every attempt,
added before the credential signs the request, and only when asked for."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest
from msgbridge_otel import OtelObserver
from opentelemetry.sdk.trace import TracerProvider

from msgbridge import Bridge, Connection, MessageStatus, Outcome, RetryPolicy
from msgbridge.adapter import PreparedRequest
from msgbridge.auth import Credential
from msgbridge.registry import AdapterRegistry
from msgbridge.senders import HttpxSender

OK = {"conversationId": "c1", "messageId": "m1"}


class _Signing(Credential):
    """Records what it signed: the trace headers must already be there."""

    def __init__(self) -> None:
        self.signed: list[Mapping[str, str]] = []

    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        self.signed.append(dict(request.headers))
        return {"Authorization": "Bearer t"}


def _bridge(observer: OtelObserver, seen: list[httpx.Request], credential: Credential) -> Bridge:
    answers = [httpx.Response(503), httpx.Response(200, json=OK)]

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    registry = AdapterRegistry.from_entry_points(environ={"MSGBRIDGE_PLUGINS_ALLOW": "msgbridge"})
    assert registry.add_plugin(observer)
    client = httpx.Client(transport=httpx.MockTransport(vendor))
    return Bridge(
        [Connection("c", adapter="highlevel", credentials=credential)],
        registry=registry,
        sender=HttpxSender(client),
        retry=RetryPolicy(initial_backoff=0.0, max_backoff=0.0, jitter=0.0),
    )


@pytest.mark.parametrize("inject", [True, False])
def test_every_attempt_carries_the_callers_trace_context(inject: bool) -> None:
    tracer = TracerProvider().get_tracer("test")
    observer = OtelObserver(tracer_provider=TracerProvider(), inject_traceparent=inject)
    seen: list[httpx.Request] = []
    credential = _Signing()
    with _bridge(observer, seen, credential) as bridge, tracer.start_as_current_span("caller"):
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        receipt = bridge.update_status("c", MessageStatus("m1", "read"))
    assert receipt.outcome is Outcome.APPLIED
    assert len(seen) == 2
    if not inject:
        assert all("traceparent" not in r.headers for r in seen)
        return
    flags = int(context.trace_flags)
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    assert [r.headers["traceparent"] for r in seen] == [expected, expected]
    assert all(signed["traceparent"] == expected for signed in credential.signed)
