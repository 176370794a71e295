"""The per-connection limiter: rolling windows, pauses, and learning from the vendor."""

from __future__ import annotations

import math
import random

import pytest

from msgbridge.adapter import RateFeedback, ResponseView
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.errors import AuthenticationError
from msgbridge.ratelimit import SlidingWindowLimiter


def test_a_request_counts_until_a_window_after_its_answer() -> None:
    limiter = SlidingWindowLimiter(2, 10.0, margin=0.0)
    assert limiter.try_acquire(0.0)
    assert limiter.try_acquire(0.0)
    assert not limiter.try_acquire(1.0)  # both in flight
    assert limiter.available_at(1.0) == math.inf  # only a completion can free a slot
    limiter.release(3.0)  # the answer came at 3.0: it may have *arrived* as late as that
    assert limiter.available_at(3.5) == 13.0
    assert limiter.acquire(5.0) == 8.0  # how long to wait
    assert limiter.acquire(13.0) == 0.0  # taken
    assert limiter.in_flight == 2


def test_never_more_than_the_budget_in_any_window_whatever_the_latency() -> None:
    """Simulate sends with random network delays; the vendor's rolling count stays <= N."""
    rng = random.Random(7)
    limiter = SlidingWindowLimiter(5, 1.0, margin=0.0)
    now, arrivals, flying = 0.0, [], []
    while len(arrivals) < 200:
        flying.sort()
        while flying and flying[0][0] <= now:  # answers that came back
            limiter.release(flying.pop(0)[0])
        if limiter.try_acquire(now):
            arrival = now + rng.uniform(0.0, 0.8)  # a slow connection set-up, say
            arrivals.append(arrival)
            flying.append((arrival + rng.uniform(0.0, 0.1), arrival))
        else:
            now += 0.01
    arrivals.sort()
    for k in range(len(arrivals) - 5):
        assert arrivals[k + 5] - arrivals[k] >= 1.0 - 1e-9  # 6 arrivals never within 1 s


def test_pause_holds_every_request_until_it_ends() -> None:
    limiter = SlidingWindowLimiter(100, 10.0)
    limiter.pause_until(30.0)
    assert limiter.available_at(5.0) == 30.0
    assert limiter.acquire(5.0) == 25.0
    assert limiter.acquire(30.0) == 0.0


def test_learns_a_stricter_vendor_budget_with_its_window() -> None:
    limiter = SlidingWindowLimiter(100, 10.0, margin=0.0)
    limiter.learn(RateFeedback(remaining=4, maximum=5, window=1.0), now=0.0)
    assert (limiter.requests, limiter.per_seconds) == (5, 1.0)
    limiter.learn(RateFeedback(remaining=4, maximum=500, window=1.0), now=0.0)
    assert (limiter.requests, limiter.per_seconds) == (5, 1.0)  # never loosened


def test_a_spent_vendor_window_pauses_only_when_our_log_does_not_explain_it() -> None:
    limiter = SlidingWindowLimiter(100, 10.0, margin=0.0)
    assert limiter.acquire(0.0) == 0.0
    limiter.release(0.5)
    limiter.learn(RateFeedback(remaining=0, maximum=100, window=10.0), now=1.0)
    assert limiter.available_at(1.0) == 11.0  # someone else spent the budget


def test_highlevel_location_inactive_keeps_the_refresh_token() -> None:
    auth = HighLevelOAuth(client_id="c", client_secret="s", refresh_token="rt")
    answer = ResponseView(400, {}, b'{"statusCode": 400, "message": "Location is not active"}')
    with pytest.raises(AuthenticationError, match="refresh token is kept"):
        auth.parse_token_response(answer)
    rejected = ResponseView(
        400, {}, b'{"statusCode": 400, "message": "Invalid grant: refresh token is invalid"}'
    )
    with pytest.raises(AuthenticationError, match="re-authorised"):
        auth.parse_token_response(rejected)
