"""``msgbridge demo``'s inbound loop: signed webhooks -> intake -> fake carrier -> statuses back.

Every vendor that declares a loop recipe (``EmulatedVendor.demo_loop``) plays it, the
built-in ones through the same declaration a plugin vendor would use.
"""

from __future__ import annotations

from msgbridge.cli.demo_cmd import expected_vendor_state
from msgbridge.cli.demo_loop import FATES, run_demo_loop
from msgbridge.registry import AdapterRegistry

from .conftest import Cli

#: The built-in vendors, which all declare a loop recipe.
BUILTINS = {"highlevel", "leadway", "hoop", "hubspot"}


def test_the_loop_holds_and_refuses_forgeries_and_replays(bare_cli: Cli) -> None:
    data = bare_cli.json("demo", "--loop", "--messages", "24", "--seed", "3")
    assert data["ok"] is True, data["problems"]
    assert set(data["vendors"]) >= BUILTINS
    assert data["messages"] == 24
    assert data["handled_once"] == 24  # duplicates delivered, each message handled once
    turns = [i // len(data["vendors"]) for i in range(24)]
    assert data["duplicates_sent"] == sum(1 for t in turns if t % 4 == 0) > 0
    assert data["forged_refused"] == sum(1 for t in turns if t % 5 == 0) > 0
    assert data["replays_refused"] == sum(1 for t in turns if t % 7 == 0) > 0
    assert data["replies_published"] > 0
    assert sum(data["final_statuses"].values()) == 24


def test_every_message_ends_as_its_adapter_maps_the_scripted_fate() -> None:
    registry = AdapterRegistry.from_entry_points()
    report = run_demo_loop(2 * len(FATES) * len(BUILTINS), seed=1, registry=registry)
    assert report.ok, report.problems
    assert set(report.vendors) >= BUILTINS
    expected = {
        expected_vendor_state(registry.get(name), list(fate)) for name in BUILTINS for fate in FATES
    }
    # HighLevel has no "sent" and HubSpot no "delivered": each ends in its own value.
    assert expected == {"delivered", "read", "failed", "SENT", "READ", "FAILED"}
    assert {exp for _, exp in report.finals.values()} >= expected
    assert all(actual == exp for actual, exp in report.finals.values())
