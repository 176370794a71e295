"""HighLevel, Leadway and Hoop: exact requests, OpenAPI-valid bodies, recorded answers.

Pure: adapters are called directly, nothing is sent. Expected values are written out
here from /work/shared/vendors/highlevel.md, never computed with the adapter's code.
Request bodies are also validated against HighLevel's published OpenAPI (CC0), read
from /work/shared/vendors/highlevel-openapi/ (tests skip when it is not there).
"""

from __future__ import annotations

import json
from pathlib import Path
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
from msgbridge.adapters import highlevel
from msgbridge.adapters.highlevel import (
    HIGHLEVEL,
    HOOP,
    LEADWAY,
    HighLevelAdapter,
    HighLevelOAuth,
)
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidStatus,
    MessagingError,
    NotFound,
    PermissionDenied,
    ProviderNotReady,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus, StatusError
from msgbridge.registry import AdapterRegistry

OPENAPI_PATH = Path("/work/shared/vendors/highlevel-openapi/conversations.json")
HOST = "https://services.leadconnectorhq.com"
MID = "ve9EPM428h8vShlRW1KT"
CID = "tDtDnQdgm2LXpyiqYvZ6"
LOCATION = "ve9EPM428h8vShlRW1KL"

ADAPTERS = {v.id: HighLevelAdapter(v) for v in (HIGHLEVEL, LEADWAY, HOOP)}
VERSIONS = {"highlevel": "2021-04-15", "leadway": "2021-07-28", "hoop": "2021-04-15"}
NAMES = {"highlevel": "HighLevel", "leadway": "Leadway", "hoop": "Hoop"}
VENDOR_STATUS = {
    DeliveryState.PENDING: "pending",
    DeliveryState.SENT: "pending",
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.READ: "read",
    DeliveryState.FAILED: "failed",
}
EXTRAS: dict[str, dict[str, Any]] = {
    "plain": {},
    "email": {"email_message_id": "rnGyqh2F6uBrIkfhFo9A"},
    "recipients": {"recipients": ("cc@example.com", "bcc@example.com")},
    "email+recipients": {
        "email_message_id": "rnGyqh2F6uBrIkfhFo9A",
        "recipients": ("cc@example.com",),
    },
}
ERRORS: dict[str, StatusError | None] = {
    "no-error": None,
    "message-only": StatusError("Carrier rejected the message"),
    "with-code": StatusError("Carrier rejected the message", code="30007"),
    "with-kind": StatusError("Carrier rejected the message", kind="saas"),
    "code-and-kind": StatusError("Carrier rejected the message", code="30007", kind="saas"),
}


def _status_cases() -> list[Any]:
    cases = []
    for variant in ADAPTERS:
        for state in DeliveryState:
            errors = ERRORS if state is DeliveryState.FAILED else {"no-error": None}
            for error_id, error in errors.items():
                for extra_id, extra in EXTRAS.items():
                    cases.append(
                        pytest.param(
                            variant,
                            state,
                            error,
                            extra,
                            id=f"{variant}-{state.value}-{error_id}-{extra_id}",
                        )
                    )
    return cases


def expected_status_body(
    state: DeliveryState, error: StatusError | None, extra: dict[str, Any]
) -> dict[str, Any]:
    """The body per the vendor notes, written independently of the adapter."""
    body: dict[str, Any] = {"status": VENDOR_STATUS[state]}
    if error is not None:
        body["error"] = {
            "code": error.code if error.code is not None else "unknown",
            "type": error.kind if error.kind is not None else "unknown",
            "message": error.message,
        }
    if "email_message_id" in extra:
        body["emailMessageId"] = extra["email_message_id"]
    if "recipients" in extra:
        body["recipients"] = list(extra["recipients"])
    return body


def _settings(variant: str, **raw: Any) -> Any:
    return ADAPTERS[variant].parse_settings(raw)


def _status_request(variant: str = "highlevel", **raw: Any) -> RequestSpec:
    adapter = ADAPTERS[variant]
    return adapter.prepare_status(MessageStatus(MID, "delivered"), _settings(variant, **raw))


def _answer(
    variant: str,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    request: RequestSpec | None = None,
    settings: Any = None,
) -> VendorResult | MessagingError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = request or _status_request(variant)
    settings = settings if settings is not None else _settings(variant)
    try:
        return ADAPTERS[variant].interpret(
            request, ResponseView(status, headers or {}, raw), settings
        )
    except MessagingError as exc:
        return exc


def _error(variant: str, status: int, body: Any, **kwargs: Any) -> MessagingError:
    outcome = _answer(variant, status, body, **kwargs)
    assert isinstance(outcome, MessagingError), outcome
    assert outcome.http_status == status
    return outcome


# -- a tiny OpenAPI schema checker (type, required, enum, properties, items, $ref) ------


def schema_errors(
    instance: Any, schema: dict[str, Any], spec: dict[str, Any], path: str = "$"
) -> list[str]:
    """Problems of *instance* against *schema*; objects are closed (unknown keys fail)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return [f"{path}: unsupported external $ref {ref!r}"]
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part]
        return schema_errors(instance, target, spec, path)
    problems: list[str] = []
    for sub in schema.get("allOf", []):
        problems += schema_errors(instance, sub, spec, path)
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    if kind is not None and not checks[kind](instance):
        return [*problems, f"{path}: expected {kind}, got {type(instance).__name__}"]
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if isinstance(instance, dict) and ("properties" in schema or kind == "object"):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                problems.append(f"{path}: required property {name!r} is missing")
        for name, value in instance.items():
            if name not in properties:
                problems.append(f"{path}: property {name!r} is not in the schema")
            else:
                problems += schema_errors(value, properties[name], spec, f"{path}.{name}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            problems += schema_errors(item, schema["items"], spec, f"{path}[{i}]")
    return problems


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    if not OPENAPI_PATH.is_file():
        pytest.skip(
            f"HighLevel's OpenAPI is not at {OPENAPI_PATH}; the schema checks need the "
            "vendor notes in /work/shared/vendors"
        )
    spec: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return spec


def _dto(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = openapi["components"]["schemas"][name]
    return schema


def _request_schema(openapi: dict[str, Any], path: str) -> dict[str, Any]:
    operation = openapi["paths"][path]["put"]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


class TestSchemaChecker:
    """The checker must be able to fail, or the schema tests prove nothing."""

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ({}, "required property 'status' is missing"),
            ({"status": "sent"}, "'sent' is not one of"),
            ({"status": "read", "recipients": "a@b.c"}, "expected array"),
            ({"status": "read", "recipients": [1]}, "$.recipients[0]: expected string"),
            (
                {"status": "failed", "error": {"code": "1", "message": "x"}},
                "required property 'type' is missing",
            ),
            ({"status": "read", "emailMessageID": "x"}, "'emailMessageID' is not in the schema"),
        ],
    )
    def test_rejects_invalid_status_bodies(
        self, openapi: dict[str, Any], body: dict[str, Any], problem: str
    ) -> None:
        schema = _request_schema(openapi, "/conversations/messages/{messageId}/status")
        problems = schema_errors(body, schema, openapi)
        assert any(problem in p for p in problems), problems

    def test_rejects_invalid_conversation_bodies(self, openapi: dict[str, Any]) -> None:
        schema = _request_schema(openapi, "/conversations/{conversationId}")
        assert schema_errors({"unreadCount": True, "starred": 1}, schema, openapi) == [
            "$: required property 'locationId' is missing",
            "$.unreadCount: expected number, got bool",
            "$.starred: expected boolean, got int",
        ]

    def test_request_schemas_are_the_named_dtos(self, openapi: dict[str, Any]) -> None:
        status = _request_schema(openapi, "/conversations/messages/{messageId}/status")
        conversation = _request_schema(openapi, "/conversations/{conversationId}")
        assert status == {"$ref": "#/components/schemas/UpdateMessageStatusDto"}
        assert conversation == {"$ref": "#/components/schemas/UpdateConversationDto"}
        assert _dto(openapi, "UpdateMessageStatusDto")["properties"]["status"]["enum"] == [
            "delivered",
            "failed",
            "pending",
            "read",
        ]


# -- description -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(ADAPTERS))
def test_description(variant: str) -> None:
    adapter = ADAPTERS[variant]
    assert adapter.id == variant
    assert adapter.variant_of == (None if variant == "highlevel" else "highlevel")
    assert adapter.capabilities.operations == frozenset(
        {
            Operation.UPDATE_STATUS,
            Operation.UPDATE_CONVERSATION,
            Operation.UPDATE_EMAIL_STATUS,
            Operation.PUBLISH_INBOUND,
        }
    )
    assert dict(adapter.capabilities.states) == {
        DeliveryState.PENDING: StateMapping(Fidelity.EXACT, "pending"),
        DeliveryState.SENT: StateMapping(Fidelity.COARSE, "pending"),
        DeliveryState.DELIVERED: StateMapping(Fidelity.EXACT, "delivered"),
        DeliveryState.READ: StateMapping(Fidelity.EXACT, "read"),
        DeliveryState.FAILED: StateMapping(Fidelity.EXACT, "failed"),
    }
    assert adapter.defaults == AdapterDefaults(
        base_url=HOST,
        version=VERSIONS[variant],
        rate_budget=RateBudget(requests=100, per_seconds=10.0, daily=200_000),
    )


def test_plugin_registers_the_three_variants() -> None:
    registry = AdapterRegistry()
    assert registry.add_plugin(highlevel)
    assert [(r.adapter.id, r.adapter.variant_of) for r in registry] == [
        ("highlevel", None),
        ("hoop", "highlevel"),
        ("leadway", "highlevel"),
    ]
    assert registry.failures == ()


# -- prepare_status ------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "state", "error", "extra"), _status_cases())
def test_status_request(
    openapi: dict[str, Any],
    variant: str,
    state: DeliveryState,
    error: StatusError | None,
    extra: dict[str, Any],
) -> None:
    update = MessageStatus(MID, state, error=error, **extra)
    spec = ADAPTERS[variant].prepare_status(update, _settings(variant))
    assert spec.method == "PUT"
    assert spec.path == f"/conversations/messages/{MID}/status"
    assert dict(spec.headers) == {"Version": VERSIONS[variant]}
    assert spec.json == expected_status_body(state, error, extra)
    assert spec.operation is Operation.UPDATE_STATUS
    assert spec.subject_id == MID
    schema = _request_schema(openapi, "/conversations/messages/{messageId}/status")
    assert schema_errors(spec.json, schema, openapi) == []


def test_error_keys_are_all_present_when_an_error_is_sent() -> None:
    update = MessageStatus(MID, "failed", error=StatusError("boom"))
    spec = ADAPTERS["highlevel"].prepare_status(update, _settings("highlevel"))
    assert spec.body_bytes() == (
        b'{"status":"failed","error":{"code":"unknown","type":"unknown","message":"boom"}}'
    )


@pytest.mark.parametrize("variant", list(ADAPTERS))
def test_version_and_base_url_overrides(variant: str) -> None:
    adapter = ADAPTERS[variant]
    settings = _settings(variant, version="2099-01-01", base_url="http://127.0.0.1:8080/hl/")
    spec = adapter.prepare_status(MessageStatus(MID, "read"), settings)
    base = resolve_base_url(adapter, settings)
    assert spec.prepare(base).url == f"http://127.0.0.1:8080/hl/conversations/messages/{MID}/status"
    assert dict(spec.headers) == {"Version": "2099-01-01"}


@pytest.mark.parametrize("variant", list(ADAPTERS))
def test_the_variant_host_is_the_default_base_url(variant: str) -> None:
    adapter = ADAPTERS[variant]
    assert resolve_base_url(adapter, _settings(variant)) == HOST


def test_hostile_ids_are_one_encoded_segment() -> None:
    spec = ADAPTERS["hoop"].prepare_status(
        MessageStatus("../../oauth/token", "read"), _settings("hoop")
    )
    assert spec.path == "/conversations/messages/..%2F..%2Foauth%2Ftoken/status"
    assert spec.subject_id == "../../oauth/token"
    conversation = ADAPTERS["hoop"].prepare_conversation(
        ConversationUpdate("a/b?c=d#e%", account_id=LOCATION, starred=True), _settings("hoop")
    )
    assert conversation.path == "/conversations/a%2Fb%3Fc%3Dd%23e%25"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"version": "  "}, "version"),
        ({"version": 20210415}, "version"),
        ({"location_id": ""}, "location_id"),
        ({"provider_retry_after": -1}, "provider_retry_after"),
        ({"provider_retry_after": "5"}, "provider_retry_after"),
        ({"locationId": "x"}, "locationId"),
    ],
)
def test_invalid_settings(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ADAPTERS["highlevel"].parse_settings(raw)
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://services.example.com",
        "ftp://services.example.com",
        "https://services.example.com/?x=1",
    ],
)
def test_an_unsafe_base_url_is_refused_by_the_core(url: str) -> None:
    adapter = ADAPTERS["highlevel"]
    settings = adapter.parse_settings({"base_url": url})
    with pytest.raises(ConfigurationError) as info:
        resolve_base_url(adapter, settings, connection="hl")
    assert info.value.key == "base_url"
    assert info.value.connection == "hl"
    assert "connection 'hl': setting base_url" in str(info.value)


# -- prepare_conversation ------------------------------------------------------------


@pytest.mark.parametrize("variant", list(ADAPTERS))
@pytest.mark.parametrize(
    ("update_kwargs", "settings", "body"),
    [
        (
            {"account_id": LOCATION, "unread_count": 0, "starred": False},
            {},
            {"locationId": LOCATION, "unreadCount": 0, "starred": False},
        ),
        (
            {"unread_count": 3},
            {"location_id": "loc-from-settings"},
            {"locationId": "loc-from-settings", "unreadCount": 3},
        ),
        (
            {"account_id": LOCATION, "starred": True},
            {"location_id": "loc-from-settings"},
            {"locationId": LOCATION, "starred": True},
        ),
    ],
    ids=["account-id", "settings-location", "account-id-wins"],
)
def test_conversation_request(
    openapi: dict[str, Any],
    variant: str,
    update_kwargs: dict[str, Any],
    settings: dict[str, Any],
    body: dict[str, Any],
) -> None:
    update = ConversationUpdate(CID, **update_kwargs)
    spec = ADAPTERS[variant].prepare_conversation(update, _settings(variant, **settings))
    assert spec.method == "PUT"
    assert spec.path == f"/conversations/{CID}"
    assert dict(spec.headers) == {"Version": VERSIONS[variant]}
    assert spec.json == body
    assert spec.operation is Operation.UPDATE_CONVERSATION
    assert spec.subject_id == CID
    schema = _request_schema(openapi, "/conversations/{conversationId}")
    assert schema_errors(spec.json, schema, openapi) == []


@pytest.mark.parametrize("variant", list(ADAPTERS))
def test_conversation_without_location_is_invalid(variant: str) -> None:
    with pytest.raises(InvalidStatus, match="location") as info:
        ADAPTERS[variant].prepare_conversation(
            ConversationUpdate(CID, unread_count=0), _settings(variant)
        )
    assert info.value.field == "account_id"
    assert NAMES[variant] in str(info.value)


# -- interpret: success ----------------------------------------------------------------

CURRENT_DTO = {
    "conversationId": "ABC12h2F6uBrIkfXYazb",
    "emailMessageId": "rnGyqh2F6uBrIkfhFo9A",
    "messageId": "t22c6DQcTDf3MjRhwf77",
    "msg": "Message queued successfully.",
    "status": "delivered",
    "traceId": "6f7c1e0a-trace",
    "forwardData": {
        "forwardWholeThread": False,
        "messageId": "t22c6DQcTDf3MjRhwf77",
        "emailMessageId": "rnGyqh2F6uBrIkfhFo9A",
        "forwardToEmail": "recipient@example.com",
        "recipientContactId": "DEF56h2F6uBrIkfXYacd",
    },
}
OLD_DTO = {
    "conversationId": "ABC12h2F6uBrIkfXYazb",
    "emailMessageId": "rnGyqh2F6uBrIkfhFo9A",
    "messageId": "t22c6DQcTDf3MjRhwf77",
    "messageIds": ["t22c6DQcTDf3MjRhwf77"],
    "msg": "Message queued successfully.",
}


def test_recorded_dtos_match_the_published_schema(openapi: dict[str, Any]) -> None:
    schema = _dto(openapi, "SendMessageResponseDto")
    current = {k: v for k, v in CURRENT_DTO.items() if k != "traceId"}  # traceId: §1 notes
    assert schema_errors(current, schema, openapi) == []
    assert schema_errors(OLD_DTO, schema, openapi) == ["$: required property 'status' is missing"]


def test_current_dto_with_forward_data() -> None:
    assert _answer("leadway", 200, CURRENT_DTO) == VendorResult(
        http_status=200,
        vendor_ids={
            "conversationId": "ABC12h2F6uBrIkfXYazb",
            "messageId": "t22c6DQcTDf3MjRhwf77",
            "emailMessageId": "rnGyqh2F6uBrIkfhFo9A",
            "forwardData.messageId": "t22c6DQcTDf3MjRhwf77",
            "forwardData.emailMessageId": "rnGyqh2F6uBrIkfhFo9A",
            "forwardData.forwardToEmail": "recipient@example.com",
            "forwardData.recipientContactId": "DEF56h2F6uBrIkfXYacd",
        },
        trace_id="6f7c1e0a-trace",
        vendor_status="delivered",
    )


def test_old_five_field_dto() -> None:
    assert _answer("hoop", 200, OLD_DTO) == VendorResult(
        http_status=200,
        vendor_ids={
            "conversationId": "ABC12h2F6uBrIkfXYazb",
            "messageId": "t22c6DQcTDf3MjRhwf77",
            "emailMessageId": "rnGyqh2F6uBrIkfhFo9A",
        },
        trace_id=None,
        vendor_status=None,
    )


MINIMAL = {"conversationId": "c1", "messageId": "m1"}


@pytest.mark.parametrize("variant", list(ADAPTERS))
def test_only_the_ids_are_required(variant: str) -> None:
    expected = VendorResult(200, {"conversationId": "c1", "messageId": "m1"})
    assert _answer(variant, 200, MINIMAL) == expected
    assert _answer(variant, 201, MINIMAL) == VendorResult(201, dict(expected.vendor_ids))
    unknown = {**MINIMAL, "brandNewField": {"x": [1]}, "status2": 3}
    assert _answer(variant, 200, unknown) == expected


def test_trace_id_from_body_or_header() -> None:
    header = {"traceId": "from-header"}
    assert _answer("highlevel", 200, MINIMAL, headers=header).trace_id == "from-header"
    both = {**MINIMAL, "traceId": "from-body"}
    assert _answer("highlevel", 200, both, headers=header).trace_id == "from-body"


# A 2xx means HighLevel applied the update: it is never reported failed, whatever the
# body looks like (issue 13). What the body lacks becomes a warning in the receipt.

#: Seed 000 (HighLevel's update-message-status page): "When sending via the GMB channel,
#: we will be returning list of messageIds instead of single messageId".
GMB_ANSWER = {"conversationId": "ABC12h2F6uBrIkfXYazb", "messageIds": ["m-1", "m-2"]}


@pytest.mark.parametrize("variant", list(ADAPTERS))
def test_gmb_message_ids_instead_of_message_id_is_applied(variant: str) -> None:
    assert _answer(variant, 200, GMB_ANSWER) == VendorResult(
        200,
        {"conversationId": "ABC12h2F6uBrIkfXYazb", "messageIds.0": "m-1", "messageIds.1": "m-2"},
    )


def test_message_id_alone_is_enough() -> None:
    assert _answer("highlevel", 200, {"messageId": "m1"}) == VendorResult(200, {"messageId": "m1"})


@pytest.mark.parametrize(
    ("body", "warning"),
    [
        ({"conversationId": "c1"}, "without messageId or messageIds"),
        ({"conversationId": "c1", "messageId": None}, "without messageId or messageIds"),
        ({"conversationId": "c1", "messageId": "m1", "forwardData": "x"}, "forwardData"),
        ({"messageIds": "m1"}, "messageIds"),
        ([MINIMAL], "expected a JSON object"),
        (b"<html>ok</html>", "expected a JSON object"),
        (b"", "expected a JSON object"),
    ],
    ids=[
        "no-messageId",
        "null-messageId",
        "forwardData-string",
        "ids-string",
        "list",
        "html",
        "empty",
    ],
)
def test_unreadable_success_is_applied_with_a_warning(body: Any, warning: str) -> None:
    result = _answer("highlevel", 200, body, headers={"traceId": "t-9"})
    assert isinstance(result, VendorResult)
    assert result.http_status == 200
    assert result.trace_id == "t-9"
    assert result.warning is not None
    assert result.warning.startswith("HighLevel answered HTTP 200 (applied)")
    assert warning in result.warning


def test_a_null_id_never_becomes_the_text_none() -> None:
    result = _answer("highlevel", 200, {"conversationId": None, "messageId": "m1"})
    assert result == VendorResult(200, {"messageId": "m1"})


def test_conversation_success() -> None:
    request = ADAPTERS["leadway"].prepare_conversation(
        ConversationUpdate(CID, account_id=LOCATION, unread_count=0), _settings("leadway")
    )
    body = {
        "success": True,
        "conversation": {"id": CID, "locationId": LOCATION, "contactId": "x", "deleted": False},
        "traceId": "t-1",
    }
    assert _answer("leadway", 200, body, request=request) == VendorResult(
        200, {"conversationId": CID}, trace_id="t-1"
    )
    assert _answer("leadway", 200, {"success": True}, request=request) == VendorResult(200, {})
    odd = _answer("leadway", 200, {"conversation": 5}, request=request)
    assert odd.vendor_ids == {}
    assert odd.warning is not None
    assert "Leadway conversation: " in odd.warning


# -- interpret: errors -----------------------------------------------------------------


def test_message_list_is_joined() -> None:
    error = _error(
        "highlevel",
        422,
        {"statusCode": 422, "message": ["Unprocessable Entity"], "error": "Unprocessable Entity"},
    )
    assert type(error) is VendorRejected
    assert error.vendor_message == "Unprocessable Entity"
    assert error.message == "HighLevel rejected the request: Unprocessable Entity"
    assert error.retryable is False
    two = _error("leadway", 422, {"statusCode": 422, "message": ["a is bad", "b is bad"]})
    assert two.vendor_message == "a is bad; b is bad"
    assert two.message == "Leadway rejected the request: a is bad; b is bad"


def test_missing_error_key() -> None:
    error = _error("hoop", 400, {"statusCode": 400, "message": "Bad Request"})
    assert type(error) is VendorRejected
    assert error.vendor_message == "Bad Request"
    assert error.message == "Hoop rejected the request: Bad Request"


@pytest.mark.parametrize(
    ("status", "body", "error_type", "vendor_message"),
    [
        (502, b"<html>Bad Gateway</html>", VendorUnavailable, "<html>Bad Gateway</html>"),
        (503, b"", VendorUnavailable, "no message"),
        (400, b"not json", VendorRejected, "not json"),
        (404, b"", NotFound, "no message"),
    ],
)
def test_non_json_error_bodies(
    status: int, body: bytes, error_type: type[MessagingError], vendor_message: str
) -> None:
    error = _error("highlevel", status, body)
    assert type(error) is error_type
    assert error.vendor_message == vendor_message


@pytest.mark.parametrize("variant", list(ADAPTERS))
def test_provider_not_ready_is_retryable_after_the_setting(variant: str) -> None:
    body = {
        "statusCode": 403,
        "message": "No conversation provider found for this message",
        "error": "Forbidden",
    }
    error = _error(variant, 403, body)
    assert type(error) is ProviderNotReady
    assert isinstance(error, PermissionDenied)
    assert error.retryable is True
    assert error.retry_after == 5.0
    assert error.vendor_message == "No conversation provider found for this message"
    # The delay comes from the settings interpret is given, not from the request.
    slow = _error(variant, 403, body, settings=_settings(variant, provider_retry_after=12.5))
    assert slow.retry_after == 12.5
    now = _error(variant, 403, body, settings=_settings(variant, provider_retry_after=0))
    assert now.retry_after == 0.0


def test_provider_not_ready_matches_case_and_list() -> None:
    body = {"statusCode": 403, "message": ["no conversation provider found for this MESSAGE"]}
    assert type(_error("highlevel", 403, body)) is ProviderNotReady


def test_plain_403_is_permanent() -> None:
    body = {
        "statusCode": 403,
        "message": "You do not have permission to access this resource",
        "error": "Forbidden",
    }
    error = _error("highlevel", 403, body)
    assert type(error) is PermissionDenied
    assert error.retryable is False
    assert error.retry_after is None
    assert error.message == (
        "HighLevel denied the request: You do not have permission to access this resource"
    )


def test_401_and_404_and_500() -> None:
    unauthorized = _error(
        "highlevel",
        401,
        {
            "statusCode": 401,
            "message": "Invalid token: access token is invalid",
            "error": "Unauthorized",
        },
    )
    assert type(unauthorized) is AuthenticationError
    assert unauthorized.retryable is False
    assert unauthorized.message == (
        "HighLevel refused the token: Invalid token: access token is invalid"
    )
    missing = _error("highlevel", 404, {"statusCode": 404, "message": "Message not found"})
    assert type(missing) is NotFound
    assert missing.message == "HighLevel does not know this id: Message not found"
    down = _error("highlevel", 500, {"statusCode": 500, "message": "Internal server error"})
    assert type(down) is VendorUnavailable
    assert down.retryable is True
    assert down.message == "HighLevel is unavailable (HTTP 500): Internal server error"


def test_error_trace_id_from_body_or_header() -> None:
    body = {"statusCode": 400, "message": "Bad Request", "traceId": "body-trace"}
    assert _error("highlevel", 400, body).trace_id == "body-trace"
    plain = {"statusCode": 400, "message": "Bad Request"}
    assert _error("highlevel", 400, plain, headers={"TraceId": "hdr"}).trace_id == "hdr"


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({}, None),
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Interval-Milliseconds": "10000"}, 10.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Interval-Milliseconds": "2500"}, 2.5),
        ({"X-RateLimit-Remaining": "4", "X-RateLimit-Interval-Milliseconds": "10000"}, None),
        ({"X-RateLimit-Remaining": "0"}, None),
        (
            {
                "Retry-After": "3",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Interval-Milliseconds": "10000",
            },
            3.0,
        ),
    ],
    ids=[
        "no-headers",
        "retry-after",
        "retry-after-zero",
        "window-spent",
        "window-spent-short",
        "window-not-spent",
        "no-interval",
        "retry-after-wins",
    ],
)
def test_rate_limit_wait(headers: dict[str, str], retry_after: float | None) -> None:
    error = _error(
        "leadway", 429, {"statusCode": 429, "message": "Too Many Requests"}, headers=headers
    )
    assert type(error) is RateLimited
    assert error.retryable is True
    assert error.retry_after == retry_after
    assert error.message == "Leadway rate limit reached: Too Many Requests"


# -- OAuth -------------------------------------------------------------------------------


def _oauth(**kwargs: Any) -> HighLevelOAuth:
    return HighLevelOAuth(client_id="cid-1", client_secret="sec-1", refresh_token="rt-1", **kwargs)


@pytest.mark.parametrize(
    ("status", "body", "expired"),
    [
        (401, {"statusCode": 401, "message": "Invalid token: access token is invalid"}, True),
        (401, None, True),
        (
            403,
            {"statusCode": 403, "message": "No conversation provider found for this message"},
            False,
        ),
        (403, {"statusCode": 403, "message": "Forbidden"}, False),
        (400, {"statusCode": 400, "message": "Bad Request"}, False),
        (200, MINIMAL, False),
    ],
    ids=["401", "401-no-body", "403-provider-not-ready", "403", "400", "200"],
)
def test_oauth_refreshes_on_any_401_only(status: int, body: Any, expired: bool) -> None:
    response = ResponseView(status, {}, json.dumps(body).encode() if body is not None else b"")
    assert _oauth().is_expired_response(response) is expired


def test_oauth_refresh_form_and_repr() -> None:
    assert _oauth().refresh_form("rt-2") == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-2",
        "client_id": "cid-1",
        "client_secret": "sec-1",
        "user_type": "Location",
    }
    assert _oauth(user_type="Company").refresh_form("rt-2")["user_type"] == "Company"
    assert _oauth().token_url == f"{HOST}/oauth/token"
    assert "sec-1" not in repr(_oauth())
    assert "cid-1" not in repr(_oauth())
    with pytest.raises(ConfigurationError) as info:
        _oauth(user_type="Agency")
    assert info.value.key == "user_type"


@pytest.mark.parametrize("value", ["inf", "1e309"])
def test_non_finite_retry_after_is_ignored(value: str) -> None:
    body = {"statusCode": 429, "message": "Too Many Requests"}
    assert _error("highlevel", 429, body, headers={"Retry-After": value}).retry_after is None


def test_provider_not_ready_on_a_conversation_uses_the_setting() -> None:
    settings = _settings("highlevel", provider_retry_after=30, location_id=LOCATION)
    request = ADAPTERS["highlevel"].prepare_conversation(
        ConversationUpdate(CID, starred=True), settings
    )
    body = {"statusCode": 403, "message": "No conversation provider found for this message"}
    assert _error("highlevel", 403, body, request=request, settings=settings).retry_after == 30.0
