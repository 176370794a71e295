"""The Chatwoot adapter, sans-I/O: exact requests, encoding, settings, answers, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from msgbridge_chatwoot import (
    CHATWOOT_RATE_BUDGET,
    ChatwootAdapter,
    ChatwootSettings,
    ChatwootToken,
)

from msgbridge import AdapterRegistry, Connection, DeliveryState, MessageStatus, StatusError
from msgbridge.adapter import (
    Fidelity,
    Operation,
    PreparedRequest,
    RequestSpec,
    ResponseView,
    VendorResult,
    resolve_base_url,
)
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidStatus,
    MalformedResponse,
    MessagingError,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnsupportedStatus,
    VendorRejected,
    VendorUnavailable,
)

BASE = "https://chat.example.com"
ADAPTER = ChatwootAdapter()
SETTINGS = ADAPTER.parse_settings({"base_url": BASE, "account_id": 3})
PREFIX = f"{BASE}/api/v1/accounts/3/conversations/12/messages"
TOKEN = "s3cr3tTok3n"


def status(state: DeliveryState | str, message_id: str = "4711", **kwargs: Any) -> MessageStatus:
    kwargs.setdefault("conversation_id", "12")
    return MessageStatus(message_id, state, **kwargs)


def prepare(update: MessageStatus, settings: ChatwootSettings = SETTINGS) -> RequestSpec:
    return ADAPTER.prepare_status(update, settings)


def url(spec: RequestSpec, settings: ChatwootSettings = SETTINGS) -> str:
    """The URL the core sends *spec* to: its path joined to the connection's base URL."""
    return spec.prepare(resolve_base_url(ADAPTER, settings)).url


def answer(code: int, body: Any = b"", headers: dict[str, str] | None = None) -> ResponseView:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ResponseView(code, headers or {}, raw)


def fail(code: int, body: Any = b"", headers: dict[str, str] | None = None) -> MessagingError:
    request = prepare(status("delivered"))
    with pytest.raises(MessagingError) as caught:
        ADAPTER.interpret(request, answer(code, body, headers), SETTINGS)
    return caught.value


# -- identity and plugin ----------------------------------------------------------------


def test_entry_point_registers_chatwoot_from_its_distribution() -> None:
    registry = AdapterRegistry.from_entry_points()
    entry = registry.entry("chatwoot")
    assert type(entry.adapter).__name__ == "ChatwootAdapter"
    assert entry.source.name == "chatwoot"
    assert entry.source.value == "msgbridge_chatwoot"
    assert entry.source.distribution == "msgbridge-chatwoot"
    assert entry.source.version == "0.1.0"
    assert not [f for f in registry.failures if f.source.name == "chatwoot"]


def test_identity_defaults_and_capabilities() -> None:
    assert ADAPTER.id == "chatwoot"
    assert ADAPTER.variant_of is None
    assert ADAPTER.settings_type is ChatwootSettings
    assert ADAPTER.defaults.base_url == "https://app.chatwoot.com"
    assert ADAPTER.defaults.rate_budget == CHATWOOT_RATE_BUDGET
    assert (CHATWOOT_RATE_BUDGET.requests, CHATWOOT_RATE_BUDGET.per_seconds) == (25, 1.0)
    assert ADAPTER.capabilities.operations == frozenset({Operation.UPDATE_STATUS})
    table = {s.value: (m.fidelity, m.vendor_value) for s, m in ADAPTER.capabilities.states.items()}
    assert table == {
        "pending": (Fidelity.NONE, None),
        "sent": (Fidelity.EXACT, "sent"),
        "delivered": (Fidelity.EXACT, "delivered"),
        "read": (Fidelity.EXACT, "read"),
        "failed": (Fidelity.EXACT, "failed"),
    }


# -- settings -----------------------------------------------------------------------------


def test_settings_parse_and_the_core_strips_the_trailing_slash() -> None:
    parsed = ADAPTER.parse_settings({"base_url": "https://chat.example.com/", "account_id": 7})
    assert parsed == ChatwootSettings(base_url="https://chat.example.com/", account_id=7)
    assert resolve_base_url(ADAPTER, parsed) == "https://chat.example.com"
    sub = ADAPTER.parse_settings({"base_url": "http://127.0.0.1:8080/chatwoot/", "account_id": 1})
    assert resolve_base_url(ADAPTER, sub) == "http://127.0.0.1:8080/chatwoot"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"account_id": 1}, "base_url"),
        ({"base_url": BASE}, "account_id"),
        ({"base_url": BASE, "account_id": "1"}, "account_id"),
        ({"base_url": BASE, "account_id": 0}, "account_id"),
        ({"base_url": BASE, "account_id": -4}, "account_id"),
        ({"base_url": BASE, "account_id": True}, "account_id"),
        ({"base_url": f"{BASE}/api/v1", "account_id": 1}, "base_url"),
        ({"base_url": f"{BASE}/api/v1/", "account_id": 1}, "base_url"),
        ({"base_url": BASE, "account_id": 1, "acount": 2}, "acount"),
        # Issue 10: hostile values refused at construction.
        ({"base_url": BASE, "account_id": 2**31}, "account_id"),
        ({"base_url": BASE, "account_id": 10**30}, "account_id"),
        ({"base_url": BASE, "account_id": 1.0}, "account_id"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ADAPTER.parse_settings(raw)
    assert caught.value.key == key
    assert key in str(caught.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://chat.example.com",
        "chat.example.com",
        f"{BASE}\n",
        "https://chat.example.com#x",
        "https://chät.example.com",
    ],
)
def test_the_core_refuses_an_unsafe_base_url(base_url: str) -> None:
    settings = ADAPTER.parse_settings({"base_url": base_url, "account_id": 1})
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(ADAPTER, settings, connection="cw")
    assert (caught.value.key, caught.value.connection) == ("base_url", "cw")


def test_base_url_with_a_password_is_refused_without_echoing_it() -> None:
    password = "cw-base-url-Pa55"
    settings = ADAPTER.parse_settings(
        {"base_url": f"https://agent:{password}@chat.example.com", "account_id": 1}
    )
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(ADAPTER, settings)
    assert caught.value.key == "base_url"
    assert password not in str(caught.value) + repr(caught.value)
    assert "https://***@chat.example.com" in str(caught.value)


# -- requests -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["sent", "delivered", "read", "failed"])
def test_request_per_state_is_exact(state: str) -> None:
    spec = prepare(status(state))
    assert spec.method == "PATCH"
    assert url(spec) == f"{PREFIX}/4711"
    assert spec.path == "/api/v1/accounts/3/conversations/12/messages/4711"
    assert dict(spec.headers) == {}
    assert spec.json == {"status": state}
    assert spec.body_bytes() == f'{{"status":"{state}"}}'.encode()
    assert spec.operation is Operation.UPDATE_STATUS
    assert spec.subject_id == "4711"


def test_failed_sends_external_error_from_the_status_error_message() -> None:
    error = StatusError("number unreachable", code="30003", kind="carrier")
    spec = prepare(status("failed", error=error))
    assert spec.json == {"status": "failed", "external_error": "number unreachable"}
    assert spec.body_bytes() == b'{"status":"failed","external_error":"number unreachable"}'


def test_unicode_external_error_is_sent_as_utf8() -> None:
    spec = prepare(status("failed", error=StatusError("numéro inconnu")))
    assert spec.body_bytes() == '{"status":"failed","external_error":"numéro inconnu"}'.encode()


def test_pending_cannot_be_prepared() -> None:
    with pytest.raises(UnsupportedStatus) as caught:
        prepare(status("pending"))
    assert "pending" in str(caught.value)


def test_conversation_id_is_required() -> None:
    with pytest.raises(InvalidStatus) as caught:
        prepare(MessageStatus("4711", "read"))
    assert caught.value.field == "conversation_id"
    assert "conversation_id" in str(caught.value)


def test_message_id_is_one_encoded_path_segment() -> None:
    spec = prepare(status("read", message_id="a/b?x=1"))
    assert url(spec) == f"{PREFIX}/a%2Fb%3Fx%3D1"
    assert spec.subject_id == "a/b?x=1"


def test_conversation_id_is_one_encoded_path_segment() -> None:
    spec = prepare(status("read", conversation_id="a/b?x=1"))
    assert url(spec) == f"{BASE}/api/v1/accounts/3/conversations/a%2Fb%3Fx%3D1/messages/4711"


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [("../../x", "..%2F..%2Fx"), ("x#y", "x%23y"), ("100%", "100%25"), ("a b", "a%20b")],
)
def test_hostile_ids_stay_inside_their_segment(raw: str, encoded: str) -> None:
    spec = prepare(status("read", message_id=raw, conversation_id=raw))
    assert url(spec) == (f"{BASE}/api/v1/accounts/3/conversations/{encoded}/messages/{encoded}")


def test_base_url_with_a_path_prefix_is_kept() -> None:
    settings = ADAPTER.parse_settings({"base_url": "http://127.0.0.1:9/chatwoot", "account_id": 1})
    spec = prepare(status("sent"), settings)
    assert (
        url(spec, settings)
        == "http://127.0.0.1:9/chatwoot/api/v1/accounts/1/conversations/12/messages/4711"
    )


# -- answers ------------------------------------------------------------------------------


def test_success_reads_ids_status_and_request_id() -> None:
    body = {
        "id": 4711,
        "content": "hello",
        "inbox_id": 2,
        "conversation_id": 12,
        "message_type": 1,
        "status": "delivered",
        "content_attributes": {},
        "created_at": 1_700_000_000,
        "private": False,
    }
    result = ADAPTER.interpret(
        prepare(status("delivered")), answer(200, body, {"X-Request-Id": "req-9"}), SETTINGS
    )
    assert result == VendorResult(
        http_status=200,
        vendor_ids={"id": "4711", "conversation_id": "12"},
        trace_id="req-9",
        vendor_status="delivered",
    )


def test_success_reports_what_chatwoot_kept_for_a_skipped_regression() -> None:
    # read -> delivered: Chatwoot answers 200 and keeps "read".
    result = ADAPTER.interpret(
        prepare(status("delivered")), answer(200, {"id": 4711, "status": "read"}), SETTINGS
    )
    assert result.vendor_status == "read"
    assert result.vendor_ids == {"id": "4711"}
    assert result.trace_id is None


def test_success_tolerates_string_ids_and_missing_status() -> None:
    result = ADAPTER.interpret(prepare(status("sent")), answer(200, {"id": "abc"}), SETTINGS)
    assert result == VendorResult(http_status=200, vendor_ids={"id": "abc"})


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>ok</html>",
        b"[]",
        b'"ok"',
        {"status": "read"},
        {"id": None},
        {"id": True},
        {"id": ""},
        {"id": 1.5},
        {"id": {"nested": 1}},
    ],
)
def test_success_without_a_usable_id_is_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponse) as caught:
        ADAPTER.interpret(prepare(status("sent")), answer(200, body), SETTINGS)
    assert caught.value.http_status == 200


@pytest.mark.parametrize(
    ("code", "body", "kind", "retryable", "vendor_message"),
    [
        (
            401,
            {"error": "Invalid Access Token"},
            AuthenticationError,
            False,
            "Invalid Access Token",
        ),
        (
            401,
            {"errors": ["You need to sign in or sign up before continuing."]},
            AuthenticationError,
            False,
            "You need to sign in or sign up before continuing.",
        ),
        (
            403,
            {"error": "Message status update is only allowed for API inboxes"},
            PermissionDenied,
            False,
            "Message status update is only allowed for API inboxes",
        ),
        (403, {"error": "Forbidden"}, PermissionDenied, False, "Forbidden"),
        (
            404,
            {"error": "Resource could not be found"},
            NotFound,
            False,
            "Resource could not be found",
        ),
        (
            422,
            {"message": "Status is not included in the list", "attributes": ["status"]},
            VendorRejected,
            False,
            "Status is not included in the list",
        ),
        (400, b"", VendorRejected, False, "HTTP 400"),
        (402, {"error": "Account suspended"}, VendorRejected, False, "Account suspended"),
        (429, b"Retry later\n", RateLimited, True, "Retry later"),
        (500, {"error": "Internal Server Error"}, VendorUnavailable, True, "Internal Server Error"),
        (502, b"<html><h1>502 Bad Gateway</h1></html>", VendorUnavailable, True, "HTTP 502"),
        (503, b"", VendorUnavailable, True, "HTTP 503"),
    ],
)
def test_error_mapping(
    code: int, body: Any, kind: type[MessagingError], retryable: bool, vendor_message: str
) -> None:
    error = fail(code, body, {"x-request-id": "req-1"})
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.http_status == code
    assert error.vendor_message == vendor_message
    assert error.trace_id == "req-1"
    assert vendor_message in error.message


def test_api_inbox_403_explains_itself() -> None:
    error = fail(403, {"error": "Message status update is only allowed for API inboxes"})
    assert error.message.startswith("Chatwoot only accepts status updates for messages in API")
    assert error.retry_after is None


def test_429_honours_retry_after_seconds() -> None:
    error = fail(429, b"Retry later\n", {"Retry-After": "7"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


def test_429_retry_after_http_date_is_measured_against_the_date_header() -> None:
    headers = {
        "Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT",
        "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
    }
    assert fail(429, b"", headers).retry_after == 30.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Retry-After": "soon"},
        {"Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT"},  # no Date: the adapter has no clock
        {"Retry-After": "nan"},
    ],
)
def test_429_without_a_usable_wait_leaves_it_to_the_backoff(headers: dict[str, str]) -> None:
    error = fail(429, b"Retry later\n", headers)
    assert isinstance(error, RateLimited)
    assert error.retry_after is None


def test_no_rate_limit_feedback() -> None:
    assert (
        ADAPTER.rate_limit_feedback(answer(200, {"id": 1}, {"X-RateLimit-Remaining": "0"})) is None
    )


# -- the credential -----------------------------------------------------------------------


def test_token_sends_api_access_token_and_no_authorization() -> None:
    request = PreparedRequest("PATCH", f"{PREFIX}/4711", {"Accept": "application/json"}, b"{}")
    added = ChatwootToken(TOKEN).headers(request)
    assert added == {"api_access_token": TOKEN}
    assert "authorization" not in {name.lower() for name in added}


def test_token_is_redacted_and_comparable() -> None:
    token = ChatwootToken(TOKEN)
    assert repr(token) == "ChatwootToken(<redacted>)"
    assert str(token) == "ChatwootToken(<redacted>)"
    assert TOKEN not in repr(Connection("cw", adapter="chatwoot", credentials=token))
    assert token == ChatwootToken(TOKEN)
    assert token != ChatwootToken("other")
    assert len({token, ChatwootToken(TOKEN)}) == 1


@pytest.mark.parametrize("bad", ["", "   ", "tok en", "tok\n", "tok\r\nX-Evil: 1", "tökén", 42])
def test_token_refuses_what_cannot_be_a_header(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ChatwootToken(bad)
    assert caught.value.key == "token"
    if isinstance(bad, str) and bad.strip():
        assert bad not in str(caught.value)
