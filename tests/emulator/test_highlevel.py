"""HighLevel family: strictness, success bodies per variant, state, ownership, conversations."""

from __future__ import annotations

import pytest

STATUS_ENUM_MESSAGE = "status must be one of the following values: delivered, failed, pending, read"
UNAUTHORIZED = {
    "statusCode": 401,
    "message": "Invalid token: access token is invalid",
    "error": "Unauthorized",
}
FORBIDDEN = {
    "statusCode": 403,
    "message": "You do not have permission to access this resource",
    "error": "Forbidden",
}


def seed(emu, vendor="highlevel", message_id="m1", **kwargs):
    return emu.seed_message(vendor, message_id, account="demo-location", **kwargs)


# -- success bodies ------------------------------------------------------------------------


def test_highlevel_success_body_is_current_dto(emu, api):
    seed(emu, conversation_id="c1")
    response = api.hl_status("m1", {"status": "delivered"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"conversationId", "messageId", "status", "traceId"}
    assert body["conversationId"] == "c1"
    assert body["messageId"] == "m1"
    assert body["status"] == "delivered"


def test_leadway_success_body_has_forward_data(emu, api):
    seed(emu, "leadway", email_message_id="e1")
    body = api.hl_status("m1", {"status": "read"}, vendor="leadway").json()
    assert body["status"] == "read"
    assert body["emailMessageId"] == "e1"
    assert isinstance(body["forwardData"], dict)
    assert body["forwardData"]["messageId"] == "m1"


def test_hoop_success_body_is_the_older_dto_without_status(emu, api):
    seed(emu, "hoop")
    response = api.hl_status("m1", {"status": "delivered", "emailMessageId": "e9"}, vendor="hoop")
    assert response.status_code == 200
    body = response.json()
    assert "status" not in body
    assert "forwardData" not in body
    assert body["messageIds"] == ["m1"]
    assert isinstance(body["msg"], str)
    assert body["emailMessageId"] == "e9"
    assert set(body) == {
        "conversationId",
        "messageId",
        "emailMessageId",
        "messageIds",
        "msg",
        "traceId",
    }


@pytest.mark.parametrize(
    ("vendor", "version", "accepted"),
    [
        ("highlevel", "2021-04-15", True),
        # One host for the three brands: what one documents, all very likely accept.
        ("highlevel", "2021-07-28", True),
        ("highlevel", "v3", True),  # the v3 spec; the official SDK 3.0.0 forces it
        ("leadway", "2021-07-28", True),
        ("leadway", "2021-04-15", True),
        ("leadway", "v3", True),
        ("hoop", "2021-04-15", True),
        ("hoop", "2021-07-28", True),
        ("hoop", "v3", True),
        ("hoop", "2023-02-21", False),
        ("highlevel", "V3", False),
        ("highlevel", "2021-04-16", False),
        ("leadway", "2021-07", False),
    ],
)
def test_version_header_is_checked_per_variant(emu, api, vendor, version, accepted):
    seed(emu, vendor)
    response = api.hl_status(
        "m1",
        {"status": "delivered"},
        vendor=vendor,
        headers=api.hl_headers(vendor, version=version),
    )
    if accepted:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        body = response.json()
        assert body["statusCode"] == 400
        assert body["error"] == "Bad Request"
        assert version in body["message"]
        assert emu.message(vendor, "m1").history == ()


def test_state_and_history_after_several_updates(emu, api):
    seed(emu)
    trace_ids = []
    for body in (
        {"status": "pending"},
        {"status": "delivered"},
        {"status": "failed", "error": {"code": "30003", "type": "saas", "message": "unreachable"}},
    ):
        response = api.hl_status("m1", body)
        assert response.status_code == 200, response.text
        trace_ids.append(response.json()["traceId"])
    state = emu.message("highlevel", "m1")
    assert state.status == "failed"
    assert state.statuses == ["pending", "delivered", "failed"]
    assert [c.previous for c in state.history] == [None, "pending", "delivered"]
    assert [c.request_id for c in state.history] == trace_ids
    assert state.history[-1].error == {"code": "30003", "type": "saas", "message": "unreachable"}
    assert len(set(trace_ids)) == 3


def test_encoded_slash_stays_inside_the_message_id(emu, api):
    seed(emu, message_id="a/b")
    response = api.hl_status("a%2Fb", {"status": "read"})
    assert response.status_code == 200
    assert response.json()["messageId"] == "a/b"
    assert emu.message("highlevel", "a/b").status == "read"


# -- strictness ------------------------------------------------------------------------------


def test_missing_version_is_400(emu, api):
    seed(emu)
    headers = {"Authorization": "Bearer demo-highlevel-token"}
    response = api.hl_status("m1", {"status": "read"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-known-token", "Basic ZGVtbzpkZW1v", "Bearer", "demo-highlevel-token"],
)
def test_missing_or_unknown_token_is_401(emu, api, strip_ids, authorization):
    seed(emu)
    headers = {"Version": "2021-04-15"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = api.hl_status("m1", {"status": "read"}, headers=headers)
    assert response.status_code == 401
    assert strip_ids(response.json()) == UNAUTHORIZED
    assert "traceId" in response.json()
    assert emu.message("highlevel", "m1").status is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "sent"}, STATUS_ENUM_MESSAGE),
        ({"status": "DELIVERED"}, STATUS_ENUM_MESSAGE),
        ({}, STATUS_ENUM_MESSAGE),
        ({"status": None}, STATUS_ENUM_MESSAGE),
        ({"status": "read", "foo": 1}, "property foo should not exist"),
        (
            {"status": "failed", "error": {"type": "saas", "message": "x"}},
            "error.code must be a string",
        ),
        (
            {"status": "failed", "error": {"code": 1, "type": "saas", "message": "x"}},
            "error.code must be a string",
        ),
        (
            {"status": "failed", "error": "boom"},
            "nested property error must be either object or array",
        ),
        (
            {"status": "failed", "error": {"code": "1", "type": "t", "message": "m", "x": 1}},
            "property error.x should not exist",
        ),
        ({"status": "read", "emailMessageId": 5}, "emailMessageId must be a string"),
        ({"status": "read", "recipients": "a@b.c"}, "recipients must be an array"),
        (
            {"status": "read", "recipients": ["a@b.c", 3]},
            "each value in recipients must be a string",
        ),
    ],
)
def test_invalid_bodies_are_400_with_class_validator_messages(emu, api, body, expected):
    seed(emu)
    response = api.hl_status("m1", body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["statusCode"] == 400
    assert payload["error"] == "Bad Request"
    assert expected in payload["message"]
    assert emu.message("highlevel", "m1").history == ()


def test_non_json_body_is_validated_as_empty(emu, api):
    seed(emu)
    response = api.http.put(
        emu.base_url("highlevel") + "/conversations/messages/m1/status",
        content=b"status=read",
        headers={**api.hl_headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert STATUS_ENUM_MESSAGE in response.json()["message"]


def test_malformed_json_is_400(emu, api):
    seed(emu)
    response = api.http.put(
        emu.base_url("highlevel") + "/conversations/messages/m1/status",
        content=b'{"status": ',
        headers={**api.hl_headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400


def test_unknown_route_and_wrong_method_are_nest_404(api, emu):
    response = api.http.get(
        emu.base_url("highlevel") + "/conversations/messages/m1/status", headers=api.hl_headers()
    )
    assert response.status_code == 404
    assert response.json()["message"] == "Cannot GET /conversations/messages/m1/status"
    assert response.json()["error"] == "Not Found"


# -- unknown ids and ownership ------------------------------------------------------------------


def test_unknown_message_is_404_in_reject_mode(emu, api):
    response = api.hl_status("nope", {"status": "read"})
    assert response.status_code == 404
    body = response.json()
    assert body["statusCode"] == 404
    assert body["error"] == "Not Found"
    with pytest.raises(KeyError):
        emu.message("highlevel", "nope")


def test_unknown_message_is_created_in_create_mode(emu, api):
    emu.configure("highlevel", unknown_messages="create")
    response = api.hl_status("fresh", {"status": "delivered"})
    assert response.status_code == 200
    state = emu.message("highlevel", "fresh")
    assert state.origin == "auto"
    assert state.account == "demo-location"
    assert state.statuses == ["delivered"]
    assert response.json()["conversationId"] == state.conversation_id


def test_reset_restores_reject_mode(emu, api):
    emu.configure("highlevel", unknown_messages="create")
    emu.reset()
    assert api.hl_status("fresh", {"status": "delivered"}).status_code == 404


def test_token_of_another_location_is_403(emu, api, strip_ids):
    emu.seed_message("highlevel", "m1", account="other-location")
    response = api.hl_status("m1", {"status": "read"})
    assert response.status_code == 403
    assert strip_ids(response.json()) == FORBIDDEN
    assert emu.message("highlevel", "m1").history == ()


def test_each_variant_has_its_own_state(emu, api):
    seed(emu, "leadway")
    assert api.hl_status("m1", {"status": "read"}).status_code == 404  # highlevel has no m1
    assert api.hl_status("m1", {"status": "read"}, vendor="leadway").status_code == 200


# -- conversations ---------------------------------------------------------------------------------


def test_conversation_update_success_and_history(emu, api):
    emu.seed_conversation("highlevel", "c1", account="demo-location", unread_count=4)
    response = api.hl_conversation(
        "c1", {"locationId": "demo-location", "unreadCount": 0, "starred": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    conversation = body["conversation"]
    assert conversation["id"] == "c1"
    assert conversation["locationId"] == "demo-location"
    assert conversation["unreadCount"] == 0
    assert conversation["starred"] is True
    assert conversation["deleted"] is False
    assert isinstance(conversation["contactId"], str)
    state = emu.conversation("highlevel", "c1")
    assert state.unread_count == 0
    assert state.starred is True
    assert len(state.history) == 1
    assert state.history[0].request_id == body["traceId"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"unreadCount": 0}, "locationId must be a string"),
        ({"locationId": "demo-location", "unreadCount": -1}, "unreadCount must not be less than 0"),
        (
            {"locationId": "demo-location", "unreadCount": "0"},
            "unreadCount must be a number conforming to the specified constraints",
        ),
        ({"locationId": "demo-location", "starred": "yes"}, "starred must be a boolean value"),
        ({"locationId": "demo-location", "feedback": "good"}, "feedback must be an object"),
        ({"locationId": "demo-location", "unread": 0}, "property unread should not exist"),
    ],
)
def test_conversation_validation(emu, api, body, expected):
    emu.seed_conversation("highlevel", "c1", account="demo-location")
    response = api.hl_conversation("c1", body)
    assert response.status_code == 400
    assert expected in response.json()["message"]


def test_conversation_of_another_location_is_403(emu, api):
    emu.seed_conversation("highlevel", "c1", account="other")
    assert api.hl_conversation("c1", {"locationId": "other"}).status_code == 403
    emu.seed_conversation("highlevel", "c2", account="demo-location")
    assert api.hl_conversation("c2", {"locationId": "other"}).status_code == 403


def test_unknown_conversation_is_404(api):
    response = api.hl_conversation("nope", {"locationId": "demo-location"})
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


def test_seeding_checks_vendor_options(emu):
    with pytest.raises(ValueError, match="channel"):
        emu.seed_message("highlevel", "m1", account="x", channel_id=5)
    with pytest.raises(ValueError, match="status"):
        emu.seed_message("highlevel", "m1", account="x", status="sent")
    with pytest.raises(KeyError, match="known"):
        emu.seed_message("nosuch", "m1", account="x")


def test_history_limit_keeps_the_latest_entries(emu, api):
    emu.configure("highlevel", history_limit=2)
    seed(emu)
    for status in ("pending", "delivered", "read"):
        assert api.hl_status("m1", {"status": status}).status_code == 200
    state = emu.message("highlevel", "m1")
    assert state.status == "read"
    assert state.statuses == ["delivered", "read"]
