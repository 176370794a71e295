"""The crash scenario, shared by the test suite and ``benchmarks/outbox_bench.py``.

Updates for many messages are enqueued into a SQLite outbox (part up front, the rest
trickled in while workers run); a worker *process* drains it against the emulator, which
injects 5xx, 429 and dropped-after-apply connections; the worker is SIGKILLed at random
points and restarted, again and again, until the outbox is empty. Then every message's
final state at the vendor must equal the fold of its enqueued sequence under
``may_follow`` (nothing lost) and its history must never go backwards (nothing regressed).
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from msgbridge import DeliveryState, MessageStatus, StatusError
from msgbridge.emulator import Emulator
from msgbridge.outbox import Outbox

WORKER = Path(__file__).with_name("crash_worker.py")
VENDORS = ("highlevel", "leadway", "hoop")
HL_VERSIONS = {"highlevel": "2021-04-15", "leadway": "2021-07-28", "hoop": "2021-04-15"}
#: HighLevel's value for each neutral state, and back.
HL_VALUE = {
    DeliveryState.PENDING: "pending",
    DeliveryState.SENT: "pending",
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.READ: "read",
    DeliveryState.FAILED: "failed",
}
NEUTRAL = {
    "pending": DeliveryState.PENDING,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
}


@dataclass
class CrashResult:
    messages: int
    enqueued: int
    kills: int
    restarts: int
    lost: int
    regressed: int
    dead: int
    pending: int
    seconds: float
    problems: list[str] = field(default_factory=list)


def plan_updates(messages: int, rng: random.Random) -> list[tuple[str, MessageStatus]]:
    """Random sequences (1-5 states, any order) per message, randomly interleaved."""
    sequences: dict[tuple[str, str], list[DeliveryState]] = {}
    for index in range(messages):
        key = (VENDORS[index % len(VENDORS)], f"msg-{index}")
        sequences[key] = [rng.choice(list(DeliveryState)) for _ in range(rng.randint(1, 5))]
    slots = [key for key, states in sequences.items() for _ in states]
    rng.shuffle(slots)
    cursor = dict.fromkeys(sequences, 0)
    plan: list[tuple[str, MessageStatus]] = []
    for key in slots:
        state = sequences[key][cursor[key]]
        cursor[key] += 1
        error = (
            StatusError("carrier rejected", code="30007") if state is DeliveryState.FAILED else None
        )
        plan.append((key[0], MessageStatus(key[1], state, error=error)))
    return plan


def expected_finals(
    plan: Sequence[tuple[str, MessageStatus]],
) -> dict[tuple[str, str], DeliveryState]:
    finals: dict[tuple[str, str], DeliveryState] = {}
    for connection, status in plan:
        key = (connection, status.message_id)
        previous = finals.get(key)
        if previous is None or status.state.may_follow(previous):
            finals[key] = status.state
    return finals


def inject_faults(emu: Emulator) -> None:
    emu.faults.error_rate(0.10, (500, 502, 503, 504))
    emu.faults.error_rate(0.03, (429,))
    emu.faults.drop(rate=0.02, after=True)  # applied, but the answer is lost
    # Slow answers keep rows in flight longer, so new updates often arrive mid-send.
    emu.faults.latency(0.05, rate=0.5)


def _spec(emu: Emulator, db: Path, lease_seconds: float, batch_size: int) -> str:
    return json.dumps(
        {
            "db": str(db),
            "lease_seconds": lease_seconds,
            "batch_size": batch_size,
            "connections": [
                {
                    "name": vendor,
                    "adapter": vendor,
                    "token": f"demo-{vendor}-token",
                    "settings": {"base_url": emu.base_url(vendor), "version": HL_VERSIONS[vendor]},
                }
                for vendor in VENDORS
            ],
        }
    )


def run_crash_scenario(
    emu: Emulator,
    db: Path,
    *,
    messages: int = 300,
    kills: int = 15,
    seed: int = 1,
    upfront: float = 0.4,
    trickle_seconds: float = 5.0,
    kill_after: tuple[float, float] = (0.25, 0.9),
    lease_seconds: float = 1.0,
    batch_size: int = 50,
    timeout: float = 120.0,
) -> CrashResult:
    """Run the scenario (the emulator must be running, in "create" mode, reset)."""
    rng = random.Random(seed)
    started = time.monotonic()
    plan = plan_updates(messages, rng)
    split = int(len(plan) * upfront)
    with Outbox(db) as outbox:
        for start in range(0, split, 200):
            outbox.enqueue_many(plan[start : min(split, start + 200)])
    inject_faults(emu)

    trickle_error: list[BaseException] = []

    def trickle() -> None:
        rest = plan[split:]
        pause = trickle_seconds / max(1, len(rest) / 10)
        try:
            with Outbox(db, busy_timeout=30.0) as box:
                for start in range(0, len(rest), 10):
                    for connection, status in rest[start : start + 10]:
                        box.enqueue(connection, status)
                    time.sleep(pause)
        except BaseException as exc:  # reported by the caller
            trickle_error.append(exc)

    feeder = threading.Thread(target=trickle, name="crash-trickle")
    feeder.start()
    spec = _spec(emu, db, lease_seconds, batch_size)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    problems: list[str] = []

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(WORKER), spec], stdout=log, stderr=log
        )

    done_kills = restarts = 0
    worker = start_worker()
    try:
        while done_kills < kills:
            time.sleep(rng.uniform(*kill_after))
            if worker.poll() is None:
                worker.kill()  # SIGKILL
                worker.wait()
                done_kills += 1
            elif worker.returncode != 0:
                problems.append(f"worker exited with {worker.returncode}")
            worker = start_worker()
            restarts += 1
        deadline = started + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problems.append("timed out waiting for the outbox to drain")
                break
            try:
                code = worker.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                continue
            if code != 0:
                problems.append(f"worker exited with {code}")
            if not feeder.is_alive():
                with Outbox(db) as box:
                    if box.stats().pending == 0:
                        break
            worker = start_worker()
            restarts += 1
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        feeder.join()
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
    if trickle_error:
        problems.append(f"enqueueing failed: {trickle_error[0]!r}")
    if "Traceback" in output:
        problems.append("a worker raised:\n" + output[-3000:])

    lost = regressed = 0
    for (vendor, message_id), state in expected_finals(plan).items():
        try:
            message = emu.message(vendor, message_id)
        except KeyError:
            lost += 1
            problems.append(f"{vendor}/{message_id}: never delivered (expected {state.value})")
            continue
        if message.status != HL_VALUE[state]:
            lost += 1
            problems.append(
                f"{vendor}/{message_id}: final {message.status!r}, expected {HL_VALUE[state]!r} "
                f"(history {message.statuses})"
            )
        history = [NEUTRAL[s] for s in message.statuses]
        if any(not b.may_follow(a) for a, b in itertools.pairwise(history)):
            regressed += 1
            problems.append(f"{vendor}/{message_id}: history regressed: {message.statuses}")
    with Outbox(db) as box:
        stats = box.stats()
    return CrashResult(
        messages=messages,
        enqueued=len(plan),
        kills=done_kills,
        restarts=restarts,
        lost=lost,
        regressed=regressed,
        dead=stats.dead,
        pending=stats.pending,
        seconds=time.monotonic() - started,
        problems=problems,
    )
