"""update_many: one receipt per input, order per message, coalescing, backpressure, limits."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    Outcome,
    Receipt,
)
from msgbridge.errors import InvalidStatus, VendorRejected

OK = {"conversationId": "c1", "messageId": "m1"}


@pytest.fixture(scope="module")
def registry() -> AdapterRegistry:
    return AdapterRegistry.from_entry_points(environ={"MSGBRIDGE_PLUGINS_ALLOW": "msgbridge"})


def hl(name: str = "c", **kwargs: Any) -> Connection:
    return Connection(name, adapter="highlevel", credentials=BearerToken("tok"), **kwargs)


def message_of(request: httpx.Request) -> str:
    """The message id of a status update, or the conversation id of a conversation one."""
    parts = request.url.path.split("/")
    return parts[3] if len(parts) > 4 else parts[2]


class Recorder:
    """A HighLevel stand-in recording (clock time, connection token path, message, body)."""

    def __init__(self, clock: Any = None) -> None:
        self.calls: list[tuple[float, str, str]] = []
        self.clock = clock or time.monotonic
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with self.lock:
            self.calls.append((self.clock(), message_of(request), body.get("status", "")))
        if message_of(request) == "bad":
            return httpx.Response(400, json={"statusCode": 400, "message": ["status is wrong"]})
        return httpx.Response(200, json=OK)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_every_input_gets_exactly_one_receipt_with_its_index(registry: AdapterRegistry) -> None:
    recorder = Recorder()
    items: list[Any] = [
        ("c", MessageStatus("m1", DeliveryState.DELIVERED)),
        ("nowhere", MessageStatus("m2", DeliveryState.READ)),
        "not a pair",
        ("c", "not an update"),
        ("c", MessageStatus("bad", DeliveryState.READ)),
        ("c", ConversationUpdate("conv-1", account_id="loc", unread_count=0)),
        ("c", MessageStatus("m3", DeliveryState.SENT)),
    ]
    with Bridge(
        [hl()], registry=registry, http_client=httpx.Client(transport=httpx.MockTransport(recorder))
    ) as bridge:
        receipts = list(bridge.update_many(items))
    by_index = {r.index: r for r in receipts}
    assert sorted(by_index) == list(range(len(items)))
    assert [by_index[i].outcome for i in range(len(items))] == [
        Outcome.APPLIED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    assert "unknown connection 'nowhere'" in (by_index[1].detail or "")
    assert isinstance(by_index[2].error, InvalidStatus)
    assert isinstance(by_index[4].error, VendorRejected)
    assert by_index[4].http_status == 400
    assert by_index[4].error.vendor_message == "status is wrong"
    assert by_index[6].vendor_value == "pending"


def test_a_queued_burst_collapses_to_its_final_state(registry: AdapterRegistry) -> None:
    recorder = Recorder()
    burst = [DeliveryState.PENDING, DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ]
    items = [("c", MessageStatus("m1", s)) for s in burst] + [
        ("c", MessageStatus("m2", DeliveryState.READ)),
        ("c", MessageStatus("m2", DeliveryState.DELIVERED)),  # stale behind READ
    ]
    with Bridge(
        [hl()], registry=registry, http_client=httpx.Client(transport=httpx.MockTransport(recorder))
    ) as bridge:
        receipts = sorted(bridge.update_many(items), key=lambda r: r.index or 0)
    assert sorted((m, s) for _, m, s in recorder.calls) == [("m1", "read"), ("m2", "read")]
    assert [r.outcome for r in receipts] == [
        Outcome.SKIPPED_SUPERSEDED,
        Outcome.SKIPPED_SUPERSEDED,
        Outcome.SKIPPED_SUPERSEDED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.SKIPPED_SUPERSEDED,
    ]
    assert receipts[0].adapter == "highlevel"


def test_updates_for_one_message_are_never_reordered(registry: AdapterRegistry) -> None:
    """The second update for m1 waits for the first instead of racing it."""
    release = threading.Event()
    order: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = json.loads(request.content)["status"]
        if message_of(request) == "m1" and status == "delivered":
            release.wait(5)  # still in flight when the READ for m1 arrives
        if message_of(request) == "m2":
            threading.Timer(0.2, release.set).start()
        order.append(f"{message_of(request)}:{status}")
        return httpx.Response(200, json=OK)

    def items() -> Iterator[tuple[str, MessageStatus]]:
        yield ("c", MessageStatus("m1", DeliveryState.DELIVERED))
        yield ("c", MessageStatus("m2", DeliveryState.READ))
        yield ("c", MessageStatus("m1", DeliveryState.READ))

    with Bridge(
        [hl()],
        registry=registry,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        rate_limits=False,
    ) as bridge:
        receipts = list(bridge.update_many(items(), max_in_flight=2, max_pending=2))
    m1 = [o for o in order if o.startswith("m1")]
    assert m1 == ["m1:delivered", "m1:read"]
    assert Counter(r.outcome for r in receipts) == {Outcome.APPLIED: 3}


def test_input_is_read_lazily_with_backpressure(registry: AdapterRegistry) -> None:
    release = threading.Event()
    pulled = 0

    def handler(request: httpx.Request) -> httpx.Response:
        release.wait(5)
        return httpx.Response(200, json=OK)

    def items() -> Iterator[tuple[str, MessageStatus]]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield ("c", MessageStatus(f"m{i}", DeliveryState.READ))

    results: list[Receipt] = []
    with Bridge(
        [hl()],
        registry=registry,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        rate_limits=False,
    ) as bridge:
        worker = threading.Thread(
            target=lambda: results.extend(
                bridge.update_many(items(), max_in_flight=2, max_pending=8)
            )
        )
        worker.start()
        time.sleep(0.2)
        pulled_while_blocked = pulled
        release.set()
        worker.join(10)
    assert pulled_while_blocked <= 9  # max_pending, plus the one being looked at
    assert len(results) == 1000
    assert {r.outcome for r in results} == {Outcome.APPLIED}


@pytest.mark.anyio
async def test_rate_limit_spaces_requests_by_the_window(registry: AdapterRegistry) -> None:
    fake = FakeTime()
    recorder = Recorder(clock=fake.clock)
    items = [("c", MessageStatus(f"m{i}", DeliveryState.READ)) for i in range(12)]
    async with AsyncBridge(
        [hl(rate_limit=(5, 10.0))],
        registry=registry,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
        clock=fake.clock,
        sleep=fake.sleep,
    ) as bridge:
        receipts = [r async for r in bridge.update_many(items)]
    assert len(receipts) == 12
    offsets = sorted(round(t - 1000.0, 3) for t, _, _ in recorder.calls)
    # 5 per 10 s (stretched by the limiter's 2% margin), never more in any window.
    assert offsets == [0.0] * 5 + [10.2] * 5 + [20.4] * 2


@pytest.mark.anyio
async def test_a_429_pauses_the_whole_connection_and_not_the_others(
    registry: AdapterRegistry,
) -> None:
    """Real time, short pause: a's 429 holds every request of "a", "b" carries on."""
    started = time.monotonic()
    sent: list[tuple[float, str]] = []
    limited_once = False

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal limited_once
        sent.append((time.monotonic() - started, request.url.host))
        if request.url.host == "a.example" and not limited_once:
            limited_once = True
            return httpx.Response(
                429, json={"statusCode": 429, "message": "slow"}, headers={"Retry-After": "0.5"}
            )
        return httpx.Response(200, json=OK)

    connections = [
        hl("a", settings={"base_url": "https://a.example"}),
        hl("b", settings={"base_url": "https://b.example"}),
    ]
    items = [("a", MessageStatus(f"a{i}", DeliveryState.READ)) for i in range(3)]
    items += [("b", MessageStatus(f"b{i}", DeliveryState.READ)) for i in range(3)]
    async with AsyncBridge(
        connections,
        registry=registry,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    ) as bridge:
        receipts = [r async for r in bridge.update_many(items, max_in_flight=4, per_connection=2)]
    assert {r.outcome for r in receipts} == {Outcome.APPLIED}
    a_times = [t for t, host in sent if host == "a.example"]
    b_times = [t for t, host in sent if host == "b.example"]
    assert len(a_times) == 4  # three updates plus the one retry
    # The first two went out together; after the 429 nothing for "a" before 0.5 s.
    assert sorted(a_times)[2] >= 0.5, a_times
    assert max(b_times) < 0.5, b_times  # "b" was never held by a's pause


@pytest.mark.anyio
async def test_async_iterable_input_and_async_receipts(registry: AdapterRegistry) -> None:
    recorder = Recorder()

    async def items() -> AsyncIterator[tuple[str, MessageStatus]]:
        for i in range(20):
            await asyncio.sleep(0)
            yield ("c", MessageStatus(f"m{i}", DeliveryState.DELIVERED))

    async with AsyncBridge(
        [hl()],
        registry=registry,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
    ) as bridge:
        receipts = [r async for r in bridge.update_many(items(), max_in_flight=4)]
    assert sorted(r.index for r in receipts if r.index is not None) == list(range(20))
    assert sorted(m for _, m, _ in recorder.calls) == sorted(f"m{i}" for i in range(20))


def test_guard_still_applies_across_batches(registry: AdapterRegistry) -> None:
    recorder = Recorder()
    with Bridge(
        [hl()], registry=registry, http_client=httpx.Client(transport=httpx.MockTransport(recorder))
    ) as bridge:
        first = list(bridge.update_many([("c", MessageStatus("m1", DeliveryState.READ))]))
        second = list(bridge.update_many([("c", MessageStatus("m1", DeliveryState.DELIVERED))]))
    assert [r.outcome for r in first] == [Outcome.APPLIED]
    assert [r.outcome for r in second] == [Outcome.SKIPPED_STALE]
    assert len(recorder.calls) == 1
