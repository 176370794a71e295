"""HubSpot custom channels: exact PATCH requests, settings validation, recorded answers.

Pure: adapters are called directly, nothing is sent. Expected values are written out
here from /work/shared/vendors/hubspot.md (bodies are the recorded real shapes).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from msgbridge.adapter import (
    AdapterDefaults,
    Fidelity,
    Operation,
    RateBudget,
    RequestSpec,
    ResponseView,
    StateMapping,
    VendorResult,
    resolve_base_url,
)
from msgbridge.adapters import hubspot
from msgbridge.adapters.hubspot import HubSpotAdapter, HubSpotOAuth
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidStatus,
    MessagingError,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnsupportedOperation,
    VendorRejected,
    VendorUnavailable,
)
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus, StatusError
from msgbridge.registry import AdapterRegistry

HOST = "https://api.hubapi.com"
MID = "a8c7b3e2-1f00-4c1e-9a55-0d6f3e2b7c11"
ADAPTER = HubSpotAdapter()


def _settings(**raw: Any) -> Any:
    return ADAPTER.parse_settings({"channel_id": 1234, **raw})


def _request(**raw: Any) -> RequestSpec:
    return ADAPTER.prepare_status(MessageStatus(MID, "sent"), _settings(**raw))


def _answer(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> VendorResult | MessagingError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        return ADAPTER.interpret(_request(), ResponseView(status, headers or {}, raw), _settings())
    except MessagingError as exc:
        return exc


def _error(status: int, body: Any, headers: dict[str, str] | None = None) -> MessagingError:
    outcome = _answer(status, body, headers)
    assert isinstance(outcome, MessagingError), outcome
    assert outcome.http_status == status
    return outcome


# -- description -------------------------------------------------------------------------


def test_description() -> None:
    assert ADAPTER.id == "hubspot"
    assert ADAPTER.variant_of is None
    assert ADAPTER.capabilities.operations == frozenset(
        {Operation.UPDATE_STATUS, Operation.PUBLISH_INBOUND}
    )
    assert dict(ADAPTER.capabilities.states) == {
        DeliveryState.PENDING: StateMapping(Fidelity.NONE, None),
        DeliveryState.SENT: StateMapping(Fidelity.EXACT, "SENT"),
        DeliveryState.DELIVERED: StateMapping(Fidelity.COARSE, "SENT"),
        DeliveryState.READ: StateMapping(Fidelity.EXACT, "READ"),
        DeliveryState.FAILED: StateMapping(Fidelity.EXACT, "FAILED"),
    }
    assert ADAPTER.vendor_value(DeliveryState.PENDING) is None
    assert not ADAPTER.capabilities.mapping(DeliveryState.PENDING).sendable
    assert ADAPTER.defaults == AdapterDefaults(
        base_url=HOST, version="2026-03", rate_budget=RateBudget(requests=110, per_seconds=10.0)
    )


def test_plugin_registers_hubspot() -> None:
    registry = AdapterRegistry()
    assert registry.add_plugin(hubspot)
    assert [r.adapter.id for r in registry] == ["hubspot"]


# -- prepare_status ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "path"),
    [
        (None, f"/conversations/custom-channels/2026-03/1234/messages/{MID}"),
        ("2026-03", f"/conversations/custom-channels/2026-03/1234/messages/{MID}"),
        ("2025-09", f"/conversations/custom-channels/2025-09/1234/messages/{MID}"),
        ("2026-09", f"/conversations/custom-channels/2026-09/1234/messages/{MID}"),
        ("2026-09-beta", f"/conversations/custom-channels/2026-09-beta/1234/messages/{MID}"),
        ("v3", f"/conversations/v3/custom-channels/1234/messages/{MID}"),
    ],
)
def test_url_per_api_version(api_version: str | None, path: str) -> None:
    raw = {} if api_version is None else {"api_version": api_version}
    spec = _request(**raw)
    assert spec.method == "PATCH"
    assert spec.path == path
    assert spec.prepare(resolve_base_url(ADAPTER, _settings())).url == HOST + path
    assert dict(spec.headers) == {}
    assert spec.operation is Operation.UPDATE_STATUS
    assert spec.subject_id == MID


@pytest.mark.parametrize(
    ("state", "error", "body"),
    [
        ("sent", None, {"statusType": "SENT"}),
        ("delivered", None, {"statusType": "SENT"}),
        ("read", None, {"statusType": "READ"}),
        ("failed", None, {"statusType": "FAILED"}),
        (
            "failed",
            StatusError("Number unreachable"),
            {"statusType": "FAILED", "errorMessage": "Number unreachable"},
        ),
        (
            "failed",
            StatusError("Number unreachable", code="30003", kind="carrier"),
            {"statusType": "FAILED", "errorMessage": "Number unreachable"},
        ),
    ],
    ids=["sent", "delivered-coarse", "read", "failed", "failed-error", "failed-error-code-kind"],
)
def test_body(state: str, error: StatusError | None, body: dict[str, Any]) -> None:
    spec = ADAPTER.prepare_status(MessageStatus(MID, state, error=error), _settings())
    assert spec.json == body


def test_base_url_override_and_encoding() -> None:
    spec = ADAPTER.prepare_status(
        MessageStatus("../x?y#z", "read"), _settings(base_url="http://localhost:9000/hs/")
    )
    base = resolve_base_url(ADAPTER, _settings(base_url="http://localhost:9000/hs/"))
    assert spec.prepare(base).url == (
        "http://localhost:9000/hs/conversations/custom-channels/2026-03/1234/messages/"
        "..%2Fx%3Fy%23z"
    )


@pytest.mark.parametrize(
    ("status_channel", "settings_channel", "expected"),
    [("99", 1234, "99"), (None, 1234, "1234"), ("2147483647", None, "2147483647")],
    ids=["status-wins", "settings", "int32-max"],
)
def test_channel_id_source(
    status_channel: str | None, settings_channel: int | None, expected: str
) -> None:
    settings = ADAPTER.parse_settings({"channel_id": settings_channel})
    spec = ADAPTER.prepare_status(MessageStatus(MID, "sent", channel_id=status_channel), settings)
    assert spec.path == f"/conversations/custom-channels/2026-03/{expected}/messages/{MID}"


def test_channel_id_missing() -> None:
    with pytest.raises(InvalidStatus, match="channel_id") as info:
        ADAPTER.prepare_status(MessageStatus(MID, "sent"), ADAPTER.parse_settings({}))
    assert info.value.field == "channel_id"


@pytest.mark.parametrize("channel", ["abc", "0", "-5", "2147483648", "12.5", "1e3", "+7"])
def test_invalid_status_channel_id(channel: str) -> None:
    with pytest.raises(InvalidStatus, match="channel_id") as info:
        ADAPTER.prepare_status(MessageStatus(MID, "sent", channel_id=channel), _settings())
    assert info.value.field == "channel_id"


def test_superscript_channel_id_is_invalid_status() -> None:
    with pytest.raises(InvalidStatus, match="channel_id"):
        ADAPTER.prepare_status(MessageStatus(MID, "sent", channel_id="²"), _settings())


@pytest.mark.parametrize("channel", [0, -1, 2**31, True, "12", "abc", 1.5])
def test_invalid_settings_channel_id(channel: Any) -> None:
    with pytest.raises(ConfigurationError, match="channel_id") as info:
        ADAPTER.parse_settings({"channel_id": channel})
    assert info.value.key == "channel_id"


@pytest.mark.parametrize(
    "version", ["2026-13", "2026-3", "v4", "V3", "latest", "", "2026-03-alpha"]
)
def test_invalid_api_version(version: str) -> None:
    with pytest.raises(ConfigurationError, match="api_version") as info:
        ADAPTER.parse_settings({"api_version": version})
    assert info.value.key == "api_version"


@pytest.mark.parametrize(
    ("raw", "key"),
    [({"channelId": 1}, "channelId")],
)
def test_invalid_settings(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ADAPTER.parse_settings(raw)
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize("url", ["http://api.hubapi.example", "api.hubapi.com"])
def test_an_unsafe_base_url_is_refused_by_the_core(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_base_url(ADAPTER, _settings(base_url=url), connection="hs")
    assert (info.value.key, info.value.connection) == ("base_url", "hs")


def test_conversation_updates_are_unsupported() -> None:
    with pytest.raises(UnsupportedOperation, match="hubspot"):
        ADAPTER.prepare_conversation(ConversationUpdate("t-1", unread_count=0), _settings())


# -- interpret: success ----------------------------------------------------------------

MESSAGE = {
    "id": MID,
    "channelId": "1234",
    "channelAccountId": "5678",
    "conversationsThreadId": "9012",
    "createdBy": "A-1",
    "text": "hello",
    "createdAt": "2026-03-10T23:04:41.164Z",
    "archived": False,
    "direction": "OUTGOING",
    "type": "MESSAGE",
    "truncationStatus": "NOT_TRUNCATED",
    "client": {"clientType": "INTEGRATION", "integrationAppId": 42},
    "senders": [{"actorId": "A-1", "name": "Agent"}],
    "recipients": [{"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+15550001111"}}],
    "attachments": [],
    "status": {"statusType": "SENT"},
}
IDS = {"id": MID, "channelId": "1234", "conversationsThreadId": "9012"}


def test_success() -> None:
    headers = {"X-HubSpot-Correlation-Id": "corr-200"}
    assert _answer(200, MESSAGE, headers) == VendorResult(
        http_status=200, vendor_ids=IDS, trace_id="corr-200", vendor_status="SENT"
    )


def test_success_variants() -> None:
    numeric = {**MESSAGE, "channelId": 1234}
    assert _answer(200, numeric) == VendorResult(200, IDS, vendor_status="SENT")
    failed = {
        **MESSAGE,
        "status": {"statusType": "FAILED", "failureDetails": {"errorMessageTokens": {}}},
    }
    assert _answer(200, failed) == VendorResult(200, IDS, vendor_status="FAILED")
    assert _answer(200, {"id": MID}) == VendorResult(200, {"id": MID})
    extra = {**MESSAGE, "richText": "<p>hi</p>", "brandNew": {"x": 1}}
    assert _answer(200, extra) == VendorResult(200, IDS, vendor_status="SENT")


@pytest.mark.parametrize(
    "body",
    [{k: v for k, v in MESSAGE.items() if k != "id"}, [MESSAGE], b"<html></html>", b""],
    ids=["no-id", "list", "html", "empty"],
)
def test_unreadable_success_is_applied_with_a_warning(body: Any) -> None:
    # A 2xx means HubSpot applied it: never reported failed (issue 13).
    result = _answer(200, body, headers={"X-HubSpot-Correlation-Id": "corr-1"})
    assert isinstance(result, VendorResult)
    assert (result.http_status, result.vendor_ids, result.trace_id) == (200, {}, "corr-1")
    assert result.warning is not None
    assert result.warning.startswith("HubSpot answered HTTP 200 (applied)")
    assert "HubSpot message: " in result.warning


# -- interpret: errors -----------------------------------------------------------------

VALIDATION = {
    "status": "error",
    "message": "One or more Channel Capabilities specified had invalid values",
    "correlationId": "4b0b52a4-62a8-4e5b-9c50-6f1d2a6c1a10",
    "context": {"capabilityKeysAndValues": ["threadingModel"]},
    "category": "VALIDATION_ERROR",
    "subCategory": "CustomChannelsError.INVALID_CHANNEL_CAPABILITY_VALUES",
}
EXPIRED = {
    "status": "error",
    "message": "The OAuth token used to make this call expired 0 second(s) ago.",
    "correlationId": "5c1c63b5-73b9-4f6c-8d61-7a2e3b7d2b21",
    "category": "EXPIRED_AUTHENTICATION",
    "context": {"expire time": ["2026-03-10T23:04:41.164Z"]},
}
MISSING_SCOPES = {
    "status": "error",
    "message": "This app hasn't been granted all required scopes to make this call.",
    "errors": [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredScopes": ["conversations.custom_channels.write"]},
        }
    ],
    "links": {"scopes": "https://developers.hubspot.com/scopes"},
    "category": "MISSING_SCOPES",
}


def _rate_limit(policy: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c93e06a4-0000-4000-8000-000000000000",
        "policyName": policy,
        "groupName": "publicapi:hapikey-api-calls-ten-secondly:6748263",
    }


def test_validation_error() -> None:
    error = _error(400, VALIDATION)
    assert type(error) is VendorRejected
    assert error.retryable is False
    assert error.trace_id == "4b0b52a4-62a8-4e5b-9c50-6f1d2a6c1a10"
    assert error.vendor_message == (
        "VALIDATION_ERROR/CustomChannelsError.INVALID_CHANNEL_CAPABILITY_VALUES: "
        "One or more Channel Capabilities specified had invalid values"
    )
    assert error.message == (
        "HubSpot rejected the request: "
        "One or more Channel Capabilities specified had invalid values"
    )


def test_expired_token() -> None:
    error = _error(401, EXPIRED)
    assert type(error) is AuthenticationError
    assert error.vendor_message == (
        "EXPIRED_AUTHENTICATION: The OAuth token used to make this call expired 0 second(s) ago."
    )
    assert error.trace_id == "5c1c63b5-73b9-4f6c-8d61-7a2e3b7d2b21"


def test_missing_scopes_joins_details_and_uses_the_header_trace() -> None:
    error = _error(403, MISSING_SCOPES, {"X-HubSpot-Correlation-Id": "hdr-corr"})
    assert type(error) is PermissionDenied
    assert error.retryable is False
    assert error.trace_id == "hdr-corr"
    assert error.vendor_message == (
        "MISSING_SCOPES: This app hasn't been granted all required scopes to make this call.; "
        "One or more of the following scopes are required."
    )


def test_body_correlation_id_wins_over_the_header() -> None:
    error = _error(400, VALIDATION, {"X-HubSpot-Correlation-Id": "hdr-corr"})
    assert error.trace_id == "4b0b52a4-62a8-4e5b-9c50-6f1d2a6c1a10"


@pytest.mark.parametrize(
    ("status", "body", "error_type", "vendor_message"),
    [
        (
            404,
            {"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"},
            NotFound,
            "OBJECT_NOT_FOUND: resource not found",
        ),
        (409, {"status": "error", "message": "conflict"}, VendorRejected, "conflict"),
        (502, b"<html>502 Bad Gateway</html>", VendorUnavailable, "<html>502 Bad Gateway</html>"),
        (503, b"", VendorUnavailable, "no message"),
        (
            500,
            {"category": "INTERNAL_ERROR"},
            VendorUnavailable,
            'INTERNAL_ERROR: {"category": "INTERNAL_ERROR"}',
        ),
    ],
    ids=["404", "409", "502-html", "503-empty", "500-no-message"],
)
def test_other_errors(
    status: int, body: Any, error_type: type[MessagingError], vendor_message: str
) -> None:
    error = _error(status, body)
    assert type(error) is error_type
    assert error.vendor_message == vendor_message


@pytest.mark.parametrize(
    ("policy", "headers", "retryable", "retry_after"),
    [
        ("TEN_SECONDLY_ROLLING", {}, True, 10.0),
        (
            "TEN_SECONDLY_ROLLING",
            {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
            True,
            10.0,
        ),
        ("TEN_SECONDLY_ROLLING", {"X-HubSpot-RateLimit-Interval-Milliseconds": "2000"}, True, 2.0),
        ("TEN_SECONDLY_ROLLING", {"Retry-After": "3"}, True, 3.0),
        ("SECONDLY", {}, True, 1.0),
        ("DAILY", {}, False, None),
        ("DAILY", {"Retry-After": "3"}, False, None),
    ],
    ids=[
        "ten-secondly",
        "ten-secondly-interval-10s",
        "ten-secondly-interval-2s",
        "retry-after-wins",
        "secondly",
        "daily",
        "daily-ignores-retry-after",
    ],
)
def test_legacy_rate_limit(
    policy: str, headers: dict[str, str], retryable: bool, retry_after: float | None
) -> None:
    error = _error(429, _rate_limit(policy), headers)
    assert type(error) is RateLimited
    assert error.retryable is retryable
    assert error.retry_after == retry_after
    assert error.trace_id == "c93e06a4-0000-4000-8000-000000000000"
    assert error.vendor_message == f"RATE_LIMIT: You have reached your {policy.lower()} limit."


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({}, None), ({"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}, 10.0)],
    ids=["bare", "interval-header"],
)
def test_rate_limit_without_body(headers: dict[str, str], retry_after: float | None) -> None:
    error = _error(429, b"", headers)
    assert type(error) is RateLimited
    assert error.retryable is True
    assert error.retry_after == retry_after


def test_errors_field_that_is_not_a_list() -> None:
    error = _error(400, {"message": "bad", "category": "VALIDATION_ERROR", "errors": 7})
    assert type(error) is VendorRejected


# -- OAuth -------------------------------------------------------------------------------


def _oauth() -> HubSpotOAuth:
    return HubSpotOAuth(client_id="cid-1", client_secret="sec-1", refresh_token="rt-1")


@pytest.mark.parametrize(
    ("status", "content", "expired"),
    [
        (401, json.dumps(EXPIRED).encode(), True),
        (401, b'{"status":"error","category":"INVALID_AUTHENTICATION","message":"bad"}', False),
        (401, b"", False),
        (401, b"<html>401</html>", False),
        (401, b'["EXPIRED_AUTHENTICATION"]', False),
        (403, json.dumps({**EXPIRED, "category": "EXPIRED_AUTHENTICATION"}).encode(), False),
        (200, json.dumps(MESSAGE).encode(), False),
    ],
    ids=["expired", "invalid", "empty", "html", "list", "403-expired-category", "200"],
)
def test_oauth_refreshes_only_on_expired_authentication(
    status: int, content: bytes, expired: bool
) -> None:
    assert _oauth().is_expired_response(ResponseView(status, {}, content)) is expired


def test_oauth_refresh_form() -> None:
    assert _oauth().refresh_form("rt-2") == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-2",
        "client_id": "cid-1",
        "client_secret": "sec-1",
    }
    assert _oauth().token_url == f"{HOST}/oauth/2026-03/token"
    assert "sec-1" not in repr(_oauth())
