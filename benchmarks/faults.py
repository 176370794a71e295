"""Benchmark 4: faults. 10% 5xx and 1% dropped connections; every update must land right.

The emulator (rate limits off, unknown ids created) gets three fault rules through its
control endpoint, evaluated in this order for every vendor request:

* drop 0.5% of requests before they are applied (the connection is cut: a transport
  error, nothing changed);
* drop 0.5% after they are applied (the update went through but the answer is lost: the
  "did it go through?" case, so the retry re-sends an update that is already applied);
* answer 10% with a 500/502/503/504 (rate 0.10/0.99 of what is left, so 10% overall).

The workload is several thousand status updates for HighLevel and HubSpot messages, each
message getting a short lifecycle (``pending``/``sent``/``delivered``/``read``, or one
ending in ``failed``) whose updates arrive **out of order** and interleaved with other
messages' updates, sometimes adjacent (the batch collapses them) and sometimes far apart
(the state guard drops stale ones). The expected final state of every message is the
fold of its updates in arrival order with ``DeliveryState.may_follow`` (an update wins
when it may follow the current state), mapped to the vendor's value by the adapter's
capabilities. After the batch, ``GET /_emulator/state`` must show exactly that for every
message, and no message's history may go backwards.

Retries: ``RetryPolicy(max_attempts=8, initial_backoff=0.1, max_backoff=2.0)``. With the
default 5 attempts an update fails for good with probability about 0.11^5 (1.6e-5),
i.e. now and then in a run of this size; 8 makes that ~2e-8.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from _harness import EmulatorProcess, fmt_rate, md_table

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Connection,
    DeliveryAttempt,
    DeliveryState,
    MessageStatus,
    Outcome,
    RetryPolicy,
    StatusError,
)
from msgbridge.fast import AiohttpSender

DROP_BEFORE = 0.005
DROP_AFTER = 0.005
ERROR_RATE = 0.10
RETRY = RetryPolicy(max_attempts=8, initial_backoff=0.1, max_backoff=2.0)
MAX_IN_FLIGHT = 64
#: Read-ahead of the batch (its ``max_pending``): small, so that updates far apart in the
#: input reach the bridge at different times, as real callbacks do.
MAX_PENDING = 128
#: How far (in messages) one message's updates are spread across the input: half the
#: messages get theirs close together (collapsed in the batch queue), half far apart
#: (sent one by one, stale ones stopped by the state guard).
SPREADS = (4.0, 600.0)

S = DeliveryState
LIFECYCLES = (
    (S.PENDING, S.SENT, S.DELIVERED, S.READ),
    (S.SENT, S.DELIVERED, S.READ),
    (S.SENT, S.DELIVERED),
    (S.PENDING, S.SENT, S.FAILED),
    (S.SENT, S.FAILED),
)
#: Vendor values back to a neutral state, to check that no history goes backwards.
NEUTRAL = {
    "pending": S.PENDING,
    "delivered": S.DELIVERED,
    "read": S.READ,
    "failed": S.FAILED,
    "SENT": S.SENT,
    "READ": S.READ,
    "FAILED": S.FAILED,
}


@dataclass
class Run:
    sender: str
    updates: int = 0
    messages: int = 0
    wall: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    attempts: Counter[Any] = field(default_factory=Counter)
    statuses: Counter[Any] = field(default_factory=Counter)
    emulator_faults: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def fold(states: list[DeliveryState]) -> DeliveryState:
    current: DeliveryState | None = None
    for state in states:
        if current is None or state.may_follow(current):
            current = state
    assert current is not None
    return current


def workload(
    prefix: str, messages: int, rng: random.Random
) -> tuple[list[tuple[str, MessageStatus]], dict[tuple[str, str], list[DeliveryState]]]:
    """Updates in arrival order, and each message's states in that order."""
    events: list[tuple[float, str, str, DeliveryState]] = []
    for m in range(messages):
        vendor = "hubspot" if m % 3 == 2 else "highlevel"
        lifecycle = list(rng.choice(LIFECYCLES))
        if rng.random() < 0.5:  # drop the head or tail now and then
            lifecycle = lifecycle[rng.randrange(2) :] or lifecycle
        if rng.random() < 0.2:  # a duplicate callback
            lifecycle.append(rng.choice(lifecycle))
        spread = rng.choice(SPREADS)
        for state in lifecycle:
            events.append((m + rng.uniform(0, spread), vendor, f"{prefix}-{m}", state))
    events.sort(key=lambda e: e[0])
    items: list[tuple[str, MessageStatus]] = []
    per_message: dict[tuple[str, str], list[DeliveryState]] = {}
    for _, vendor, message_id, state in events:
        error = StatusError("carrier rejected", code="30007", kind="carrier")
        status = MessageStatus(message_id, state, error=error if state is S.FAILED else None)
        items.append((vendor, status))
        per_message.setdefault((vendor, message_id), []).append(state)
    return items, per_message


async def run_one(
    emulator: EmulatorProcess, fast: bool, messages: int, seed: int, prefix: str
) -> Run:
    result = Run("fast aiohttp sender" if fast else "default httpx sender")
    registry = AdapterRegistry.from_entry_points()

    def observe(event: DeliveryAttempt) -> None:
        key = event.http_status if event.http_status is not None else "transport error"
        result.statuses[key] += 1

    registry.add_observer(observe)
    connections = [
        Connection(
            "highlevel",
            adapter="highlevel",
            credentials=BearerToken("demo-highlevel-token"),
            settings={"base_url": emulator.base_url("highlevel")},
        ),
        Connection(
            "hubspot",
            adapter="hubspot",
            credentials=BearerToken("demo-hubspot-token"),
            settings={"base_url": emulator.base_url("hubspot"), "channel_id": 1000},
        ),
    ]
    items, per_message = workload(prefix, messages, random.Random(seed))
    result.updates, result.messages = len(items), len(per_message)
    emulator.control("DELETE", "/requests")
    t0 = time.perf_counter()
    async with AsyncBridge(
        connections,
        registry=registry,
        retry=RETRY,
        rate_limits=False,
        sender=AiohttpSender() if fast else None,
    ) as bridge:
        async for receipt in bridge.update_many(
            items,
            max_in_flight=MAX_IN_FLIGHT,
            per_connection=MAX_IN_FLIGHT,
            max_pending=MAX_PENDING,
        ):
            result.outcomes[receipt.outcome.value] += 1
            if receipt.outcome is Outcome.APPLIED:
                result.attempts[receipt.attempts] += 1
            elif receipt.outcome is Outcome.FAILED:
                result.failed.append(f"{receipt.subject_id}: {receipt.detail}")
    result.wall = time.perf_counter() - t0

    for record in emulator.control("GET", "/requests"):
        if record.get("fault"):
            result.emulator_faults[record["fault"]] += 1
    state = emulator.control("GET", "/state")["vendors"]
    adapters = {name: registry.get(name) for name in ("highlevel", "hubspot")}
    for (vendor, message_id), states in per_message.items():
        expected_state = fold(states)
        expected = adapters[vendor].capabilities.mapping(expected_state).vendor_value
        message = state[vendor]["messages"].get(message_id)
        actual = None if message is None else message["status"]
        if actual != expected:
            order = ",".join(s.value for s in states)
            result.mismatches.append(
                f"{vendor}/{message_id}: expected {expected} ({order}), got {actual}"
            )
        if message is not None:
            history = [NEUTRAL[h["status"]] for h in message["history"]]
            for before, after in itertools.pairwise(history):
                if not after.may_follow(before):
                    result.regressions.append(f"{vendor}/{message_id}: {before} -> {after}")
                    break
    print(
        f"  faults ({result.sender}): {result.updates} updates in {result.wall:.1f} s, "
        f"{len(result.mismatches)} mismatches, {result.outcomes.get('failed', 0)} failed",
        flush=True,
    )
    return result


async def run(emulator: EmulatorProcess, messages: int) -> list[Run]:
    emulator.control("POST", "/faults", {"kind": "drop", "rate": DROP_BEFORE})
    emulator.control("POST", "/faults", {"kind": "drop", "rate": DROP_AFTER, "after": True})
    error_rate = ERROR_RATE / (1 - DROP_BEFORE - DROP_AFTER)
    emulator.control("POST", "/faults", {"kind": "error", "rate": error_rate})
    stamp = int(time.time())
    return [
        await run_one(emulator, True, messages, seed=1, prefix=f"f{stamp}"),
        await run_one(emulator, False, messages, seed=2, prefix=f"h{stamp}"),
    ]


def report(runs: list[Run]) -> str:
    rows = []
    notes = []
    for r in runs:
        faults_seen = sum(v for k, v in r.statuses.items() if k != 200)
        attempts_total = sum(r.statuses.values())
        injected = ", ".join(f"{k} {v:,}" for k, v in sorted(r.emulator_faults.items()))
        outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(r.outcomes.items()))
        retries = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.attempts.items()))
        ok = not r.mismatches and not r.regressions and not r.failed
        rows.append(
            [
                r.sender,
                f"{r.updates:,} updates / {r.messages:,} messages",
                f"{r.wall:.1f} s ({fmt_rate(r.updates / r.wall)}/s)",
                f"{attempts_total:,} attempts, {faults_seen:,} faulted "
                f"({faults_seen / attempts_total:.1%})",
                outcomes,
                f"{r.messages - len(r.mismatches):,} / {r.messages:,}",
                str(len(r.regressions)),
                "met" if ok else "**missed**",
            ]
        )
        notes.append(
            f"- {r.sender}: injected by the emulator: {injected}; attempts per applied "
            f"update: {retries}."
        )
        notes.extend(f"  - mismatch: {m}" for m in r.mismatches[:10])
        notes.extend(f"  - regression: {m}" for m in r.regressions[:10])
        notes.extend(f"  - failed: {m}" for m in r.failed[:10])
    return "\n".join(
        [
            "## 4. Faults",
            "",
            f"Emulator faults: {DROP_BEFORE:.1%} dropped before applying, {DROP_AFTER:.1%} "
            f"dropped after applying, {ERROR_RATE:.0%} answered 500/502/503/504; "
            f"HighLevel and HubSpot messages with out-of-order, interleaved updates; "
            f"`update_many(max_in_flight={MAX_IN_FLIGHT}, max_pending={MAX_PENDING})`, retry "
            f"`RetryPolicy(max_attempts={RETRY.max_attempts}, "
            f"initial_backoff={RETRY.initial_backoff}, max_backoff={RETRY.max_backoff})`.",
            "",
            md_table(
                [
                    "sender",
                    "input",
                    "time",
                    "HTTP attempts",
                    "receipts",
                    "final state as expected",
                    "histories going backwards",
                    "",
                ],
                rows,
            ),
            "",
            *notes,
            "",
        ]
    )
