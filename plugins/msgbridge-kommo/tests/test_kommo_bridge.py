"""End to end: msgbridge.Bridge -> the Kommo adapter + KommoSignature -> the emulated Kommo,
which verifies every signature over the raw request. Three runners: the sync bridge, the
async bridge (httpx) and the fast aiohttp sender.

Skipped when msgbridge's emulator (or uvicorn, which serves it) is not installed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("msgbridge.emulator", reason="msgbridge's emulator is not installed")
pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

from msgbridge_kommo import KommoSignature
from msgbridge_kommo.emulator import KommoVendor

from msgbridge import (
    AsyncBridge,
    Bridge,
    Connection,
    MessageStatus,
    Outcome,
    RetryPolicy,
    StatusError,
)
from msgbridge.emulator import Emulator
from msgbridge.errors import AuthenticationError, NotFound, UnsupportedStatus

SECRET = "kommo-bridge-secret"
SCOPE = "chan-9_acct-9"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0.0)


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(vendors=[KommoVendor()], builtins=False) as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Emulator:
    server.reset()
    server.add_token("kommo", SECRET, account=SCOPE)
    for n in range(20):
        server.seed_message("kommo", f"m{n}", account=SCOPE)
    return server


def connection(
    emu: Emulator,
    *,
    secret: str = SECRET,
    clock: Callable[[], float] = time.time,
    strict: bool = False,
) -> Connection:
    return Connection(
        "kommo",
        adapter="kommo",
        credentials=KommoSignature(secret, clock=clock),
        settings={"base_url": emu.base_url("kommo"), "scope_id": SCOPE},
        strict=strict,
    )


def test_a_message_life_reaches_kommo_signed(emu: Emulator) -> None:
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipts = [
            bridge.update_status("kommo", MessageStatus("m0", state))
            for state in ("pending", "sent", "delivered", "read")
        ]
    assert [r.outcome for r in receipts] == [
        Outcome.SKIPPED_UNSUPPORTED,
        Outcome.SKIPPED_UNSUPPORTED,
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    assert receipts[2].vendor_value == "1"
    assert receipts[3].http_status == 200
    assert emu.message("kommo", "m0").statuses == ["1", "2"]
    records = emu.find_requests(vendor="kommo")
    assert [r.body for r in records] == [
        {"msgid": "m0", "delivery_status": 1},
        {"msgid": "m0", "delivery_status": 2},
    ]
    assert {r.path for r in records} == {f"/kommo/v2/origin/custom/{SCOPE}/m0/delivery_status"}


def test_failed_carries_code_and_text(emu: Emulator) -> None:
    failure = MessageStatus("m1", "failed", error=StatusError("Not on WhatsApp", code="904"))
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        assert bridge.update_status("kommo", failure).outcome is Outcome.APPLIED
    last = emu.message("kommo", "m1").history[-1]
    assert (last.status, last.error) == ("-1", {"code": 904, "text": "Not on WhatsApp"})


def test_retries_are_signed_afresh_and_accepted(emu: Emulator) -> None:
    emu.faults.script([503, 502], vendor="kommo")
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipt = bridge.update_status("kommo", MessageStatus("m2", "read"))
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 3
    assert emu.message("kommo", "m2").statuses == ["2"]


def test_a_wrong_secret_fails_once_without_showing_it(emu: Emulator) -> None:
    with (
        Bridge([connection(emu, secret="wrong-secret")], retry=FAST_RETRY) as bridge,
        pytest.raises(AuthenticationError) as caught,
    ):
        bridge.update_status("kommo", MessageStatus("m3", "read"))
    assert caught.value.attempts == 1
    assert caught.value.vendor_message == "invalid signature"
    assert "wrong-secret" not in str(caught.value)
    assert emu.message("kommo", "m3").statuses == []


def test_a_clock_20_minutes_slow_is_refused(emu: Emulator) -> None:
    slow = connection(emu, clock=lambda: time.time() - 20 * 60)
    with (
        Bridge([slow], retry=FAST_RETRY) as bridge,
        pytest.raises(AuthenticationError) as caught,
    ):
        bridge.update_status("kommo", MessageStatus("m4", "read"))
    assert "valid for 15 minutes" in (caught.value.vendor_message or "")


def test_strict_refusals_and_unknown_message(emu: Emulator) -> None:
    with Bridge([connection(emu, strict=True)], retry=FAST_RETRY) as bridge:
        with pytest.raises(UnsupportedStatus):
            bridge.update_status("kommo", MessageStatus("m5", "sent"))
        assert emu.find_requests(vendor="kommo") == []
        with pytest.raises(NotFound):
            bridge.update_status("kommo", MessageStatus("unknown", "read"))


def test_update_many_and_the_async_bridge(emu: Emulator) -> None:
    # Two bridges back to back on one scope id may together exceed Kommo's 7/s; each
    # paces itself (5/s), not the other. The emulator's limit is tested on its own.
    emu.configure("kommo", rate_limits_enabled=False)
    items = [("kommo", MessageStatus(f"m{n}", "delivered")) for n in range(10)]
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipts = list(bridge.update_many(items, max_in_flight=4))
    assert {r.outcome for r in receipts} == {Outcome.APPLIED}

    async def read_all() -> list[Outcome]:
        async with AsyncBridge([connection(emu)], retry=FAST_RETRY) as bridge:
            return [
                (await bridge.update_status("kommo", MessageStatus(f"m{n}", "read"))).outcome
                for n in range(3)
            ]

    assert asyncio.run(read_all()) == [Outcome.APPLIED] * 3
    assert [emu.message("kommo", f"m{n}").status for n in range(4)] == [
        "2",
        "2",
        "2",
        "1",
    ]


def test_the_fast_aiohttp_sender_sends_a_valid_signature(emu: Emulator) -> None:
    pytest.importorskip("aiohttp", reason="the fast sender needs the fast extra")
    from msgbridge.fast import AiohttpSender

    async def send() -> Outcome:
        async with AsyncBridge(
            [connection(emu)], retry=FAST_RETRY, sender=AiohttpSender()
        ) as bridge:
            return (await bridge.update_status("kommo", MessageStatus("m7", "read"))).outcome

    assert asyncio.run(send()) is Outcome.APPLIED
    assert emu.message("kommo", "m7").statuses == ["2"]
