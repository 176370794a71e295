"""The emulator as strict as the vendor and no stricter (issue 13), over real HTTP.

* HighLevel's documented ``Version`` values per path: the official Python SDK
  (``gohighlevel-api-client`` 3.0.0), which forces ``Version: v3``, can update a status.
* A request-body limit: 413 above what each vendor declares.
* Demo tokens for every mounted vendor, plugin vendors included, as each declares.
* HighLevel's daily budget headers, and the 429 once it is spent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from msgbridge import (
    BearerToken,
    Bridge,
    Connection,
    MessageStatus,
    Outcome,
    RetryPolicy,
    StatusError,
)
from msgbridge.emulator import Emulator, EmulatorConfig, RateLimit, demo_token
from msgbridge.emulator.highlevel import HIGHLEVEL_MAX_BODY
from msgbridge.errors import RateLimited

ACCOUNT = "demo-location"


# -- the official HighLevel SDK, used as shipped ------------------------------------------

#: What ``gohighlevel-api-client`` 3.0.0 sent for
#: ``await HighLevel(private_integration_token=...).conversations.update_message_status(
#: "m1", {"status": "delivered"})`` (recorded through ``msgbridge emulate`` on 2026-12-04;
#: Authorization masked). Replayed here so the check runs without the SDK installed.
SDK_RECORDED_REQUEST: dict[str, Any] = {
    "method": "PUT",
    "path": "/conversations/messages/m1/status",
    "headers": {
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "user-agent": "python-httpx/0.29.0",
        "content-type": "application/json",
        "ghl-sdk-version": "python/3.0.0",
        "version": "v3",
    },
    "body": {"status": "delivered"},
}


def test_recorded_sdk_request_is_accepted(emu: Emulator, http: httpx.Client) -> None:
    emu.seed_message("highlevel", "m1", account=ACCOUNT)
    recorded = SDK_RECORDED_REQUEST
    headers = {**recorded["headers"], "authorization": f"Bearer {demo_token('highlevel')}"}
    response = http.request(
        recorded["method"],
        emu.base_url("highlevel") + recorded["path"],
        content=json.dumps(recorded["body"]).encode(),
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert emu.message("highlevel", "m1").status == "delivered"


async def _sdk_calls(base_url: str, token: str) -> tuple[Any, Any]:
    highlevel = pytest.importorskip("highlevel", reason="gohighlevel-api-client not installed")

    class EmulatedHighLevel(highlevel.HighLevel):  # type: ignore[misc, name-defined]
        BASE_URL = base_url

    # Built inside the running loop: from sync code its constructor makes (and leaks)
    # an event loop of its own.
    client = EmulatedHighLevel(private_integration_token=token)
    try:
        status = await client.conversations.update_message_status("m1", {"status": "delivered"})
        email = await client.conversations.update_email_message_status(
            "em-1",
            {
                "status": "opened",
                "events": {"opened": 1},
                "recipients": [{"emailId": "a@example.com", "status": "opened"}],
            },
        )
        return status, email
    finally:
        await client.http_client.aclose()


def test_official_sdk_updates_a_status_and_an_email(emu: Emulator) -> None:
    emu.seed_message("highlevel", "m1", account=ACCOUNT, email_message_id="em-1")
    status, email = asyncio.run(_sdk_calls(emu.base_url("highlevel"), demo_token("highlevel")))
    assert status["messageId"] == "m1"
    assert status["status"] == "delivered"
    assert email["success"] is True
    assert emu.message("highlevel", "m1").status == "delivered"
    recorded = emu.find_requests(vendor="highlevel", path_contains="/status")
    assert [r.status for r in recorded] == [200, 200]
    assert {r.headers["version"] for r in recorded} == {"v3"}
    stored = emu.vendor("highlevel").email("em-1")  # type: ignore[attr-defined]
    assert stored["events"] == {"opened": 1, "delivered": 1, "accepted": 1}


# -- request-body limit ---------------------------------------------------------------------


def test_highlevel_refuses_a_body_above_its_limit(emu: Emulator, http: httpx.Client) -> None:
    emu.seed_message("highlevel", "m1", account=ACCOUNT)
    url = emu.base_url("highlevel") + "/conversations/messages/m1/status"
    headers = {
        "Authorization": f"Bearer {demo_token('highlevel')}",
        "Version": "2021-04-15",
        "Content-Type": "application/json",
    }
    padding = "x" * (2 * 1024 * 1024)  # the 2 MiB body
    big = json.dumps({"status": "read", "error": {"code": "1", "type": "t", "message": padding}})
    response = http.put(url, content=big.encode(), headers=headers)
    assert response.status_code == 413
    assert response.json()["statusCode"] == 413
    assert response.json()["message"] == "request entity too large"
    assert emu.message("highlevel", "m1").status is None  # not applied
    # exactly at the limit: parsed (and then judged on its content, not its size)
    fits = b'{"status":"read"}' + b" " * (HIGHLEVEL_MAX_BODY - 17)
    assert len(fits) == HIGHLEVEL_MAX_BODY
    assert http.put(url, content=fits, headers=headers).status_code == 200
    assert http.put(url, content=fits + b" ", headers=headers).status_code == 413


def test_hubspot_refuses_a_body_above_the_default_limit(emu: Emulator, http: httpx.Client) -> None:
    url = emu.base_url("hubspot") + "/conversations/custom-channels/2026-03/1000/messages/x"
    body = json.dumps({"statusType": "FAILED", "errorMessage": "x" * (1024 * 1024)})
    response = http.patch(
        url, content=body.encode(), headers={"Authorization": f"Bearer {demo_token('hubspot')}"}
    )
    assert response.status_code == 413
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_body_limit_is_a_setting(emu: Emulator) -> None:
    assert emu.vendor("highlevel").settings.max_body_bytes == 100 * 1024
    assert emu.vendor("hubspot").settings.max_body_bytes == 1024 * 1024
    assert emu.configure("hubspot", max_body_bytes=None).max_body_bytes is None
    with pytest.raises(ValueError, match="max_body_bytes"):
        emu.configure("hubspot", max_body_bytes=-1)


# -- demo tokens for every installed vendor -------------------------------------------------


@pytest.fixture(scope="module")
def plugin_emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(demo=True), plugins=True) as emulator:
        yield emulator


@pytest.mark.parametrize("name", ["chatwoot", "front"])
def test_plugin_vendors_get_demo_tokens(plugin_emulator: Emulator, name: str) -> None:
    emu = plugin_emulator
    emu.reset()
    vendor = emu.vendor(name)
    account = vendor.demo_token_account()
    assert any(
        (s.vendor, s.token, s.account) == (name, demo_token(name), account)
        for s in emu.accepted_tokens()
    )
    assert f"demo-{name}-token" in "\n".join(emu.describe())
    # the token works: the plugin's own adapter, through a real bridge
    settings, credentials = vendor.demo_connection(emu.base_url(name), account, demo_token(name))
    fields = vendor.demo_message_fields("demo-1")
    emu.seed_message(name, "demo-1", account=account, **fields)
    update = MessageStatus(
        "demo-1",
        "failed",
        error=StatusError("bounced", code="550"),
        email_message_id="em-1",
        **fields,
    )
    with Bridge(
        [Connection(name, adapter=name, credentials=credentials, settings=settings)],
        retry=RetryPolicy.none(),
    ) as bridge:
        receipt = bridge.update_status(name, update)
    assert receipt.outcome is Outcome.APPLIED
    # and the receipt says what the vendor could not carry
    assert receipt.dropped_fields == ("email_message_id", "error.code")


def test_builtin_demo_accounts_are_declared_by_the_vendors(emu: Emulator) -> None:
    tokens = {s.vendor: s.account for s in emu.accepted_tokens()}
    assert tokens == {
        "highlevel": "demo-location",
        "leadway": "demo-location",
        "hoop": "demo-location",
        "hubspot": "1234567",
    }
    assert "hubspot demo channel id: 1000" in emu.describe()


# -- HighLevel's daily budget ---------------------------------------------------------------


def test_daily_headers_and_the_spent_day_is_not_retried(emu: Emulator) -> None:
    emu.set_rate_limit("highlevel", RateLimit(max_requests=100, interval=10.0, daily=2))
    for mid in ("m1", "m2", "m3"):
        emu.seed_message("highlevel", mid, account=ACCOUNT)
    connection = Connection(
        "hl",
        adapter="highlevel",
        credentials=BearerToken(demo_token("highlevel")),
        settings={"base_url": emu.base_url("highlevel")},
    )
    retry = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.02)
    with Bridge([connection], retry=retry) as bridge:
        bridge.update_status("hl", MessageStatus("m1", "delivered"))
        bridge.update_status("hl", MessageStatus("m2", "delivered"))
        with pytest.raises(RateLimited) as info:
            bridge.update_status("hl", MessageStatus("m3", "delivered"))
    # before issue 13: five attempts with backoff against a budget that is gone for the day
    assert info.value.attempts == 1
    assert info.value.retryable is False
    answers = emu.find_requests(vendor="highlevel", route="update_message_status")
    assert [r.status for r in answers] == [200, 200, 429]
