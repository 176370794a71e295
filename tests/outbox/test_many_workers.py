"""Many workers, one truth (issue 11): worker *processes* sharing one outbox.

Each test fails on a per-row-leasing outbox (before schema version 2): a paused worker
resumes and sends what it had leased, every process paces at the full vendor budget.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from msgbridge import MessageStatus
from msgbridge.emulator import Emulator, EmulatorConfig
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.outbox import Outbox

from .conftest import HL_VERSIONS, LOCATION

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGSTOP/SIGTERM")

WORKER = Path(__file__).with_name("worker_proc.py")
HL_RANK = {"pending": 0, "delivered": 2, "read": 3, "failed": 2}


def spec(emu: Emulator, target: str, vendors: list[str], **options: Any) -> str:
    rate_limit = options.pop("rate_limit", None)
    return json.dumps(
        {
            "target": target,
            "connections": [
                {
                    "name": vendor,
                    "adapter": vendor,
                    "token": f"demo-{vendor}-token",
                    "settings": {
                        "base_url": emu.base_url(vendor),
                        "version": HL_VERSIONS[vendor],
                        "location_id": LOCATION,
                    },
                    "rate_limit": rate_limit,
                }
                for vendor in vendors
            ],
            **options,
        }
    )


class Proc:
    """A worker process; its output is read when it ends."""

    def __init__(self, spec_json: str) -> None:
        self.popen = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(WORKER), spec_json],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def signal(self, sig: int) -> None:
        os.kill(self.popen.pid, sig)

    def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        out, err = self.popen.communicate(timeout=timeout)
        assert self.popen.returncode == 0, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        return dict(json.loads(out.strip().splitlines()[-1]))

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.communicate()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def regressions(emu: Emulator, vendor: str, ids: list[str]) -> list[str]:
    found = []
    for message_id in ids:
        history = emu.message(vendor, message_id).statuses
        if any(HL_RANK[b] < HL_RANK[a] for a, b in itertools.pairwise(history)):
            found.append(f"{message_id}: {history}")
    return found


def test_a_worker_paused_past_its_lease_regresses_nothing(
    emu: Emulator, target: str, procs: list[Proc]
) -> None:
    """Worker A leases 60 ``delivered`` rows and is SIGSTOPped mid-batch; meanwhile the
    messages move to ``read`` and worker B delivers that; A resumes. Fencing: A sends
    nothing more (its lease could not be renewed in time) and settles nothing."""
    ids = [f"m{i}" for i in range(60)]
    with Outbox(target) as box:
        box.enqueue_many([("highlevel", MessageStatus(i, "delivered")) for i in ids])
    # A's batch takes ~3 s. The vendor applies on receipt and answers 50 ms later, so A
    # is paused while it waits for an answer, as a GC pause or a VM freeze usually finds
    # it; a pause between the fence check and the socket write is the one window fencing
    # cannot close (docs/operating-many-workers.md), and polling for "5 applied" with the
    # delay before applying would aim the pause right at it.
    emu.faults.latency(0.05, rate=1.0, after=True)
    options = {"lease_seconds": 2.0, "batch_size": 60, "max_in_flight": 1, "per_connection": 1}
    a = Proc(spec(emu, target, ["highlevel"], mode="forever", **options))
    procs.append(a)

    def applied() -> int:
        return len(emu.messages("highlevel"))

    wait_for(lambda: applied() >= 5)
    a.signal(signal.SIGSTOP)
    paused_at = applied()
    with Outbox(target) as box:
        for result in box.enqueue_many([("highlevel", MessageStatus(i, "read")) for i in ids]):
            assert result.accepted
    b = Proc(spec(emu, target, ["highlevel"], mode="drain", **options))
    procs.append(b)
    b_report = b.finish()
    assert b_report["applied"] == 60
    a.signal(signal.SIGCONT)
    time.sleep(2.0)  # A wakes: its next attempts meet the fence
    a.signal(signal.SIGTERM)
    a_report = a.finish()

    assert regressions(emu, "highlevel", ids) == []
    assert all(emu.message("highlevel", i).status == "read" for i in ids)
    assert a_report["applied"] <= paused_at + 1  # at most the request in flight at SIGSTOP
    assert a_report["fenced"] > 0
    with Outbox(target) as box:
        assert box.stats().pending == 0
        assert box.stats().dead == 0


@pytest.fixture(scope="module")
def limited_emu() -> Iterator[Emulator]:
    """An emulator that enforces vendor budgets (the suite's shared one does not)."""
    with Emulator(EmulatorConfig(demo=True, unknown_messages="create")) as emulator:
        yield emulator


@pytest.mark.parametrize("affinity", [True, False], ids=["leases", "per-row (before)"])
def test_three_workers_on_one_account_stay_within_its_budget(
    limited_emu: Emulator, target: str, procs: list[Proc], affinity: bool
) -> None:
    """A tight vendor budget (10 per 2 s) for one location and three workers, each given
    the same budget. With connection leases one worker holds the account at a time, so
    one limiter paces it: zero 429s. Per-row leasing (``affinity=False``, as before
    schema version 2) lets every process pace at the full budget: 429s."""
    emu = limited_emu
    emu.reset()
    emu.set_rate_limit("highlevel", RateLimit(max_requests=10, interval=2.0), account=LOCATION)
    ids = [f"r{i}" for i in range(30)]
    with Outbox(target) as box:
        box.enqueue_many([("highlevel", MessageStatus(i, "delivered")) for i in ids])
    options = {
        "lease_seconds": 2.0,
        "batch_size": 10,
        "rate_limits": True,
        "rate_limit": [10, 2.0],
        "affinity": affinity,
    }
    workers = [Proc(spec(emu, target, ["highlevel"], mode="drain", **options)) for _ in range(3)]
    procs.extend(workers)
    reports = [w.finish(timeout=120) for w in workers]
    assert sum(r["applied"] for r in reports) == 30
    statuses = [r.status for r in emu.requests if "/messages/" in r.path]
    if affinity:
        assert statuses.count(429) == 0, statuses
    else:
        assert statuses.count(429) > 0, statuses  # the failure this design removes
    assert all(emu.message("highlevel", i).status == "delivered" for i in ids)
