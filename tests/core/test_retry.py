"""The shared delivery loop, driven through both bridges by MockTransport fault sequences.

Time is fake: ``sleep`` records each wait and advances the clock, so every wait is
asserted exactly and the suite never really sleeps.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest

from msgbridge import DeliveryAttempt, MessageStatus, Outcome, RetryPolicy, hookimpl
from msgbridge.adapter import Operation
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponse,
    MessagingError,
    NotFound,
    PermissionDenied,
    ProviderNotReady,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)

from .support import (
    DualStream,
    FakeClock,
    FakeVendor,
    Harness,
    fresh_registry,
    hl_connection,
    hl_error,
    hl_oauth,
    hs_connection,
    hs_error,
)

pytestmark = pytest.mark.anyio

DEFAULT = RetryPolicy()


def backoffs(policy: RetryPolicy, count: int, seed: int = 0) -> list[float]:
    """The waits the policy computes for retries 1..count with a fresh seeded rng."""
    rng = random.Random(seed)
    return [policy.backoff(n, rng) for n in range(1, count + 1)]


@attrs.frozen
class Case:
    """One fault sequence and what the loop must do with it."""

    id: str
    script: list[Any]
    sleeps: list[float]
    attempts: int
    error: type[MessagingError] | None = None
    adapter: str = "highlevel"
    policy: RetryPolicy | None = None


CASES = [
    Case(
        "429-retry-after-3",
        [hl_error(429, "Too many requests", headers={"Retry-After": "3"})],
        sleeps=[3.0],
        attempts=2,
    ),
    Case(
        "429-highlevel-window-spent",
        [
            hl_error(
                429,
                "Too many requests",
                headers={
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Interval-Milliseconds": "10000",
                    "X-RateLimit-Max": "100",
                },
            )
        ],
        sleeps=[10.0],
        attempts=2,
    ),
    Case(
        "429-no-hints-backoff",
        [hl_error(429, "Too many requests")],
        sleeps=backoffs(DEFAULT, 1),
        attempts=2,
    ),
    Case(
        "503-then-ok",
        [hl_error(503, "Service Unavailable"), hl_error(502, "Bad Gateway")],
        sleeps=backoffs(DEFAULT, 2),
        attempts=3,
    ),
    Case(
        "connect-error-then-ok",
        [httpx.ConnectError("connection refused")] * 2,
        sleeps=backoffs(DEFAULT, 2),
        attempts=3,
    ),
    Case(
        "read-timeout-then-ok",
        [httpx.ReadTimeout("read timed out")],
        sleeps=backoffs(DEFAULT, 1),
        attempts=2,
    ),
    Case(
        "remote-protocol-error-then-ok",
        [httpx.RemoteProtocolError("peer closed connection")],
        sleeps=backoffs(DEFAULT, 1),
        attempts=2,
    ),
    Case(
        "provider-race",
        [hl_error(403, "No conversation provider found for this message")] * 2,
        sleeps=[5.0, 5.0],
        attempts=3,
    ),
    Case(
        "hubspot-ten-secondly",
        [
            hs_error(
                429,
                "You have reached your ten_secondly_rolling limit.",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
                groupName="publicapi:hapikey-api-calls-ten-secondly:6748263",
            )
        ],
        sleeps=[10.0],
        attempts=2,
        adapter="hubspot",
    ),
    Case(
        "hubspot-secondly",
        [hs_error(429, "secondly", errorType="RATE_LIMIT", policyName="SECONDLY")],
        sleeps=[1.0],
        attempts=2,
        adapter="hubspot",
    ),
    Case(
        "hubspot-interval-header",
        [hs_error(429, "x", headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "2000"})],
        sleeps=[2.0],
        attempts=2,
        adapter="hubspot",
    ),
    Case(
        "hubspot-5xx",
        [hs_error(502, "bad gateway"), hs_error(521, "down")],
        sleeps=backoffs(DEFAULT, 2),
        attempts=3,
        adapter="hubspot",
    ),
    # -- giving up ----------------------------------------------------------------------
    Case(
        "503-storm-max-attempts",
        [hl_error(503, "Service Unavailable")] * 10,
        sleeps=backoffs(DEFAULT, 4),
        attempts=5,
        error=VendorUnavailable,
    ),
    Case(
        "503-storm-custom-max-attempts",
        [hl_error(500, "Internal server error")] * 10,
        sleeps=backoffs(RetryPolicy(max_attempts=3), 2),
        attempts=3,
        error=VendorUnavailable,
        policy=RetryPolicy(max_attempts=3),
    ),
    Case(
        "retry-policy-none",
        [hl_error(503, "Service Unavailable")],
        sleeps=[],
        attempts=1,
        error=VendorUnavailable,
        policy=RetryPolicy.none(),
    ),
    Case(
        "429-retry-after-beyond-max",
        [hl_error(429, "slow", headers={"Retry-After": "61"})],
        sleeps=[],
        attempts=1,
        error=RateLimited,
    ),
    Case(
        "hubspot-daily-limit-not-waited",
        [hs_error(429, "daily", errorType="RATE_LIMIT", policyName="DAILY")],
        sleeps=[],
        attempts=1,
        error=RateLimited,
        adapter="hubspot",
    ),
    Case("400", [hl_error(400, "Bad Request")], [], 1, VendorRejected),
    Case("422", [hl_error(422, ["Unprocessable Entity"])], [], 1, VendorRejected),
    Case("404", [hl_error(404, "Message not found")], [], 1, NotFound),
    Case(
        "403-plain",
        [hl_error(403, "You do not have permission to access this resource")],
        [],
        1,
        PermissionDenied,
    ),
    Case(
        "401", [hl_error(401, "Invalid token: access token is invalid")], [], 1, AuthenticationError
    ),
    Case(
        # A 2xx that is not JSON at all is not the vendor answering (a proxy or maintenance
        # page): retried, never counted as applied.
        "html-200-is-not-the-vendor-retried",
        [httpx.Response(200, content=b"<html>ok</html>", headers={"content-type": "text/html"})],
        backoffs(DEFAULT, 1),
        2,
    ),
    Case(
        "html-200-every-time-fails",
        [httpx.Response(200, content=b"<html>ok</html>")] * 10,
        backoffs(DEFAULT, 4),
        5,
        MalformedResponse,
    ),
    Case(
        "unreadable-200-missing-fields-is-applied",
        [httpx.Response(200, json={"success": True})],
        [],
        1,
    ),
    Case(
        "unreadable-200-hubspot-is-applied",
        [httpx.Response(200, json=["not", "an", "object"])],
        [],
        1,
        adapter="hubspot",
    ),
    Case("hubspot-404", [hs_error(404, "not found", category="OBJECT_NOT_FOUND")], [], 1, NotFound),
    Case(
        "hubspot-400",
        [hs_error(400, "invalid", category="VALIDATION_ERROR")],
        [],
        1,
        VendorRejected,
        adapter="hubspot",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_fault_sequences(mode: str, case: Case) -> None:
    vendor = FakeVendor(case.script)
    connection = hl_connection("c") if case.adapter == "highlevel" else hs_connection("c")
    kwargs: dict[str, Any] = {} if case.policy is None else {"retry": case.policy}
    events: list[DeliveryAttempt] = []
    async with Harness(mode, vendor, [connection], **kwargs) as h:
        h.registry.add_observer(events.append)
        status = MessageStatus("msg-1", "read")
        if case.error is None:
            receipt = await h.update_status("c", status)
            assert receipt.outcome is Outcome.APPLIED
            assert receipt.attempts == case.attempts
            assert receipt.http_status == 200
        else:
            with pytest.raises(case.error) as info:
                await h.update_status("c", status)
            assert info.value.attempts == case.attempts
            assert info.value.connection == "c"
            assert info.value.adapter == case.adapter
            assert info.value.message_id == "msg-1"
    assert h.sleeps == pytest.approx(case.sleeps, abs=0, rel=1e-12)
    assert len(vendor.api) == case.attempts
    # every attempt sent the very same request
    assert len({(s.method, s.raw_path, repr(s.body)) for s in vendor.api}) == 1
    assert [e.attempt for e in events] == list(range(1, case.attempts + 1))
    assert [e.will_retry for e in events] == [True] * (case.attempts - 1) + [False]
    assert [e.delay for e in events] == [*case.sleeps, None]


async def test_retry_after_wins_over_a_spent_window(mode: str) -> None:
    headers = {
        "Retry-After": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Max": "100",
        "X-RateLimit-Interval-Milliseconds": "10000",
    }
    vendor = FakeVendor([hl_error(429, "Too many requests", headers=headers)])
    async with Harness(mode, vendor, [hl_connection()]) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.attempts == 2
    assert h.sleeps == [2.0]


async def test_backoff_value_is_the_policy_formula(mode: str) -> None:
    """Pin the formula too, so a silent change to RetryPolicy.backoff is seen."""
    policy = RetryPolicy(initial_backoff=1.0, multiplier=3.0, jitter=0.5, max_backoff=5.0)
    rng = random.Random(0)
    r1, r2, r3 = rng.random(), rng.random(), rng.random()
    expected = [1.0 * 0.5 + 1.0 * 0.5 * r1, 3.0 * 0.5 + 3.0 * 0.5 * r2, 5.0 * 0.5 + 5.0 * 0.5 * r3]
    vendor = FakeVendor([hl_error(503, "down")] * 3)
    async with Harness(mode, vendor, [hl_connection()], retry=policy) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.attempts == 4
    assert h.sleeps == expected


async def test_no_jitter_backoff_is_exponential_and_capped(mode: str) -> None:
    policy = RetryPolicy(
        max_attempts=6, initial_backoff=1.0, multiplier=2.0, jitter=0.0, max_backoff=5.0
    )
    vendor = FakeVendor([httpx.ConnectError("refused")] * 10)
    async with Harness(mode, vendor, [hl_connection()], retry=policy) as h:
        with pytest.raises(VendorUnavailable) as info:
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert h.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert info.value.attempts == 6
    assert info.value.http_status is None
    assert "ConnectError" in info.value.message


async def test_503_storm_until_the_deadline(mode: str) -> None:
    policy = RetryPolicy(
        max_attempts=100, initial_backoff=10.0, multiplier=1.0, jitter=0.0, deadline=25.0
    )
    clock = FakeClock()

    def slow_503(request: httpx.Request) -> httpx.Response:
        clock.advance(1.0)  # each attempt takes a second of (fake) time
        return hl_error(503, "Service Unavailable")

    vendor = FakeVendor([slow_503] * 100)
    started = clock.now
    async with Harness(mode, vendor, [hl_connection()], retry=policy, clock=clock) as h:
        with pytest.raises(VendorUnavailable) as info:
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    # t=0 attempt 1 (ends 1), wait 10 -> t=11 attempt 2 (ends 12), wait 10 -> t=22
    # attempt 3 (ends 23); 23 + 10 > 25 so it gives up.
    assert h.sleeps == [10.0, 10.0]
    assert info.value.attempts == 3
    assert len(vendor.api) == 3
    assert clock.now - started == 23.0


async def test_retry_after_past_the_deadline_is_not_waited(mode: str) -> None:
    policy = RetryPolicy(deadline=5.0)
    vendor = FakeVendor([hl_error(429, "slow", headers={"Retry-After": "6"})])
    async with Harness(mode, vendor, [hl_connection()], retry=policy) as h:
        with pytest.raises(RateLimited) as info:
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert h.sleeps == []
    assert info.value.retry_after == 6.0
    assert info.value.attempts == 1


async def test_non_retryable_400_carries_vendor_message_trace_and_context(mode: str) -> None:
    vendor = FakeVendor(
        [
            hl_error(
                400,
                [
                    "status must be one of pending, delivered, read, failed",
                    "error.code is required",
                ],
                trace_id="trace-400",
            )
        ]
    )
    async with Harness(mode, vendor, [hl_connection("acme")]) as h:
        with pytest.raises(VendorRejected) as info:
            await h.update_status("acme", MessageStatus("msg-77", "failed"))
    error = info.value
    joined = "status must be one of pending, delivered, read, failed; error.code is required"
    assert error.vendor_message == joined
    assert joined in error.message
    assert error.trace_id == "trace-400"
    assert error.http_status == 400
    assert error.connection == "acme"
    assert error.adapter == "highlevel"
    assert error.message_id == "msg-77"
    assert error.attempts == 1
    assert error.retryable is False
    assert "trace_id='trace-400'" in str(error)
    assert "connection='acme'" in str(error)
    assert len(vendor.api) == 1
    assert h.sleeps == []


async def test_trace_id_from_header_when_body_has_none(mode: str) -> None:
    vendor = FakeVendor([hl_error(404, "Conversation not found", headers={"traceid": "hdr-trace"})])
    async with Harness(mode, vendor, [hl_connection()]) as h:
        with pytest.raises(NotFound) as info:
            await h.update_status("hl", MessageStatus("m1", "read"))
    assert info.value.trace_id == "hdr-trace"
    assert info.value.vendor_message == "Conversation not found"


async def test_hubspot_error_names_category_and_correlation_id(mode: str) -> None:
    vendor = FakeVendor(
        [
            hs_error(
                403,
                "This app hasn't been granted all required scopes",
                category="MISSING_SCOPES",
                errors=[{"message": "One or more of the following scopes are required."}],
            )
        ]
    )
    async with Harness(mode, vendor, [hs_connection()]) as h:
        with pytest.raises(PermissionDenied) as info:
            await h.update_status("hs", MessageStatus("m1", "read"))
    assert type(info.value) is PermissionDenied
    assert info.value.trace_id == "corr-err"
    assert info.value.vendor_message == (
        "MISSING_SCOPES: This app hasn't been granted all required scopes; "
        "One or more of the following scopes are required."
    )


async def test_provider_race_never_refreshes_an_oauth_token(mode: str, clock: FakeClock) -> None:
    vendor = FakeVendor([hl_error(403, "No conversation provider found for this message")] * 2)
    credential = hl_oauth(clock)
    connection = hl_connection("hl", credentials=credential)
    async with Harness(mode, vendor, [connection], clock=clock) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert h.sleeps == [5.0, 5.0]
    assert receipt.attempts == 3
    assert receipt.outcome is Outcome.APPLIED
    assert vendor.token == []
    assert credential.refresh_count == 0
    assert {s.bearer for s in vendor.api} == {"tok-SECRET-123"}


async def test_provider_race_wait_is_a_setting(mode: str) -> None:
    vendor = FakeVendor([hl_error(403, "No conversation provider found for this message")])
    connection = hl_connection(settings={"provider_retry_after": 8.5})
    async with Harness(mode, vendor, [connection]) as h:
        await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert h.sleeps == [8.5]


async def test_provider_race_that_never_ends_raises_provider_not_ready(mode: str) -> None:
    vendor = FakeVendor([hl_error(403, "No conversation provider found for this message")] * 9)
    async with Harness(mode, vendor, [hl_connection()]) as h:
        with pytest.raises(ProviderNotReady) as info:
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert info.value.attempts == 5
    assert h.sleeps == [5.0] * 4
    assert isinstance(info.value, PermissionDenied)


async def test_undecodable_body_is_a_typed_error(mode: str) -> None:
    def corrupt(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=DualStream(b"not gzip at all")
        )

    vendor = FakeVendor([corrupt])
    async with Harness(mode, vendor, [hl_connection()]) as h:
        with pytest.raises(MessagingError) as info:
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert info.value.connection == "hl"


def test_retry_policy_refuses_bad_values() -> None:
    for field, value in [
        ("max_attempts", 0),
        ("initial_backoff", -1.0),
        ("max_backoff", -1.0),
        ("deadline", -1.0),
        ("max_retry_after", -0.5),
        ("jitter", -0.1),
    ]:
        with pytest.raises(ConfigurationError) as info:
            RetryPolicy(**{field: value})
        assert info.value.key == field


def test_retry_policy_jitter_is_a_fraction() -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(jitter=1.5)
    assert info.value.key == "jitter"


def test_backoff_is_never_negative_for_valid_jitter() -> None:
    rng = random.Random(1)
    for jitter in (0.0, 0.25, 0.5, 1.0):
        policy = RetryPolicy(jitter=jitter)
        waits = [policy.backoff(n, rng) for n in range(1, 12) for _ in range(20)]
        assert min(waits) >= 0.0
        assert max(waits) <= policy.max_backoff


# -- observers ------------------------------------------------------------------------------


async def test_observers_see_every_attempt(mode: str) -> None:
    vendor = FakeVendor(
        [
            hl_error(429, "slow", headers={"Retry-After": "3"}),
            httpx.ConnectError("refused"),
        ]
    )
    events: list[DeliveryAttempt] = []
    async with Harness(mode, vendor, [hl_connection("acme")]) as h:
        h.registry.add_observer(events.append)
        receipt = await h.update_status("acme", MessageStatus("m1", "delivered"))
    # the Retry-After wait took no random number, so the backoff is the first draw
    retry_wait = DEFAULT.backoff(2, random.Random(0))
    assert h.sleeps == [3.0, retry_wait]
    assert receipt.attempts == 3
    assert [
        (e.attempt, e.http_status, e.error, e.will_retry, e.delay, e.trace_id) for e in events
    ] == [
        (1, 429, "RateLimited", True, 3.0, None),
        (2, None, "ConnectFailed", True, retry_wait, None),
        (3, 200, None, False, None, "trace-ok"),
    ]
    assert {(e.connection, e.adapter, e.subject_id, e.operation) for e in events} == {
        ("acme", "highlevel", "m1", Operation.UPDATE_STATUS)
    }


class _ObserverPlugin:
    def __init__(self) -> None:
        self.seen: list[tuple[int, bool]] = []

    @hookimpl
    def delivery_attempted(self, event: DeliveryAttempt) -> None:
        self.seen.append((event.attempt, event.will_retry))


async def test_failing_observer_is_logged_and_never_fails_the_send(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken(event: DeliveryAttempt) -> None:
        calls.append(event.attempt)
        raise RuntimeError("observer exploded")

    plugin = _ObserverPlugin()
    registry = fresh_registry()
    registry.add_observer(broken)
    assert registry.add_plugin(plugin) is True
    vendor = FakeVendor([hl_error(503, "down")])
    caplog.set_level(logging.DEBUG, logger="msgbridge")
    async with Harness(mode, vendor, [hl_connection()], registry=registry) as h:
        receipt = await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 2
    assert calls == [1, 2]
    assert plugin.seen == [(1, True), (2, False)]
    failures = [r for r in caplog.records if "observer" in r.getMessage() and r.exc_info]
    assert len(failures) == 2
    assert all(r.levelno == logging.ERROR for r in failures)
    assert "observer exploded" in str(failures[0].exc_info[1])  # type: ignore[index]


async def test_observer_sees_the_final_failure(mode: str) -> None:
    vendor = FakeVendor([hl_error(400, "Bad Request", trace_id="t-9")])
    events: list[DeliveryAttempt] = []
    async with Harness(mode, vendor, [hl_connection()]) as h:
        h.registry.add_observer(events.append)
        with pytest.raises(VendorRejected):
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert len(events) == 1
    event = events[0]
    assert (event.error, event.http_status, event.will_retry, event.delay, event.trace_id) == (
        "VendorRejected",
        400,
        False,
        None,
        "t-9",
    )


async def test_observer_elapsed_uses_the_bridge_clock(mode: str, clock: FakeClock) -> None:
    def slow_ok(request: httpx.Request) -> httpx.Response:
        clock.advance(0.25)
        return httpx.Response(200, json={"conversationId": "c", "messageId": "m1"})

    vendor = FakeVendor([slow_ok])
    events: list[DeliveryAttempt] = []
    async with Harness(mode, vendor, [hl_connection()], clock=clock) as h:
        h.registry.add_observer(events.append)
        await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert [e.elapsed for e in events] == [0.25]


# -- adapter bugs and odd replies -------------------------------------------------------------


async def test_an_adapter_crash_becomes_malformed_response(mode: str) -> None:
    """A non-MessagingError raised while reading a reply still ends in a typed error."""
    registry = fresh_registry()
    adapter = registry.get("highlevel")
    original: Callable[..., Any] = adapter.interpret

    def crash(request: Any, response: Any, settings: Any) -> Any:
        if response.status == 200:
            raise KeyError("surprise")
        return original(request, response, settings)

    adapter.interpret = crash  # type: ignore[method-assign]
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()], registry=registry) as h:
        with pytest.raises(MalformedResponse) as info:
            await h.update_status("hl", MessageStatus("m1", "delivered"))
    assert "KeyError" in info.value.message
    assert info.value.http_status == 200
    assert info.value.attempts == 1


async def test_status_request_shape_highlevel(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hl_connection()]) as h:
        receipt = await h.update_status(
            "hl",
            MessageStatus(
                "a/b?c#d",
                "failed",
                email_message_id="e-1",
                recipients=["x@example.com"],
            ),
        )
    [seen] = vendor.api
    assert seen.method == "PUT"
    assert seen.host == "services.leadconnectorhq.com"
    assert seen.raw_path == "/conversations/messages/a%2Fb%3Fc%23d/status"
    assert seen.headers["version"] == "2021-04-15"
    assert seen.headers["authorization"] == "Bearer tok-SECRET-123"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == {
        "status": "failed",
        "emailMessageId": "e-1",
        "recipients": ["x@example.com"],
    }
    assert receipt.vendor_value == "failed"
    assert receipt.subject_id == "a/b?c#d"
    assert receipt.vendor_ids == {"conversationId": "conv-1", "messageId": "a/b?c#d"}
    assert receipt.trace_id == "trace-ok"


async def test_status_request_shape_hubspot(mode: str) -> None:
    vendor = FakeVendor()
    async with Harness(mode, vendor, [hs_connection()]) as h:
        receipt = await h.update_status(
            "hs",
            MessageStatus("m-9", "delivered", channel_id="77"),
        )
    [seen] = vendor.api
    assert seen.method == "PATCH"
    assert seen.host == "api.hubapi.com"
    assert seen.raw_path == "/conversations/custom-channels/2026-03/77/messages/m-9"
    assert seen.body == {"statusType": "SENT"}
    assert receipt.vendor_value == "SENT"
    assert receipt.trace_id == "corr-ok"
    assert receipt.vendor_ids == {
        "id": "m-9",
        "channelId": "77",
        "conversationsThreadId": "thread-1",
    }
