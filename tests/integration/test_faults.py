"""Each fault the emulator can inject, retried (or given up on) the same way by every runner."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
import pytest

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    Bridge,
    DeliveryState,
    MemoryTokenStore,
    MessageStatus,
    Outcome,
    RetryPolicy,
)
from msgbridge.adapters.highlevel import PROVIDER_NOT_READY, HighLevelOAuth
from msgbridge.emulator import Emulator, RateLimit, demo_token
from msgbridge.errors import VendorUnavailable
from msgbridge.fast import AiohttpSender

from .support import (
    FAST_RETRY,
    PROVIDER_RETRY_AFTER,
    RUNNERS,
    Runner,
    account,
    api_requests,
    connection,
    demo_oauth,
    open_runner,
    seed,
    status_path,
    token_requests,
    token_url,
    wait_for_requests,
)

pytestmark = pytest.mark.anyio

SHORT_READ = httpx.Timeout(0.1, connect=2.0)
LATENCY = 0.35
WINDOW = 0.25


@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
async def test_scripted_503_503_200_is_applied_on_the_third_attempt(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    seed(emu, vendor, "m-503")
    emu.faults.script([503, 503, 200], vendor=vendor)
    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        receipt = await runner.update_status(vendor, MessageStatus("m-503", "read"))

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 3
    assert receipt.http_status == 200
    recorded = emu.requests
    assert [r.status for r in recorded] == [503, 503, 200]
    assert [r.fault for r in recorded] == ["status:503", "status:503", None]
    assert {r.path for r in recorded} == {status_path(emu, vendor, "m-503")}
    assert receipt.trace_id == recorded[-1].id
    assert emu.message(vendor, "m-503").statuses == ["read" if vendor != "hubspot" else "READ"]


@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
async def test_500_storm_gives_up_after_max_attempts(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    seed(emu, vendor, "m-500")
    emu.faults.error_rate(1.0, [500], vendor=vendor)
    retry = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_attempts=4)
    async with open_runner(
        runner_kind, [connection(emu, vendor)], registry=registry, retry=retry
    ) as runner:
        with pytest.raises(VendorUnavailable) as caught:
            await runner.update_status(vendor, MessageStatus("m-500", "delivered"))

    error = caught.value
    assert error.attempts == 4
    assert error.http_status == 500
    assert error.retryable
    assert error.connection == vendor
    assert error.subject_id == "m-500"
    assert error.trace_id == emu.requests[-1].id
    assert [r.status for r in emu.requests] == [500] * 4
    assert emu.message(vendor, "m-500").status is None


def _spend(emu: Emulator, vendor: str, message_id: str, times: int) -> None:
    """Use up the account's budget from outside the bridge (another process)."""
    base = emu.base_url(vendor)
    headers = {"Authorization": f"Bearer {demo_token(vendor)}"}
    with httpx.Client(timeout=5.0) as client:
        for _ in range(times):
            if vendor == "hubspot":
                url = f"{base}/conversations/custom-channels/2026-03/1000/messages/{message_id}"
                response = client.patch(url, json={"statusType": "SENT"}, headers=headers)
            else:
                url = f"{base}/conversations/messages/{message_id}/status"
                headers["Version"] = "2021-04-15"
                response = client.put(url, json={"status": "pending"}, headers=headers)
            assert response.status_code == 200, response.text


@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
async def test_429_from_the_vendor_limit_is_waited_out_then_applied(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    seed(emu, vendor, "m-other")
    seed(emu, vendor, "m-429")
    emu.set_rate_limit(vendor, RateLimit(max_requests=2, interval=WINDOW), account=account(vendor))
    _spend(emu, vendor, "m-other", 2)
    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        receipt = await runner.update_status(vendor, MessageStatus("m-429", "read"))

    seen = [(r.status, r.path.rsplit("/", 2)[-2:], round(r.at % 100, 3)) for r in emu.requests]
    assert receipt.outcome is Outcome.APPLIED, seen
    assert receipt.attempts == 2, seen
    mine = api_requests(emu, vendor)[2:]
    assert [r.status for r in mine] == [429, 200], seen
    # The vendor's window (from the first spent request) was waited out.
    assert mine[1].at - api_requests(emu, vendor)[0].at >= WINDOW - 0.01
    assert emu.message(vendor, "m-429").status == ("READ" if vendor == "hubspot" else "read")


@pytest.mark.parametrize("after", [False, True], ids=["before-apply", "after-apply"])
@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
async def test_dropped_connection_is_retried(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str, after: bool
) -> None:
    """A cut connection is a transport error: retried. With ``after`` the vendor had
    already applied the update, so the retry applies the same status again."""
    seed(emu, vendor, "m-drop")
    emu.faults.drop(vendor=vendor, count=1, after=after)
    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        receipt = await runner.update_status(vendor, MessageStatus("m-drop", "delivered"))

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 2
    recorded = emu.requests
    assert [r.fault for r in recorded] == ["drop:after" if after else "drop", None]
    value = "SENT" if vendor == "hubspot" else "delivered"
    assert emu.message(vendor, "m-drop").statuses == ([value, value] if after else [value])


async def test_latency_beyond_the_read_timeout_is_retried(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    """The sender's read timeout (``timeout=httpx.Timeout(...)``) cuts a slow answer."""
    seed(emu, "highlevel", "m-slow")
    emu.faults.latency(LATENCY, vendor="highlevel", count=1)
    started = time.monotonic()
    async with open_runner(
        runner_kind, [connection(emu, "highlevel")], registry=registry, sender_timeout=SHORT_READ
    ) as runner:
        receipt = await runner.update_status("highlevel", MessageStatus("m-slow", "read"))
    took = time.monotonic() - started

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 2
    assert took < LATENCY  # the second attempt did not wait for the slow first one
    # The slow first request still reaches the handler after its delay (the "did it go
    # through?" case); wait for it so it cannot leak into the next test.
    wait_for_requests(emu, 2)
    assert sorted(str(r.fault) for r in emu.requests) == ["None", f"latency:{LATENCY:g}"]


@asynccontextmanager
async def _caller_client_runner(
    kind: str, emu: Emulator, registry: AdapterRegistry
) -> AsyncIterator[Runner]:
    """A bridge on a client *the caller* built with a short read timeout."""
    conn = [connection(emu, "highlevel")]
    if kind == "sync":
        with httpx.Client(timeout=SHORT_READ) as client:
            bridge = Bridge(conn, registry=registry, retry=FAST_RETRY, http_client=client)
            try:
                yield Runner(kind, bridge)
            finally:
                bridge.close()
    elif kind == "async-httpx":
        async with (
            httpx.AsyncClient(timeout=SHORT_READ) as async_client,
            AsyncBridge(
                conn, registry=registry, retry=FAST_RETRY, http_client=async_client
            ) as async_bridge,
        ):
            yield Runner(kind, async_bridge)
    else:
        timeout = aiohttp.ClientTimeout(total=None, connect=2.0, sock_read=SHORT_READ.read)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            AsyncBridge(
                conn, registry=registry, retry=FAST_RETRY, sender=AiohttpSender(session)
            ) as async_bridge,
        ):
            yield Runner(kind, async_bridge)


@pytest.mark.parametrize("kind", RUNNERS)
async def test_caller_provided_client_timeout_is_honoured(
    emu: Emulator, registry: AdapterRegistry, kind: str
) -> None:
    """A caller's ``httpx.Client``/``AsyncClient``/``aiohttp.ClientSession`` keeps its own
    (short) read timeout: the slow answer is cut and retried."""
    seed(emu, "highlevel", "m-client")
    emu.faults.latency(LATENCY, vendor="highlevel", count=1)
    try:
        async with _caller_client_runner(kind, emu, registry) as runner:
            receipt = await runner.update_status("highlevel", MessageStatus("m-client", "read"))
        assert receipt.outcome is Outcome.APPLIED
        assert receipt.attempts == 2, "the caller's short read timeout was not applied"
    finally:
        wait_for_requests(emu, 1)
        if emu.requests[0].fault is None:  # the slow request is still in the handler
            wait_for_requests(emu, 2)


@pytest.mark.parametrize("kind", RUNNERS)
async def test_provider_race_403_is_retried_without_refreshing_the_token(
    emu: Emulator, registry: AdapterRegistry, kind: str
) -> None:
    """HighLevel's "No conversation provider" 403 is waited out; an OAuth credential is
    never refreshed for it (a 403 is not an expired token)."""
    emu.add_token("highlevel", "race-access-token", account=account("highlevel"))
    credential = HighLevelOAuth(
        **demo_oauth("highlevel"),
        access_token="race-access-token",
        expires_at=time.time() + 3600,
        token_url=token_url(emu, "highlevel"),
        store=MemoryTokenStore(),
    )
    emu.set_provider_race(0.3)
    seed(emu, "highlevel", "m-race")
    conn = connection(emu, "highlevel", credentials=credential)
    async with open_runner(kind, [conn], registry=registry) as runner:
        receipt = await runner.update_status("highlevel", MessageStatus("m-race", "delivered"))

    assert receipt.outcome is Outcome.APPLIED
    recorded = api_requests(emu, "highlevel")
    statuses = [r.status for r in recorded]
    assert statuses[-1] == 200
    assert len(statuses) >= 2
    assert set(statuses[:-1]) == {403}
    assert all(PROVIDER_NOT_READY in r.response["message"] for r in recorded[:-1])
    assert receipt.attempts == len(recorded)
    gaps = [b.at - a.at for a, b in itertools.pairwise(recorded)]
    assert all(gap >= PROVIDER_RETRY_AFTER - 0.02 for gap in gaps), gaps
    assert token_requests(emu) == []
    assert credential.refresh_count == 0
    assert emu.message("highlevel", "m-race").status == "delivered"
    assert emu.message("highlevel", "m-race").history[0].fields == {"status": "delivered"}
    assert receipt.state is DeliveryState.DELIVERED
