"""HighLevel's email status call: the neutral model, its JSON form and the pure adapter.

``PUT /conversations/messages/email/{id}/status`` (operationId
``update-email-message-status``), added to HighLevel's v3 OpenAPI on 2026-06-19
(``apps/v3/conversations-v3.json`` at 0af86a4, CC0). Built bodies are validated against
that file's ``UpdateEmailMessageStatusDto`` when it is present at
/work/shared/vendors/highlevel-openapi/v3/, and always against the minimal transcription
below, so the check runs everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from msgbridge.adapter import Operation, ResponseView, VendorResult
from msgbridge.adapters.highlevel import HIGHLEVEL, HOOP, LEADWAY, HighLevelAdapter
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.email_status import (
    EmailEvents,
    EmailRecipientStatus,
    EmailState,
    EmailStatusUpdate,
    email_status_from_json,
    email_status_to_json,
)
from msgbridge.errors import (
    InvalidStatus,
    MessagingError,
    PermissionDenied,
    ProviderNotReady,
    UnsupportedOperation,
    VendorRejected,
)

V3_PATH = Path("/work/shared/vendors/highlevel-openapi/v3/conversations-v3.json")
ROUTE = "/conversations/messages/email/{id}/status"
HOST = "https://services.leadconnectorhq.com"
EMAIL_ID = "ve9EPM428h8vShlRW1KT"

#: Transcribed from apps/v3/conversations-v3.json (GoHighLevel/highlevel-api-docs at
#: 0af86a4, 2026-06-19, CC0): components.schemas.UpdateEmailMessageStatusDto, with its
#: EmailEventsDto and UpdateRecipientMessageStatusDto; descriptions and examples left out.
_STATES = [
    "pending",
    "scheduled",
    "sent",
    "delivered",
    "read",
    "undelivered",
    "connected",
    "failed",
    "opened",
    "clicked",
]
_COUNTERS = [
    "delivered",
    "opened",
    "clicked",
    "replied",
    "failed",
    "accepted",
    "rejected",
    "unsubscribed",
    "complained",
    "stored",
]
TRANSCRIBED: dict[str, Any] = {
    "components": {
        "schemas": {
            "UpdateEmailMessageStatusDto": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "events": {"allOf": [{"$ref": "#/components/schemas/EmailEventsDto"}]},
                    "recipients": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/UpdateRecipientMessageStatusDto"},
                    },
                    "status": {"type": "string", "enum": _STATES},
                },
            },
            "EmailEventsDto": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "properties": {name: {"type": "integer"} for name in _COUNTERS},
            },
            "UpdateRecipientMessageStatusDto": {
                "type": "object",
                "required": ["emailId", "status"],
                "properties": {
                    "emailId": {"type": "string"},
                    "status": {"type": "string", "enum": _STATES},
                    "failReason": {"type": "string"},
                },
            },
        }
    }
}


def schema_errors(
    instance: Any, schema: dict[str, Any], spec: dict[str, Any], path: str = "$"
) -> list[str]:
    """Problems of *instance* against an OpenAPI 3.0 schema: ``$ref``, ``allOf``,
    ``type``, ``enum``, ``required``, ``properties``, ``additionalProperties``, ``items``.
    Objects without ``additionalProperties`` are closed (unknown keys fail)."""
    if "$ref" in schema:
        target: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return schema_errors(instance, target, spec, path)
    problems: list[str] = []
    for sub in schema.get("allOf", []):
        problems += schema_errors(instance, sub, spec, path)
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    kind = schema.get("type")
    if kind is not None and not checks[kind](instance):
        return [*problems, f"{path}: expected {kind}, got {type(instance).__name__}"]
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if isinstance(instance, dict) and ("properties" in schema or kind == "object"):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in instance:
                problems.append(f"{path}: required property {name!r} is missing")
        for name, value in instance.items():
            if name in properties:
                problems += schema_errors(value, properties[name], spec, f"{path}.{name}")
            elif isinstance(extra, dict):
                problems += schema_errors(value, extra, spec, f"{path}.{name}")
            else:
                problems.append(f"{path}: property {name!r} is not in the schema")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            problems += schema_errors(item, schema["items"], spec, f"{path}[{i}]")
    return problems


def _published() -> dict[str, Any]:
    if not V3_PATH.is_file():
        pytest.skip(
            f"HighLevel's v3 OpenAPI is not at {V3_PATH}; the transcribed schema in this "
            "file is checked instead (test_bodies_match_the_transcribed_schema)"
        )
    spec: dict[str, Any] = json.loads(V3_PATH.read_text(encoding="utf-8"))
    return spec


@pytest.fixture(scope="module", params=["published", "transcribed"])
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _published() if request.param == "published" else TRANSCRIBED


def _request_schema(spec: dict[str, Any]) -> dict[str, Any]:
    if "paths" not in spec:
        return {"$ref": "#/components/schemas/UpdateEmailMessageStatusDto"}
    operation = spec["paths"][ROUTE]["put"]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


ADAPTERS = {v.id: HighLevelAdapter(v) for v in (HIGHLEVEL, LEADWAY, HOOP)}

UPDATES = {
    "status-only": EmailStatusUpdate(EMAIL_ID, "delivered"),
    "events": EmailStatusUpdate(
        EMAIL_ID,
        EmailState.CLICKED,
        events=EmailEvents(delivered=1, opened=3, clicked=1, provider={"permanent_fail": 0}),
    ),
    "recipients": EmailStatusUpdate(
        EMAIL_ID,
        "failed",
        recipients=[
            EmailRecipientStatus("john@example.com", "delivered"),
            EmailRecipientStatus("jane@example.com", "failed", fail_reason="Mailbox not found"),
        ],
    ),
    "everything": EmailStatusUpdate(
        EMAIL_ID,
        "opened",
        events=EmailEvents(
            delivered=1,
            opened=1,
            clicked=2,
            replied=1,
            failed=1,
            accepted=1,
            rejected=1,
            unsubscribed=1,
            complained=1,
            stored=1,
            provider={"temporary_fail": 2, "esp_isp_block": 1},
        ),
        recipients=[EmailRecipientStatus("a@example.com", "opened")],
    ),
}
BODIES: dict[str, dict[str, Any]] = {
    "status-only": {"status": "delivered"},
    "events": {
        "status": "clicked",
        "events": {"delivered": 1, "opened": 3, "clicked": 1, "permanent_fail": 0},
    },
    "recipients": {
        "status": "failed",
        "recipients": [
            {"emailId": "john@example.com", "status": "delivered"},
            {"emailId": "jane@example.com", "status": "failed", "failReason": "Mailbox not found"},
        ],
    },
    "everything": {
        "status": "opened",
        "events": {
            "delivered": 1,
            "opened": 1,
            "clicked": 2,
            "replied": 1,
            "failed": 1,
            "accepted": 1,
            "rejected": 1,
            "unsubscribed": 1,
            "complained": 1,
            "stored": 1,
            "temporary_fail": 2,
            "esp_isp_block": 1,
        },
        "recipients": [{"emailId": "a@example.com", "status": "opened"}],
    },
}


# -- the schema checker can fail ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "required property 'status' is missing"),
        ({"status": "bounced"}, "'bounced' is not one of"),
        ({"status": "sent", "events": {"opened": "1"}}, "$.events.opened: expected integer"),
        ({"status": "sent", "events": {"permanent_fail": True}}, "expected integer"),
        ({"status": "sent", "recipients": [{"status": "sent"}]}, "'emailId' is missing"),
        ({"status": "sent", "recipients": [{"emailId": "a", "status": "x"}]}, "'x' is not"),
        ({"status": "sent", "messageId": "m"}, "'messageId' is not in the schema"),
    ],
)
def test_checker_rejects_invalid_bodies(spec: dict[str, Any], body: Any, problem: str) -> None:
    problems = schema_errors(body, _request_schema(spec), spec)
    assert any(problem in p for p in problems), problems


def test_transcription_matches_the_published_file() -> None:
    published = _published()["components"]["schemas"]
    for name, transcribed in TRANSCRIBED["components"]["schemas"].items():
        source = published[name]
        assert source.get("required") == transcribed.get("required"), name
        assert set(source["properties"]) == set(transcribed["properties"]), name
        for prop, schema in transcribed["properties"].items():
            for key in ("type", "enum"):
                assert source["properties"][prop].get(key) == schema.get(key), (name, prop)
    assert published["EmailEventsDto"]["additionalProperties"]["type"] == "integer"


# -- the adapter ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(ADAPTERS))
@pytest.mark.parametrize("case", list(UPDATES))
def test_email_status_request(variant: str, case: str, spec: dict[str, Any]) -> None:
    adapter = ADAPTERS[variant]
    request = adapter.prepare_email_status(UPDATES[case], adapter.parse_settings({}))
    assert request.method == "PUT"
    assert request.path == f"/conversations/messages/email/{EMAIL_ID}/status"
    assert dict(request.headers) == {"Version": "v3"}  # the only value the v3 spec lists
    assert request.operation is Operation.UPDATE_EMAIL_STATUS
    assert request.subject_id == EMAIL_ID
    assert request.json == BODIES[case]
    assert schema_errors(request.json, _request_schema(spec), spec) == []


def test_version_setting_does_not_change_the_v3_only_call() -> None:
    adapter = ADAPTERS["hoop"]
    settings = adapter.parse_settings({"version": "2021-07-28", "base_url": "http://127.0.0.1:9"})
    request = adapter.prepare_email_status(UPDATES["status-only"], settings)
    assert request.headers["Version"] == "v3"
    assert request.path == f"/conversations/messages/email/{EMAIL_ID}/status"


def test_email_id_is_one_encoded_segment() -> None:
    adapter = ADAPTERS["highlevel"]
    request = adapter.prepare_email_status(
        EmailStatusUpdate("a/b?c;v=1", "sent"), adapter.parse_settings({})
    )
    assert request.path == "/conversations/messages/email/a%2Fb%3Fc%3Bv%3D1/status"


def test_other_adapters_do_not_offer_it() -> None:
    adapter = HubSpotAdapter()
    assert Operation.UPDATE_EMAIL_STATUS not in adapter.capabilities.operations
    with pytest.raises(UnsupportedOperation, match="cannot update email statuses"):
        adapter.prepare_email_status(UPDATES["status-only"], adapter.parse_settings({}))


def _interpret(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    adapter = ADAPTERS["highlevel"]
    settings = adapter.parse_settings({})
    request = adapter.prepare_email_status(UPDATES["events"], settings)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        return adapter.interpret(request, ResponseView(status, headers or {}, raw), settings)
    except MessagingError as exc:
        return exc


def test_documented_success() -> None:
    body = {"success": True, "message": "Updated email message successfully"}
    assert _interpret(200, body, {"traceId": "t-1"}) == VendorResult(200, trace_id="t-1")


@pytest.mark.parametrize("body", [{"message": "ok"}, b"<html>ok</html>", b"", [1]])
def test_odd_success_is_applied_with_a_warning(body: Any) -> None:
    result = _interpret(200, body)
    assert isinstance(result, VendorResult)
    assert result.warning is not None
    assert "HighLevel answered HTTP 200 (applied)" in result.warning


def test_success_false_is_not_applied() -> None:
    error = _interpret(200, {"success": False, "message": "Email not updated"})
    assert type(error) is VendorRejected
    assert error.retryable is False
    assert error.vendor_message == "Email not updated"


def test_403_for_lc_email_or_mailgun_is_a_clear_permission_error() -> None:
    body = {
        "statusCode": 403,
        "message": "You do not have permission to access this resource",
        "error": "Forbidden",
    }
    error = _interpret(403, body)
    assert type(error) is PermissionDenied
    assert error.retryable is False
    assert "LC Email or Mailgun" in error.message
    assert "custom conversation provider" in error.message
    assert error.vendor_message == body["message"]


def test_provider_race_still_wins_on_the_email_call() -> None:
    body = {"statusCode": 403, "message": "No conversation provider found for this message"}
    assert type(_interpret(403, body)) is ProviderNotReady


# -- the neutral model ------------------------------------------------------------------------


def test_engagement_is_not_a_delivery_state() -> None:
    from msgbridge.model import DeliveryState

    assert {s.value for s in EmailState} == set(_STATES)
    assert "opened" not in {s.value for s in DeliveryState}
    assert "clicked" not in {s.value for s in DeliveryState}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: EmailStatusUpdate("", "sent"), "message_id"),
        (lambda: EmailStatusUpdate("..", "sent"), "message_id"),
        (lambda: EmailStatusUpdate("e", "bounced"), "status"),
        (lambda: EmailStatusUpdate("e", "sent", events=EmailEvents()), "events"),
        (lambda: EmailStatusUpdate("e", "sent", events={"opened": 1}), "events"),  # type: ignore[arg-type]
        (lambda: EmailEvents(opened=-1), "events.opened"),
        (lambda: EmailEvents(opened=True), "events.opened"),  # type: ignore[arg-type]
        (lambda: EmailEvents(opened=2**63), "events.opened"),
        (lambda: EmailEvents(provider={"Permanent Fail": 1}), "events.provider"),
        (lambda: EmailEvents(provider={"opened": 1}), "events.provider"),
        (lambda: EmailEvents(provider={"x": 1.5}), "events.provider.x"),  # type: ignore[dict-item]
        (lambda: EmailRecipientStatus("not-an-address", "sent"), "recipients.email"),
        (lambda: EmailRecipientStatus("a b@example.com", "sent"), "recipients.email"),
        (lambda: EmailRecipientStatus("a@example.com", "opnd"), "status"),
        (
            lambda: EmailRecipientStatus("a@example.com", "delivered", fail_reason="x"),
            "recipients.fail_reason",
        ),
        (
            lambda: EmailRecipientStatus("a@example.com", "failed", fail_reason=" "),
            "recipients.fail_reason",
        ),
        (
            lambda: EmailStatusUpdate(
                "e",
                "sent",
                recipients=[
                    EmailRecipientStatus("A@example.com", "sent"),
                    EmailRecipientStatus("a@example.com", "sent"),
                ],
            ),
            "recipients",
        ),
        (lambda: EmailStatusUpdate("e", "sent", recipients="a@example.com"), "recipients"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_refused_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        build()
    assert info.value.field == field


def test_json_form_round_trips() -> None:
    for update in UPDATES.values():
        assert email_status_from_json(email_status_to_json(update)) == update
    assert email_status_to_json(UPDATES["recipients"]) == {
        "message_id": EMAIL_ID,
        "status": "failed",
        "recipients": [
            {"email": "john@example.com", "status": "delivered"},
            {"email": "jane@example.com", "status": "failed", "fail_reason": "Mailbox not found"},
        ],
    }


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"message_id": "e", "status": "opend"}, "status", "got 'opend'"),
        ({"message_id": "e", "status": "sent", "extra": 1}, "extra", "unknown key(s) 'extra'"),
        ({"message_id": "e", "status": "sent", "events": {"opened": "1"}}, "events.opened", "int"),
        ({"message_id": "e", "status": "sent", "events": {"opend": 1}}, "events.opend", "opend"),
        ({"message_id": "e", "status": "sent", "recipients": {}}, "recipients", "list"),
        ({"status": "sent"}, "message_id", "required"),
        ([], None, "expected a JSON object"),
    ],
)
def test_json_form_is_strict(data: Any, field: str | None, text: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        email_status_from_json(data)
    assert info.value.field == field
    assert text in info.value.message
