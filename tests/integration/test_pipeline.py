"""The delivery pipeline's promises on every runner (httpx sync, httpx async, aiohttp),
over loopback against the emulator: entry points mixed on one bridge never reorder a
message, a token endpoint's hiccup is retried, one bad item never stops a batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest

from msgbridge import AdapterRegistry, MemoryTokenStore, MessageStatus, Outcome
from msgbridge.adapter import PreparedRequest
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.auth import BearerToken, Credential
from msgbridge.emulator import Emulator
from msgbridge.errors import AuthenticationError, UnexpectedError

from .support import (
    connection,
    demo_oauth,
    open_runner,
    seed,
    token_requests,
    token_url,
)

pytestmark = pytest.mark.anyio


async def test_update_status_waits_for_the_same_message_in_update_many(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str
) -> None:
    """``delivered`` is in flight in ``update_many`` (the vendor is slow to answer it) when
    ``update_status(read)`` is called for the same message: the vendor must see delivered,
    then read, and the guard must remember read."""
    seed(emu, "highlevel", "m-race")
    emu.faults.latency(0.6, vendor="highlevel", count=1)
    async with open_runner(runner_kind, [connection(emu, "highlevel")], registry=registry) as r:

        async def batch() -> Any:
            return await r.update_many([("highlevel", MessageStatus("m-race", "delivered"))])

        async def single() -> Any:
            await asyncio.sleep(0.2)  # let the batch's request reach the slow vendor first
            return await r.update_status("highlevel", MessageStatus("m-race", "read"))

        batched, alone = await r.gather([batch, single])
        guard = r.bridge.guard
        assert guard is not None
        assert guard.last("highlevel", "m-race") is not None
        last = guard.last("highlevel", "m-race")

    assert [receipt.outcome for receipt in batched] == [Outcome.APPLIED]  # type: ignore[union-attr]
    assert alone.outcome is Outcome.APPLIED  # type: ignore[union-attr]
    assert emu.message("highlevel", "m-race").statuses == ["delivered", "read"]
    assert last is not None
    assert last.value == "read"


@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
@pytest.mark.parametrize("fault", [503, 500, "drop"])
async def test_a_token_endpoint_hiccup_is_retried_not_a_lost_grant(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str, fault: Any
) -> None:
    seed(emu, vendor, "m-hiccup")
    store = MemoryTokenStore()
    cls = HubSpotOAuth if vendor == "hubspot" else HighLevelOAuth
    credential = cls(
        **demo_oauth(vendor),
        token_url=token_url(emu, vendor),
        store=store,
        access_token="stale-access-token",
        expires_at=time.time() - 60,
    )
    emu.faults.script([fault], vendor=vendor, route="oauth_token")
    conn = connection(emu, vendor, credentials=credential)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        receipt = await runner.update_status(vendor, MessageStatus("m-hiccup", "read"))

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 2, "the failed refresh is one attempt, then one more"
    assert [r.status for r in token_requests(emu, vendor)][-1] == 200
    assert credential.refresh_count == 1
    saved = store.load()
    assert saved is not None
    assert saved.access_token != "stale-access-token"


@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
async def test_a_dead_refresh_token_is_an_authentication_error_at_once(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    seed(emu, vendor, "m-dead")
    cls = HubSpotOAuth if vendor == "hubspot" else HighLevelOAuth
    oauth = {**demo_oauth(vendor), "refresh_token": "never-issued-refresh-token"}
    credential = cls(**oauth, token_url=token_url(emu, vendor), store=MemoryTokenStore())
    conn = connection(emu, vendor, credentials=credential)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        with pytest.raises(AuthenticationError, match="re-authorised") as caught:
            await runner.update_status(vendor, MessageStatus("m-dead", "read"))
    assert caught.value.attempts == 1
    assert len(token_requests(emu, vendor)) == 1
    assert "never-issued" not in str(caught.value)


class _BadHeader(Credential):
    """A plugin credential that builds a header value no HTTP client can send."""

    def __init__(self, token: str, value: str) -> None:
        self._auth = BearerToken(token)
        self._value = value

    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        return {**self._auth.headers(request), "X-Note": self._value}


class _Crashing(Credential):
    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        raise RuntimeError("plugin bug")


@pytest.mark.parametrize("bad", ["line-break", "crash"])
async def test_one_bad_item_fails_alone_in_update_many(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, bad: str
) -> None:
    token = "demo-highlevel-token"
    credential: Credential = (
        _BadHeader(token, "v\r\nX-Evil: 1") if bad == "line-break" else _Crashing()
    )
    good = connection(emu, "highlevel")
    poison = connection(emu, "highlevel", name="poison", credentials=credential)
    items: list[tuple[str, MessageStatus]] = []
    for index in range(100):
        seed(emu, "highlevel", f"m{index}")
        items.append(("highlevel", MessageStatus(f"m{index}", "delivered")))
        if index == 50:
            seed(emu, "highlevel", "m-poison")
            items.append(("poison", MessageStatus("m-poison", "delivered")))
    async with open_runner(runner_kind, [good, poison], registry=registry) as runner:
        receipts = await runner.update_many(items, max_in_flight=8)

    by_index = {receipt.index: receipt for receipt in receipts}
    assert len(by_index) == 101
    failed = by_index[51]
    assert failed.outcome is Outcome.FAILED
    assert isinstance(failed.error, UnexpectedError)
    assert failed.error.retryable is False
    assert failed.attempts == 1
    assert "v\r\n" not in str(failed.error), "a header value (maybe a secret) was echoed"
    assert sum(r.outcome is Outcome.APPLIED for r in receipts) == 100
    assert emu.message("highlevel", "m-poison").statuses == []
