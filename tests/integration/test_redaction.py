"""Secrets never leak: not into receipts, errors, logs (even at DEBUG, including httpx,
httpcore and aiohttp), nor into what the vendor recorded of the requests."""

from __future__ import annotations

import logging
import time
import traceback

import pytest

from msgbridge import (
    AdapterRegistry,
    BearerToken,
    MemoryTokenStore,
    MessageStatus,
    Outcome,
    Receipt,
    RetryPolicy,
)
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.emulator import Emulator
from msgbridge.errors import AuthenticationError, MessagingError, VendorUnavailable

from .support import account, connection, open_runner, seed, token_url

pytestmark = pytest.mark.anyio

LOGGERS = ("msgbridge", "httpx", "httpcore", "aiohttp")
STATIC_TOKEN = "static-SECRET-token-7f3a"
BAD_TOKEN = "bad-SECRET-token-91c2"
CLIENT_SECRET = "client-SECRET-5e1d"
REFRESH_TOKEN = "refresh-SECRET-0c44"
STALE_ACCESS = "stale-SECRET-access-2b9e"
DEAD_REFRESH = "dead-SECRET-refresh-77aa"


def _error_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, MessagingError):
        texts.append(str(error.vendor_message))
    return texts


def _receipt_texts(receipt: Receipt) -> list[str]:
    texts = [repr(receipt), str(receipt.detail), repr(dict(receipt.vendor_ids))]
    if receipt.error is not None:
        texts.extend(_error_texts(receipt.error))
    return texts


async def test_no_secret_appears_anywhere(
    emu: Emulator,
    registry: AdapterRegistry,
    runner_kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    emu.add_token("highlevel", STATIC_TOKEN, account=account("highlevel"))
    for vendor in ("highlevel", "hubspot"):
        emu.add_oauth_client(
            vendor, f"redact-{vendor}-client", CLIENT_SECRET, REFRESH_TOKEN, account=account(vendor)
        )
    for vendor in ("highlevel", "hubspot"):
        for message_id in ("r-1", "r-2", "r-3", "r-4"):
            seed(emu, vendor, message_id)

    stores = {vendor: MemoryTokenStore() for vendor in ("highlevel", "hubspot")}
    oauth = {
        vendor: cls(
            client_id=f"redact-{vendor}-client",
            client_secret=CLIENT_SECRET,
            refresh_token=REFRESH_TOKEN,
            access_token=STALE_ACCESS,
            expires_at=time.time() - 5,
            token_url=token_url(emu, vendor),
            store=stores[vendor],
        )
        for vendor, cls in (("highlevel", HighLevelOAuth), ("hubspot", HubSpotOAuth))
    }
    dead = HubSpotOAuth(
        client_id="redact-hubspot-client",
        client_secret=CLIENT_SECRET,
        refresh_token=DEAD_REFRESH,
        token_url=token_url(emu, "hubspot"),
    )
    conns = [
        connection(emu, "highlevel", name="static", credentials=BearerToken(STATIC_TOKEN)),
        connection(emu, "highlevel", name="bad", credentials=BearerToken(BAD_TOKEN)),
        connection(emu, "highlevel", name="hl-oauth", credentials=oauth["highlevel"]),
        connection(emu, "hubspot", name="hs-oauth", credentials=oauth["hubspot"]),
        connection(emu, "hubspot", name="hs-dead", credentials=dead),
    ]
    texts: list[str] = [repr(c) for c in conns]
    texts += [repr(c.credentials) for c in conns]
    texts += [repr(store) for store in stores.values()]
    errors: list[BaseException] = []
    retry = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, max_attempts=3)

    async with open_runner(runner_kind, conns, registry=registry, retry=retry) as runner:
        texts.append(repr(runner.bridge))
        emu.faults.script([503, 200], vendor="highlevel")  # a retry, logged
        receipts = [await runner.update_status("static", MessageStatus("r-1", "delivered"))]
        receipts.append(await runner.update_status("hl-oauth", MessageStatus("r-2", "read")))
        receipts.append(await runner.update_status("hs-oauth", MessageStatus("r-2", "read")))
        for name, update in (
            ("bad", MessageStatus("r-3", "read")),
            ("hs-dead", MessageStatus("r-3", "read")),
        ):
            with pytest.raises(AuthenticationError) as caught:
                await runner.update_status(name, update)
            errors.append(caught.value)
        emu.faults.error_rate(1.0, [502], vendor="highlevel")
        with pytest.raises(VendorUnavailable) as unavailable:
            await runner.update_status("static", MessageStatus("r-4", "read"))
        errors.append(unavailable.value)
        emu.faults.clear()
        receipts += await runner.update_many(
            [
                ("static", MessageStatus("r-4", "read")),
                ("bad", MessageStatus("r-4", "read")),
                ("hs-oauth", MessageStatus("r-4", "read")),
                ("hs-dead", MessageStatus("r-4", "read")),
            ]
        )

    # The scenario did what it says (so the checks below mean something).
    outcomes = sorted(r.outcome.value for r in receipts)
    assert outcomes == sorted(["applied"] * 5 + ["failed"] * 2), [repr(r) for r in receipts]
    assert {type(r.error) for r in receipts if r.outcome is Outcome.FAILED} == {AuthenticationError}
    assert oauth["highlevel"].refresh_count == 1
    assert oauth["hubspot"].refresh_count == 1
    assert [r.status for r in emu.find_requests(route="oauth_token")].count(200) == 2

    secrets = [STATIC_TOKEN, BAD_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, STALE_ACCESS, DEAD_REFRESH]
    for store in stores.values():  # the tokens the vendor minted and rotated in
        saved = store.load()
        assert saved is not None
        secrets += [saved.access_token, saved.refresh_token]
        texts.append(repr(saved))
    for receipt in receipts:
        texts += _receipt_texts(receipt)
    for error in errors:
        texts += _error_texts(error)
    assert caplog.records, "nothing was logged; the log check would prove nothing"
    texts.append(caplog.text)
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), str(record.exc_text)]
    recorded = emu.requests
    texts += [repr(r.to_dict()) for r in recorded]

    leaks = {secret: [t[:200] for t in texts if secret in t] for secret in secrets}
    assert {secret: found for secret, found in leaks.items() if found} == {}
    authorizations = {r.headers.get("authorization") for r in recorded} - {None}
    assert authorizations == {"Bearer ***"}
