"""The hand-written readers of the usual success answers (HighLevel status, HubSpot
message) must read exactly what the strict cattrs reading reads, and hand anything
unusual to it (so its error messages stay the ones users see)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from msgbridge.adapter import ResponseView
from msgbridge.adapters import highlevel, hubspot
from msgbridge.errors import MalformedResponse
from msgbridge.wire import read_model

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, width=16),
    st.text(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _cattrs(converter: Any, cls: type, body: Any) -> Any:
    view = ResponseView(200, {}, json.dumps(body).encode())
    try:
        return read_model(converter, view, cls, what="x")
    except MalformedResponse:
        return MalformedResponse


HL_KEYS = [
    "conversationId",
    "messageId",
    "messageIds",
    "status",
    "emailMessageId",
    "traceId",
    "forwardData",
    "unrelated",
]


@given(st.dictionaries(st.sampled_from(HL_KEYS), values, max_size=8))
def test_highlevel_quick_reader_agrees_with_cattrs(body: dict[str, Any]) -> None:
    quick = highlevel._quick_status(body)
    if quick is not None:
        assert quick == _cattrs(highlevel._wire, highlevel._StatusResponse, body)


HS_KEYS = ["id", "channelId", "conversationsThreadId", "status", "unrelated"]


@given(
    st.dictionaries(
        st.sampled_from(HS_KEYS),
        st.one_of(values, st.fixed_dictionaries({"statusType": values})),
        max_size=5,
    )
)
def test_hubspot_quick_reader_agrees_with_cattrs(body: dict[str, Any]) -> None:
    quick = hubspot._quick_message(body)
    if quick is not None:
        assert quick == _cattrs(hubspot._wire, hubspot._Message, body)


def test_the_usual_answers_take_the_quick_path() -> None:
    """What the vendors document is read without cattrs (the hot path's point)."""
    status = {
        "conversationId": "c1",
        "messageId": "m1",
        "messageIds": ["m1"],
        "status": "delivered",
        "traceId": "t",
        "forwardData": {"x": "y"},
    }
    assert highlevel._quick_status(status) == highlevel._StatusResponse(
        "c1", "m1", ["m1"], "delivered", None, "t", {"x": "y"}
    )
    message = {"id": "m1", "channelId": 123, "status": {"statusType": "SENT"}}
    assert hubspot._quick_message(message) == hubspot._Message(
        "m1", "123", None, hubspot._Status("SENT")
    )


def test_unusual_answers_are_left_to_cattrs() -> None:
    assert highlevel._quick_status({"messageId": 5}) is None
    assert highlevel._quick_status(["m1"]) is None
    assert hubspot._quick_message({"id": "m1", "channelId": True}) is None
    assert hubspot._quick_message({"channelId": 1}) is None
