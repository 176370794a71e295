"""End to end: msgbridge.Bridge -> the Chatwoot adapter -> the emulated Chatwoot.

Skipped when msgbridge's emulator (or uvicorn, which serves it) is not installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

pytest.importorskip("msgbridge.emulator", reason="msgbridge's emulator is not installed")
pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

from msgbridge_chatwoot import ChatwootToken
from msgbridge_chatwoot.emulator import ChatwootVendor

from msgbridge import (
    AsyncBridge,
    Bridge,
    Connection,
    DeliveryState,
    MessageStatus,
    Outcome,
    RetryPolicy,
    StatusError,
)
from msgbridge.emulator import Emulator
from msgbridge.errors import (
    AuthenticationError,
    InvalidStatus,
    NotFound,
    PermissionDenied,
    UnsupportedStatus,
)

TOKEN = "cw-bridge-token"
WRONG_TOKEN = "wrong-token"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0.0)


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(vendors=[ChatwootVendor()], builtins=False) as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Emulator:
    server.reset()
    server.add_token("chatwoot", TOKEN, account="1")
    server.seed_message("chatwoot", "4711", account="1", conversation_id="12")
    server.seed_message("chatwoot", "4712", account="1", conversation_id="12")
    server.seed_message("chatwoot", "4800", account="1", conversation_id="13", inbox_type="email")
    return server


def connection(emu: Emulator, *, token: str = TOKEN, strict: bool = False) -> Connection:
    return Connection(
        "support",
        adapter="chatwoot",
        credentials=ChatwootToken(token),
        settings={"base_url": emu.base_url("chatwoot"), "account_id": 1},
        strict=strict,
    )


def update(message_id: str, state: str, **kwargs: object) -> MessageStatus:
    return MessageStatus(message_id, state, conversation_id="12", **kwargs)  # type: ignore[arg-type]


def test_a_message_life_reaches_chatwoot(emu: Emulator) -> None:
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipts = [
            bridge.update_status("support", update("4711", state))
            for state in ("pending", "sent", "delivered", "read", "delivered")
        ]
    assert [r.outcome for r in receipts] == [
        Outcome.SKIPPED_UNSUPPORTED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.SKIPPED_STALE,  # the state guard never regresses read -> delivered
    ]
    applied = receipts[2]
    assert applied.adapter == "chatwoot"
    assert applied.vendor_value == "delivered"
    assert applied.http_status == 200
    assert applied.attempts == 1
    assert dict(applied.vendor_ids) == {"id": "4711", "conversation_id": "12"}
    state = emu.message("chatwoot", "4711")
    assert state.statuses == ["sent", "delivered", "read"]
    assert state.status == "read"
    records = emu.find_requests(vendor="chatwoot")
    assert [r.body for r in records] == [
        {"status": "sent"},
        {"status": "delivered"},
        {"status": "read"},
    ]
    assert {r.method for r in records} == {"PATCH"}
    assert {r.path for r in records} == {
        "/chatwoot/api/v1/accounts/1/conversations/12/messages/4711"
    }
    assert applied.trace_id == records[1].id  # X-Request-Id comes back as the trace id


def test_failed_carries_the_external_error(emu: Emulator) -> None:
    failure = update("4712", "failed", error=StatusError("number unreachable", code="30003"))
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipt = bridge.update_status("support", failure)
    assert receipt.outcome is Outcome.APPLIED
    last = emu.message("chatwoot", "4712").history[-1]
    assert (last.status, last.error) == ("failed", "number unreachable")
    assert dict(last.fields) == {"status": "failed", "external_error": "number unreachable"}


def test_chatwoot_skips_a_regression_silently_without_the_guard(emu: Emulator) -> None:
    with Bridge([connection(emu)], retry=FAST_RETRY, guard=False) as bridge:
        read = bridge.update_status("support", update("4711", "read"))
        regression = bridge.update_status("support", update("4711", "delivered"))
    assert (read.outcome, regression.outcome) == (Outcome.APPLIED, Outcome.APPLIED)
    assert emu.message("chatwoot", "4711").status == "read"


def test_transient_failures_are_retried(emu: Emulator) -> None:
    emu.faults.script([503, 502], vendor="chatwoot")
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipt = bridge.update_status("support", update("4711", "delivered"))
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 3
    assert emu.message("chatwoot", "4711").statuses == ["delivered"]


def test_non_api_inbox_fails_once_and_clearly(emu: Emulator) -> None:
    status = MessageStatus("4800", DeliveryState.READ, conversation_id="13")
    with (
        Bridge([connection(emu)], retry=FAST_RETRY) as bridge,
        pytest.raises(PermissionDenied) as caught,
    ):
        bridge.update_status("support", status)
    error = caught.value
    assert error.attempts == 1
    assert error.http_status == 403
    assert error.connection == "support"
    assert error.adapter == "chatwoot"
    assert error.subject_id == "4800"
    assert error.vendor_message == "Message status update is only allowed for API inboxes"


def test_bad_token_and_unknown_message(emu: Emulator) -> None:
    with (
        Bridge([connection(emu, token=WRONG_TOKEN)], retry=FAST_RETRY) as bridge,
        pytest.raises(AuthenticationError) as auth,
    ):
        bridge.update_status("support", update("4711", "read"))
    assert auth.value.attempts == 1
    assert WRONG_TOKEN not in str(auth.value)
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge, pytest.raises(NotFound):
        bridge.update_status("support", update("9999", "read"))


def test_refusals_before_any_io(emu: Emulator) -> None:
    with Bridge([connection(emu, strict=True)], retry=FAST_RETRY) as bridge:
        with pytest.raises(InvalidStatus) as missing:
            bridge.update_status("support", MessageStatus("4711", "read"))
        with pytest.raises(UnsupportedStatus):
            bridge.update_status("support", update("4711", "pending"))
    assert missing.value.field == "conversation_id"
    assert emu.find_requests(vendor="chatwoot") == []


def test_update_many_and_the_async_bridge(emu: Emulator) -> None:
    for n in range(20):
        emu.seed_message("chatwoot", f"9{n:03d}", account="1", conversation_id="12")
    items = [("support", update(f"9{n:03d}", "delivered")) for n in range(20)]
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipts = list(bridge.update_many(items, max_in_flight=8))
    assert sorted(r.index for r in receipts if r.index is not None) == list(range(20))
    assert {r.outcome for r in receipts} == {Outcome.APPLIED}

    async def read_all() -> list[Outcome]:
        async with AsyncBridge([connection(emu)], retry=FAST_RETRY) as bridge:
            return [
                (await bridge.update_status("support", update(f"9{n:03d}", "read"))).outcome
                for n in range(3)
            ]

    assert asyncio.run(read_all()) == [Outcome.APPLIED] * 3
    assert [emu.message("chatwoot", f"9{n:03d}").status for n in range(4)] == [
        "read",
        "read",
        "read",
        "delivered",
    ]


def test_the_fast_aiohttp_sender_sends_the_chatwoot_header(emu: Emulator) -> None:
    pytest.importorskip("aiohttp", reason="the fast sender needs the fast extra")
    from msgbridge.fast import AiohttpSender

    async def send() -> Outcome:
        async with AsyncBridge(
            [connection(emu)], retry=FAST_RETRY, sender=AiohttpSender()
        ) as bridge:
            return (await bridge.update_status("support", update("4711", "read"))).outcome

    assert asyncio.run(send()) is Outcome.APPLIED
    assert emu.message("chatwoot", "4711").statuses == ["read"]
