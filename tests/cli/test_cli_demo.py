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
    # One verdict per part: the status batch, then the inbound loop.
    status, loop = quiet.stdout.strip().splitlines()
    assert status.startswith("demo OK: all")
    assert loop.startswith("demo loop OK:")


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


def test_demo_fits_80_columns_and_explains_itself(bare_cli: Cli) -> None:
    result = bare_cli("demo", "--messages", "60", "--seed", "5", COLUMNS="80")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide
    text = " ".join(result.stdout.split())
    header = next(line for line in lines if line.startswith("connection"))
    assert header.split() == [
        "connection",
        "applied",
        "unsup.",
        "stale",
        "dup.",
        "supers.",
        "failed",
        "retries",
        "total",
    ]
    # A legend for every abbreviated skip outcome, and the retries column.
    for term in ("unsup.:", "stale:", "dup.:", "supers.:", "retries:"):
        assert term in text
    # Why the rate-limited account saw no 429: the client paces itself.
    assert "limited to 20 requests per 1 s, yet the emulator answered 0 request(s) with 429" in text
    assert "paces every connection at its budget client-side" in text
    # And where to go from here.
    assert lines[-5] == "what to try next:"
    assert "msgbridge config init" in lines[-3]


def test_demo_json_counts_retries(bare_cli: Cli) -> None:
    data = bare_cli.json("demo", "--messages", "60", "--seed", "5")
    assert set(data["retries"]) <= set(data["by_connection"])
    assert sum(data["retries"].values()) > 0  # the demo injects 5xx and drops


def test_the_default_demo_runs_the_whole_loop_and_every_message_settles(bare_cli: Cli) -> None:
    """``msgbridge demo`` with no flags: the status part, then the inbound loop (issue 14
    item 5) on every vendor that declares one; exit 0 only if both held."""
    data = bare_cli.json("demo", "--messages", "40", "--loop-messages", "20")
    assert data["ok"] is True
    assert data["status_ok"] is True
    assert data["messages"] == 40
    assert data["mismatches"] == []
    loop = data["loop"]
    assert loop["ok"] is True, loop["problems"]
    assert set(loop["vendors"]) >= BUILTINS
    assert loop["messages"] == 20
    assert loop["handled_once"] == 20  # duplicates delivered, each handled once
    assert sum(loop["final_statuses"].values()) == 20  # every message settled as scripted
    assert loop["forged_refused"] > 0
    assert loop["replays_refused"] > 0
    assert loop["replies_published"] > 0


def test_status_only_skips_the_loop_and_the_parts_exclude_each_other(bare_cli: Cli) -> None:
    data = bare_cli.json("demo", "--messages", "20", "--status-only")
    assert data["ok"] is True
    assert "loop" not in data
    both = bare_cli("demo", "--loop", "--status-only")
    assert both.exit_code == 2
    assert "--loop and --status-only exclude each other" in both.stderr
