"""The Kommo adapter with no I/O: settings, requests, state mapping, answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from msgbridge_kommo import KommoAdapter, KommoSettings
from msgbridge_kommo.adapter import BASE_URL

from msgbridge import MessageStatus, StatusError
from msgbridge.adapter import RequestSpec, ResponseView, resolve_base_url
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    MessagingError,
    NotFound,
    RateLimited,
    UnsupportedStatus,
    VendorRejected,
    VendorUnavailable,
)

ADAPTER = KommoAdapter()
SCOPE = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41_af9945ff-1490-4cad-807d-945c15d88bec"
SETTINGS = ADAPTER.parse_settings({"scope_id": SCOPE})


def prepare(update: MessageStatus, settings: KommoSettings = SETTINGS) -> RequestSpec:
    return ADAPTER.prepare_status(update, settings)


def url(spec: RequestSpec, settings: KommoSettings = SETTINGS) -> str:
    """The URL the core sends *spec* to: its path joined to the connection's base URL."""
    return spec.prepare(resolve_base_url(ADAPTER, settings)).url


def fail(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> MessagingError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(MessagingError) as caught:
        ADAPTER.interpret(
            prepare(MessageStatus("m1", "read")), ResponseView(status, headers or {}, raw), SETTINGS
        )
    return caught.value


def test_delivered_and_read_are_1_and_2() -> None:
    spec = prepare(MessageStatus("3419eef6-2aa3-464c-b6e4-4386d0f8f3ca", "delivered"))
    assert spec.method == "POST"
    assert url(spec) == (
        f"{BASE_URL}/v2/origin/custom/{SCOPE}/3419eef6-2aa3-464c-b6e4-4386d0f8f3ca/delivery_status"
    )
    assert spec.json == {"msgid": "3419eef6-2aa3-464c-b6e4-4386d0f8f3ca", "delivery_status": 1}
    assert prepare(MessageStatus("m1", "read")).json == {"msgid": "m1", "delivery_status": 2}


def test_the_body_is_compact_json_as_signed() -> None:
    body = prepare(MessageStatus("m1", "read")).prepare(BASE_URL).body
    assert body == b'{"msgid":"m1","delivery_status":2}'


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (StatusError("The user deleted it", code="901"), 901, "The user deleted it"),
        (StatusError("Not on WhatsApp", code="904"), 904, "Not on WhatsApp"),
        (StatusError("carrier rejected", code="30007"), 905, "carrier rejected"),
        (StatusError("carrier rejected"), 905, "carrier rejected"),
        (None, 905, "Message was not delivered"),
    ],
)
def test_failed_sends_an_error_code_and_text(
    error: StatusError | None, code: int, text: str
) -> None:
    spec = prepare(MessageStatus("m1", "failed", error=error))
    assert spec.json == {"msgid": "m1", "delivery_status": -1, "error_code": code, "error": text}


@pytest.mark.parametrize("state", ["pending", "sent"])
def test_kommo_has_no_pending_or_sent(state: str) -> None:
    with pytest.raises(UnsupportedStatus) as caught:
        prepare(MessageStatus("m1", state))
    assert "delivered, read and failed" in str(caught.value)


def test_the_message_id_is_one_path_segment_and_kept_verbatim_in_the_body() -> None:
    spec = prepare(MessageStatus("a/b?c=1#d", "read"))
    assert spec.path == f"/v2/origin/custom/{SCOPE}/a%2Fb%3Fc%3D1%23d/delivery_status"
    assert spec.json["msgid"] == "a/b?c=1#d"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({}, "scope_id"),
        ({"scope_id": ""}, "scope_id"),
        ({"scope_id": "a/b"}, "scope_id"),
        ({"scope_id": "chan acct"}, "scope_id"),
        ({"scope_id": "chan\u00e9"}, "scope_id"),
        ({"scope_id": "chan\n"}, "scope_id"),
        ({"scope_id": 12}, "scope_id"),
        ({"scope_id": "s", "base_url": "https://amojo.kommo.com/v2/origin/custom"}, "base_url"),
        ({"scope_id": "s", "channel": "x"}, "channel"),
    ],
)
def test_bad_settings_are_refused_by_name(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ADAPTER.parse_settings(raw)
    assert key in str(caught.value)


@pytest.mark.parametrize("base_url", ["http://amojo.kommo.com", "https://amojo.kommo.com?x=1"])
def test_the_core_refuses_an_unsafe_base_url(base_url: str) -> None:
    settings = ADAPTER.parse_settings({"scope_id": "s", "base_url": base_url})
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(ADAPTER, settings, connection="kommo")
    assert (caught.value.key, caught.value.connection) == ("base_url", "kommo")


def test_loopback_base_url_for_the_emulator() -> None:
    settings = ADAPTER.parse_settings({"scope_id": "s", "base_url": "http://127.0.0.1:9/kommo/"})
    assert url(prepare(MessageStatus("m", "read"), settings), settings) == (
        "http://127.0.0.1:9/kommo/v2/origin/custom/s/m/delivery_status"
    )


@pytest.mark.parametrize("body", [b"", b"{}", b'{"ok": true}', b"  "])
def test_success_is_an_empty_body_or_an_object(body: bytes) -> None:
    result = ADAPTER.interpret(
        prepare(MessageStatus("m1", "read")), ResponseView(200, {}, body), SETTINGS
    )
    assert result.http_status == 200


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"[]", b'"ok"'])
def test_a_2xx_that_is_not_kommo_is_applied_with_a_warning(body: bytes) -> None:
    result = ADAPTER.interpret(
        prepare(MessageStatus("m1", "read")), ResponseView(200, {}, body), SETTINGS
    )
    assert result.http_status == 200
    assert result.warning is not None
    assert "unexpected body" in result.warning


@pytest.mark.parametrize(
    ("error", "dropped"),
    [
        (StatusError("gone", code="901"), ()),
        (StatusError("gone", code="30007"), ("error.code",)),
        (StatusError("gone", code="901", kind="carrier"), ("error.kind",)),
        (None, ()),
    ],
)
def test_what_kommo_cannot_carry_is_listed_as_dropped(
    error: StatusError | None, dropped: tuple[str, ...]
) -> None:
    assert prepare(MessageStatus("m1", "failed", error=error)).dropped == dropped
    with_email = MessageStatus("m1", "read", email_message_id="e-1", recipients=("a@b.c",))
    assert prepare(with_email).dropped == ("email_message_id", "recipients")


def test_401_says_signature_and_clock() -> None:
    error = fail(401, {"error": "invalid signature"})
    assert isinstance(error, AuthenticationError)
    assert "signature" in error.message
    assert "15 minutes" in error.message
    assert error.vendor_message == "invalid signature"
    assert not error.retryable


@pytest.mark.parametrize(
    ("status", "body", "kind", "vendor_message"),
    [
        (400, {"error": "msgid must match"}, VendorRejected, "msgid must match"),
        (400, {"message": "bad", "detail": "x"}, VendorRejected, "bad"),
        (404, {"detail": "message not found"}, NotFound, "message not found"),
        (404, {"title": "Not Found"}, NotFound, "Not Found"),
        (500, b"<html>oops</html>", VendorUnavailable, "HTTP 500"),
        (503, b"upstream down", VendorUnavailable, "upstream down"),
    ],
)
def test_error_mapping(
    status: int, body: Any, kind: type[MessagingError], vendor_message: str
) -> None:
    error = fail(status, body)
    assert type(error) is kind
    assert error.http_status == status
    assert error.vendor_message == vendor_message


def test_429_honours_retry_after_seconds_and_dates() -> None:
    assert fail(429, b"", {"retry-after": "3"}).retry_after == 3.0
    dated = {
        "retry-after": "Thu, 01 Jan 2026 00:00:10 GMT",
        "date": "Thu, 01 Jan 2026 00:00:00 GMT",
    }
    error = fail(429, {"error": "Too Many Requests"}, dated)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 10.0
    assert error.retryable
