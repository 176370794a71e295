"""The strict registry: misspelled hooks, plugins that register nothing and duplicates are
failures that name the distribution, never exceptions, and never take other plugins down."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from msgbridge import AdapterRegistry, DeliveryAttempt
from msgbridge.adapter import Operation
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.cli import app
from msgbridge.registry import PluginSource

from .conftest import Baseline, FakeSite

AddDist = Callable[..., None]

MISSPELLED_HOOK = """
from msgbridge import hookimpl
from msgbridge.adapters.hubspot import HubSpotAdapter


class Typo(HubSpotAdapter):
    id = "typo"


@hookimpl
def register_adapter(register):
    register(Typo())
"""

MISSPELLED_NEXT_TO_GOOD = """
from msgbridge import hookimpl
from msgbridge.adapters.hubspot import HubSpotAdapter


class Half(HubSpotAdapter):
    id = "half"


@hookimpl
def register_adapters(register):
    register(Half())


@hookimpl
def delivery_attempt(event):
    pass
"""

NO_HOOKIMPL = """
from msgbridge.adapters.hubspot import HubSpotAdapter


class Forgotten(HubSpotAdapter):
    id = "forgotten"


def register_adapters(register):  # no @hookimpl: pluggy never sees it
    register(Forgotten())
"""

REGISTERS_ZERO = """
from msgbridge import hookimpl


@hookimpl
def register_adapters(register):
    pass  # e.g. a config switch left off
"""

EMULATOR_ONLY = """
from msgbridge import hookimpl


@hookimpl
def register_emulated_vendors(register):
    register(object())  # stands in for an EmulatedVendor; the emulator checks the type
"""

EMPTY_EMULATOR_HOOK = """
from msgbridge import hookimpl


@hookimpl
def register_emulated_vendors(register):
    pass
"""

OPTIONAL_UNKNOWN_HOOK = """
from msgbridge import hookimpl
from msgbridge.adapters.hubspot import HubSpotAdapter


class Future(HubSpotAdapter):
    id = "future"


@hookimpl
def register_adapters(register):
    register(Future())


@hookimpl(optionalhook=True)
def a_hook_of_a_later_msgbridge(thing):
    pass
"""


def _load(site: FakeSite, source: str) -> AdapterRegistry:
    site.module("strict_plugin", source)
    site.distribution("strict-plugin", "0.7", {"strict": "strict_plugin"})
    return AdapterRegistry.from_entry_points(environ={})


@pytest.mark.parametrize(
    ("source", "reason", "absent"),
    [
        (
            MISSPELLED_HOOK,
            "unknown hook 'register_adapter' (did you mean 'register_adapters'?)",
            "typo",
        ),
        (
            MISSPELLED_NEXT_TO_GOOD,
            "unknown hook 'delivery_attempt' (did you mean 'delivery_attempted'?)",
            "half",
        ),
        (NO_HOOKIMPL, "registers nothing: it has no @msgbridge.hookimpl function", "forgotten"),
        (REGISTERS_ZERO, "registers nothing: register_adapters called register() zero", ""),
    ],
    ids=["misspelled", "misspelled-next-to-good", "no-hookimpl", "registers-zero"],
)
def test_plugin_refused_with_a_reason_naming_its_distribution(
    site: FakeSite,
    add_good_dist: AddDist,
    baseline: Baseline,
    caplog: pytest.LogCaptureFixture,
    source: str,
    reason: str,
    absent: str,
) -> None:
    add_good_dist()
    caplog.set_level(logging.WARNING, logger="msgbridge.plugins")
    registry = _load(site, source)
    [failure] = [f for f in registry.failures if f.source.name == "strict"]
    assert (failure.source.distribution, failure.source.version) == ("strict-plugin", "0.7")
    assert failure.reason.startswith(reason), failure.reason
    assert "plugin 'strict' (strict_plugin; strict-plugin 0.7)" in failure.message
    assert len(registry.failures) == baseline.failures + 1
    assert {e.adapter.id for e in registry} == baseline.adapter_ids | {"fake"}  # others load
    assert absent not in registry
    assert any(failure.message in r.getMessage() for r in caplog.records)
    # refused means unregistered: its hooks are not called later either
    assert registry.plugin_manager.get_plugin("strict") is None


def test_misspelled_hook_names_every_real_hook(site: FakeSite) -> None:
    registry = _load(site, MISSPELLED_HOOK)
    [failure] = [f for f in registry.failures if f.source.name == "strict"]
    for hook in ("register_adapters", "register_emulated_vendors", "delivery_attempted"):
        assert hook in failure.reason


@pytest.mark.parametrize("source", [EMULATOR_ONLY, OPTIONAL_UNKNOWN_HOOK])
def test_plugins_that_offer_something_are_accepted(
    site: FakeSite, baseline: Baseline, source: str
) -> None:
    registry = _load(site, source)
    assert registry.emulated_vendors is not None
    assert [f for f in registry.failures if f.source.name == "strict"] == []
    assert len(registry.failures) == baseline.failures
    assert registry.plugin_manager.get_plugin("strict") is not None


def test_an_empty_emulator_hook_is_found_when_vendors_are_asked_for(site: FakeSite) -> None:
    registry = _load(site, EMPTY_EMULATOR_HOOK)
    assert [f for f in registry.failures if f.source.name == "strict"] == []  # not asked yet
    assert registry.emulated_vendors is not None
    assert registry.emulated_vendors is not None  # asked twice, recorded once
    [failure] = [f for f in registry.failures if f.source.name == "strict"]
    assert failure.source.distribution == "strict-plugin"
    assert failure.reason.startswith("registers nothing: no adapter, no observer")


def test_same_module_under_two_entry_points_is_a_failure(
    site: FakeSite, baseline: Baseline
) -> None:
    site.good_plugin("twice_plugin", "twice")
    site.distribution("twice-a", "1.0", {"twice-a": "twice_plugin"})
    site.distribution("twice-b", "2.0", {"twice-b": "twice_plugin"})
    registry = AdapterRegistry.from_entry_points(environ={})
    assert registry.entry("twice").source.distribution == "twice-a"
    [failure] = [f for f in registry.failures if f.source.name == "twice-b"]
    assert failure.source.distribution == "twice-b"
    assert failure.reason.startswith("already loaded as plugin 'twice-a'")
    assert "twice-a 1.0" in failure.reason
    assert len(registry.failures) == baseline.failures + 1


def test_two_plugins_with_one_entry_point_name_is_a_failure(site: FakeSite) -> None:
    registry = AdapterRegistry()
    site.good_plugin("first_named", "first")
    site.good_plugin("second_named", "second")
    import first_named  # type: ignore[import-not-found]
    import second_named  # type: ignore[import-not-found]

    assert registry.add_plugin(first_named, source=PluginSource("same", distribution="a"))
    assert not registry.add_plugin(second_named, source=PluginSource("same", distribution="b"))
    [failure] = registry.failures
    assert failure.source.distribution == "b"
    assert "the plugin name 'same' is already used by plugin 'same'" in failure.reason
    assert "first" in registry
    assert "second" not in registry


def _event() -> DeliveryAttempt:
    return DeliveryAttempt(
        connection="c",
        adapter="hubspot",
        operation=Operation.UPDATE_STATUS,
        subject_id="m1",
        attempt=1,
        http_status=200,
        elapsed=0.0,
    )


def record_event(seen: list[int], event: DeliveryAttempt) -> None:
    seen.append(event.attempt)


def test_same_observer_twice_is_a_failure_not_a_valueerror() -> None:
    registry = AdapterRegistry()
    seen: list[int] = []

    def observer(event: DeliveryAttempt) -> None:
        record_event(seen, event)

    assert registry.add_observer(observer) is True
    assert registry.add_observer(observer) is False  # was a raw pluggy ValueError
    events: list[DeliveryAttempt] = []
    assert registry.add_observer(events.append) is True
    assert registry.add_observer(events.append) is False  # equal bound methods count too
    registry.notify(_event())
    assert seen == [1]  # each observer once
    assert len(events) == 1
    first, second = registry.failures
    assert first.reason == "observer added twice; it stays registered once"
    assert first.source.name.endswith("observer")
    assert first.source.value == f"{__name__}:{observer.__qualname__}"
    assert second.source.value == "builtins:list.append"


def test_duplicate_observer_names_its_distribution() -> None:
    registry = AdapterRegistry()
    adapter = HubSpotAdapter()  # any callable from an installed distribution
    observer: Any = adapter.rate_limit_feedback
    registry.add_observer(observer)
    registry.add_observer(observer)
    [failure] = registry.failures
    assert failure.source.distribution == "msgbridge"
    assert failure.source.version
    assert "msgbridge.adapters.hubspot:HubSpotAdapter.rate_limit_feedback" in failure.message


def test_cli_lists_the_misspelled_plugin(site: FakeSite, add_good_dist: AddDist) -> None:
    add_good_dist()
    site.module("strict_plugin", MISSPELLED_HOOK)
    site.distribution("strict-plugin", "0.7", {"strict": "strict_plugin"})
    runner = CliRunner()
    env = {
        "MSGBRIDGE_PLUGINS_BLOCK": "",
        "MSGBRIDGE_PLUGINS_ALLOW": "strict,fake",
        "COLUMNS": "200",
    }
    result = runner.invoke(app, ["adapters", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [a["id"] for a in data["adapters"]] == ["fake"]
    [failure] = data["failures"]
    assert failure["plugin"] == "strict"
    assert (failure["distribution"], failure["version"]) == ("strict-plugin", "0.7")
    assert "unknown hook 'register_adapter'" in failure["reason"]
    assert failure["message"].startswith("plugin 'strict' (strict_plugin; strict-plugin 0.7)")
    human = runner.invoke(app, ["adapters"], env=env, catch_exceptions=False)
    assert human.exit_code == 0
    assert "Plugins that failed to load" in human.stdout
    assert "strict-plugin 0.7" in human.stdout
    assert "did you mean 'register_adapters'?" in " ".join(human.stdout.split())
