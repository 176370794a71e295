"""``msgbridge adapters``: built-ins with their mappings, and broken/blocked/conflicting plugins."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from .conftest import Cli

BUILTINS = ("highlevel", "hoop", "hubspot", "leadway")

HIGHLEVEL_ROWS = [
    {"state": "pending", "vendor_value": "pending", "fidelity": "exact"},
    {"state": "sent", "vendor_value": "pending", "fidelity": "coarse"},
    {"state": "delivered", "vendor_value": "delivered", "fidelity": "exact"},
    {"state": "read", "vendor_value": "read", "fidelity": "exact"},
    {"state": "failed", "vendor_value": "failed", "fidelity": "exact"},
]
HUBSPOT_ROWS = [
    {"state": "pending", "vendor_value": None, "fidelity": "none"},
    {"state": "sent", "vendor_value": "SENT", "fidelity": "exact"},
    {"state": "delivered", "vendor_value": "SENT", "fidelity": "coarse"},
    {"state": "read", "vendor_value": "READ", "fidelity": "exact"},
    {"state": "failed", "vendor_value": "FAILED", "fidelity": "exact"},
]


def test_json_lists_the_four_builtins_with_origin_operations_and_mappings(bare_cli: Cli) -> None:
    data = bare_cli.json("adapters")
    adapters = {a["id"]: a for a in data["adapters"]}
    assert set(BUILTINS) <= set(adapters)
    for name in ("highlevel", "leadway", "hoop"):
        entry = adapters[name]
        assert entry["states"] == HIGHLEVEL_ROWS
        assert entry["operations"] == [
            "publish_inbound",
            "update_conversation",
            "update_email_status",
            "update_status",
        ]
        assert entry["source"]["distribution"] == "msgbridge"
        assert entry["source"]["version"] == "0.1.0"
        assert entry["source"]["plugin"] == "highlevel"
    assert adapters["highlevel"]["variant_of"] is None
    assert adapters["leadway"]["variant_of"] == "highlevel"
    assert adapters["hoop"]["variant_of"] == "highlevel"
    assert adapters["hubspot"]["states"] == HUBSPOT_ROWS
    assert adapters["hubspot"]["operations"] == ["publish_inbound", "update_status"]
    assert adapters["hubspot"]["source"]["plugin"] == "hubspot"
    assert data["failures"] == []
    assert data["conflicts"] == []


def test_tables_show_every_adapter_and_its_mapping_rows(bare_cli: Cli) -> None:
    result = bare_cli("adapters")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for name in BUILTINS:
        assert re.search(rf"^\W*{name}\b", out, re.M), name
    assert "leadway (variant of highlevel)" in out
    assert "hoop (variant of highlevel)" in out
    # One mapping row per state and adapter (plugins installed alongside count too).
    installed = len(bare_cli.json("adapters")["adapters"])
    assert installed >= 4
    row = r"^\W*(pending|sent|delivered|read|failed)\W+\S+\W+(exact|coarse|none)\W*$"
    assert len(re.findall(row, out, re.M)) == 5 * installed
    assert re.search(r"sent\W+pending\W+coarse", out)  # HighLevel has no "sent"
    assert re.search(r"pending\W+—\W+none", out)  # HubSpot has no "pending"
    assert re.search(r"delivered\W+SENT\W+coarse", out)


def test_blocked_plugin_is_listed_as_skipped(bare_cli: Cli) -> None:
    data = bare_cli.json("adapters", MSGBRIDGE_PLUGINS_BLOCK="hubspot")
    assert "hubspot" not in {a["id"] for a in data["adapters"]}
    assert [s["plugin"] for s in data["skipped"]] == ["hubspot"]
    human = bare_cli("adapters", MSGBRIDGE_PLUGINS_BLOCK="hubspot").stdout
    assert "Plugins skipped" in human


def _fake_distribution(root: Path, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    dist = root / "cli_fake_plugins-9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cli-fake-plugins\nVersion: 9.9\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[msgbridge]\n{lines}", encoding="utf-8")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def test_plugin_that_fails_to_load_is_listed_with_its_reason(
    bare_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _fake_distribution(
        site,
        {"brokenone": "cli_broken_plugin"},
        {"cli_broken_plugin": "raise RuntimeError('the plugin is broken on purpose')\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    data = bare_cli.json("adapters")
    assert set(BUILTINS) <= {a["id"] for a in data["adapters"]}
    [failure] = data["failures"]
    assert failure["plugin"] == "brokenone"
    assert failure["distribution"] == "cli-fake-plugins"
    assert failure["version"] == "9.9"
    assert "the plugin is broken on purpose" in failure["reason"]
    human = bare_cli("adapters")
    assert human.exit_code == 0
    assert "Plugins that failed to load" in human.stdout
    assert "broken on purpose" in human.stdout


def test_adapter_id_claimed_twice_is_listed_as_a_conflict(
    bare_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _fake_distribution(
        site,
        {"impostor": "cli_conflict_plugin"},
        {
            "cli_conflict_plugin": """
                from msgbridge.adapters.hubspot import HubSpotAdapter
                from msgbridge.hookspecs import hookimpl

                @hookimpl
                def register_adapters(register):
                    register(HubSpotAdapter())
            """
        },
    )
    monkeypatch.syspath_prepend(str(site))
    data = bare_cli.json("adapters")
    assert "hubspot" not in {a["id"] for a in data["adapters"]}
    [conflict] = data["conflicts"]
    assert conflict["adapter"] == "hubspot"
    assert sorted(s["plugin"] for s in conflict["claimed_by"]) == ["hubspot", "impostor"]
    assert "claimed more than once" in bare_cli("adapters").stdout
