"""The per-connection limiter: rolling windows, pauses, and learning from the vendor."""

from __future__ import annotations

import httpx
import pytest

from msgbridge.adapter import RateFeedback
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.errors import AuthenticationError
from msgbridge.ratelimit import SlidingWindowLimiter


def test_never_more_than_the_budget_in_any_window() -> None:
    limiter = SlidingWindowLimiter(3, 10.0, margin=0.0)
    slots = [limiter.acquire(0.0) for _ in range(7)]
    assert slots == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


def test_a_token_bucket_burst_is_not_allowed_after_a_full_window() -> None:
    limiter = SlidingWindowLimiter(2, 10.0, margin=0.0)
    assert limiter.try_acquire(0.0)
    assert limiter.try_acquire(9.0)
    assert not limiter.try_acquire(9.5)  # two sends within the last 10 s
    assert limiter.available_at(9.5) == 10.0
    assert limiter.try_acquire(10.0)


def test_pause_holds_every_request_until_it_ends() -> None:
    limiter = SlidingWindowLimiter(100, 10.0)
    limiter.pause_until(30.0)
    assert limiter.available_at(5.0) == 30.0
    assert limiter.acquire(5.0) == 25.0


def test_learns_a_stricter_vendor_budget_with_its_window() -> None:
    limiter = SlidingWindowLimiter(100, 10.0, margin=0.0)
    limiter.learn(RateFeedback(remaining=4, maximum=5, window=1.0), now=0.0)
    assert (limiter.requests, limiter.per_seconds) == (5, 1.0)
    limiter.learn(RateFeedback(remaining=4, maximum=500, window=1.0), now=0.0)
    assert (limiter.requests, limiter.per_seconds) == (5, 1.0)  # never loosened


def test_a_spent_vendor_window_pauses_only_when_our_log_does_not_explain_it() -> None:
    limiter = SlidingWindowLimiter(100, 10.0, margin=0.0)
    limiter.acquire(0.0)
    limiter.learn(RateFeedback(remaining=0, maximum=100, window=10.0), now=1.0)
    assert limiter.available_at(1.0) == 11.0  # someone else spent the budget


def test_highlevel_location_inactive_keeps_the_refresh_token() -> None:
    auth = HighLevelOAuth(client_id="c", client_secret="s", refresh_token="rt")
    answer = httpx.Response(400, json={"statusCode": 400, "message": "Location is not active"})
    with pytest.raises(AuthenticationError, match="refresh token is kept"):
        auth.parse_token_response(answer)
    rejected = httpx.Response(
        400, json={"statusCode": 400, "message": "Invalid grant: refresh token is invalid"}
    )
    with pytest.raises(AuthenticationError, match="re-authorised"):
        auth.parse_token_response(rejected)
