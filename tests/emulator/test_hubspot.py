"""HubSpot custom channels: success body, strictness, Error bodies, ownership, versions."""

from __future__ import annotations

import uuid

import pytest

PORTAL = "1234567"


def seed(emu, message_id="h1", channel_id=1000, account=PORTAL, **kwargs):
    return emu.seed_message("hubspot", message_id, account=account, channel_id=channel_id, **kwargs)


def assert_error(response, status, category):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["category"] == category
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    uuid.UUID(body["correlationId"])
    return body


@pytest.mark.parametrize("version", ["2025-09", "2026-03", "2026-09", "v3"])
def test_sent_returns_a_public_conversations_message(emu, api, version):
    seed(emu, conversation_id="thread-9", text="hello")
    response = api.hs_patch("h1", {"statusType": "SENT"}, version=version)
    assert response.status_code == 200, response.text
    uuid.UUID(response.headers["X-HubSpot-Correlation-Id"])
    body = response.json()
    required = {
        "id", "channelId", "channelAccountId", "conversationsThreadId", "createdBy", "text",
        "createdAt", "archived", "direction", "type", "truncationStatus", "client", "senders",
        "recipients", "attachments",
    }  # fmt: skip
    assert required <= set(body)
    assert body["id"] == "h1"
    assert body["channelId"] == "1000"
    assert body["conversationsThreadId"] == "thread-9"
    assert body["text"] == "hello"
    assert body["direction"] == "OUTGOING"
    assert body["type"] == "MESSAGE"
    assert body["client"]["clientType"] == "INTEGRATION"
    assert body["status"] == {"statusType": "SENT"}
    assert body["createdAt"].endswith("Z")


def test_failed_carries_failure_details(emu, api):
    seed(emu)
    body = api.hs_patch("h1", {"statusType": "FAILED", "errorMessage": "carrier said no"}).json()
    assert body["status"] == {
        "statusType": "FAILED",
        "failureDetails": {"errorMessageTokens": {}, "errorMessage": "carrier said no"},
    }


def test_history_and_get(emu, api):
    seed(emu)
    for status in ("SENT", "READ"):
        assert api.hs_patch("h1", {"statusType": status}).status_code == 200
    state = emu.message("hubspot", "h1")
    assert state.statuses == ["SENT", "READ"]
    assert state.channel_id == 1000
    got = api.http.get(api.hs_url("h1"), headers={"Authorization": "Bearer demo-hubspot-token"})
    assert got.status_code == 200
    assert got.json()["status"]["statusType"] == "READ"


def test_missing_token_is_401_invalid_authentication(emu, api):
    seed(emu)
    body = assert_error(
        api.hs_patch("h1", {"statusType": "SENT"}, token=None), 401, "INVALID_AUTHENTICATION"
    )
    assert "Authentication credentials not found" in body["message"]


def test_unknown_token_is_401_invalid_authentication(emu, api):
    seed(emu)
    assert_error(
        api.hs_patch("h1", {"statusType": "SENT"}, token="nope"), 401, "INVALID_AUTHENTICATION"
    )
    assert emu.message("hubspot", "h1").history == ()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"statusType": "DELIVERED"}, "DELIVERED"),
        ({"statusType": "sent"}, "[SENT, FAILED, READ]"),
        ({}, "statusType"),
        ({"errorMessage": "x"}, "statusType"),
        ({"statusType": "SENT", "foo": 1}, 'Unrecognized field "foo"'),
        ({"statusType": "FAILED", "errorMessage": 42}, "errorMessage"),
        (["SENT"], "expected an object"),
    ],
)
def test_invalid_bodies_are_400_validation_error(emu, api, body, needle):
    seed(emu)
    payload = assert_error(api.hs_patch("h1", body), 400, "VALIDATION_ERROR")
    assert needle in payload["message"]
    assert emu.message("hubspot", "h1").history == ()


@pytest.mark.parametrize("channel", ["abc", "1.5", "99999999999", "%20"])
def test_non_integer_channel_id_is_400(emu, api, channel):
    seed(emu)
    payload = assert_error(
        api.hs_patch("h1", {"statusType": "SENT"}, channel=channel), 400, "VALIDATION_ERROR"
    )
    assert payload["errors"][0]["in"] == "channelId"


def test_non_json_content_type_is_415(emu, api):
    seed(emu)
    response = api.http.patch(
        api.hs_url("h1"),
        content=b"statusType=SENT",
        headers={"Authorization": "Bearer demo-hubspot-token", "Content-Type": "text/plain"},
    )
    assert_error(response, 415, "VALIDATION_ERROR")


def test_unknown_api_version_is_404(emu, api):
    seed(emu)
    assert_error(
        api.hs_patch("h1", {"statusType": "SENT"}, version="2024-01"), 404, "OBJECT_NOT_FOUND"
    )


def test_unknown_message_rejected_or_created(emu, api):
    assert_error(api.hs_patch("new", {"statusType": "SENT"}), 404, "OBJECT_NOT_FOUND")
    emu.configure("hubspot", unknown_messages="create")
    response = api.hs_patch("new", {"statusType": "SENT"}, channel=77)
    assert response.status_code == 200
    assert response.json()["channelId"] == "77"
    state = emu.message("hubspot", "new")
    assert (state.account, state.channel_id, state.origin) == (PORTAL, 77, "auto")


def test_message_of_another_portal_or_channel_is_not_found(emu, api):
    seed(emu, "theirs", account="7654321")
    assert_error(api.hs_patch("theirs", {"statusType": "SENT"}), 404, "OBJECT_NOT_FOUND")
    seed(emu, "mine", channel_id=1000)
    assert_error(
        api.hs_patch("mine", {"statusType": "SENT"}, channel=1001), 404, "OBJECT_NOT_FOUND"
    )
    assert emu.message("hubspot", "theirs").history == ()
    assert emu.message("hubspot", "mine").history == ()


def test_correlation_header_on_every_response(emu, api):
    responses = [
        api.hs_patch("h1", {"statusType": "SENT"}),  # 404
        api.http.get(emu.base_url("hubspot") + "/nowhere"),
        api.http.post(emu.base_url("hubspot") + "/oauth/v1/token", data={"grant_type": "x"}),
    ]
    ids = [r.headers["X-HubSpot-Correlation-Id"] for r in responses]
    assert len(set(ids)) == 3


def test_seeding_requires_a_channel(emu):
    with pytest.raises(ValueError, match="channel_id"):
        emu.seed_message("hubspot", "h1", account=PORTAL)
