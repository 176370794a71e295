"""Crash tests, for real: SIGKILLed worker processes and concurrent enqueuing processes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from msgbridge import ConversationUpdate, DeliveryState, MessageStatus
from msgbridge.emulator import Emulator
from msgbridge.outbox import Outbox

from .crash_harness import expected_finals, run_crash_scenario

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def test_sigkilled_workers_lose_nothing_and_never_regress(emu: Emulator, tmp_path: Path) -> None:
    result = run_crash_scenario(emu, tmp_path / "crash.db", messages=240, kills=12, seed=11)
    assert result.problems == []
    assert result.kills == 12
    assert (result.lost, result.regressed, result.dead, result.pending) == (0, 0, 0, 0)
    assert result.enqueued > 240


ENQUEUER = """
import json, sys
from msgbridge import ConversationUpdate, MessageStatus
from msgbridge.outbox import Outbox
db, items = sys.argv[1], json.loads(sys.argv[2])
counts = {}
with Outbox(db, busy_timeout=30.0) as box:
    for kind, connection, subject, value in items:
        if kind == "status":
            update = MessageStatus(subject, value)
        else:
            update = ConversationUpdate(subject, unread_count=value)
        outcome = box.enqueue(connection, update).outcome.value
        counts[outcome] = counts.get(outcome, 0) + 1
print(json.dumps(counts))
"""

NON_FAILED = [s for s in DeliveryState if s is not DeliveryState.FAILED]


def test_concurrent_enqueuers_in_several_processes(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    Outbox(db).close()  # created once; the processes race on everything else
    rng = random.Random(5)
    processes = 4
    own: list[list[tuple[str, str, str, object]]] = []
    for proc in range(processes):
        items: list[tuple[str, str, str, object]] = []
        for index in range(40):  # messages only this process touches, any order
            for state in rng.sample(list(DeliveryState), k=rng.randint(1, 3)):
                items.append(("status", "acme", f"p{proc}-m{index}", state.value))
        for index in range(30):  # shared messages, no FAILED: the final is the highest
            items.append(("status", "acme", f"shared-{index}", rng.choice(NON_FAILED).value))
        items.append(("conversation", "acme", f"conv-{proc}", proc + 1))
        rng.shuffle(items)
        own.append(items)
    children = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", ENQUEUER, str(db), json.dumps(items)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for items in own
    ]
    totals: dict[str, int] = {}
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
        for outcome, count in json.loads(out).items():
            totals[outcome] = totals.get(outcome, 0) + count
    assert sum(totals.values()) == sum(len(items) for items in own)

    expected: dict[str, DeliveryState] = {}
    for proc, items in enumerate(own):
        sequence = [
            ("acme", MessageStatus(subject, str(value)))
            for kind, _, subject, value in items
            if kind == "status" and subject.startswith(f"p{proc}-")
        ]
        expected.update({mid: state for (_, mid), state in expected_finals(sequence).items()})
    for index in range(30):
        states = [
            DeliveryState(str(value))
            for items in own
            for kind, _, subject, value in items
            if subject == f"shared-{index}"
        ]
        if states:
            expected[f"shared-{index}"] = max(states, key=lambda s: s.rank)
    with Outbox(db) as box:
        pending = box.pending(limit=100_000)
    statuses = {p.subject_id: p.state for p in pending if p.kind == "status"}
    assert statuses == expected
    assert totals.get("enqueued", 0) == len(statuses) + processes
    conversations = {p.subject_id: p.update for p in pending if p.kind == "conversation"}
    assert conversations == {
        f"conv-{proc}": ConversationUpdate(f"conv-{proc}", unread_count=proc + 1)
        for proc in range(processes)
    }
    assert len({p.id for p in pending}) == len(pending)
