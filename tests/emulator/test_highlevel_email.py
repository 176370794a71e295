"""The emulated v3 email status call, over real HTTP on loopback.

``PUT /conversations/messages/email/{id}/status`` as HighLevel's v3 OpenAPI describes it
(``UpdateEmailMessageStatusDto``, ``UpdateEmailMessageStatusResponseDto``, 403 for LC
Email / Mailgun, ``Version: v3`` only); the documented inference rules on ``events``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from msgbridge.emulator import Emulator
from msgbridge.emulator.highlevel import HighLevelFamily

ACCOUNT = "demo-location"


def _vendor(emu: Emulator, name: str = "highlevel") -> HighLevelFamily:
    vendor = emu.vendor(name)
    assert isinstance(vendor, HighLevelFamily)
    return vendor


def _put(
    emu: Emulator,
    http: httpx.Client,
    email_id: str,
    body: Any,
    *,
    vendor: str = "highlevel",
    version: str | None = "v3",
    token: str | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or f'demo-{vendor}-token'}"}
    if version is not None:
        headers["Version"] = version
    return http.put(
        f"{emu.base_url(vendor)}/conversations/messages/email/{email_id}/status",
        json=body,
        headers=headers,
    )


@pytest.mark.parametrize("vendor", ["highlevel", "leadway", "hoop"])
def test_documented_success(emu: Emulator, http: httpx.Client, vendor: str) -> None:
    _vendor(emu, vendor).seed_email("e1", account=ACCOUNT)
    response = _put(emu, http, "e1", {"status": "delivered"}, vendor=vendor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: v for k, v in body.items() if k != "traceId"} == {
        "success": True,
        "message": "Updated email message successfully",
    }
    stored = _vendor(emu, vendor).email("e1")
    assert stored is not None
    assert stored["status"] == "delivered"


@pytest.mark.parametrize("version", [None, "2021-04-15", "2021-07-28", "V3"])
def test_only_version_v3_is_accepted(emu: Emulator, http: httpx.Client, version: Any) -> None:
    _vendor(emu).seed_email("e1", account=ACCOUNT)
    response = _put(emu, http, "e1", {"status": "sent"}, version=version)
    assert response.status_code == 400
    assert "this API accepts: v3" in response.json()["message"]
    assert _vendor(emu).email("e1")["status"] is None  # type: ignore[index]


def test_counters_add_up_recipients_upsert_status_overwrites(
    emu: Emulator, http: httpx.Client
) -> None:
    _vendor(emu).seed_email("e1", account=ACCOUNT)
    first = {
        "status": "delivered",
        "events": {"delivered": 1},
        "recipients": [{"emailId": "a@example.com", "status": "delivered"}],
    }
    second = {
        "status": "failed",
        "events": {"delivered": 0, "permanent_fail": 1, "failed": 1},
        "recipients": [
            {"emailId": "a@example.com", "status": "opened"},
            {"emailId": "b@example.com", "status": "failed", "failReason": "Mailbox not found"},
        ],
    }
    for body in (first, second):
        assert _put(emu, http, "e1", body).status_code == 200
    stored = _vendor(emu).email("e1")
    assert stored is not None
    assert stored["status"] == "failed"
    # delivered 1 (+0: a zero is a no-op), accepted inferred once from delivered
    assert stored["events"] == {"delivered": 1, "accepted": 1, "permanent_fail": 1, "failed": 1}
    assert stored["recipients"] == {
        "a@example.com": {"status": "opened"},
        "b@example.com": {"status": "failed", "failReason": "Mailbox not found"},
    }
    assert [h["body"] for h in stored["history"]] == [first, second]
    assert set(stored["first_at"]) == {"delivered"}


def test_engagement_implies_open_delivery_and_acceptance(emu: Emulator, http: httpx.Client) -> None:
    _vendor(emu).seed_email("e1", account=ACCOUNT)
    assert _put(emu, http, "e1", {"status": "clicked", "events": {"clicked": 2}}).status_code == 200
    stored = _vendor(emu).email("e1")
    assert stored is not None
    assert stored["events"] == {"clicked": 2, "opened": 1, "delivered": 1, "accepted": 1}
    assert set(stored["first_at"]) == {"delivered", "opened", "clicked"}
    # a given counter is not overridden by inference, and stored values are not reset
    assert _put(emu, http, "e1", {"status": "opened", "events": {"opened": 4}}).status_code == 200
    assert _vendor(emu).email("e1")["events"]["opened"] == 5  # type: ignore[index]


@pytest.mark.parametrize("provider", ["lc_email", "mailgun"])
def test_lc_email_and_mailgun_emails_are_forbidden(
    emu: Emulator, http: httpx.Client, provider: Any
) -> None:
    _vendor(emu).seed_email("e1", account=ACCOUNT, provider=provider)
    response = _put(emu, http, "e1", {"status": "delivered"})
    assert response.status_code == 403
    assert response.json()["message"] == (
        "Status updates are only supported for custom conversation provider emails"
    )


def test_other_locations_email_is_forbidden(emu: Emulator, http: httpx.Client) -> None:
    _vendor(emu).seed_email("e1", account="another-location")
    assert _put(emu, http, "e1", {"status": "delivered"}).status_code == 403


def test_unknown_email_is_404_or_created(emu: Emulator, http: httpx.Client) -> None:
    response = _put(emu, http, "nope", {"status": "sent"})
    assert response.status_code == 404
    assert response.json()["message"] == "Email message not found"
    emu.configure("highlevel", unknown_messages="create")
    assert _put(emu, http, "nope", {"status": "sent"}).status_code == 200
    assert _vendor(emu).email("nope")["account"] == ACCOUNT  # type: ignore[index]


def test_a_seeded_message_makes_its_email_known(emu: Emulator, http: httpx.Client) -> None:
    emu.seed_message("highlevel", "m1", account=ACCOUNT, email_message_id="em-1")
    assert _put(emu, http, "em-1", {"status": "opened"}).status_code == 200


def test_recipients_must_be_the_emails_own_when_known(emu: Emulator, http: httpx.Client) -> None:
    _vendor(emu).seed_email("e1", account=ACCOUNT, recipients=("a@example.com",))
    body = {"status": "sent", "recipients": [{"emailId": "z@example.com", "status": "sent"}]}
    response = _put(emu, http, "e1", body)
    assert response.status_code == 400
    assert "not a recipient" in response.json()["message"][0]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "status must be one of the following values"),
        ({"status": "bounced"}, "status must be one of the following values"),
        ({"status": "sent", "events": {"opened": "1"}}, "events.opened must be an integer"),
        ({"status": "sent", "events": {"opened": -1}}, "events.opened must not be less than 0"),
        ({"status": "sent", "events": {"Opened": 1}}, "not a valid counter name"),
        ({"status": "sent", "events": []}, "nested property events"),
        ({"status": "sent", "recipients": [{"status": "sent"}]}, "emailId must be a string"),
        (
            {"status": "sent", "recipients": [{"emailId": "a@b.c", "status": "x"}]},
            "recipients.0.status must be one of",
        ),
        (
            {"status": "sent", "recipients": [{"emailId": "a@b.c", "status": "sent", "x": 1}]},
            "property recipients.0.x should not exist",
        ),
        ({"status": "sent", "messageId": "m"}, "property messageId should not exist"),
    ],
)
def test_invalid_bodies(emu: Emulator, http: httpx.Client, body: Any, problem: str) -> None:
    _vendor(emu).seed_email("e1", account=ACCOUNT)
    response = _put(emu, http, "e1", body)
    assert response.status_code == 400
    assert any(problem in p for p in response.json()["message"]), response.json()


def test_email_state_is_cleared_by_reset(emu: Emulator) -> None:
    _vendor(emu).seed_email("e1", account=ACCOUNT)
    assert "e1" in emu.snapshot()["vendors"]["highlevel"]["emails"]
    emu.reset()
    assert _vendor(emu).email("e1") is None
