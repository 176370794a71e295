"""The delivery pipeline with no network: one owner of per-message policy, refresh through
the loop, redirects refused, early exit, argument errors at the call."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    DeliveryAttempt,
    DeliveryState,
    MessageStatus,
    Outcome,
    StateGuard,
)
from msgbridge.adapter import Operation
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.bridge import Unsettled
from msgbridge.errors import ConfigurationError, LeaseLost, RedirectRefused
from msgbridge.retry import RetryPolicy
from msgbridge.senders import AsyncHttpxSender, HttpxSender

S = DeliveryState
OK = {"conversationId": "c1", "messageId": "m1"}
NO_WAIT = RetryPolicy(initial_backoff=0.0, max_backoff=0.0, jitter=0.0)


@pytest.fixture(scope="module")
def registry() -> AdapterRegistry:
    return AdapterRegistry.from_entry_points(environ={"MSGBRIDGE_PLUGINS_ALLOW": "msgbridge"})


def hl(name: str = "c", credentials: Any = None) -> Connection:
    return Connection(name, adapter="highlevel", credentials=credentials or BearerToken("tok"))


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def test_the_guard_never_moves_backwards() -> None:
    guard = StateGuard()
    guard.record("c", "m", S.READ, "read")
    guard.record("c", "m", S.DELIVERED, "delivered")
    assert guard.last("c", "m") is S.READ
    guard.record("c", "m", S.FAILED, "failed")  # failed may not follow read
    assert guard.last("c", "m") is S.READ


@pytest.mark.parametrize("bad", [0, -1, True, "8", 2.5])
def test_update_many_refuses_bad_arguments_at_the_call(registry: AdapterRegistry, bad: Any) -> None:
    with Bridge([hl()], registry=registry) as bridge:
        with pytest.raises(ConfigurationError, match="max_in_flight must be an integer"):
            bridge.update_many([], max_in_flight=bad)
        with pytest.raises(ConfigurationError, match="per_connection"):
            bridge.update_many([], per_connection=bad)


@pytest.mark.anyio
async def test_async_update_many_refuses_bad_arguments_at_the_call(
    registry: AdapterRegistry,
) -> None:
    async with AsyncBridge([hl()], registry=registry) as bridge:
        with pytest.raises(ConfigurationError, match="max_pending"):
            bridge.update_many([], max_in_flight=8, max_pending=4)


def test_a_redirect_is_refused_and_never_followed(registry: AdapterRegistry) -> None:
    seen: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"Location": "https://evil.example/x?token=abc"})

    client = httpx.Client(transport=httpx.MockTransport(vendor), follow_redirects=True)
    bridge = Bridge([hl()], registry=registry, sender=HttpxSender(client), retry=NO_WAIT)
    with bridge, pytest.raises(RedirectRefused) as caught:
        bridge.update_status("c", MessageStatus("m1", "read"))
    client.close()
    assert len(seen) == 1
    assert caught.value.retryable is False
    assert "https://evil.example" in str(caught.value)
    assert "token=abc" not in str(caught.value)


def _oauth_vendor(token_answers: list[httpx.Response]) -> tuple[Any, list[str]]:
    calls: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            calls.append("token")
            return token_answers.pop(0)
        calls.append(request.headers["authorization"])
        if request.headers["authorization"] != "Bearer fresh":
            return httpx.Response(401, json={"statusCode": 401, "message": "Invalid JWT"})
        return httpx.Response(200, json=OK)

    return vendor, calls


FRESH = httpx.Response(
    200, json={"access_token": "fresh", "refresh_token": "r2", "expires_in": 3600}
)


@pytest.mark.parametrize(
    "hiccup",
    [
        httpx.Response(503, text="upstream down"),
        httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "slow down"}),
    ],
    ids=["503", "429"],
)
def test_token_endpoint_hiccup_is_retried_and_observed(
    registry: AdapterRegistry, hiccup: httpx.Response
) -> None:
    vendor, calls = _oauth_vendor([hiccup, FRESH])
    events: list[DeliveryAttempt] = []
    local = AdapterRegistry.from_entry_points(environ={"MSGBRIDGE_PLUGINS_ALLOW": "msgbridge"})
    local.add_observer(events.append)
    credential = HighLevelOAuth(
        client_id="cid",
        client_secret="sec",
        refresh_token="r1",
        token_url="https://hl.test/oauth/token",
    )
    client = httpx.Client(transport=httpx.MockTransport(vendor))
    with Bridge(
        [hl(credentials=credential)], registry=local, sender=HttpxSender(client), retry=NO_WAIT
    ) as bridge:
        receipt = bridge.update_status("c", MessageStatus("m1", "read"))
    client.close()
    assert receipt.outcome is Outcome.APPLIED
    assert calls == ["token", "token", "Bearer fresh"]
    refreshes = [e for e in events if e.operation is Operation.REFRESH_TOKEN]
    assert [(e.http_status, e.will_retry) for e in refreshes] == [(hiccup.status_code, True)]
    assert events[-1].operation is Operation.UPDATE_STATUS
    assert events[-1].error is None


def test_a_401_refreshes_once_then_resends(registry: AdapterRegistry) -> None:
    vendor, calls = _oauth_vendor([FRESH])
    credential = HighLevelOAuth(
        client_id="cid",
        client_secret="sec",
        refresh_token="r1",
        access_token="old",
        expires_at=time.time() + 3600,
        token_url="https://hl.test/oauth/token",
    )
    client = httpx.Client(transport=httpx.MockTransport(vendor))
    with Bridge([hl(credentials=credential)], registry=registry, sender=HttpxSender(client)) as b:
        receipt = b.update_status("c", MessageStatus("m1", "read"))
    client.close()
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 1
    assert calls == ["Bearer old", "token", "Bearer fresh"]


def test_the_fence_stops_an_attempt_before_it_is_sent(registry: AdapterRegistry) -> None:
    sent: list[str] = []
    held = {"c": True}

    def fence(connection: str) -> None:
        if not held[connection]:
            raise LeaseLost(f"lease on {connection!r} lost")

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        held["c"] = False  # the lease expires while the vendor answers 503
        return httpx.Response(503)

    client = httpx.Client(transport=httpx.MockTransport(vendor))
    with Bridge(
        [hl()], registry=registry, sender=HttpxSender(client), retry=NO_WAIT, fence=fence
    ) as bridge:
        (receipt,) = list(bridge.update_many([("c", MessageStatus("m1", "read"))]))
    client.close()
    assert len(sent) == 1, "the retry went out although the lease was lost"
    assert receipt.outcome is Outcome.FAILED
    assert isinstance(receipt.error, LeaseLost)


def test_leaving_sync_update_many_early_stops_sending_and_reports(
    registry: AdapterRegistry,
) -> None:
    """The consumer breaks while other updates wait out a 30 s Retry-After: it returns at
    once, nothing more is sent, and the sent-but-unsettled updates are reported."""
    sent: list[str] = []
    lock = threading.Lock()

    def vendor(request: httpx.Request) -> httpx.Response:
        message = request.url.path.split("/")[3]
        with lock:
            sent.append(message)
        if message == "ok":
            return httpx.Response(200, json=OK)
        return httpx.Response(503, headers={"Retry-After": "30"})

    unsettled: list[Unsettled] = []
    items = [("c", MessageStatus(f"m{i}", "read")) for i in range(6)]
    items.insert(3, ("c", MessageStatus("ok", "read")))
    client = httpx.Client(transport=httpx.MockTransport(vendor))
    with Bridge([hl()], registry=registry, sender=HttpxSender(client), rate_limits=False) as bridge:
        receipts = bridge.update_many(items, max_in_flight=8, on_unsettled=unsettled.extend)
        first = next(receipts)
        assert first.subject_id == "ok"
        started = time.monotonic()
        receipts.close()
        took = time.monotonic() - started
        count = len(sent)
        time.sleep(0.3)
    client.close()
    assert took < 1.0, f"leaving update_many took {took:.1f} s"
    assert len(sent) == count, "updates were sent after the caller left"
    # Every update that reached the vendor without a settled answer is reported (one whose
    # thread had not started when the caller left was never sent and may be left out).
    reached = set(sent) - {"ok"}
    reported = {u.subject_id for u in unsettled}
    assert reached, "no update was in flight when the caller left"
    assert reached <= reported <= {f"m{i}" for i in range(6)}


@pytest.mark.anyio
async def test_leaving_async_update_many_early_reports_unsettled_updates(
    registry: AdapterRegistry,
) -> None:
    release = asyncio.Event()

    async def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.split("/")[3] != "ok":
            await release.wait()
        return httpx.Response(200, json=OK)

    unsettled: list[Unsettled] = []
    items = [("c", MessageStatus(f"m{i}", "read")) for i in range(5)]
    items.append(("c", MessageStatus("ok", "read")))
    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    async with AsyncBridge(
        [hl()], registry=registry, sender=AsyncHttpxSender(client), rate_limits=False
    ) as bridge:
        receipts = bridge.update_many(items, on_unsettled=unsettled.extend)
        async for receipt in receipts:
            assert receipt.subject_id == "ok"
            break
        await receipts.aclose()  # type: ignore[attr-defined]
    release.set()
    await client.aclose()
    assert sorted(u.subject_id for u in unsettled) == [f"m{i}" for i in range(5)]


def test_one_in_flight_sync_update_many_delivers_in_the_callers_thread(
    registry: AdapterRegistry,
) -> None:
    """``max_in_flight=1`` delivers in the caller's thread (no pool thread): items go out
    in input order, a failing item is a FAILED receipt, and an interrupt while a request
    is out leaves with that update reported as unsettled."""
    order: list[str] = []
    threads: set[str] = set()

    def vendor(request: httpx.Request) -> httpx.Response:
        message = request.url.path.split("/")[3]
        order.append(message)
        threads.add(threading.current_thread().name)
        if message == "bad":
            return httpx.Response(422, json={"message": "no"})
        if message == "m2":
            raise KeyboardInterrupt
        return httpx.Response(200, json=OK)

    items = [("c", MessageStatus(name, "read")) for name in ["m0", "bad", "m1", "m2", "m3"]]
    unsettled: list[Unsettled] = []
    seen: list[tuple[int | None, str, str]] = []
    client = httpx.Client(transport=httpx.MockTransport(vendor))

    def consume(bridge: Bridge) -> None:
        for receipt in bridge.update_many(items, max_in_flight=1, on_unsettled=unsettled.extend):
            seen.append((receipt.index, receipt.subject_id, receipt.outcome.value))

    with (
        Bridge([hl()], registry=registry, sender=HttpxSender(client), rate_limits=False) as bridge,
        pytest.raises(KeyboardInterrupt),
    ):
        consume(bridge)
    client.close()
    assert order == ["m0", "bad", "m1", "m2"]
    assert threads == {threading.current_thread().name}
    assert seen == [(0, "m0", "applied"), (1, "bad", "failed"), (2, "m1", "applied")]
    assert [(u.index, u.subject_id) for u in unsettled] == [(3, "m2")]


@pytest.mark.anyio
async def test_one_in_flight_async_update_many_delivers_in_its_own_task(
    registry: AdapterRegistry,
) -> None:
    """``max_in_flight=1`` delivers inside the consumer's task (no worker hop): items go
    out one at a time in input order, a failing item is a FAILED receipt, and a consumer
    cancelled while a request is out reports that update as unsettled."""
    order: list[str] = []
    hold, m3_out = asyncio.Event(), asyncio.Event()

    async def vendor(request: httpx.Request) -> httpx.Response:
        message = request.url.path.split("/")[3]
        order.append(message)
        if message == "bad":
            return httpx.Response(422, json={"message": "no"})
        if message == "m3":
            m3_out.set()
            await hold.wait()
        return httpx.Response(200, json=OK)

    names = ["m0", "bad", "m1", "m2", "m3", "m4"]
    items = [("c", MessageStatus(name, "read")) for name in names]
    unsettled: list[Unsettled] = []
    seen: list[tuple[int | None, str, str]] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    async with AsyncBridge(
        [hl()], registry=registry, sender=AsyncHttpxSender(client), rate_limits=False
    ) as bridge:

        async def consume() -> None:
            async for receipt in bridge.update_many(
                items, max_in_flight=1, on_unsettled=unsettled.extend
            ):
                seen.append((receipt.index, receipt.subject_id, receipt.outcome.value))

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(m3_out.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    hold.set()
    await client.aclose()
    assert order == ["m0", "bad", "m1", "m2", "m3"], "one at a time, in input order"
    assert seen == [
        (0, "m0", "applied"),
        (1, "bad", "failed"),
        (2, "m1", "applied"),
        (3, "m2", "applied"),
    ]
    assert [(u.index, u.subject_id) for u in unsettled] == [(4, "m3")]


@pytest.mark.anyio
async def test_mixed_entry_points_on_tasks_keep_message_order(registry: AdapterRegistry) -> None:
    """An ``update_many`` delivered is retried (503) while ``update_status(read)`` is
    called for the same message from another task: read waits its turn."""
    statuses: list[str] = []
    gate = asyncio.Event()

    async def vendor(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        status = "read" if '"read"' in body else "delivered"
        statuses.append(status)
        if status == "delivered" and statuses.count("delivered") == 1:
            await gate.wait()
            return httpx.Response(503)
        return httpx.Response(200, json=OK)

    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    async with AsyncBridge(
        [hl()], registry=registry, sender=AsyncHttpxSender(client), retry=NO_WAIT, sleep=_no_sleep
    ) as bridge:

        async def batch() -> list[Any]:
            return [r async for r in bridge.update_many([("c", MessageStatus("m", "delivered"))])]

        async def single() -> Any:
            await asyncio.sleep(0.05)
            task = asyncio.ensure_future(bridge.update_status("c", MessageStatus("m", "read")))
            await asyncio.sleep(0.05)
            gate.set()
            return await task

        batched, alone = await asyncio.gather(batch(), single())
        assert bridge.guard is not None
        last = bridge.guard.last("c", "m")
    await client.aclose()
    assert statuses == ["delivered", "delivered", "read"]
    assert batched[0].outcome is Outcome.APPLIED
    assert alone.outcome is Outcome.APPLIED
    assert last is S.READ


def test_mixed_entry_points_on_threads_keep_message_order(registry: AdapterRegistry) -> None:
    statuses: list[str] = []
    gate = threading.Event()
    lock = threading.Lock()

    def vendor(request: httpx.Request) -> httpx.Response:
        status = "read" if b'"read"' in request.content else "delivered"
        with lock:
            statuses.append(status)
            first = status == "delivered" and statuses.count("delivered") == 1
        if first:
            gate.wait(5)
            return httpx.Response(503)
        return httpx.Response(200, json=OK)

    client = httpx.Client(transport=httpx.MockTransport(vendor))
    with Bridge(
        [hl()], registry=registry, sender=HttpxSender(client), retry=NO_WAIT, sleep=lambda _: None
    ) as bridge:
        results: dict[str, Any] = {}
        batch = threading.Thread(
            target=lambda: results.update(
                batch=list(bridge.update_many([("c", MessageStatus("m", "delivered"))]))
            )
        )
        batch.start()
        time.sleep(0.05)
        single = threading.Thread(
            target=lambda: results.update(
                single=bridge.update_status("c", MessageStatus("m", "read"))
            )
        )
        single.start()
        time.sleep(0.05)
        gate.set()
        batch.join(5)
        single.join(5)
        assert bridge.guard is not None
        last = bridge.guard.last("c", "m")
    client.close()
    assert statuses == ["delivered", "delivered", "read"]
    assert results["single"].outcome is Outcome.APPLIED
    assert last is S.READ
