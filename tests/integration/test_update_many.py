"""``update_many`` end to end: hundreds of updates over three connections, arriving out of
order and duplicated, must leave every emulated message in the state the neutral model
says, with a history that never regresses, even while the vendor fails and drops."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict

import pytest

from msgbridge import (
    AdapterRegistry,
    DeliveryState,
    MessageStatus,
    Outcome,
    RetryPolicy,
    StatusError,
)
from msgbridge.emulator import Emulator

from .support import connection, expected_vendor_status, neutral_of, open_runner, seed

pytestmark = pytest.mark.anyio

P, S, D, R, F = (
    DeliveryState.PENDING,
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.READ,
    DeliveryState.FAILED,
)
#: connection name -> vendor
CONNECTIONS = {"hl": "highlevel", "lw": "leadway", "hs": "hubspot"}
MESSAGES_PER_CONNECTION = 30
RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_attempts=10)


def _callbacks(rng: random.Random) -> list[DeliveryState]:
    """The status callbacks of one message, as a carrier might deliver them.

    A message lives one real life (pending, sent, delivered, read; or pending, sent,
    failed), reported up to some point, with duplicates and out of order. (A FAILED
    after DELIVERED is a different story: see ``test_ordering.py``.)
    """
    life = [P, S, D, R] if rng.random() < 0.7 else [P, S, F]
    reached = life[: rng.randint(1, len(life))]
    events = list(reached)
    for _ in range(rng.randint(0, 3)):  # duplicates
        events.insert(rng.randrange(len(events) + 1), rng.choice(reached))
    if rng.random() < 0.4:
        rng.shuffle(events)
    else:
        for _ in range(rng.randint(0, 2)):  # a late callback or two
            i = rng.randrange(len(events))
            j = min(len(events) - 1, i + rng.randint(1, 2))
            events[i], events[j] = events[j], events[i]
    return events


Plans = dict[tuple[str, str], list[DeliveryState]]


def _workload(seed_value: int) -> tuple[list[tuple[str, MessageStatus]], Plans]:
    """Items interleaved across messages and connections; each message keeps its order."""
    rng = random.Random(seed_value)
    plans: Plans = {}
    for name in CONNECTIONS:
        for k in range(MESSAGES_PER_CONNECTION):
            plans[(name, f"{name}-{k}")] = _callbacks(rng)
    cursors = {key: 0 for key in plans}
    items: list[tuple[str, MessageStatus]] = []
    live = list(plans)
    while live:
        key = rng.choice(live)
        state = plans[key][cursors[key]]
        cursors[key] += 1
        if cursors[key] == len(plans[key]):
            live.remove(key)
        error = StatusError("undeliverable") if state is F else None
        items.append((key[0], MessageStatus(key[1], state, error=error)))
    return items, plans


@pytest.mark.parametrize("faults", [False, True], ids=["clean", "faulty"])
async def test_many_updates_end_in_the_expected_states(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, faults: bool
) -> None:
    items, plans = _workload(seed_value=20240611)
    assert len(items) > 300
    for (name, message_id), _ in plans.items():
        seed(emu, CONNECTIONS[name], message_id)
    for vendor in set(CONNECTIONS.values()):
        emu.configure(vendor, rate_limits_enabled=False)  # budgets are another test's
    if faults:
        emu.faults.error_rate(0.1)
        emu.faults.drop(rate=0.05)
    conns = [connection(emu, vendor, name=name) for name, vendor in CONNECTIONS.items()]

    async with open_runner(
        runner_kind, conns, registry=registry, retry=RETRY, rate_limits=False
    ) as runner:
        receipts = await runner.update_many(
            items, max_in_flight=16, per_connection=6, max_pending=64
        )

    assert sorted(r.index for r in receipts if r.index is not None) == list(range(len(items)))
    failed = [(r.index, r.subject_id, r.detail) for r in receipts if not r.ok]
    assert failed == []
    applied: Counter[tuple[str, str]] = Counter(
        (r.connection, r.subject_id) for r in receipts if r.outcome is Outcome.APPLIED
    )
    if faults:
        assert any(r.fault for r in emu.requests), "the faults never fired"
        assert any(r.attempts > 1 for r in receipts)

    wrong: dict[str, tuple[str | None, str | None, list[str]]] = {}
    regressions: defaultdict[str, list[str]] = defaultdict(list)
    for (name, message_id), states in plans.items():
        vendor = CONNECTIONS[name]
        message = emu.message(vendor, message_id)
        expected = expected_vendor_status(vendor, states)
        if message.status != expected:
            wrong[message_id] = (message.status, expected, [s.value for s in states])
        history = message.statuses
        for before, after in itertools.pairwise(history):
            if before == after or not neutral_of(after).may_follow(neutral_of(before)):
                regressions[message_id].append(f"{before}->{after}")
        # Every APPLIED receipt is exactly one change at the vendor, and vice versa.
        assert applied[(name, message_id)] == len(history), (message_id, history)
    assert wrong == {}
    assert dict(regressions) == {}
    assert len(emu.find_requests(status=200)) == sum(applied.values())
