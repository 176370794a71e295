"""One HTTP client (one connection pool) per bridge; caller-owned clients stay open."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from msgbridge import AsyncBridge, BearerToken, Bridge, MessageStatus, Outcome
from msgbridge.errors import ConfigurationError

from .support import FakeClock, FakeVendor, fresh_registry, hl_connection, hs_connection

CONNECTIONS = 50


class CountingTransport(httpx.MockTransport):
    """One transport instance; records which client-side transport handled each request."""

    def __init__(self, vendor: FakeVendor) -> None:
        super().__init__(vendor)
        self.handled = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.handled += 1
        return super().handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.handled += 1
        return await super().handle_async_request(request)


def fifty_connections() -> list[Any]:
    connections = []
    for i in range(CONNECTIONS):
        credentials = BearerToken(f"token-{i}")
        if i % 2:
            connections.append(hs_connection(f"c{i}", credentials=credentials))
        else:
            connections.append(hl_connection(f"c{i}", credentials=credentials))
    return connections


@pytest.fixture
def count_clients(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every httpx client constructed while the test runs."""
    created: list[object] = []
    for cls in (httpx.Client, httpx.AsyncClient):
        original = cls.__init__

        def spy(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            created.append(self)
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", spy)
    return created


def test_sync_bridge_shares_one_caller_client_and_leaves_it_open(
    count_clients: list[object],
) -> None:
    vendor = FakeVendor()
    transport = CountingTransport(vendor)
    clock = FakeClock()
    client = httpx.Client(transport=transport)
    with Bridge(
        fifty_connections(),
        registry=fresh_registry(),
        http_client=client,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(0),
    ) as bridge:
        receipts = [
            bridge.update_status(f"c{i}", MessageStatus(f"m{i}", "read"))
            for i in range(CONNECTIONS)
        ]
    assert [r.outcome for r in receipts] == [Outcome.APPLIED] * CONNECTIONS
    assert count_clients == [client]  # no other client was ever built
    assert transport.handled == CONNECTIONS
    assert [s.bearer for s in vendor.api] == [f"token-{i}" for i in range(CONNECTIONS)]
    assert not client.is_closed
    response = client.get("https://services.leadconnectorhq.com/conversations/x")
    assert response.status_code == 200  # the caller can keep using it
    client.close()


def test_sync_bridge_builds_one_client_for_all_connections_and_closes_it(
    count_clients: list[object],
) -> None:
    bridge = Bridge(fifty_connections(), registry=fresh_registry())
    with bridge:
        assert len(count_clients) == 1
        [own] = count_clients
        assert isinstance(own, httpx.Client)
        assert not own.is_closed
    assert own.is_closed
    with pytest.raises(ConfigurationError, match="closed"):
        bridge.update_status("c0", MessageStatus("m1", "read"))
    bridge.close()  # closing twice is harmless


@pytest.mark.anyio
async def test_async_bridge_shares_one_caller_client_and_leaves_it_open(
    count_clients: list[object],
) -> None:
    vendor = FakeVendor()
    transport = CountingTransport(vendor)
    clock = FakeClock()
    client = httpx.AsyncClient(transport=transport)
    async with AsyncBridge(
        fifty_connections(),
        registry=fresh_registry(),
        http_client=client,
        clock=clock,
        sleep=clock.asleep,
        rng=random.Random(0),
    ) as bridge:
        receipts = [
            await bridge.update_status(f"c{i}", MessageStatus(f"m{i}", "read"))
            for i in range(CONNECTIONS)
        ]
    assert [r.outcome for r in receipts] == [Outcome.APPLIED] * CONNECTIONS
    assert count_clients == [client]
    assert transport.handled == CONNECTIONS
    assert [s.bearer for s in vendor.api] == [f"token-{i}" for i in range(CONNECTIONS)]
    assert not client.is_closed
    await client.aclose()


@pytest.mark.anyio
async def test_async_bridge_builds_one_client_and_closes_it(count_clients: list[object]) -> None:
    bridge = AsyncBridge(fifty_connections(), registry=fresh_registry())
    async with bridge:
        assert len(count_clients) == 1
        [own] = count_clients
        assert isinstance(own, httpx.AsyncClient)
    assert own.is_closed
    with pytest.raises(ConfigurationError, match="closed"):
        await bridge.update_status("c0", MessageStatus("m1", "read"))


def test_unclosed_bridge_warns() -> None:
    bridge = Bridge([hl_connection()], registry=fresh_registry())
    with pytest.warns(ResourceWarning, match="not closed"):
        bridge.__del__()
    bridge.close()
