"""Adapters are discovered through the ``msgbridge`` entry-point group, one plugin at a time."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import httpx
import pytest

from msgbridge import AdapterRegistry, BearerToken, Bridge, Connection, MessageStatus, Outcome
from msgbridge.adapters.highlevel import HighLevelAdapter
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.errors import ConfigurationError
from msgbridge.registry import ALLOW_ENV, BLOCK_ENV, PluginSource

from .conftest import Baseline, FakeSite

BUILTIN_IDS = {"highlevel", "leadway", "hoop", "hubspot"}

AddDist = Callable[..., None]


def ids(registry: AdapterRegistry) -> set[str]:
    return {entry.adapter.id for entry in registry}


def test_builtins_come_through_entry_points_of_msgbridge() -> None:
    registry = AdapterRegistry.from_entry_points(environ={})
    assert ids(registry) >= BUILTIN_IDS
    assert not [f for f in registry.failures if f.source.distribution == "msgbridge"]
    for adapter_id, entry_point in [
        ("highlevel", "highlevel"),
        ("leadway", "highlevel"),
        ("hoop", "highlevel"),
        ("hubspot", "hubspot"),
    ]:
        source = registry.entry(adapter_id).source
        assert source.name == entry_point
        assert source.value == f"msgbridge.adapters.{entry_point}"
        assert source.distribution == "msgbridge"
        assert source.version
    assert isinstance(registry.get("hubspot"), HubSpotAdapter)
    leadway = registry.get("leadway")
    assert isinstance(leadway, HighLevelAdapter)
    assert leadway.variant_of == "highlevel"


def test_fake_distribution_is_discovered_with_its_source(
    add_good_dist: AddDist, baseline: Baseline
) -> None:
    assert "fake" not in baseline.adapter_ids
    add_good_dist()
    registry = AdapterRegistry.from_entry_points(environ={})
    assert len(registry.failures) == baseline.failures
    assert ids(registry) == baseline.adapter_ids | {"fake"}
    source = registry.entry("fake").source
    assert source == PluginSource(
        name="fake", value="fake_plugin", distribution="fake-plugin", version="1.0"
    )
    assert "fake-plugin 1.0" in str(source)
    assert type(registry.get("fake")).__module__ == "fake_plugin"


def test_fake_adapter_works_through_the_bridge(add_good_dist: AddDist) -> None:
    add_good_dist()
    registry = AdapterRegistry.from_entry_points(environ={})
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"x-trace": "fake-trace"})

    connection = Connection(
        "f",
        adapter="fake",
        credentials=BearerToken("fake-token"),
        settings={"base_url": "http://127.0.0.1:9999"},
    )
    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        Bridge(
            [connection],
            registry=registry,
            http_client=client,
            sleep=lambda _: None,
            rng=random.Random(0),
        ) as bridge,
    ):
        receipt = bridge.update_status("f", MessageStatus("m1", "read"))
        with pytest.raises(ConfigurationError) as bad:
            bridge.add_connection(
                Connection("g", adapter="fake", credentials=BearerToken("t"), settings={"x": 1})
            )
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.adapter == "fake"
    assert receipt.vendor_value == "READ"
    assert receipt.trace_id == "fake-trace"
    [request] = seen
    assert str(request.url) == "http://127.0.0.1:9999/messages/m1"
    assert request.content == b'{"state":"READ"}'
    assert request.headers["authorization"] == "Bearer fake-token"
    assert bad.value.key == "x"


BROKEN_IMPORT = """
raise RuntimeError("plugin import exploded")
"""

BROKEN_HOOK = """
from msgbridge import hookimpl


@hookimpl
def register_adapters(register):
    raise ValueError("hook exploded")
"""

NOT_AN_ADAPTER = """
from msgbridge import hookimpl


class Impostor:
    id = "impostor"


@hookimpl
def register_adapters(register):
    register(Impostor())
"""

BAD_ADAPTER_ID = """
from msgbridge import hookimpl
from msgbridge.adapters.hubspot import HubSpotAdapter


class Shouty(HubSpotAdapter):
    id = "Shouty Adapter"


@hookimpl
def register_adapters(register):
    register(Shouty())
"""

WRONG_HOOK_SIGNATURE = """
from msgbridge import hookimpl


@hookimpl
def register_adapters(register, surprise):
    pass
"""

HALF_REGISTERED = """
from msgbridge import hookimpl
from msgbridge.adapters.hubspot import HubSpotAdapter


class Half(HubSpotAdapter):
    id = "half"


@hookimpl
def register_adapters(register):
    register(Half())
    raise RuntimeError("second adapter failed")
"""


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (BROKEN_IMPORT, "import failed: RuntimeError: plugin import exploded"),
        (BROKEN_HOOK, "registration failed: ValueError: hook exploded"),
        (NOT_AN_ADAPTER, "registration failed: ConfigurationError: register() takes"),
        (BAD_ADAPTER_ID, "registration failed: ConfigurationError: adapter id must be"),
        (WRONG_HOOK_SIGNATURE, "invalid plugin: PluginValidationError"),
        (HALF_REGISTERED, "registration failed: RuntimeError: second adapter failed"),
    ],
    ids=["import", "hook", "not-adapter", "bad-id", "signature", "half"],
)
def test_broken_plugin_is_recorded_and_others_load(
    site: FakeSite,
    add_good_dist: AddDist,
    baseline: Baseline,
    caplog: pytest.LogCaptureFixture,
    source: str,
    reason: str,
) -> None:
    add_good_dist()
    site.module("broken_plugin", source)
    site.distribution("broken-plugin", "0.3", {"broken": "broken_plugin"})
    caplog.set_level(logging.WARNING, logger="msgbridge.plugins")
    registry = AdapterRegistry.from_entry_points(environ={})
    assert len(registry.failures) == baseline.failures + 1
    [failure] = [f for f in registry.failures if f.source.name == "broken"]
    assert failure.source.name == "broken"
    assert failure.source.distribution == "broken-plugin"
    assert failure.source.version == "0.3"
    assert failure.reason.startswith(reason)
    assert ids(registry) == baseline.adapter_ids | {"fake"}  # nothing of the broken one
    assert "half" not in registry
    assert any("broken" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigurationError, match=r"plugin\(s\) failed to load"):
        registry.get("impostor")


def test_two_plugins_claiming_one_id_conflict(add_good_dist: AddDist, baseline: Baseline) -> None:
    add_good_dist(dist="fake-plugin", version="1.0", entry_point="fake", module="fake_plugin")
    add_good_dist(dist="other-fake", version="2.5", entry_point="other", module="other_fake")
    registry = AdapterRegistry.from_entry_points(environ={})
    assert len(registry.failures) == baseline.failures
    assert ids(registry) == baseline.adapter_ids
    with pytest.raises(ConfigurationError) as info:
        registry.get("fake")
    message = str(info.value)
    assert "fake-plugin 1.0" in message
    assert "other-fake 2.5" in message
    assert BLOCK_ENV in message
    assert info.value.adapter == "fake"
    assert "fake" not in registry
    assert [s.distribution for s in registry.conflicts["fake"]] == ["fake-plugin", "other-fake"]
    assert isinstance(registry.get("hubspot"), HubSpotAdapter)  # the others still work
    with pytest.raises(ConfigurationError):
        Bridge([Connection("x", adapter="fake", credentials=BearerToken("t"))], registry=registry)


def test_block_one_of_two_conflicting_plugins(add_good_dist: AddDist) -> None:
    add_good_dist(dist="fake-plugin", version="1.0", entry_point="fake", module="fake_plugin")
    add_good_dist(dist="other-fake", version="2.5", entry_point="other", module="other_fake")
    registry = AdapterRegistry.from_entry_points(environ={BLOCK_ENV: "other"})
    assert registry.entry("fake").source.distribution == "fake-plugin"
    assert [s.name for s in registry.skipped] == ["other"]


def test_plugin_claiming_a_builtin_id_conflicts(add_good_dist: AddDist) -> None:
    add_good_dist(adapter_id="hubspot")
    registry = AdapterRegistry.from_entry_points(environ={})
    with pytest.raises(ConfigurationError) as info:
        registry.get("hubspot")
    assert "msgbridge" in str(info.value)
    assert "fake-plugin 1.0" in str(info.value)
    assert isinstance(registry.get("highlevel"), HighLevelAdapter)


Expect = Callable[[Baseline], set[str]]
BUILTIN_EPS = {"highlevel", "hubspot"}


@pytest.mark.parametrize(
    ("environ", "expected", "skipped"),
    [
        ({BLOCK_ENV: "fake"}, lambda b: set(b.adapter_ids), lambda b: {"fake"}),
        (
            {BLOCK_ENV: " fake , hubspot "},
            lambda b: b.adapter_ids - {"hubspot"},
            lambda b: {"fake", "hubspot"},
        ),
        # distribution names work too
        ({BLOCK_ENV: "fake-plugin"}, lambda b: set(b.adapter_ids), lambda b: {"fake"}),
        ({ALLOW_ENV: "fake"}, lambda b: {"fake"}, lambda b: set(b.entry_points)),
        (
            {ALLOW_ENV: "fake,hubspot"},
            lambda b: {"fake", "hubspot"},
            lambda b: b.entry_points - {"hubspot"},
        ),
        (
            {ALLOW_ENV: "msgbridge"},
            lambda b: BUILTIN_IDS,
            lambda b: (b.entry_points | {"fake"}) - BUILTIN_EPS,
        ),
        (
            {ALLOW_ENV: "fake", BLOCK_ENV: "fake"},
            lambda b: set(),
            lambda b: b.entry_points | {"fake"},
        ),
        ({ALLOW_ENV: ""}, lambda b: set(), lambda b: b.entry_points | {"fake"}),
        ({BLOCK_ENV: ""}, lambda b: b.adapter_ids | {"fake"}, lambda b: set()),
    ],
    ids=[
        "block",
        "block-two",
        "block-dist",
        "allow",
        "allow-two",
        "allow-dist",
        "block-beats-allow",
        "allow-empty",
        "block-empty",
    ],
)
def test_allow_and_block_by_entry_point_name(
    add_good_dist: AddDist,
    baseline: Baseline,
    environ: dict[str, str],
    expected: Expect,
    skipped: Expect,
) -> None:
    add_good_dist()
    registry = AdapterRegistry.from_entry_points(environ=environ)
    assert ids(registry) == expected(baseline)
    assert {s.name for s in registry.skipped} == skipped(baseline)
    assert "fake" not in {f.source.name for f in registry.failures}


def test_environment_is_read_when_not_given(
    add_good_dist: AddDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_good_dist()
    monkeypatch.setenv(BLOCK_ENV, "fake")
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    assert "fake" not in AdapterRegistry.from_entry_points()
    monkeypatch.setenv(BLOCK_ENV, "")
    assert "fake" in AdapterRegistry.from_entry_points()


def test_other_entry_point_groups_are_ignored(site: FakeSite, add_good_dist: AddDist) -> None:
    add_good_dist()
    site.good_plugin("elsewhere_plugin", "elsewhere")
    info = site.root / "elsewhere-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: elsewhere\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[not_msgbridge]\nelsewhere = elsewhere_plugin\n")
    registry = AdapterRegistry.from_entry_points(environ={})
    assert "elsewhere" not in registry
    assert "fake" in registry
