"""``msgbridge demo --loop``: signed webhooks -> intake -> fake carrier -> statuses back."""

from __future__ import annotations

from msgbridge.cli.demo_loop import run_demo_loop

from .conftest import Cli


def test_the_loop_holds_and_refuses_forgeries_and_replays(bare_cli: Cli) -> None:
    data = bare_cli.json("demo", "--loop", "--messages", "24", "--seed", "3")
    assert data["ok"] is True, data["problems"]
    assert data["messages"] == 24
    assert data["handled_once"] == 24  # duplicates delivered, each message handled once
    assert data["duplicates_sent"] == 6
    assert data["forged_refused"] > 0
    assert data["replays_refused"] > 0
    assert data["replies_published"] == 8
    assert sum(data["final_statuses"].values()) == 24


def test_report_lists_what_did_not_hold() -> None:
    report = run_demo_loop(6, seed=1)
    assert report.ok, report.problems
    assert {expected for _, expected in report.finals.values()} == {
        "delivered", "read", "failed", "SENT", "READ", "FAILED"
    }  # fmt: skip
    assert all(actual == expected for actual, expected in report.finals.values())
