"""Benchmark 3: vendor limits. 200 HighLevel connections, each limited to 100 per 10 s.

The emulator runs with rate limits on and one token per location (200 locations), so
every connection has its own budget of 100 requests per 10 s, HighLevel's burst limit.
The emulator's windows are sliding logs (a request is refused while 100 were accepted in
the previous 10 s). msgbridge sends through ``AsyncBridge.update_many`` on the fast
aiohttp sender with its per-connection ``SlidingWindowLimiter`` at the adapter's default
budget (100 per 10 s), whose window is stretched by a 2% margin (100 per 10.2 s) to
absorb jitter between its clock and the vendor's: in steady state it can use at most
1/1.02 = 98.0% of the budget by design.

The input is an endless round-robin stream of fresh message ids over the 200 connections
(backpressure keeps it bounded), cut after ``seconds``; what is still queued drains
afterwards and is not counted. Reported: 429s (seen by the client's attempt observer and
recorded by the emulator), and the updates the emulator accepted in the first 30 s after
the first one (three full windows) against what it would allow, 200 x 100 per window.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from _harness import (
    EmulatorProcess,
    client_cpu_seconds,
    fmt_rate,
    machine_cpu_seconds,
    md_table,
    wait_quiet,
)

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Connection,
    DeliveryAttempt,
    DeliveryState,
    MessageStatus,
    Outcome,
)
from msgbridge.fast import AiohttpSender
from msgbridge.ratelimit import SlidingWindowLimiter

CONNECTIONS = 200
BUDGET = 100
WINDOW = 10.0
MAX_IN_FLIGHT = 64
PER_CONNECTION = 8


def token_specs() -> list[str]:
    return [f"highlevel:lim-{i}:loc-{i}" for i in range(CONNECTIONS)]


@dataclass
class Result:
    seconds: float
    windows: int
    outcomes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[Any] = field(default_factory=Counter)
    emulator_429: int = 0
    #: accepted (HTTP 200) per 10-s window since the first, by the emulator's clock
    per_window: list[int] = field(default_factory=list)
    #: every accepted request, and the time from the first to the last (emulator clock)
    accepted_total: int = 0
    span: float = 0.0
    wall: float = 0.0
    client_cpu: float = 0.0
    emulator_cpu: float = 0.0
    other_cpu: float = 0.0
    margin: float = 0.0


def _stream(deadline: float) -> Iterator[tuple[str, MessageStatus]]:
    n = 0
    while time.monotonic() < deadline:
        for i in range(CONNECTIONS):
            yield f"loc-{i}", MessageStatus(f"lim-{n}-{i}", DeliveryState.DELIVERED)
        n += 1


async def run(emulator: EmulatorProcess, seconds: float) -> Result:
    base = emulator.base_url("highlevel")
    windows = max(1, int(seconds // WINDOW))
    result = Result(seconds, windows, margin=SlidingWindowLimiter(BUDGET, WINDOW).window / WINDOW)
    registry = AdapterRegistry.from_entry_points()

    def observe(event: DeliveryAttempt) -> None:
        result.statuses[event.http_status if event.http_status is not None else "transport"] += 1

    registry.add_observer(observe)
    connections = [
        Connection(
            f"loc-{i}",
            adapter="highlevel",
            credentials=BearerToken(f"lim-{i}"),
            settings={"base_url": base},
        )
        for i in range(CONNECTIONS)
    ]
    await wait_quiet()
    c0, e0, m0 = client_cpu_seconds(), emulator.cpu_seconds(), machine_cpu_seconds()
    t0 = time.perf_counter()
    async with AsyncBridge(connections, registry=registry, sender=AiohttpSender()) as bridge:
        async for receipt in bridge.update_many(
            _stream(time.monotonic() + seconds),
            max_in_flight=MAX_IN_FLIGHT,
            per_connection=PER_CONNECTION,
        ):
            result.outcomes[receipt.outcome.value] += 1
    result.wall = time.perf_counter() - t0
    result.client_cpu = client_cpu_seconds() - c0
    result.emulator_cpu = emulator.cpu_seconds() - e0
    ours = result.client_cpu + result.emulator_cpu
    result.other_cpu = max(0.0, machine_cpu_seconds() - m0 - ours)

    result.emulator_429 = len(emulator.control("GET", "/requests?vendor=highlevel&status=429"))
    accepted = emulator.control("GET", "/requests?vendor=highlevel&status=200")
    times = sorted(record["at"] for record in accepted)
    start = times[0]
    result.accepted_total, result.span = len(times), times[-1] - start
    result.per_window = [0] * windows
    for at in times:
        index = int((at - start) // WINDOW)
        if index < windows:
            result.per_window[index] += 1
    applied = result.outcomes[Outcome.APPLIED.value]
    print(
        f"  limits: {applied} applied, 429s client={result.statuses.get(429, 0)} "
        f"emulator={result.emulator_429}, per window {result.per_window}",
        flush=True,
    )
    return result


def report(result: Result) -> str:
    allowed_window = CONNECTIONS * BUDGET
    allowed = allowed_window * result.windows
    counted = sum(result.per_window)
    rows = [
        [
            f"{i * WINDOW:.0f}-{(i + 1) * WINDOW:.0f} s",
            fmt_rate(n),
            fmt_rate(allowed_window),
            f"{n / allowed_window:.1%}",
        ]
        for i, n in enumerate(result.per_window)
    ]
    steady = result.per_window[1:]
    rows.append(
        [
            f"**all {result.windows} windows**",
            f"**{fmt_rate(counted)}** ({fmt_rate(counted / (result.windows * WINDOW))}/s)",
            f"{fmt_rate(allowed)} ({fmt_rate(allowed / (result.windows * WINDOW))}/s)",
            f"**{counted / allowed:.1%}**",
        ]
    )
    whole_allowed = CONNECTIONS * BUDGET / WINDOW * result.span
    whole_rate = result.accepted_total / result.span
    rows.append(
        [
            f"whole run incl. drain ({result.span:.1f} s, as a rate)",
            f"{fmt_rate(result.accepted_total)} ({fmt_rate(whole_rate)}/s)",
            f"{fmt_rate(whole_allowed)} (2,000/s)",
            f"{result.accepted_total / whole_allowed:.1%}",
        ]
    )
    if steady:
        rows.append(
            [
                "windows 2+ (steady state)",
                fmt_rate(sum(steady)),
                fmt_rate(allowed_window * len(steady)),
                f"{sum(steady) / (allowed_window * len(steady)):.1%}",
            ]
        )
    client_429 = result.statuses.get(429, 0)
    zero_429 = client_429 == 0 and result.emulator_429 == 0
    share = counted / allowed
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.statuses.items(), key=str))
    outcomes = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.outcomes.items()))
    return "\n".join(
        [
            "## 3. Vendor limits",
            "",
            f"{CONNECTIONS} HighLevel connections (one location each), emulator limit "
            f"{BUDGET} per {WINDOW:.0f} s per location (sliding log), rate limits on; "
            f"`update_many` on the fast sender, max_in_flight={MAX_IN_FLIGHT}, "
            f"per_connection={PER_CONNECTION}; input fed for {result.seconds:.0f} s, "
            f"whole run {result.wall:.1f} s including the drain. Client limiter: sliding "
            f"log, {BUDGET} per {WINDOW * result.margin:.1f} s (margin "
            f"{result.margin - 1:.0%}), so at most {1 / result.margin:.1%} of the budget in "
            "steady state by design.",
            "",
            md_table(
                ["window (emulator clock)", "accepted", "allowed", "achieved ÷ allowed"], rows
            ),
            "",
            md_table(
                ["check", "result", "target", ""],
                [
                    [
                        "429 responses",
                        f"{client_429} seen by the client, {result.emulator_429} recorded by "
                        "the emulator",
                        "0",
                        "met" if zero_429 else "**missed**",
                    ],
                    [
                        "aggregate rate over the run",
                        f"{share:.1%} of {fmt_rate(allowed / (result.windows * WINDOW))}/s",
                        "≥ 90%",
                        "met" if share >= 0.9 else "**missed**",
                    ],
                ],
            ),
            "",
            f"Attempts by HTTP status: {statuses}. Receipts: {outcomes}. CPU over the run: "
            f"client {result.client_cpu / result.wall:.0%}, emulator "
            f"{result.emulator_cpu / result.wall:.0%} of one core; other processes "
            f"{result.other_cpu / result.wall:.0%}.",
            "",
        ]
    )
