"""The neutral model's JSON form: strict both ways, round-trips exactly."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgbridge import ConversationUpdate, DeliveryState, MessageStatus, StatusError
from msgbridge.errors import InvalidStatus
from msgbridge.model import MAX_ID_LENGTH
from msgbridge.serialization import (
    conversation_from_json,
    conversation_to_json,
    status_from_json,
    status_to_json,
)

UTC = dt.timezone.utc


def test_full_status_round_trip_and_wire_shape() -> None:
    status = MessageStatus(
        "m1",
        "failed",
        error=StatusError("undeliverable", code="30003", kind="carrier"),
        occurred_at=dt.datetime(2026, 1, 31, 12, 0, 5, 123456, tzinfo=UTC),
        conversation_id="c1",
        channel_id="42",
        email_message_id="e1",
        recipients=["a@example.com", "b@example.com"],
    )
    data = status_to_json(status)
    assert data == {
        "message_id": "m1",
        "state": "failed",
        "error": {"message": "undeliverable", "code": "30003", "kind": "carrier"},
        "occurred_at": "2026-01-31T12:00:05.123456+00:00",
        "conversation_id": "c1",
        "channel_id": "42",
        "email_message_id": "e1",
        "recipients": ["a@example.com", "b@example.com"],
    }
    assert status_from_json(json.loads(json.dumps(data))) == status


def test_defaults_are_omitted() -> None:
    assert status_to_json(MessageStatus("m1", "sent")) == {"message_id": "m1", "state": "sent"}


def test_z_suffix_timestamp_is_read_as_utc() -> None:
    status = status_from_json(
        {"message_id": "m1", "state": "read", "occurred_at": "2026-01-31T12:00:00Z"}
    )
    assert status.occurred_at == dt.datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_conversation_round_trip() -> None:
    update = ConversationUpdate("c1", account_id="loc1", unread_count=0, starred=False)
    data = conversation_to_json(update)
    assert data == {
        "conversation_id": "c1",
        "account_id": "loc1",
        "unread_count": 0,
        "starred": False,
    }
    assert conversation_from_json(json.loads(json.dumps(data))) == update


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"message_id": "m1", "state": "sent", "stat": "x"}, "stat", "unknown key"),
        ({"message_id": "m1", "state": "delivred"}, "state", "'delivred'"),
        ({"message_id": "m1", "state": "SENT"}, "state", "pending, sent"),
        ({"message_id": "m1", "state": 1}, "state", "got int"),
        ({"message_id": 1, "state": "sent"}, "message_id", "expected a string"),
        ({"message_id": "", "state": "sent"}, "message_id", "empty"),
        ({"message_id": "..", "state": "sent"}, "message_id", "traversal"),
        ({"state": "sent"}, "message_id", "required"),
        ({"message_id": "m1"}, "state", "required"),
        ({"message_id": "m1", "state": "sent", "recipients": "a"}, "recipients", "list"),
        ({"message_id": "m1", "state": "sent", "recipients": [1]}, "recipients", "string"),
        ({"message_id": "m1", "state": "sent", "occurred_at": 5}, "occurred_at", "ISO 8601"),
        ({"message_id": "m1", "state": "sent", "occurred_at": "yesterday"}, "occurred_at", "ISO"),
        (
            {"message_id": "m1", "state": "sent", "occurred_at": "2026-01-31T12:00:00"},
            "occurred_at",
            "timezone-aware",
        ),
        ({"message_id": "m1", "state": "sent", "error": {"message": "x"}}, "error", "failed"),
        (
            {"message_id": "m1", "state": "failed", "error": {"message": 5}},
            "error.message",
            "expected a string",
        ),
        ({"message_id": "m1", "state": "sent", "channel_id": 42}, "channel_id", "string"),
    ],
)
def test_status_from_json_names_the_field(data: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        status_from_json(data)
    assert info.value.field == field
    assert text in info.value.message


@pytest.mark.parametrize(
    ("error", "field", "text"),
    [
        ({"message": "x", "cod": "1"}, "error.cod", "unknown key(s) 'cod'"),
        ({"message": ""}, "error.message", "error.message must be a non-empty string"),
        ({"message": "x", "code": ""}, "error.code", "error.code must be a non-empty"),
    ],
)
def test_nested_error_fields_are_named_precisely(
    error: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(InvalidStatus) as info:
        status_from_json({"message_id": "m1", "state": "failed", "error": error})
    assert text in info.value.message
    assert info.value.field == field


@pytest.mark.parametrize("data", [[], "m1", None, 3])
def test_status_from_json_wants_an_object(data: Any) -> None:
    with pytest.raises(InvalidStatus, match="expected a JSON object"):
        status_from_json(data)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"conversation_id": "c1", "unread_count": True}, "unread_count"),
        ({"conversation_id": "c1", "unread_count": "1"}, "unread_count"),
        ({"conversation_id": "c1", "unread_count": -2}, "unread_count"),
        ({"conversation_id": "c1", "starred": "yes"}, "starred"),
        ({"conversation_id": "c1"}, "unread_count"),
        ({"conversation_id": "c1", "unread": 1}, "unread"),
        ({"conversation_id": " c1", "starred": True}, "conversation_id"),
    ],
)
def test_conversation_from_json_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        conversation_from_json(data)
    assert info.value.field == field


# -- property: every valid status survives JSON -------------------------------------------

_id_chars = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cf"))
ids = st.text(_id_chars, min_size=1, max_size=MAX_ID_LENGTH).filter(
    lambda s: s.strip() == s and bool(s) and s not in {".", ".."}
)
texts = st.text(_id_chars, min_size=1, max_size=80).filter(lambda s: bool(s.strip()))
zones = st.one_of(
    st.just(UTC),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timezone(dt.timedelta(minutes=m))),
)
aware = st.datetimes(timezones=zones)
errors = st.builds(StatusError, texts, code=st.none() | texts, kind=st.none() | texts)


@st.composite
def statuses(draw: st.DrawFn) -> MessageStatus:
    state = draw(st.sampled_from(list(DeliveryState)))
    error = draw(st.none() | errors) if state is DeliveryState.FAILED else None
    return MessageStatus(
        draw(ids),
        state,
        error=error,
        occurred_at=draw(st.none() | aware),
        conversation_id=draw(st.none() | ids),
        channel_id=draw(st.none() | ids),
        email_message_id=draw(st.none() | ids),
        recipients=draw(st.lists(texts, max_size=3)),
    )


@settings(max_examples=150, deadline=None)
@given(statuses())
def test_status_json_round_trip(status: MessageStatus) -> None:
    wire = json.dumps(status_to_json(status))
    back = status_from_json(json.loads(wire))
    assert back == status
    assert (
        back.occurred_at is None or back.occurred_at.utcoffset() == status.occurred_at.utcoffset()
    )  # type: ignore[union-attr]


@settings(max_examples=75, deadline=None)
@given(
    st.builds(
        ConversationUpdate,
        ids,
        account_id=st.none() | ids,
        unread_count=st.integers(0, 10_000),
        starred=st.none() | st.booleans(),
    )
)
def test_conversation_json_round_trip(update: ConversationUpdate) -> None:
    assert conversation_from_json(json.loads(json.dumps(conversation_to_json(update)))) == update
