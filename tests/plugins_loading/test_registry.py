"""The registry as an instance: direct registration, conflicts, observers, isolation."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from msgbridge import (
    AdapterRegistry,
    BearerToken,
    Bridge,
    Connection,
    DeliveryAttempt,
    MessageStatus,
    hookimpl,
)
from msgbridge.adapter import Operation
from msgbridge.adapters.highlevel import LEADWAY, HighLevelAdapter
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.errors import ConfigurationError
from msgbridge.registry import PluginSource

from .conftest import FakeSite


class OtherHubSpot(HubSpotAdapter):
    """Same id as the built-in, from somewhere else."""


def event(attempt: int = 1) -> DeliveryAttempt:
    return DeliveryAttempt(
        connection="c",
        adapter="hubspot",
        operation=Operation.UPDATE_STATUS,
        subject_id="m1",
        attempt=attempt,
        http_status=200,
        elapsed=0.0,
    )


def test_register_and_lookup() -> None:
    registry = AdapterRegistry()
    adapter = HubSpotAdapter()
    registry.register(adapter, source=PluginSource("mine", distribution="my-dist", version="3"))
    assert registry.get("hubspot") is adapter
    assert "hubspot" in registry
    assert len(registry) == 1
    assert [e.adapter for e in registry] == [adapter]
    assert registry.entry("hubspot").source.distribution == "my-dist"


def test_register_duplicate_names_both_sources() -> None:
    registry = AdapterRegistry()
    registry.register(HubSpotAdapter(), source=PluginSource("first", distribution="a", version="1"))
    with pytest.raises(ConfigurationError) as info:
        registry.register(
            OtherHubSpot(), source=PluginSource("second", distribution="b", version="2")
        )
    message = str(info.value)
    assert "plugin 'first'" in message
    assert "a 1" in message
    assert "plugin 'second'" in message
    assert "b 2" in message
    assert info.value.adapter == "hubspot"
    assert type(registry.get("hubspot")) is HubSpotAdapter  # the first one stays


def test_register_default_source_names_the_class() -> None:
    registry = AdapterRegistry()
    registry.register(HubSpotAdapter())
    with pytest.raises(ConfigurationError) as info:
        registry.register(OtherHubSpot())
    assert "msgbridge.adapters.hubspot.HubSpotAdapter" in str(info.value)
    assert f"{__name__}.OtherHubSpot" in str(info.value)


@pytest.mark.parametrize(
    ("adapter", "text"),
    [
        (object(), "Adapter instance"),
        (HubSpotAdapter, "Adapter instance"),  # the class, not an instance
    ],
)
def test_register_refuses_non_adapters(adapter: Any, text: str) -> None:
    registry = AdapterRegistry()
    with pytest.raises(ConfigurationError, match=text):
        registry.register(adapter)
    assert len(registry) == 0


@pytest.mark.parametrize("bad_id", ["", "Upper", "with space", None])
def test_register_refuses_bad_ids(bad_id: Any) -> None:
    adapter = HubSpotAdapter()
    adapter.id = bad_id  # type: ignore[assignment]
    with pytest.raises(ConfigurationError, match="adapter id must be"):
        AdapterRegistry().register(adapter)


def test_unknown_adapter_lists_installed() -> None:
    registry = AdapterRegistry()
    registry.register(HighLevelAdapter(LEADWAY))
    with pytest.raises(ConfigurationError) as info:
        registry.get("leadwya")
    assert info.value.key == "adapter"
    assert "installed: leadway" in str(info.value)


def test_register_refuses_an_id_already_in_conflict() -> None:
    registry = AdapterRegistry()

    class PluginA:
        @hookimpl
        def register_adapters(self, register: Any) -> None:
            register(HubSpotAdapter())

    class PluginB:
        @hookimpl
        def register_adapters(self, register: Any) -> None:
            register(OtherHubSpot())

    assert registry.add_plugin(PluginA(), source=PluginSource("a"))
    assert registry.add_plugin(PluginB(), source=PluginSource("b"))
    assert "hubspot" not in registry
    with pytest.raises(ConfigurationError):
        registry.register(HubSpotAdapter(), source=PluginSource("c"))
    assert "hubspot" not in registry


def test_plugin_object_registration_and_idempotence() -> None:
    registry = AdapterRegistry()
    calls: list[int] = []

    class Plugin:
        @hookimpl
        def register_adapters(self, register: Any) -> None:
            calls.append(1)
            register(HubSpotAdapter())

    plugin = Plugin()
    assert registry.add_plugin(plugin, source=PluginSource("p")) is True
    assert registry.add_plugin(plugin, source=PluginSource("p")) is True
    assert calls == [1]
    assert registry.entry("hubspot").source.name == "p"
    assert registry.failures == ()


def test_registries_do_not_share_state() -> None:
    first = AdapterRegistry()
    second = AdapterRegistry()
    first.register(HubSpotAdapter())
    seen: list[int] = []
    first.add_observer(lambda e: seen.append(e.attempt))
    assert "hubspot" in first
    assert "hubspot" not in second
    second.notify(event(7))
    first.notify(event(3))
    assert seen == [3]
    assert first.plugin_manager is not second.plugin_manager


def test_entry_point_registries_are_independent() -> None:
    one = AdapterRegistry.from_entry_points(environ={})
    two = AdapterRegistry.from_entry_points(environ={})
    assert one.get("hubspot") is not two.get("hubspot")
    seen: list[str] = []
    one.add_observer(lambda e: seen.append("one"))
    two.notify(event())
    assert seen == []
    one.register(_renamed("extra"))
    assert "extra" in one
    assert "extra" not in two


def _renamed(adapter_id: str) -> HubSpotAdapter:
    adapter = HubSpotAdapter()
    adapter.id = adapter_id  # type: ignore[misc]
    return adapter


OBSERVER_PLUGIN = """
from msgbridge import hookimpl

SEEN = []


@hookimpl
def delivery_attempted(event):
    SEEN.append((event.connection, event.attempt, event.http_status))
"""


def test_entry_point_observer_plugin_sees_bridge_attempts(site: FakeSite) -> None:
    site.module("observer_plugin", OBSERVER_PLUGIN)
    site.distribution("observer-plugin", "0.1", {"observer": "observer_plugin"})
    registry = AdapterRegistry.from_entry_points(environ={})
    assert "observer" not in {f.source.name for f in registry.failures}
    import observer_plugin  # type: ignore[import-not-found]

    answers = iter([httpx.Response(503), httpx.Response(200, json={"id": "m1"})])
    connection = Connection(
        "hs", adapter="hubspot", credentials=BearerToken("t"), settings={"channel_id": 1}
    )
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: next(answers))) as client,
        Bridge(
            [connection],
            registry=registry,
            http_client=client,
            sleep=lambda _: None,
            rng=random.Random(0),
        ) as bridge,
    ):
        bridge.update_status("hs", MessageStatus("m1", "read"))
    assert observer_plugin.SEEN == [("hs", 1, 503), ("hs", 2, 200)]
