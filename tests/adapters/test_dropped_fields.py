"""Nothing is dropped silently (issue 13): a vendor that cannot carry a given field says so.

HubSpot's PATCH body is ``{statusType, errorMessage?}`` (``hubspot.md`` §1); Chatwoot's is
``{status, external_error?}``; Front's ``{status, <reason>?}``. None has a place for an
email message id, email recipients, or an error code or kind. HighLevel carries them all.
Also: HighLevel's ``"unknown"`` filler for ``error.code`` / ``error.type`` is a setting,
and its v3 error envelope ``{"error": {"message": ...}}`` is read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from msgbridge_chatwoot.adapter import ChatwootAdapter
from msgbridge_front.adapter import FrontAdapter

from msgbridge.adapter import OPTIONAL_STATUS_FIELDS, Adapter, ResponseView, dropped_fields
from msgbridge.adapters.highlevel import HIGHLEVEL, HOOP, LEADWAY, HighLevelAdapter
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.errors import ConfigurationError, MessagingError, NotFound, VendorRejected
from msgbridge.model import MessageStatus, Outcome, Receipt, StatusError

FULL_FAILURE = MessageStatus(
    "m1",
    "failed",
    error=StatusError("mailbox full", code="552", kind="smtp"),
    email_message_id="em-1",
    recipients=("b@example.com",),
    conversation_id="42",
    channel_id="1000",
)
ALL = ("email_message_id", "recipients", "error.code", "error.kind")

SETTINGS: dict[str, dict[str, Any]] = {
    "hubspot": {},
    "chatwoot": {"base_url": "https://chat.example.com", "account_id": 1},
    "front": {},
}


def _adapter(name: str) -> Adapter[Any]:
    if name == "hubspot":
        return HubSpotAdapter()
    if name == "chatwoot":
        return ChatwootAdapter()
    return FrontAdapter()


@pytest.mark.parametrize("name", ["hubspot", "chatwoot", "front"])
def test_vendors_without_the_slots_list_what_they_drop(name: str) -> None:
    adapter = _adapter(name)
    spec = adapter.prepare_status(FULL_FAILURE, adapter.parse_settings(SETTINGS[name]))
    assert spec.dropped == ALL
    sent = json.dumps(spec.json)
    for value in ("em-1", "b@example.com", "552", "smtp"):
        assert value not in sent  # really not carried
    assert "mailbox full" in sent  # the message itself is


@pytest.mark.parametrize("name", ["hubspot", "chatwoot", "front"])
def test_only_fields_that_were_given_are_listed(name: str) -> None:
    adapter = _adapter(name)
    update = MessageStatus(
        "m1", "failed", error=StatusError("x", code="7"), conversation_id="42", channel_id="1000"
    )
    spec = adapter.prepare_status(update, adapter.parse_settings(SETTINGS[name]))
    assert spec.dropped == ("error.code",)
    plain = MessageStatus("m1", "failed", conversation_id="42", channel_id="1000")
    assert adapter.prepare_status(plain, adapter.parse_settings(SETTINGS[name])).dropped == ()


@pytest.mark.parametrize("variant", [HIGHLEVEL, LEADWAY, HOOP], ids=lambda v: v.id)
def test_highlevel_carries_everything(variant: Any) -> None:
    adapter = HighLevelAdapter(variant)
    spec = adapter.prepare_status(FULL_FAILURE, adapter.parse_settings({}))
    assert spec.dropped == ()
    assert spec.json == {
        "status": "failed",
        "error": {"code": "552", "type": "smtp", "message": "mailbox full"},
        "emailMessageId": "em-1",
        "recipients": ["b@example.com"],
    }


def test_dropped_fields_helper() -> None:
    assert OPTIONAL_STATUS_FIELDS == ALL
    assert dropped_fields(FULL_FAILURE, carried=()) == ALL
    assert dropped_fields(FULL_FAILURE, carried=("error.code", "recipients")) == (
        "email_message_id",
        "error.kind",
    )
    with pytest.raises(ValueError, match="unknown field"):
        dropped_fields(FULL_FAILURE, carried=("error.typo",))


def test_receipt_field_defaults_to_nothing_dropped() -> None:
    receipt = Receipt(outcome="applied", connection="c", adapter="a", subject_id="m")  # type: ignore[arg-type]
    assert receipt.dropped_fields == ()
    listed = Receipt(
        outcome="applied",  # type: ignore[arg-type]
        connection="c",
        adapter="a",
        subject_id="m",
        dropped_fields=["recipients"],
    )
    assert listed.dropped_fields == ("recipients",)


# -- HighLevel: the error filler and the v3 error envelope ---------------------------------


def test_error_placeholder_default_and_override() -> None:
    adapter = HighLevelAdapter()
    update = MessageStatus("m1", "failed", error=StatusError("no route"))
    default = adapter.prepare_status(update, adapter.parse_settings({}))
    assert default.json["error"] == {"code": "unknown", "type": "unknown", "message": "no route"}
    custom = adapter.prepare_status(update, adapter.parse_settings({"error_placeholder": "n/a"}))
    assert custom.json["error"] == {"code": "n/a", "type": "n/a", "message": "no route"}
    partial = MessageStatus("m1", "failed", error=StatusError("no route", kind="carrier"))
    spec = adapter.prepare_status(partial, adapter.parse_settings({"error_placeholder": "-"}))
    assert spec.json["error"] == {"code": "-", "type": "carrier", "message": "no route"}


@pytest.mark.parametrize("value", ["", "  ", 3])
def test_error_placeholder_must_be_text(value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        HighLevelAdapter().parse_settings({"error_placeholder": value})
    assert info.value.key == "error_placeholder"


def _hl_error(status: int, body: Any) -> MessagingError:
    adapter = HighLevelAdapter()
    settings = adapter.parse_settings({})
    request = adapter.prepare_status(MessageStatus("m1", "read"), settings)
    with pytest.raises(MessagingError) as info:
        adapter.interpret(request, ResponseView(status, {}, json.dumps(body).encode()), settings)
    return info.value


def test_v3_error_envelope_is_read() -> None:
    body = {"error": {"code": "INVALID_ARGUMENT", "message": "status is not valid", "details": []}}
    error = _hl_error(400, body)
    assert type(error) is VendorRejected
    assert error.vendor_message == "status is not valid"
    assert error.message == "HighLevel rejected the request: status is not valid"
    missing = _hl_error(404, {"error": {"message": "Email message not found"}})
    assert type(missing) is NotFound
    assert missing.vendor_message == "Email message not found"


def test_nestjs_message_still_wins_over_its_error_phrase() -> None:
    body = {"statusCode": 400, "message": "Bad status", "error": "Bad Request"}
    assert _hl_error(400, body).vendor_message == "Bad status"


def test_cli_shows_what_was_not_carried() -> None:
    from msgbridge.cli._common import receipt_json

    receipt = Receipt(
        outcome=Outcome.APPLIED,
        connection="hs",
        adapter="hubspot",
        subject_id="m1",
        dropped_fields=("email_message_id", "error.code"),
    )
    assert receipt_json(receipt)["dropped_fields"] == ["email_message_id", "error.code"]
