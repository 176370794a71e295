"""``msgbridge demo``: the whole pipeline against the in-process emulator, checked end to end."""

from __future__ import annotations

from typing import Any

import pytest

from msgbridge.adapters.highlevel import HighLevelAdapter
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.bridge import Bridge
from msgbridge.cli import demo_cmd
from msgbridge.cli.demo_cmd import expected_vendor_state
from msgbridge.model import DeliveryState

from .conftest import Cli

P, S, D, R, F = (
    DeliveryState.PENDING,
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.READ,
    DeliveryState.FAILED,
)
BUILTINS = {"highlevel", "leadway", "hoop", "hubspot"}


@pytest.mark.parametrize(
    ("states", "highlevel", "hubspot"),
    [
        ([P, S, D, R], "read", "READ"),
        ([S, P], "pending", "SENT"),  # HighLevel: sent is "pending"; HubSpot: no pending
        ([P], "pending", None),
        ([R, D], "read", "READ"),  # out of order: the late "delivered" is stale
        ([D, S], "delivered", "SENT"),
        ([P, F, R], "failed", "FAILED"),  # failed is terminal
        ([D, F], "delivered", "SENT"),  # failed only after pending or sent
        ([S, F, F], "failed", "FAILED"),
        ([S, D, D, S], "delivered", "SENT"),
    ],
)
def test_expected_state_follows_the_monotonic_rule_and_the_mapping(
    states: list[DeliveryState], highlevel: str, hubspot: str | None
) -> None:
    assert expected_vendor_state(HighLevelAdapter(), states) == highlevel
    assert expected_vendor_state(HubSpotAdapter(), states) == hubspot


def test_expected_state_keeps_a_vendors_initial_status() -> None:
    assert expected_vendor_state(HubSpotAdapter(), [P], initial="SENT") == "SENT"


def test_demo_succeeds_and_checks_every_vendor(bare_cli: Cli) -> None:
    data = bare_cli.json("demo", "--messages", "80", "--seed", "3")
    assert data["ok"] is True
    assert data["mismatches"] == []
    vendors = data["vendors"]
    assert set(vendors) >= BUILTINS  # plugin vendors may take part too
    assert sum(v["messages"] for v in vendors.values()) == data["messages"] == 80
    for name, info in vendors.items():
        assert info["messages"] == 80 // len(vendors) or info["messages"] == -(-80 // len(vendors))
        assert info["mismatches"] == 0, name
        assert info["http"]["requests"] >= 1
    for name in ("highlevel", "leadway", "hoop"):
        assert data["vendors"][name]["conversations"] > 0
    assert data["updates"] > 200
    outcomes: dict[str, int] = {}
    for counts in data["by_connection"].values():
        for outcome, count in counts.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    assert sum(outcomes.values()) == data["updates"]
    assert outcomes["applied"] > 0
    assert outcomes["skipped_unsupported"] > 0  # HubSpot "pending"


def test_demo_human_output_and_quiet(bare_cli: Cli) -> None:
    result = bare_cli("demo", "--messages", "40")
    assert result.exit_code == 0, result.stderr
    assert "bridge receipts by connection" in result.stdout
    assert "emulator: final state per vendor" in result.stdout
    assert "demo OK: all" in result.stdout
    quiet = bare_cli("demo", "--messages", "40", "--quiet")
    assert quiet.exit_code == 0
    assert quiet.stdout.strip().startswith("demo OK: all")
    assert len(quiet.stdout.strip().splitlines()) == 1


def test_demo_fails_when_the_bridge_lets_stale_updates_through(
    bare_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check can fail: without the state guard, late callbacks regress messages."""

    class Unguarded(Bridge):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "guard": None})

    monkeypatch.setattr(demo_cmd, "Bridge", Unguarded)
    data = bare_cli.json("demo", "--messages", "300", "--seed", "5", code=1)
    assert data["ok"] is False
    assert data["mismatches"]
    quiet = bare_cli("demo", "--messages", "300", "--seed", "5", "-q")
    assert quiet.exit_code == 1
    assert quiet.stdout.startswith("demo FAILED:")


def test_demo_checks_highlevel_email_status(bare_cli: Cli) -> None:
    data = bare_cli.json("demo", "--messages", "20", "--seed", "5")
    assert data["ok"] is True
    email = data["email_status"]
    assert email == {
        "ok": True,
        "vendors": ["highlevel", "leadway", "hoop"],
        "emails": 6,
        "problems": [],
    }
