"""The installed plugin's own hook: global providers, and free when OpenTelemetry is unused.

Run in subprocesses: global providers can be set only once per process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the tests need opentelemetry-sdk")
pytest.importorskip("msgbridge_otel", reason="install plugins/msgbridge-otel[test]")

EVENT = """
from msgbridge.adapter import Operation
from msgbridge.events import DeliveryAttempt
event = DeliveryAttempt(
    connection="acme", adapter="highlevel", operation=Operation.UPDATE_STATUS,
    subject_id="m-1", attempt=1, http_status=200, elapsed=0.01,
)
"""


def _run(script: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed script
        [sys.executable, "-c", textwrap.dedent(EVENT) + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_opentelemetry_in_the_application_nothing_is_imported() -> None:
    out = _run(
        """
        import sys
        from msgbridge.registry import AdapterRegistry
        registry = AdapterRegistry.from_entry_points()
        assert registry.plugin_manager.has_plugin("otel")
        registry.notify(event)
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    assert out == "[]"


def test_the_installed_plugin_reports_to_the_global_providers() -> None:
    out = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from msgbridge.registry import AdapterRegistry

        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)
        AdapterRegistry.from_entry_points().notify(event)
        [span] = spans.get_finished_spans()
        print(span.name, span.attributes["msgbridge.connection"])
        """
    )
    assert out == "msgbridge update_status acme"


def test_the_kill_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSGBRIDGE_OTEL_DISABLED", "1")
    out = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from msgbridge.registry import AdapterRegistry

        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)
        AdapterRegistry.from_entry_points().notify(event)
        print(len(spans.get_finished_spans()))
        """
    )
    assert out == "0"
