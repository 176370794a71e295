"""The core owns the URL: adapters return a path, the bridge joins it to the connection's
base URL (checked once, when the connection is set up) and refuses an unsafe path per item.

The bridges, adapters and httpx clients are the real ones; only the network is a
``MockTransport`` (the fake vendor records the host and raw path each request reached).
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from msgbridge import (
    AdapterRegistry,
    BearerToken,
    Bridge,
    Connection,
    MessageStatus,
    Outcome,
    Receipt,
)
from msgbridge.adapter import RequestSpec, ResponseView, VendorResult
from msgbridge.adapters.highlevel import (
    HighLevelAdapter,
    HighLevelSettings,
    HighLevelVariant,
)
from msgbridge.errors import ConfigurationError, UnsafeRequest

from .support import HL_HOST, FakeVendor, Harness, fresh_registry, hl_connection

pytestmark = pytest.mark.anyio

STATUS_PATH = "/conversations/messages/m1/status"


async def _many(h: Harness, items: list[tuple[str, MessageStatus]]) -> list[Receipt]:
    if isinstance(h.bridge, Bridge):
        return list(h.bridge.update_many(items))
    return [receipt async for receipt in h.bridge.update_many(items)]


# -- joining ----------------------------------------------------------------------------


async def test_without_a_setting_the_path_joins_the_adapters_default(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()]) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.outcome is Outcome.APPLIED
    [seen] = vendor.api
    assert (seen.host, seen.raw_path) == (HL_HOST, STATUS_PATH)


@pytest.mark.parametrize(
    "base_url",
    ["https://crm.example.test/white-label", "https://crm.example.test/white-label/"],
    ids=["plain", "trailing-slash"],
)
async def test_the_base_url_setting_wins_and_keeps_its_path(mode: str, base_url: str) -> None:
    vendor = FakeVendor()
    connection = hl_connection(settings={"base_url": base_url})
    async with Harness(mode, vendor, [connection]) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
        assert h.bridge.connections["hl"].base_url == "https://crm.example.test/white-label"
    assert receipt.outcome is Outcome.APPLIED
    [seen] = vendor.api
    assert (seen.host, seen.raw_path) == ("crm.example.test", f"/white-label{STATUS_PATH}")


async def test_an_encoded_id_reaches_the_vendor_as_one_segment(mode: str) -> None:
    vendor = FakeVendor()
    connection = hl_connection(settings={"base_url": "http://127.0.0.1:9/hl/"})
    async with Harness(mode, vendor, [connection]) as h:
        await h.update_status("hl", MessageStatus("../a b?c", "read"))
    [seen] = vendor.api
    assert seen.raw_path == "/hl/conversations/messages/..%2Fa%20b%3Fc/status"


# -- a bad base URL: refused when the connection is set up, before any I/O ---------------

PASSWORD = "base-url-Pa55w0rd"


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("http://crm.example.test", "https"),
        (f"https://agent:{PASSWORD}@crm.example.test", "user name or password"),
        ("https://crm.example.test/?region=eu", "query"),
        ("https://crm.example.test/#top", "fragment"),
        ("https://crm.example.test\n", "printable ASCII"),
        ("crm.example.test", "absolute http(s) URL"),
        ("", "absolute http(s) URL"),
    ],
    ids=["plain-http", "userinfo", "query", "fragment", "line-break", "no-scheme", "empty"],
)
async def test_a_bad_base_url_is_refused_at_construction(
    mode: str, base_url: str, says: str
) -> None:
    vendor = FakeVendor()
    with pytest.raises(ConfigurationError) as caught:
        async with Harness(mode, vendor, [hl_connection(settings={"base_url": base_url})]):
            pass
    error = caught.value
    assert (error.key, error.connection, error.adapter) == ("base_url", "hl", "highlevel")
    assert str(error).startswith("connection 'hl': setting base_url: ")
    assert says in str(error)
    assert PASSWORD not in str(error) + repr(error)
    assert vendor.seen == []


def test_a_connection_added_later_is_checked_too() -> None:
    with Bridge(registry=fresh_registry()) as bridge:
        with pytest.raises(ConfigurationError) as caught:
            bridge.add_connection(hl_connection("late", settings={"base_url": "http://x.test"}))
        assert "late" not in bridge.connections
    assert (caught.value.key, caught.value.connection) == ("base_url", "late")


def test_a_bad_default_is_named_as_the_adapters() -> None:
    registry = AdapterRegistry()
    registry.register(HighLevelAdapter(HighLevelVariant("wl", "WL", "v1", base_url="ftp://wl")))
    with pytest.raises(ConfigurationError) as caught:
        Bridge([Connection("wl", adapter="wl", credentials=BearerToken("t"))], registry=registry)
    assert str(caught.value).startswith("connection 'wl': adapter 'wl''s default base_url: ")


# -- an unsafe path: one FAILED receipt, the batch goes on, nothing sent ------------------

UNSAFE_PATHS = {
    "absolute-url": "https://evil.example/steal",
    "scheme-relative": "//evil.example/steal",
    "no-leading-slash": "conversations/messages/m-evil/status",
    "dot-dot": "/conversations/../oauth/token",
    "encoded-dot-dot": "/conversations/%2e%2e/oauth/token",
    "crlf": "/conversations/x\r\nX-Evil: 1",
    "space": "/conversations/a b",
    "non-ascii": "/conversations/caf\u00e9",
    "fragment": "/conversations/x#frag",
}


class _UnsafeFor(HighLevelAdapter):
    """HighLevel, except that one message id gets a path the core must refuse."""

    def __init__(self, path: str) -> None:
        super().__init__(HighLevelVariant("hl-unsafe", "HL unsafe", "2021-04-15"))
        self.path = path

    def prepare_status(self, update: MessageStatus, settings: HighLevelSettings) -> RequestSpec:
        spec = super().prepare_status(update, settings)
        return attrs.evolve(spec, path=self.path) if update.message_id == "m-evil" else spec


def _unsafe_registry(path: str) -> AdapterRegistry:
    registry = fresh_registry()
    registry.register(_UnsafeFor(path))
    return registry


@pytest.mark.parametrize("path", list(UNSAFE_PATHS.values()), ids=list(UNSAFE_PATHS))
async def test_an_unsafe_path_fails_alone_in_update_many(mode: str, path: str) -> None:
    vendor = FakeVendor()
    connection = Connection("u", adapter="hl-unsafe", credentials=BearerToken("t"))
    items = [("u", MessageStatus(m, "delivered")) for m in ("m1", "m-evil", "m3")]
    async with Harness(mode, vendor, [connection], registry=_unsafe_registry(path)) as h:
        receipts = await _many(h, items)
    by_index = {receipt.index: receipt for receipt in receipts}
    assert [by_index[i].outcome for i in range(3)] == [
        Outcome.APPLIED,
        Outcome.FAILED,
        Outcome.APPLIED,
    ]
    error = by_index[1].error
    assert isinstance(error, UnsafeRequest)
    assert (error.connection, error.adapter, error.retryable) == ("u", "hl-unsafe", False)
    assert by_index[1].attempts == 0
    assert sorted(seen.raw_path for seen in vendor.api) == [
        "/conversations/messages/m1/status",
        "/conversations/messages/m3/status",
    ]


async def test_update_status_raises_unsafe_request_before_any_io(mode: str) -> None:
    vendor = FakeVendor()
    connection = Connection("u", adapter="hl-unsafe", credentials=BearerToken("t"))
    registry = _unsafe_registry(UNSAFE_PATHS["scheme-relative"])
    async with Harness(mode, vendor, [connection], registry=registry) as h:
        with pytest.raises(UnsafeRequest) as caught:
            await h.update_status("u", MessageStatus("m-evil", "read"))
    assert "it starts with '//' (a host, not a path)" in str(caught.value)
    assert vendor.seen == []


# -- interpret gets the connection's typed settings ----------------------------------------


class _Recording(HighLevelAdapter):
    """HighLevel that remembers which settings object ``interpret`` was given."""

    def __init__(self) -> None:
        super().__init__(HighLevelVariant("hl-rec", "HL recording", "2021-04-15"))
        self.given: list[Any] = []

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: HighLevelSettings
    ) -> VendorResult:
        self.given.append(settings)
        return super().interpret(request, response, settings)


async def test_interpret_gets_the_connections_parsed_settings(mode: str) -> None:
    adapter = _Recording()
    registry = fresh_registry()
    registry.register(adapter)
    connection = Connection(
        "r", adapter="hl-rec", credentials=BearerToken("t"), settings={"provider_retry_after": 7}
    )
    async with Harness(mode, FakeVendor(), [connection], registry=registry) as h:
        await h.update_status("r", MessageStatus("m1", "read"))
        parsed = h.bridge.connections["r"].settings
    assert adapter.given == [parsed]
    assert adapter.given[0] is parsed
    assert parsed.provider_retry_after == 7
