"""OAuth refresh with single-use (rotating) refresh tokens, against the emulator's token
endpoints, on every runner: one refresh per expiry, the rotated pair persisted first."""

from __future__ import annotations

import time
from typing import Any

import pytest

from msgbridge import AdapterRegistry, MemoryTokenStore, MessageStatus, Outcome, TokenSet
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.auth import RefreshingOAuth
from msgbridge.emulator import Emulator, OffsetClock, demo_client_id, demo_refresh_token
from msgbridge.errors import AuthenticationError

from .support import (
    account,
    api_requests,
    connection,
    demo_oauth,
    open_runner,
    redeem,
    seed,
    token_requests,
    token_url,
)

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])]

#: Lifetime of the access tokens each emulated vendor mints.
TTL = {"highlevel": 86399.0, "hubspot": 1800.0}
CONCURRENT = 10


def _credential(
    emu: Emulator, vendor: str, store: MemoryTokenStore, **tokens: Any
) -> RefreshingOAuth:
    cls = HubSpotOAuth if vendor == "hubspot" else HighLevelOAuth
    return cls(**demo_oauth(vendor), token_url=token_url(emu, vendor), store=store, **tokens)


def _expired(emu: Emulator, vendor: str, store: MemoryTokenStore) -> RefreshingOAuth:
    """A credential whose access token expired a minute ago (by its own clock)."""
    return _credential(
        emu, vendor, store, access_token="stale-access-token", expires_at=time.time() - 60
    )


def _refresh_form(vendor: str) -> dict[str, str]:
    """The refresh request as the emulator recorded it (secrets masked)."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "***",
        "client_id": demo_client_id(vendor),
        "client_secret": "***",
    }
    if vendor == "highlevel":
        form["user_type"] = "Location"
    return form


async def test_expired_token_is_refreshed_once_and_the_rotation_saved(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    seed(emu, vendor, "m-oauth")
    store = MemoryTokenStore()
    credential = _expired(emu, vendor, store)
    conn = connection(emu, vendor, credentials=credential)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        receipt = await runner.update_status(vendor, MessageStatus("m-oauth", "read"))

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 1
    (refresh,) = token_requests(emu, vendor)
    assert refresh.method == "POST"
    assert refresh.status == 200
    assert refresh.body == _refresh_form(vendor)
    assert refresh.headers["content-type"] == "application/x-www-form-urlencoded"
    # The stale token was never sent: the only API call succeeded, with the new token.
    assert [r.status for r in api_requests(emu, vendor)] == [200]
    assert emu.requests[0].route == "oauth_token"
    assert credential.refresh_count == 1

    saved = store.load()
    assert isinstance(saved, TokenSet)
    assert saved.access_token not in ("", "stale-access-token")
    assert saved.refresh_token != demo_refresh_token(vendor)
    assert saved.expires_at is not None
    assert abs(saved.expires_at - (time.time() + TTL[vendor])) < 60

    # The old refresh token was single-use: the vendor now refuses it ...
    assert redeem(emu, vendor, demo_refresh_token(vendor)).status_code == 400
    # ... and the saved one is the live one.
    assert redeem(emu, vendor, saved.refresh_token).status_code == 200


async def test_concurrent_updates_share_one_refresh(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    ids = [f"m-conc-{i}" for i in range(CONCURRENT)]
    for message_id in ids:
        seed(emu, vendor, message_id)
    store = MemoryTokenStore()
    credential = _expired(emu, vendor, store)
    conn = connection(emu, vendor, credentials=credential)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        results = await runner.gather(
            [
                lambda message_id=message_id: runner.update_status(  # type: ignore[misc]
                    vendor, MessageStatus(message_id, "delivered")
                )
                for message_id in ids
            ]
        )

    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert {r.outcome for r in results if not isinstance(r, BaseException)} == {Outcome.APPLIED}
    assert [r.status for r in token_requests(emu, vendor)] == [200]
    assert credential.refresh_count == 1
    assert [r.status for r in api_requests(emu, vendor)] == [200] * CONCURRENT
    for message_id in ids:
        assert emu.message(vendor, message_id).status is not None
    saved = store.load()
    assert saved is not None
    assert redeem(emu, vendor, saved.refresh_token).status_code == 200


async def test_rejected_refresh_token_asks_for_reauthorisation(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    """Another process already spent the (single-use) refresh token: it is dead now."""
    assert redeem(emu, vendor, demo_refresh_token(vendor)).status_code == 200
    emu.clear_requests()
    seed(emu, vendor, "m-revoked")
    store = MemoryTokenStore()
    credential = _expired(emu, vendor, store)
    conn = connection(emu, vendor, credentials=credential)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        with pytest.raises(AuthenticationError) as caught:
            await runner.update_status(vendor, MessageStatus("m-revoked", "read"))

    error = caught.value
    assert "re-authorised" in str(error)
    assert error.http_status == 400
    assert error.retryable is False
    assert error.connection == vendor
    assert error.subject_id == "m-revoked"
    assert error.attempts == 1
    assert [r.status for r in token_requests(emu, vendor)] == [400]
    assert api_requests(emu, vendor) == []
    assert credential.refresh_count == 0
    saved = store.load()
    assert saved is not None
    assert saved.refresh_token == demo_refresh_token(vendor)  # nothing half-saved
    assert emu.message(vendor, "m-revoked").status is None


async def test_token_the_vendor_expired_early_is_refreshed_on_its_401(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    """The client thinks its token is good for an hour; the vendor says it expired
    (HubSpot: 401 EXPIRED_AUTHENTICATION; HighLevel: any 401): refresh once, resend."""
    emu.add_token(vendor, "early-expiry-token", account=account(vendor), expires_in=60)
    assert isinstance(emu.clock, OffsetClock)
    emu.clock.advance(61)
    seed(emu, vendor, "m-early")
    store = MemoryTokenStore()
    credential = _credential(
        emu, vendor, store, access_token="early-expiry-token", expires_at=time.time() + 3600
    )
    conn = connection(emu, vendor, credentials=credential)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        receipt = await runner.update_status(vendor, MessageStatus("m-early", "read"))

    assert receipt.outcome is Outcome.APPLIED
    assert [(r.route, r.status) for r in emu.requests] == [
        ("update_message_status", 401),
        ("oauth_token", 200),
        ("update_message_status", 200),
    ]
    if vendor == "hubspot":
        assert emu.requests[0].response["category"] == "EXPIRED_AUTHENTICATION"
    assert credential.refresh_count == 1
    saved = store.load()
    assert saved is not None
    assert saved.access_token != "early-expiry-token"


async def test_unknown_token_401_refreshes_only_where_the_vendor_says_so(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str
) -> None:
    """HighLevel: refresh on any 401. HubSpot: a plain INVALID_AUTHENTICATION 401 is not
    an expiry, so it is reported, not refreshed."""
    seed(emu, vendor, "m-unknown")
    store = MemoryTokenStore()
    credential = _credential(
        emu, vendor, store, access_token="never-issued-token", expires_at=time.time() + 3600
    )
    conn = connection(emu, vendor, credentials=credential)
    async with open_runner(runner_kind, [conn], registry=registry) as runner:
        if vendor == "hubspot":
            with pytest.raises(AuthenticationError) as caught:
                await runner.update_status(vendor, MessageStatus("m-unknown", "read"))
            assert caught.value.http_status == 401
            assert [(r.route, r.status) for r in emu.requests] == [("update_message_status", 401)]
            assert credential.refresh_count == 0
        else:
            receipt = await runner.update_status(vendor, MessageStatus("m-unknown", "read"))
            assert receipt.outcome is Outcome.APPLIED
            assert [(r.route, r.status) for r in emu.requests] == [
                ("update_message_status", 401),
                ("oauth_token", 200),
                ("update_message_status", 200),
            ]
            assert credential.refresh_count == 1
