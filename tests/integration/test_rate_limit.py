"""Client-side rate limiting against the emulator's per-account budgets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from msgbridge import AdapterRegistry, MessageStatus, Outcome
from msgbridge.emulator import Emulator, RateLimit, RecordedRequest

from .support import SlowStartProxy, account, connection, open_runner, seed

pytestmark = pytest.mark.anyio

BUDGET = 5
WINDOW = 1.0
UPDATES = 12


def _busiest_window(recorded: list[RecordedRequest], window: float) -> int:
    """Most arrivals (as the emulator timed them) within any *window*-long span."""
    arrivals = sorted(r.at for r in recorded)
    return max(
        sum(1 for later in arrivals if start <= later < start + window) for start in arrivals
    )


def _timeline(emu: Emulator) -> list[tuple[int | None, float]]:
    return [(r.status, round(r.at % 100, 3)) for r in emu.requests]


async def test_update_many_stays_within_the_vendor_budget(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    """``rate_limit=(5, 1.0)`` against a vendor allowing 5 per 1 s: never a 429."""
    emu.set_rate_limit(
        "highlevel", RateLimit(max_requests=BUDGET, interval=WINDOW), account=account("highlevel")
    )
    for i in range(UPDATES):
        seed(emu, "highlevel", f"rl-{i}")
    conn = connection(emu, "highlevel", rate_limit=(BUDGET, WINDOW))
    items = [("highlevel", MessageStatus(f"rl-{i}", "delivered")) for i in range(UPDATES)]

    started = time.monotonic()
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        receipts = await runner.update_many(items)
    took = time.monotonic() - started

    recorded = list(emu.requests)
    assert emu.find_requests(status=429) == [], _timeline(emu)
    assert sorted(r.index for r in receipts) == list(range(UPDATES))
    assert {r.outcome for r in receipts} == {Outcome.APPLIED}
    assert {r.attempts for r in receipts} == {1}
    assert len(recorded) == UPDATES
    assert all(emu.message("highlevel", f"rl-{i}").status == "delivered" for i in range(UPDATES))
    # No more than BUDGET arrivals in any WINDOW-long span, as the emulator timed them.
    assert _busiest_window(recorded, WINDOW) <= BUDGET, _timeline(emu)
    # 12 requests at 5 per second need three windows: at least ~2 s (a bound, not a speed).
    assert took >= 2 * WINDOW
    assert max(r.at for r in recorded) - min(r.at for r in recorded) >= 2 * WINDOW


async def test_budget_holds_when_new_connections_are_slow_to_open(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    """Cold connections that take 150 ms to open (a TLS handshake's worth) must not make
    the next burst, on warm connections, land inside the vendor's window.

    (Regression: the limiter once stamped a slot when it was reserved, so the vendor saw
    the slow first burst late and the prompt second burst early, and answered 429.)
    """
    budget, window, updates = 3, 0.5, 6
    emu.set_rate_limit(
        "highlevel", RateLimit(max_requests=budget, interval=window), account=account("highlevel")
    )
    for i in range(updates):
        seed(emu, "highlevel", f"cold-{i}")
    items = [("highlevel", MessageStatus(f"cold-{i}", "read")) for i in range(updates)]
    with SlowStartProxy(int(emu.url.rsplit(":", 1)[1]), delay=0.15) as proxy:
        conn = connection(
            emu, "highlevel", rate_limit=(budget, window), base_url=proxy.url(emu, "highlevel")
        )
        async with open_runner(runner_kind, [conn], registry=registry) as runner:
            receipts = await runner.update_many(items)

    assert proxy.connections >= budget  # the first burst really opened cold connections
    assert {r.outcome for r in receipts} == {Outcome.APPLIED}
    assert emu.find_requests(status=429) == [], _timeline(emu)
    assert _busiest_window(list(emu.requests), window) <= budget, _timeline(emu)


async def test_a_stricter_vendor_budget_is_learned_with_its_window(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    """The adapter's default is 100 per 10 s; the vendor's headers say 3 per 0.5 s. The
    limiter adopts that budget *and its window*: the 4th request waits about 0.5 s, not
    the 10 s of "3 per 10 s"."""
    emu.set_rate_limit(
        "highlevel", RateLimit(max_requests=3, interval=0.5), account=account("highlevel")
    )
    for i in range(4):
        seed(emu, "highlevel", f"learn-{i}")
    waits: list[float] = []

    def check(seconds: float) -> None:
        waits.append(seconds)
        if seconds > 2.0:  # fail fast instead of sleeping it out
            raise AssertionError(f"the limiter asked for a {seconds:.1f} s wait: {waits}")

    def sync_sleep(seconds: float) -> None:
        check(seconds)
        time.sleep(seconds)

    async def async_sleep(seconds: float) -> None:
        check(seconds)
        await asyncio.sleep(seconds)

    options: dict[str, Any] = {"sleep": sync_sleep if runner_kind == "sync" else async_sleep}
    async with open_runner(
        runner_kind, [connection(emu, "highlevel")], registry=registry, **options
    ) as runner:
        receipts = [
            await runner.update_status("highlevel", MessageStatus(f"learn-{i}", "read"))
            for i in range(4)
        ]

    assert {r.outcome for r in receipts} == {Outcome.APPLIED}
    assert emu.find_requests(status=429) == [], _timeline(emu)
    assert sum(waits) >= 0.3, waits  # it did wait for the vendor's window ...
    assert max(waits) < 1.0, waits  # ... and only for that window
