"""Bad input is refused with a typed error naming the field, before any I/O."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from msgbridge import (
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    StatusError,
)
from msgbridge.errors import ConfigurationError, InvalidStatus
from msgbridge.model import MAX_ID_LENGTH

from .support import ACCESS_TOKEN, FakeVendor, Harness, fresh_registry, hl_connection, hs_connection

UTC = dt.timezone.utc

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="whitespace"),
    pytest.param("\t\n", id="whitespace-controls"),
    pytest.param(" abc", id="leading-space"),
    pytest.param("abc ", id="trailing-space"),
    pytest.param("ab\x00c", id="nul"),
    pytest.param("ab\nc", id="newline"),
    pytest.param("ab\rc", id="carriage-return"),
    pytest.param("ab\x1bc", id="escape"),
    pytest.param("ab\x7fc", id="delete"),
    pytest.param("x" * (MAX_ID_LENGTH + 1), id="too-long"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param(123, id="not-a-string"),
]


@pytest.mark.parametrize("value", BAD_IDS)
@pytest.mark.parametrize(
    "field", ["message_id", "conversation_id", "channel_id", "email_message_id"]
)
def test_message_status_refuses_bad_ids(field: str, value: Any) -> None:
    if field == "message_id":
        kwargs: dict[str, Any] = {}
        args: tuple[Any, ...] = (value, "delivered")
    else:
        kwargs = {field: value}
        args = ("m1", "delivered")
    with pytest.raises(InvalidStatus) as info:
        MessageStatus(*args, **kwargs)
    assert info.value.field == field
    assert field in info.value.message


@pytest.mark.parametrize("value", BAD_IDS)
def test_conversation_update_refuses_bad_ids(value: Any) -> None:
    with pytest.raises(InvalidStatus) as info:
        ConversationUpdate(value, unread_count=0)
    assert info.value.field == "conversation_id"


def test_longest_allowed_id_is_accepted() -> None:
    status = MessageStatus("x" * MAX_ID_LENGTH, "sent")
    assert len(status.message_id) == MAX_ID_LENGTH


@pytest.mark.parametrize("char", ["\x85", "\x9b"])
def test_c1_control_characters_are_refused(char: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        MessageStatus(f"ab{char}c", "sent")
    assert info.value.field == "message_id"


@pytest.mark.parametrize("state", ["delivred", "DELIVERED", "", 3, None])
def test_unknown_state_names_field_and_allowed_values(state: Any) -> None:
    with pytest.raises(InvalidStatus) as info:
        MessageStatus("m1", state)
    assert info.value.field == "state"
    assert "pending, sent, delivered, read, failed" in info.value.message


def test_state_accepts_enum_and_value() -> None:
    assert MessageStatus("m1", "read").state is DeliveryState.READ
    assert MessageStatus("m1", DeliveryState.READ).state is DeliveryState.READ


@pytest.mark.parametrize("state", ["pending", "sent", "delivered", "read"])
def test_status_error_only_with_failed(state: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        MessageStatus("m1", state, error=StatusError("carrier said no"))
    assert info.value.field == "error"
    assert MessageStatus("m1", "failed", error=StatusError("no")).error == StatusError("no")


def test_error_must_be_a_status_error() -> None:
    with pytest.raises(InvalidStatus) as info:
        MessageStatus("m1", "failed", error="boom")  # type: ignore[arg-type]
    assert info.value.field == "error"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"message": ""}, "error.message"),
        ({"message": "  "}, "error.message"),
        ({"message": "x" * 4097}, "error.message"),
        ({"message": "ok", "code": ""}, "error.code"),
        ({"message": "ok", "kind": 5}, "error.kind"),
    ],
)
def test_status_error_fields(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        StatusError(**kwargs)
    assert info.value.field == field


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidStatus) as info:
        MessageStatus("m1", "sent", occurred_at=dt.datetime(2026, 1, 1, 12, 0))
    assert info.value.field == "occurred_at"
    assert "timezone-aware" in info.value.message
    aware = dt.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert MessageStatus("m1", "sent", occurred_at=aware).occurred_at == aware


def test_occurred_at_must_be_a_datetime() -> None:
    with pytest.raises(InvalidStatus) as info:
        MessageStatus("m1", "sent", occurred_at="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
    assert info.value.field == "occurred_at"


@pytest.mark.parametrize("recipients", ["a@example.com", ["ok", ""], ["ok", 3]])
def test_recipients(recipients: Any) -> None:
    with pytest.raises(InvalidStatus) as info:
        MessageStatus("m1", "sent", recipients=recipients)
    assert info.value.field == "recipients"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"unread_count": -1}, "unread_count"),
        ({"unread_count": True}, "unread_count"),
        ({"unread_count": False}, "unread_count"),
        ({"unread_count": 1.0}, "unread_count"),
        ({"unread_count": "3"}, "unread_count"),
        ({"starred": 1}, "starred"),
        ({"starred": "yes"}, "starred"),
        ({}, "unread_count"),
        ({"unread_count": None, "starred": None}, "unread_count"),
        ({"unread_count": 0, "account_id": ".."}, "account_id"),
    ],
)
def test_conversation_update_fields(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        ConversationUpdate("c1", **kwargs)
    assert info.value.field == field


def test_conversation_update_zero_unread_and_starred_false_are_updates() -> None:
    assert ConversationUpdate("c1", unread_count=0).unread_count == 0
    assert ConversationUpdate("c1", starred=False).starred is False


# -- refused by the bridge, before any request ------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("channel_id", "message"),
    [("abc", "numeric"), ("12a", "numeric"), ("0", "positive"), (str(2**31), "positive")],
)
async def test_hubspot_non_numeric_channel_id_refused_before_io(
    mode: str, channel_id: str, message: str
) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hs_connection(settings={})]) as h:
        with pytest.raises(InvalidStatus) as info:
            await h.update_status("hs", MessageStatus("m1", "sent", channel_id=channel_id))
    assert info.value.field == "channel_id"
    assert message in info.value.message
    assert info.value.connection == "hs"
    assert info.value.adapter == "hubspot"
    assert vendor.seen == []


@pytest.mark.anyio
async def test_hubspot_without_any_channel_id_refused_before_io(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hs_connection(settings={})]) as h:
        with pytest.raises(InvalidStatus) as info:
            await h.update_status("hs", MessageStatus("m1", "sent"))
    assert info.value.field == "channel_id"
    assert vendor.seen == []


@pytest.mark.anyio
async def test_not_a_message_status_refused_before_io(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()]) as h:
        with pytest.raises(InvalidStatus) as info:
            await h.update_status("hl", {"message_id": "m1", "state": "sent"})  # type: ignore[arg-type]
    assert "MessageStatus" in info.value.message
    assert vendor.seen == []


@pytest.mark.anyio
async def test_unknown_connection_name(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection("known")]) as h:
        with pytest.raises(ConfigurationError) as info:
            await h.update_status("unknwon", MessageStatus("m1", "sent"))
        with pytest.raises(ConfigurationError):
            await h.update_conversation("unknwon", ConversationUpdate("c1", unread_count=0))
    assert info.value.connection == "unknwon"
    assert "known" in info.value.message
    assert vendor.seen == []


@pytest.mark.parametrize("bridge_cls", [Bridge, AsyncBridge])
def test_unknown_adapter_refused_at_construction(bridge_cls: type[Any]) -> None:
    connection = Connection("c", adapter="hubspotx", credentials=BearerToken("t"))
    with pytest.raises(ConfigurationError) as info:
        bridge_cls([connection], registry=fresh_registry())
    assert info.value.key == "adapter"
    assert "'hubspotx'" in info.value.message
    assert "hubspot" in info.value.message  # the installed ones are listed


@pytest.mark.parametrize("bridge_cls", [Bridge, AsyncBridge])
@pytest.mark.parametrize(
    ("adapter", "settings", "key"),
    [
        ("hubspot", {"chanel_id": 1}, "chanel_id"),
        ("hubspot", {"channel_id": "abc"}, "channel_id"),
        ("hubspot", {"channel_id": 0}, "channel_id"),
        ("hubspot", {"channel_id": True}, "channel_id"),
        ("hubspot", {"api_version": "latest"}, "api_version"),
        ("hubspot", {"base_url": "http://api.example.com"}, "base_url"),
        ("highlevel", {"locationId": "x"}, "locationId"),
        ("highlevel", {"provider_retry_after": -1}, "provider_retry_after"),
        ("highlevel", {"provider_retry_after": "5"}, "provider_retry_after"),
        ("highlevel", {"version": "  "}, "version"),
        ("highlevel", {"base_url": "http://10.0.0.8:8080"}, "base_url"),
        ("highlevel", {"base_url": "ftp://127.0.0.1"}, "base_url"),
        ("highlevel", {"base_url": "https://x.example?a=1"}, "base_url"),
    ],
)
def test_invalid_settings_name_the_key(
    bridge_cls: type[Any], adapter: str, settings: dict[str, Any], key: str
) -> None:
    connection = Connection("c", adapter=adapter, credentials=BearerToken("t"), settings=settings)
    with pytest.raises(ConfigurationError) as info:
        bridge_cls([connection], registry=fresh_registry())
    assert info.value.key == key
    assert info.value.adapter == adapter
    assert key in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8123", "http://localhost:8123/", "http://[::1]:8123"]
)
async def test_plain_http_allowed_on_loopback(mode: str, base_url: str) -> None:
    vendor = FakeVendor()
    connection = hl_connection(settings={"base_url": base_url})
    async with Harness(mode, vendor, [connection]) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.ok
    assert [s.path for s in vendor.api] == ["/conversations/messages/m1/status"]
    assert str(httpx.URL(base_url).port) in str(vendor.api[0].headers.get("host"))


def test_runtime_add_connection_is_checked_and_names_are_unique() -> None:
    with Bridge(registry=fresh_registry()) as bridge:
        bridge.add_connection(hl_connection("a"))
        with pytest.raises(ConfigurationError) as info:
            bridge.add_connection(hl_connection("a"))
        assert info.value.connection == "a"
        with pytest.raises(ConfigurationError) as bad:
            bridge.add_connection(hs_connection("b", settings={"chanel_id": 1}))
        assert bad.value.key == "chanel_id"
        assert sorted(bridge.connections) == ["a"]


@pytest.mark.parametrize("name", ["", " ", "a\nb", ".."])
def test_connection_name_is_checked(name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Connection(name, adapter="highlevel", credentials=BearerToken("t"))
    assert info.value.key == "name"


def test_credentials_must_be_an_auth_and_are_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as info:
        Connection("c", adapter="highlevel", credentials=ACCESS_TOKEN)  # type: ignore[arg-type]
    assert info.value.key == "credentials"
    assert ACCESS_TOKEN not in str(info.value)


@pytest.mark.parametrize("token", ["", "  ", "abc\r\nX-Evil: 1"])
def test_bearer_token_is_checked(token: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        BearerToken(token)
    assert info.value.key == "token"
    assert "X-Evil" not in str(info.value)
