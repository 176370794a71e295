"""Build fake third-party distributions on disk, discoverable through entry points."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import attrs
import pytest

from msgbridge import AdapterRegistry

#: Source of a working third-party adapter plugin; ``{adapter_id}`` is filled in.
GOOD_PLUGIN = """
import attrs

from msgbridge import (
    Adapter,
    AdapterDefaults,
    Capabilities,
    DeliveryState,
    Operation,
    RateBudget,
    RequestSpec,
    StateMapping,
    VendorResult,
    hookimpl,
)


@attrs.frozen
class FakeSettings:
    base_url: str | None = None


class FakeAdapter(Adapter[FakeSettings]):
    id = "{adapter_id}"
    settings_type = FakeSettings
    capabilities = Capabilities(
        operations=frozenset({{Operation.UPDATE_STATUS}}),
        states={{s: StateMapping.exact(s.value.upper()) for s in DeliveryState}},
    )
    defaults = AdapterDefaults(base_url="https://fake.example", rate_budget=RateBudget(50, 1.0))

    def prepare_status(self, update, settings):
        return RequestSpec(
            "POST",
            f"/messages/{{update.message_id}}",
            json={{"state": self.vendor_value(update.state)}},
            subject_id=update.message_id,
        )

    def interpret(self, request, response, settings):
        return VendorResult(http_status=response.status, trace_id=response.header("x-trace"))


@hookimpl
def register_adapters(register):
    register(FakeAdapter())
"""


class FakeSite:
    """A directory on ``sys.path`` holding modules and ``*.dist-info`` directories."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def module(self, name: str, source: str) -> None:
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        self.modules.append(name)

    def distribution(self, name: str, version: str, entry_points: dict[str, str]) -> Path:
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{ep} = {value}" for ep, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[msgbridge]\n{lines}\n")
        return info

    def good_plugin(self, module: str, adapter_id: str) -> None:
        self.module(module, GOOD_PLUGIN.format(adapter_id=adapter_id))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    fake = FakeSite(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates importlib caches
    yield fake
    for name in fake.modules:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()


@pytest.fixture
def add_good_dist(site: FakeSite) -> Callable[..., None]:
    """Add a working distribution ``fake-plugin 1.0`` (entry point ``fake``) by default."""

    def add(
        dist: str = "fake-plugin",
        version: str = "1.0",
        entry_point: str = "fake",
        module: str = "fake_plugin",
        adapter_id: str = "fake",
    ) -> None:
        site.good_plugin(module, adapter_id)
        site.distribution(dist, version, {entry_point: module})

    return add


@attrs.frozen
class Baseline:
    """What is installed before a test adds its fake distributions (other plugins may be)."""

    adapter_ids: frozenset[str]
    entry_points: frozenset[str]
    failures: int


@pytest.fixture
def baseline() -> Baseline:
    registry = AdapterRegistry.from_entry_points(environ={})
    return Baseline(
        adapter_ids=frozenset(entry.adapter.id for entry in registry),
        entry_points=frozenset(ep.name for ep in entry_points(group="msgbridge")),
        failures=len(registry.failures),
    )
