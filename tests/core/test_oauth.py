"""Refreshing OAuth credentials against a token endpoint with single-use refresh tokens."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from msgbridge import AsyncBridge, Bridge, MessageStatus, Outcome, TokenSet
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.auth import MemoryTokenStore, TokenStore
from msgbridge.errors import AuthenticationError, ConfigurationError

from .support import (
    ACCESS_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    HL_TOKEN_PATH,
    HS_TOKEN_PATH,
    REFRESH_TOKEN,
    AsyncYieldingVendor,
    FakeClock,
    FakeVendor,
    Harness,
    fresh_registry,
    hl_connection,
    hl_error,
    hl_oauth,
    hs_connection,
    hs_error,
    hs_oauth,
)

pytestmark = pytest.mark.anyio

HL_API = "api:PUT /conversations/messages/m1/status"
HS_API = "api:PATCH /conversations/custom-channels/2026-03/4242/messages/m1"


class RecordingStore:
    """A token store that writes what happens into a shared event log."""

    def __init__(self, tokens: TokenSet | None, events: list[str]) -> None:
        self.tokens = tokens
        self.events = events
        self.saved: list[TokenSet] = []

    def load(self) -> TokenSet | None:
        return self.tokens

    def save(self, tokens: TokenSet) -> None:
        self.events.append("save")
        self.saved.append(tokens)
        self.tokens = tokens


def expired_tokens(clock: FakeClock) -> TokenSet:
    return TokenSet(ACCESS_TOKEN, REFRESH_TOKEN, expires_at=clock() - 1)


@pytest.mark.parametrize("adapter", ["highlevel", "hubspot"])
async def test_expired_token_refreshes_once_and_saves_before_use(
    mode: str, clock: FakeClock, adapter: str
) -> None:
    events: list[str] = []
    store = RecordingStore(expired_tokens(clock), events)
    assert isinstance(store, TokenStore)
    vendor = FakeVendor(events=events)
    if adapter == "highlevel":
        credential: HighLevelOAuth | HubSpotOAuth = HighLevelOAuth(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, store=store, clock=clock
        )
        connection = hl_connection("c", credentials=credential)
        token_call, api_call = f"token:POST {HL_TOKEN_PATH}", HL_API
    else:
        credential = HubSpotOAuth(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, store=store, clock=clock
        )
        connection = hs_connection("c", credentials=credential)
        token_call, api_call = f"token:POST {HS_TOKEN_PATH}", HS_API
    async with Harness(mode, vendor, [connection], clock=clock) as h:
        first = await h.update_status("c", MessageStatus("m1", "sent"))
        second = await h.update_status("c", MessageStatus("m1", "read"))
    assert events == [token_call, "save", api_call, api_call]
    assert credential.refresh_count == 1
    assert first.outcome is second.outcome is Outcome.APPLIED
    [saved] = store.saved
    assert saved.access_token == "at-SECRET-1"
    assert saved.refresh_token == "rt-SECRET-1"
    assert saved.expires_at == clock() + 3600
    assert [s.bearer for s in vendor.api] == ["at-SECRET-1", "at-SECRET-1"]
    [token] = vendor.token
    assert token.host == (
        "services.leadconnectorhq.com" if adapter == "highlevel" else "api.hubapi.com"
    )
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in token.headers
    expected_form = {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    if adapter == "highlevel":
        expected_form["user_type"] = "Location"
    assert token.body == expected_form


async def test_token_inside_the_refresh_margin_is_refreshed(mode: str, clock: FakeClock) -> None:
    credential = HighLevelOAuth(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        access_token=ACCESS_TOKEN,
        refresh_token=REFRESH_TOKEN,
        expires_at=clock() + 59,
        clock=clock,
    )
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection(credentials=credential)], clock=clock) as h:
        await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert credential.refresh_count == 1
    assert vendor.api[0].bearer == "at-SECRET-1"


async def test_valid_token_is_not_refreshed(mode: str, clock: FakeClock) -> None:
    credential = hl_oauth(clock)
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection(credentials=credential)], clock=clock) as h:
        await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert vendor.token == []
    assert credential.refresh_count == 0
    assert vendor.api[0].bearer == ACCESS_TOKEN


async def test_refresh_token_only_refreshes_first(mode: str, clock: FakeClock) -> None:
    credential = hl_oauth(clock, access_token=None)
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection(credentials=credential)], clock=clock) as h:
        await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert [s.kind for s in vendor.seen] == ["token", "api"]
    assert vendor.api[0].bearer == "at-SECRET-1"


async def test_highlevel_401_refreshes_once_and_retries_once(mode: str, clock: FakeClock) -> None:
    events: list[str] = []
    vendor = FakeVendor([hl_error(401, "Invalid token: access token is invalid")], events=events)
    credential = hl_oauth(clock)
    async with Harness(mode, vendor, [hl_connection(credentials=credential)], clock=clock) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert events == [HL_API, f"token:POST {HL_TOKEN_PATH}", HL_API]
    assert [s.bearer for s in vendor.api] == [ACCESS_TOKEN, "at-SECRET-1"]
    assert vendor.api[0].body == vendor.api[1].body == {"status": "delivered"}
    assert credential.refresh_count == 1
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 1
    assert h.sleeps == []


async def test_highlevel_401_after_refresh_gives_up(mode: str, clock: FakeClock) -> None:
    unauthorized = hl_error(401, "Invalid token: access token is invalid")
    vendor = FakeVendor([unauthorized, unauthorized, unauthorized])
    credential = hl_oauth(clock)
    async with Harness(mode, vendor, [hl_connection(credentials=credential)], clock=clock) as h:
        with pytest.raises(AuthenticationError) as info:
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert credential.refresh_count == 1
    assert len(vendor.api) == 2
    assert info.value.http_status == 401
    assert info.value.attempts == 1


async def test_hubspot_expired_authentication_401_refreshes_once(
    mode: str, clock: FakeClock
) -> None:
    expired = hs_error(
        401,
        "The OAuth token used to make this call expired 0 second(s) ago.",
        category="EXPIRED_AUTHENTICATION",
    )
    vendor = FakeVendor([expired])
    credential = hs_oauth(clock)
    async with Harness(mode, vendor, [hs_connection(credentials=credential)], clock=clock) as h:
        receipt = await h.update_status("hs", MessageStatus("m1", "read"))
    assert [s.kind for s in vendor.seen] == ["api", "token", "api"]
    assert vendor.token[0].path == HS_TOKEN_PATH
    assert "user_type" not in vendor.token[0].body
    assert [s.bearer for s in vendor.api] == [ACCESS_TOKEN, "at-SECRET-1"]
    assert credential.refresh_count == 1
    assert receipt.outcome is Outcome.APPLIED


@pytest.mark.parametrize("category", ["INVALID_AUTHENTICATION", None])
async def test_hubspot_other_401_does_not_refresh(
    mode: str, clock: FakeClock, category: str | None
) -> None:
    vendor = FakeVendor([hs_error(401, "Authentication credentials not found.", category=category)])
    credential = hs_oauth(clock)
    async with Harness(mode, vendor, [hs_connection(credentials=credential)], clock=clock) as h:
        with pytest.raises(AuthenticationError) as info:
            await h.update_status("hs", MessageStatus("m1", "read"))
    assert vendor.token == []
    assert credential.refresh_count == 0
    assert len(vendor.api) == 1
    assert info.value.http_status == 401
    assert info.value.trace_id == "corr-err"


async def test_hubspot_non_json_401_does_not_refresh(mode: str, clock: FakeClock) -> None:
    vendor = FakeVendor([httpx.Response(401, content=b"Unauthorized")])
    credential = hs_oauth(clock)
    async with Harness(mode, vendor, [hs_connection(credentials=credential)], clock=clock) as h:
        with pytest.raises(AuthenticationError):
            await h.update_status("hs", MessageStatus("m1", "read"))
    assert credential.refresh_count == 0


async def test_rejected_refresh_says_reauthorise(mode: str, clock: FakeClock) -> None:
    vendor = FakeVendor(refresh_token="a-different-refresh-token")
    store = MemoryTokenStore(expired_tokens(clock))
    credential = HighLevelOAuth(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, store=store, clock=clock
    )
    async with Harness(
        mode, vendor, [hl_connection("acme", credentials=credential)], clock=clock
    ) as h:
        with pytest.raises(AuthenticationError) as info:
            await h.update_status("acme", MessageStatus("m1", "delivered"))
        # the lock was released: a second update fails the same way instead of hanging
        with pytest.raises(AuthenticationError):
            await h.update_status("acme", MessageStatus("m2", "delivered"))
    error = info.value
    assert "re-authorised" in error.message
    assert error.vendor_message == "Invalid grant: refresh token is invalid"
    assert error.http_status == 400
    assert error.connection == "acme"
    assert error.adapter == "highlevel"
    assert error.message_id == "m1"
    assert error.attempts == 1
    assert error.retryable is False
    assert vendor.api == []
    assert len(vendor.token) == 2
    assert credential.refresh_count == 0
    assert store.load() == expired_tokens(clock)  # nothing was overwritten
    assert h.sleeps == []


async def test_refresh_that_never_reached_the_vendor_is_retried(
    mode: str, clock: FakeClock
) -> None:
    """A transport failure on the token endpoint is retried like any other."""
    failures = [httpx.ConnectError("token endpoint unreachable")]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == HL_TOKEN_PATH and failures:
            raise failures.pop()
        return vendor(request)

    vendor = FakeVendor()
    credential = hl_oauth(clock, expired=True)
    async with Harness(mode, handler, [hl_connection(credentials=credential)], clock=clock) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.attempts == 2
    assert credential.refresh_count == 1
    assert len(h.sleeps) == 1
    assert vendor.api[0].bearer == "at-SECRET-1"


def test_credential_needs_a_refresh_token(clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError) as info:
        HighLevelOAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock)
    assert info.value.key == "refresh_token"
    with pytest.raises(ConfigurationError) as bad_type:
        HighLevelOAuth(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token="r", user_type="Agency"
        )
    assert bad_type.value.key == "user_type"


def test_store_wins_over_constructor_tokens(clock: FakeClock) -> None:
    stored = TokenSet("stored-access", "stored-refresh", expires_at=None)
    store = MemoryTokenStore(stored)
    HighLevelOAuth(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token="constructor-refresh",
        store=store,
        clock=clock,
    )
    assert store.load() is stored


# -- concurrency: single-flight refresh ---------------------------------------------------------


def test_threads_sharing_a_bridge_refresh_exactly_once(clock: FakeClock) -> None:
    workers = 8
    vendor = FakeVendor(token_delay=0.05)
    credential = hl_oauth(clock, expired=True)
    start = threading.Barrier(workers)

    with (
        httpx.Client(transport=httpx.MockTransport(vendor)) as client,
        Bridge(
            [hl_connection(credentials=credential)],
            registry=fresh_registry(),
            http_client=client,
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(0),
        ) as bridge,
    ):

        def update(i: int) -> Outcome:
            start.wait(timeout=5)
            return bridge.update_status("hl", MessageStatus(f"m{i}", "delivered")).outcome

        with ThreadPoolExecutor(workers) as pool:
            outcomes = list(pool.map(update, range(workers)))
    assert outcomes == [Outcome.APPLIED] * workers
    assert credential.refresh_count == 1
    assert len(vendor.token) == 1
    assert sorted(s.path for s in vendor.api) == sorted(
        f"/conversations/messages/m{i}/status" for i in range(workers)
    )
    assert {s.bearer for s in vendor.api} == {"at-SECRET-1"}


async def test_async_gather_refreshes_exactly_once(clock: FakeClock) -> None:
    count = 25
    vendor = FakeVendor()
    credential = hl_oauth(clock, expired=True)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(AsyncYieldingVendor(vendor))) as client,
        AsyncBridge(
            [hl_connection(credentials=credential)],
            registry=fresh_registry(),
            http_client=client,
            clock=clock,
            sleep=clock.asleep,
            rng=random.Random(0),
        ) as bridge,
    ):
        receipts = await asyncio.gather(
            *(bridge.update_status("hl", MessageStatus(f"m{i}", "read")) for i in range(count))
        )
    assert [r.outcome for r in receipts] == [Outcome.APPLIED] * count
    assert credential.refresh_count == 1
    assert len(vendor.token) == 1
    assert len(vendor.api) == count
    assert {s.bearer for s in vendor.api} == {"at-SECRET-1"}


async def test_async_401_storm_refreshes_exactly_once(clock: FakeClock) -> None:
    """Many requests rejected with the same old token: one refresh serves them all."""
    count = 10
    unauthorized = hl_error(401, "Invalid token: access token is invalid")
    vendor = FakeVendor([unauthorized] * count)
    credential = hl_oauth(clock)

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        if request.url.path != HL_TOKEN_PATH and request.headers["authorization"].endswith("-1"):
            vendor.script.clear()  # the new token is good
        return vendor(request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client,
        AsyncBridge(
            [hl_connection(credentials=credential)],
            registry=fresh_registry(),
            http_client=client,
            clock=clock,
            sleep=clock.asleep,
        ) as bridge,
    ):
        receipts = await asyncio.gather(
            *(bridge.update_status("hl", MessageStatus(f"m{i}", "read")) for i in range(count))
        )
    assert all(r.outcome is Outcome.APPLIED for r in receipts)
    assert credential.refresh_count == 1
    assert len(vendor.token) == 1


# -- real transports stream their bodies ----------------------------------------------------------


async def test_refresh_works_when_the_token_response_is_streamed(
    mode: str, clock: FakeClock
) -> None:
    vendor = FakeVendor(streaming=True)
    credential = hl_oauth(clock, expired=True)
    async with Harness(mode, vendor, [hl_connection(credentials=credential)], clock=clock) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.outcome is Outcome.APPLIED
    assert credential.refresh_count == 1


async def test_hubspot_expired_401_works_when_streamed(mode: str, clock: FakeClock) -> None:
    expired = hs_error(401, "expired", category="EXPIRED_AUTHENTICATION")
    vendor = FakeVendor([expired], streaming=True)
    credential = hs_oauth(clock)
    async with Harness(mode, vendor, [hs_connection(credentials=credential)], clock=clock) as h:
        receipt = await h.update_status("hs", MessageStatus("m1", "read"))
    assert receipt.outcome is Outcome.APPLIED
    assert credential.refresh_count == 1


async def test_streamed_responses_without_refresh_work(mode: str, clock: FakeClock) -> None:
    """The streaming vendor itself is sound: plain API calls read streamed bodies fine."""
    vendor = FakeVendor([hl_error(503, "down")], streaming=True)
    credential = hl_oauth(clock)
    async with Harness(mode, vendor, [hl_connection(credentials=credential)], clock=clock) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.attempts == 2
    assert receipt.vendor_ids["conversationId"] == "conv-1"
