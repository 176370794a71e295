"""``PersistentGuard`` shared by plain bridges in several processes: check → send → record
is atomic per message (claims), and records only move forward."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

from msgbridge import DeliveryState
from msgbridge.emulator import Emulator
from msgbridge.outbox import Outbox, PersistentGuard

from .conftest import HL_VERSIONS, LOCATION, FakeClock

HL_RANK = {"pending": 0, "delivered": 2, "read": 3, "failed": 2}

SENDER = """
import json, sys
from msgbridge import BearerToken, Bridge, Connection, MessageStatus
from msgbridge.outbox import Outbox
from msgbridge.retry import RetryPolicy
target, base_url, version, location, items = sys.argv[1:6]
connection = Connection("highlevel", adapter="highlevel",
    credentials=BearerToken("demo-highlevel-token"),
    settings={"base_url": base_url, "version": version, "location_id": location})
outcomes = {}
with Outbox(target) as box:
    with Bridge([connection], guard=box.guard(), rate_limits=False,
                retry=RetryPolicy.none()) as bridge:
        for message_id, state in json.loads(items):
            receipt = bridge.update_status("highlevel", MessageStatus(message_id, state))
            outcomes[receipt.outcome.value] = outcomes.get(receipt.outcome.value, 0) + 1
print(json.dumps(outcomes))
"""


def test_two_processes_sharing_the_guard_regress_nothing(emu: Emulator, target: str) -> None:
    """100 messages in the same order in both processes: one sends ``delivered`` then
    ``pending``, the other ``read`` then ``pending``, with jittery latency, so their
    requests for a message race (on a guard without claims about 2 in 100 regress).
    No message's history may ever go backwards."""
    emu.faults.latency(0.05, rate=0.5)
    ids = [f"g{i}" for i in range(100)]
    plans = [
        [(i, s) for i in ids for s in ("delivered", "pending")],
        [(i, s) for i in ids for s in ("read", "pending")],
    ]
    children = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-c",
                SENDER,
                target,
                emu.base_url("highlevel"),
                HL_VERSIONS["highlevel"],
                LOCATION,
                json.dumps(plan),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for plan in plans
    ]
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err[-3000:]
        assert json.loads(out).get("failed", 0) == 0
    regressed = []
    for message_id in ids:
        history = emu.message("highlevel", message_id).statuses
        if any(HL_RANK[b] < HL_RANK[a] for a, b in itertools.pairwise(history)):
            regressed.append(f"{message_id}: {history}")
    assert regressed == []


def test_records_only_move_forward(tmp_path: Path) -> None:
    with Outbox(tmp_path / "g.db") as box:
        first, second = box.guard(), box.guard()
        first.record("acme", "m1", DeliveryState.READ, "read")
        second.record("acme", "m1", DeliveryState.DELIVERED, "delivered")  # late, lower
        assert first.last("acme", "m1") is DeliveryState.READ
        second.record("acme", "m2", DeliveryState.SENT, "pending")
        second.record("acme", "m2", DeliveryState.FAILED, "failed")
        first.record("acme", "m2", DeliveryState.READ, "read")  # read may not follow failed
        assert first.last("acme", "m2") is DeliveryState.FAILED


def test_a_claim_makes_the_other_process_wait_until_record_or_expiry(tmp_path: Path) -> None:
    clock = FakeClock()
    waits: list[float] = []
    with Outbox(tmp_path / "g.db", clock=clock) as box:
        a = PersistentGuard(box.store, clock=clock, claim_seconds=30)

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            clock.advance(seconds)
            if len(waits) == 3:  # meanwhile, A's request succeeds and is recorded
                a.record("acme", "m1", DeliveryState.READ, "read")

        b = PersistentGuard(box.store, clock=clock, claim_seconds=30, sleep=sleep)
        assert a.check("acme", "m1", DeliveryState.READ, "read") is None  # A claims m1
        # B wants to send a lower state: it waits for A, then finds it stale.
        assert b.check("acme", "m1", DeliveryState.DELIVERED, "delivered") is not None
        assert len(waits) == 3
        # A claims m2 and its request fails (no record): B waits for the claim to expire.
        waits.clear()
        assert a.check("acme", "m2", DeliveryState.DELIVERED, "delivered") is None
        assert b.check("acme", "m2", DeliveryState.READ, "read") is None
        assert sum(waits) >= 30
        # ... unless A releases it.
        waits.clear()
        assert a.check("acme", "m3", DeliveryState.DELIVERED, "delivered") is None
        a.release("acme", "m3")
        assert b.check("acme", "m3", DeliveryState.READ, "read") is None
        assert waits == []
