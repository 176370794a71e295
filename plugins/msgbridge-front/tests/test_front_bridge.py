"""End to end: msgbridge.Bridge -> the Front adapter -> the emulated Front.

Skipped when msgbridge's emulator (or uvicorn, which serves it) is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("msgbridge.emulator", reason="msgbridge's emulator is not installed")
pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

from msgbridge_front.emulator import FrontVendor

from msgbridge import (
    BearerToken,
    Bridge,
    Connection,
    MessageStatus,
    Outcome,
    RetryPolicy,
    StatusError,
)
from msgbridge.emulator import Emulator, RateLimit
from msgbridge.errors import (
    AuthenticationError,
    NotFound,
    RateLimited,
    UnsupportedStatus,
    VendorRejected,
)

TOKEN = "front-bridge-token"
WRONG_TOKEN = "front-wrong-token"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0.0)


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(vendors=[FrontVendor()], builtins=False) as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Emulator:
    server.reset()
    server.add_token("front", TOKEN, account="acme")
    server.seed_message("front", "msg_1", account="acme", conversation_id="cnv_1")
    server.seed_message("front", "msg_2", account="acme", conversation_id="cnv_2")
    server.seed_message("front", "msg_in", account="acme", direction="inbound")
    return server


def connection(
    emu: Emulator, *, token: str = TOKEN, strict: bool = False, **settings: str
) -> Connection:
    return Connection(
        "front",
        adapter="front",
        credentials=BearerToken(token),
        settings={"base_url": emu.base_url("front"), **settings},
        strict=strict,
    )


def test_only_failed_reaches_front(emu: Emulator) -> None:
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        receipts = [
            bridge.update_status("front", MessageStatus("msg_1", state))
            for state in ("pending", "sent", "delivered", "read")
        ]
        failed = bridge.update_status(
            "front", MessageStatus("msg_1", "failed", error=StatusError("carrier rejected"))
        )
    assert [r.outcome for r in receipts] == [Outcome.SKIPPED_UNSUPPORTED] * 4
    assert {r.attempts for r in receipts} == {0}
    assert failed.outcome is Outcome.APPLIED
    assert (failed.http_status, failed.vendor_value, failed.attempts) == (204, "failed", 1)
    assert dict(failed.vendor_ids) == {}
    records = emu.find_requests(vendor="front")
    assert len(records) == 1
    assert (records[0].method, records[0].path) == ("PUT", "/front/messages/msg_1/status")
    assert records[0].body == {"status": "failed", "reason": "carrier rejected"}
    state = emu.message("front", "msg_1")
    assert (state.status, state.history[-1].error) == ("failed", "carrier rejected")
    front = emu.vendor("front")
    assert isinstance(front, FrontVendor)
    assert front.conversation_status("cnv_1") == "open"


def test_a_second_failed_is_a_duplicate_for_the_guard(emu: Emulator) -> None:
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        first = bridge.update_status("front", MessageStatus("msg_2", "failed"))
        again = bridge.update_status("front", MessageStatus("msg_2", "failed"))
    assert (first.outcome, again.outcome) == (Outcome.APPLIED, Outcome.SKIPPED_DUPLICATE)
    assert emu.message("front", "msg_2").statuses == ["failed"]


def test_strict_connection_refuses_unsupported_states(emu: Emulator) -> None:
    with (
        Bridge([connection(emu, strict=True)], retry=FAST_RETRY) as bridge,
        pytest.raises(UnsupportedStatus),
    ):
        bridge.update_status("front", MessageStatus("msg_1", "delivered"))
    assert emu.find_requests(vendor="front") == []


def test_retry_after_from_a_429_is_honoured(emu: Emulator) -> None:
    emu.set_rate_limit("front", RateLimit(max_requests=1, interval=60.0))
    patient = RetryPolicy(max_attempts=3, deadline=600.0, max_retry_after=120.0)
    slept: list[float] = []
    with Bridge([connection(emu)], retry=patient, sleep=slept.append, rate_limits=False) as bridge:
        applied = bridge.update_status("front", MessageStatus("msg_1", "failed"))
        with pytest.raises(RateLimited) as caught:
            bridge.update_status("front", MessageStatus("msg_2", "failed"))
    assert applied.outcome is Outcome.APPLIED
    # Front's retry-after (about a minute) is what the bridge waits; the fake sleep returns
    # at once, so every retry meets the still-closed window until attempts run out.
    assert caught.value.attempts == 3
    assert caught.value.retry_after is not None
    assert 55 <= caught.value.retry_after <= 60
    assert len(slept) == 2
    assert all(55 <= s <= 60 for s in slept)


def test_a_wait_beyond_the_deadline_is_not_waited_for(emu: Emulator) -> None:
    emu.set_rate_limit("front", RateLimit(max_requests=1, interval=60.0))
    slept: list[float] = []
    with Bridge(
        [connection(emu)], retry=FAST_RETRY, sleep=slept.append, rate_limits=False
    ) as bridge:
        bridge.update_status("front", MessageStatus("msg_1", "failed"))
        with pytest.raises(RateLimited) as caught:
            bridge.update_status("front", MessageStatus("msg_2", "failed"))
    assert caught.value.attempts == 1  # ~60 s is past FAST_RETRY's 60 s deadline
    assert caught.value.retryable is True
    assert slept == []


def test_the_limiter_learns_from_front_headers(emu: Emulator) -> None:
    emu.set_rate_limit("front", RateLimit(max_requests=2, interval=60.0))
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with Bridge([connection(emu)], retry=FAST_RETRY, clock=lambda: now[0], sleep=sleep) as bridge:
        bridge.update_status("front", MessageStatus("msg_1", "failed"))
        bridge.update_status("front", MessageStatus("msg_2", "failed"))
        limiter = bridge.connections["front"].limiter
        assert limiter is not None
        # x-ratelimit-limit: 2 shrank the 50/min budget; remaining 0 filled the window.
        assert limiter.requests == 2
        assert limiter.available_at(now[0]) >= now[0] + 59


def test_vendor_refusals_surface_typed(emu: Emulator) -> None:
    with Bridge([connection(emu)], retry=FAST_RETRY) as bridge:
        with pytest.raises(NotFound):
            bridge.update_status("front", MessageStatus("msg_nope", "failed"))
        with pytest.raises(VendorRejected) as inbound:
            bridge.update_status("front", MessageStatus("msg_in", "failed"))
    assert inbound.value.attempts == 1
    assert "outbound" in (inbound.value.vendor_message or "")
    with (
        Bridge([connection(emu, token=WRONG_TOKEN)], retry=FAST_RETRY) as bridge,
        pytest.raises(AuthenticationError) as auth,
    ):
        bridge.update_status("front", MessageStatus("msg_1", "failed"))
    assert WRONG_TOKEN not in str(auth.value)


def test_reason_field_setting_end_to_end() -> None:
    vendor = FrontVendor(reason_field="error_message")
    with Emulator(vendors=[vendor], builtins=False) as emu:
        emu.add_token("front", TOKEN, account="acme")
        emu.seed_message("front", "msg_1", account="acme")
        conn = connection(emu, reason_field="error_message")
        with Bridge([conn], retry=FAST_RETRY) as bridge:
            failed = MessageStatus("msg_1", "failed", error=StatusError("blocked"))
            assert bridge.update_status("front", failed).outcome is Outcome.APPLIED
        assert emu.message("front", "msg_1").history[-1].error == "blocked"
