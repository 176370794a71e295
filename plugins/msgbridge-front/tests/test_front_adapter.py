"""The Front adapter, sans-I/O: exact requests, encoding, settings, 204, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from msgbridge_front import FRONT_RATE_BUDGET, FrontAdapter, FrontSettings

from msgbridge import AdapterRegistry, DeliveryState, MessageStatus, StatusError
from msgbridge.adapter import (
    Fidelity,
    Operation,
    RateFeedback,
    RequestSpec,
    ResponseView,
    VendorResult,
    resolve_base_url,
)
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponse,
    MessagingError,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnsupportedStatus,
    VendorRejected,
    VendorUnavailable,
)

ADAPTER = FrontAdapter()
SETTINGS = ADAPTER.parse_settings({})
URL = "https://api2.frontapp.com/messages/msg_1a2b/status"


def failed(message_id: str = "msg_1a2b", reason: str | None = None) -> MessageStatus:
    error = StatusError(reason) if reason is not None else None
    return MessageStatus(message_id, DeliveryState.FAILED, error=error)


def prepare(update: MessageStatus, settings: FrontSettings = SETTINGS) -> RequestSpec:
    return ADAPTER.prepare_status(update, settings)


def url(spec: RequestSpec, settings: FrontSettings = SETTINGS) -> str:
    """The URL the core sends *spec* to: its path joined to the connection's base URL."""
    return spec.prepare(resolve_base_url(ADAPTER, settings)).url


def answer(code: int, body: Any = b"", headers: dict[str, str] | None = None) -> ResponseView:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ResponseView(code, headers or {}, raw)


def fail(code: int, body: Any = b"", headers: dict[str, str] | None = None) -> MessagingError:
    with pytest.raises(MessagingError) as caught:
        ADAPTER.interpret(prepare(failed()), answer(code, body, headers), SETTINGS)
    return caught.value


# -- identity and plugin ----------------------------------------------------------------


def test_entry_point_registers_front_from_its_distribution() -> None:
    registry = AdapterRegistry.from_entry_points()
    entry = registry.entry("front")
    assert type(entry.adapter).__name__ == "FrontAdapter"
    assert entry.source.name == "front"
    assert entry.source.value == "msgbridge_front"
    assert entry.source.distribution == "msgbridge-front"
    assert entry.source.version == "0.1.0"
    assert not [f for f in registry.failures if f.source.name == "front"]


def test_identity_defaults_and_capabilities() -> None:
    assert ADAPTER.id == "front"
    assert ADAPTER.settings_type is FrontSettings
    assert ADAPTER.defaults.base_url == "https://api2.frontapp.com"
    assert ADAPTER.defaults.rate_budget == FRONT_RATE_BUDGET
    assert (FRONT_RATE_BUDGET.requests, FRONT_RATE_BUDGET.per_seconds) == (50, 60.0)
    assert ADAPTER.capabilities.operations == frozenset({Operation.UPDATE_STATUS})
    table = {s.value: (m.fidelity, m.vendor_value) for s, m in ADAPTER.capabilities.states.items()}
    assert table == {
        "pending": (Fidelity.NONE, None),
        "sent": (Fidelity.NONE, None),
        "delivered": (Fidelity.NONE, None),
        "read": (Fidelity.NONE, None),
        "failed": (Fidelity.EXACT, "failed"),
    }


# -- settings -----------------------------------------------------------------------------


def test_settings_defaults_and_overrides() -> None:
    assert FrontSettings(base_url=None, reason_field="reason") == SETTINGS
    parsed = ADAPTER.parse_settings(
        {"base_url": "http://127.0.0.1:9/front/", "reason_field": "error_message"}
    )
    assert parsed.reason_field == "error_message"
    spec = prepare(failed(reason="x"), parsed)
    assert url(spec, parsed) == "http://127.0.0.1:9/front/messages/msg_1a2b/status"
    assert spec.json == {"status": "failed", "error_message": "x"}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"reason_field": "status"}, "reason_field"),
        ({"reason_field": ""}, "reason_field"),
        ({"reason_field": "two words"}, "reason_field"),
        ({"reason_field": 3}, "reason_field"),
        ({"token": "x"}, "token"),
        # Issue 10: hostile values refused at construction.
        ({"reason_field": "reason\n"}, "reason_field"),  # '$' let this through
        ({"reason_field": "raison_é"}, "reason_field"),
        ({"reason_field": "r" * 65}, "reason_field"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ADAPTER.parse_settings(raw)
    assert caught.value.key == key


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api2.frontapp.com",
        "api2.frontapp.com",
        "https://api2.frontapp.com?x=1",
        "https://api2.frontapp.com\r\n",
        "https://api2.frontapp.com/#x",
    ],
)
def test_the_core_refuses_an_unsafe_base_url(base_url: str) -> None:
    settings = ADAPTER.parse_settings({"base_url": base_url})
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(ADAPTER, settings, connection="front")
    assert (caught.value.key, caught.value.connection) == ("base_url", "front")


def test_base_url_with_a_password_is_refused_without_echoing_it() -> None:
    password = "front-base-url-Pa55"
    settings = ADAPTER.parse_settings({"base_url": f"https://me:{password}@api2.frontapp.com"})
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(ADAPTER, settings)
    assert caught.value.key == "base_url"
    assert password not in str(caught.value) + repr(caught.value)


# -- requests -----------------------------------------------------------------------------


def test_failed_request_is_exact() -> None:
    spec = prepare(failed())
    assert spec.method == "PUT"
    assert spec.path == "/messages/msg_1a2b/status"
    assert url(spec) == URL
    assert dict(spec.headers) == {}
    assert spec.json == {"status": "failed"}
    assert spec.body_bytes() == b'{"status":"failed"}'
    assert spec.operation is Operation.UPDATE_STATUS
    assert spec.subject_id == "msg_1a2b"


def test_failed_with_a_reason() -> None:
    spec = prepare(failed(reason="carrier rejected: 30007"))
    assert spec.body_bytes() == b'{"status":"failed","reason":"carrier rejected: 30007"}'


@pytest.mark.parametrize("state", ["pending", "sent", "delivered", "read"])
def test_other_states_cannot_be_prepared(state: str) -> None:
    with pytest.raises(UnsupportedStatus) as caught:
        prepare(MessageStatus("msg_1a2b", state))
    assert state in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a/b?x=1", "a%2Fb%3Fx%3D1"),
        ("../../oauth", "..%2F..%2Foauth"),
        ("x#y", "x%23y"),
        ("100%", "100%25"),
        ("alt:uid:42", "alt%3Auid%3A42"),
    ],
)
def test_message_id_is_one_encoded_path_segment(raw: str, encoded: str) -> None:
    spec = prepare(failed(raw))
    assert url(spec) == f"https://api2.frontapp.com/messages/{encoded}/status"
    assert spec.subject_id == raw


# -- answers ------------------------------------------------------------------------------


def test_204_without_a_body_is_success() -> None:
    result = ADAPTER.interpret(prepare(failed()), answer(204), SETTINGS)
    assert result == VendorResult(http_status=204)


@pytest.mark.parametrize(("code", "body"), [(200, b""), (200, b"{}"), (202, {"ok": True})])
def test_other_2xx_with_no_body_or_an_object_is_success(code: int, body: Any) -> None:
    assert ADAPTER.interpret(prepare(failed()), answer(code, body), SETTINGS) == VendorResult(code)


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"[]", b'"ok"', b"ok"])
def test_2xx_with_another_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as caught:
        ADAPTER.interpret(prepare(failed()), answer(200, body), SETTINGS)
    assert caught.value.http_status == 200


FRONT_404 = {"_error": {"status": 404, "title": "Not found", "message": "Unknown message"}}


@pytest.mark.parametrize(
    ("code", "body", "kind", "retryable", "vendor_message"),
    [
        (
            401,
            {"_error": {"status": 401, "title": "Unauthenticated", "message": "Invalid token"}},
            AuthenticationError,
            False,
            "Unauthenticated: Invalid token",
        ),
        (
            403,
            {"_error": {"status": 403, "title": "Forbidden", "message": "Missing scope"}},
            PermissionDenied,
            False,
            "Forbidden: Missing scope",
        ),
        (404, FRONT_404, NotFound, False, "Not found: Unknown message"),
        (
            400,
            {
                "_error": {
                    "status": 400,
                    "title": "Bad request",
                    "message": "Body did not satisfy requirements",
                    "details": ["status must be one of [failed]"],
                }
            },
            VendorRejected,
            False,
            "Bad request: Body did not satisfy requirements (status must be one of [failed])",
        ),
        (409, {"message": "conflict"}, VendorRejected, False, "conflict"),
        (429, b"", RateLimited, True, "HTTP 429"),
        (
            500,
            {"_error": {"status": 500, "title": "Internal Server Error"}},
            VendorUnavailable,
            True,
            "Internal Server Error",
        ),
        (503, b"<html>down</html>", VendorUnavailable, True, "HTTP 503"),
    ],
)
def test_error_mapping(
    code: int, body: Any, kind: type[MessagingError], retryable: bool, vendor_message: str
) -> None:
    error = fail(code, body)
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.http_status == code
    assert error.vendor_message == vendor_message
    assert vendor_message in error.message


def test_429_honours_retry_after_and_names_the_burst_tier() -> None:
    error = fail(429, b"", {"retry-after": "12", "x-front-tier": "tier-1"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 12.0
    assert "burst limit tier-1" in error.message


def test_429_without_retry_after_waits_for_the_reset() -> None:
    headers = {"x-ratelimit-reset": "1791970110", "date": "Wed, 14 Oct 2026 09:28:00 GMT"}
    # 1791970110 is 2026-10-14T09:28:30Z: thirty seconds after the server's Date.
    assert fail(429, b"", headers).retry_after == 30.0


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-ratelimit-reset": "1791970110"}, {"retry-after": "soon"}, {"retry-after": "inf"}],
)
def test_429_without_a_usable_wait(headers: dict[str, str]) -> None:
    assert fail(429, b"", headers).retry_after is None


def test_rate_limit_feedback_reads_front_headers() -> None:
    headers = {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    assert ADAPTER.rate_limit_feedback(answer(204, b"", headers)) == RateFeedback(
        remaining=0, maximum=50, window=60.0
    )
    assert ADAPTER.rate_limit_feedback(answer(204)) is None
    assert ADAPTER.rate_limit_feedback(answer(204, b"", {"x-ratelimit-remaining": "x"})) is None
