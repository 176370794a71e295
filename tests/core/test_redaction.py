"""Secrets (tokens, refresh tokens, client secrets) never show in reprs, errors, logs or events."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from msgbridge import (
    BearerToken,
    Connection,
    ConversationUpdate,
    DeliveryAttempt,
    MemoryTokenStore,
    MessageStatus,
    TokenSet,
)
from msgbridge.errors import MessagingError

from .support import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    HL_TOKEN_PATH,
    REFRESH_TOKEN,
    SECRET,
    FakeClock,
    FakeVendor,
    Harness,
    hl_connection,
    hl_error,
    hl_oauth,
    hs_connection,
    hs_error,
    hs_oauth,
)

pytestmark = pytest.mark.anyio


def texts_of(value: object) -> list[str]:
    """Every way a value is commonly turned into text."""
    out = [repr(value), str(value)]
    if isinstance(value, BaseException):
        out.append(repr(vars(value)))
        out.extend(repr(a) for a in value.args)
    return out


def test_reprs_of_credentials_and_tokens_hide_secrets(clock: FakeClock) -> None:
    bearer = BearerToken(ACCESS_TOKEN)
    hl = hl_oauth(clock)
    hs = hs_oauth(clock)
    tokens = TokenSet(ACCESS_TOKEN, REFRESH_TOKEN, expires_at=5.0, extra={"scope": "x"})
    store = MemoryTokenStore(tokens)
    connection = Connection(
        "c", adapter="highlevel", credentials=hl, settings={"location_id": "loc"}
    )
    for value in (bearer, hl, hs, tokens, store, connection):
        for text in texts_of(value):
            assert SECRET not in text, text
    assert repr(bearer) == "BearerToken(<redacted>)"
    assert repr(tokens) == (
        "TokenSet(access_token=<redacted>, refresh_token=<redacted>, expires_at=5.0)"
    )
    assert "settings_keys=['location_id']" in repr(connection)


async def test_nothing_leaks_across_success_and_failure_scenarios(
    mode: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("msgbridge", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)

    events: list[DeliveryAttempt] = []
    seen: list[object] = []
    raised: list[MessagingError] = []

    def capture(error: MessagingError) -> None:
        raised.append(error)

    unauthorized = hl_error(401, "Invalid token: access token is invalid")
    script: list[Any] = [
        # hl-oauth: expired token refresh, then 401 -> refresh -> 401 again
        unauthorized,
        unauthorized,
        # hl-bearer: 400 with trace, then transport error storm, then an unreadable 200
        # (applied, with a warning in the receipt: the vendor did apply it)
        hl_error(400, ["bad status"], trace_id="t-1"),
        *[httpx.ConnectError("refused")] * 5,
        httpx.Response(200, content=b"not json"),
        # hs-oauth: 401 other category, then expired 401 -> refresh -> ok
        hs_error(401, "no", category="INVALID_AUTHENTICATION"),
        hs_error(401, "expired", category="EXPIRED_AUTHENTICATION"),
    ]
    vendor = FakeVendor(script)
    hl_cred = hl_oauth(clock, expired=True)
    hs_cred = hs_oauth(clock)
    connections = [
        hl_connection("hl-oauth", credentials=hl_cred),
        hl_connection("hl-bearer", settings={"location_id": "loc-1"}),
        hs_connection("hs-oauth", credentials=hs_cred),
        hs_connection("hs-strict", strict=True),
    ]
    async with Harness(mode, vendor, connections, clock=clock) as h:
        h.registry.add_observer(events.append)

        async def attempt(coro: Any) -> None:
            try:
                seen.append(await coro)
            except MessagingError as exc:
                capture(exc)

        await attempt(h.update_status("hl-oauth", MessageStatus("m1", "delivered")))
        await attempt(h.update_status("hl-bearer", MessageStatus("m2", "delivered")))
        await attempt(h.update_status("hl-bearer", MessageStatus("m3", "delivered")))
        await attempt(h.update_status("hl-bearer", MessageStatus("m4", "delivered")))
        await attempt(h.update_status("hs-oauth", MessageStatus("m5", "read")))
        await attempt(h.update_status("hs-oauth", MessageStatus("m6", "read")))
        await attempt(h.update_status("hs-strict", MessageStatus("m7", "pending")))
        await attempt(h.update_status("nope", MessageStatus("m8", "read")))
        await attempt(h.update_conversation("hs-oauth", ConversationUpdate("c", starred=True)))
        await attempt(h.update_conversation("hl-bearer", ConversationUpdate("c1", unread_count=0)))
        # a refresh the vendor rejects (the refresh token was already used up above)
        vendor.valid_refresh[HL_TOKEN_PATH] = "something-else"
        clock.advance(7200)
        await attempt(h.update_status("hl-oauth", MessageStatus("m9", "read")))
        seen.extend([h.bridge, *h.bridge.connections.values()])

    # the secrets were really in play
    bearers = {s.bearer for s in vendor.api}
    assert bearers == {ACCESS_TOKEN, "at-SECRET-1", "at-SECRET-2", "at-SECRET-3"}
    assert {t.body["client_secret"] for t in vendor.token} == {CLIENT_SECRET}
    assert [type(e).__name__ for e in raised] == [
        "AuthenticationError",
        "VendorRejected",
        "ConnectFailed",  # a VendorUnavailable that surely sent nothing
        "AuthenticationError",
        "UnsupportedStatus",
        "ConfigurationError",
        "UnsupportedOperation",
        "AuthenticationError",
    ]
    assert len(seen) >= 3
    assert events

    for value in [*raised, *seen, *events, hl_cred, hs_cred]:
        for text in texts_of(value):
            assert SECRET not in text, text
    for error in raised:
        chain: BaseException | None = error
        while chain is not None:
            assert SECRET not in str(chain)
            chain = chain.__cause__ or chain.__context__
    assert caplog.records, "expected log records to inspect"
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
