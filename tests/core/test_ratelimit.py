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


def _burst(limiter: SlidingWindowLimiter, until: float, step: float = 0.01) -> list[float]:
    """Send whenever a slot is free (answers instant) by an injected clock; send times."""
    now, sent = 0.0, []
    while now < until:
        if limiter.try_acquire(now):
            sent.append(now)
            limiter.release(now)
        else:
            now = round(now + step, 6)
    return sent


def _most_within(sent: list[float], window: float) -> int:
    return max(sum(1 for s in sent if t <= s < t + window) for t in sent)


def test_adopts_the_stricter_budget_by_burst_and_by_rate() -> None:
    """Issue 10: vendor 60 per 2 s against our 100 per 10 s. On main the limiter kept
    100/10 s (its rate was lower) and burst 100 at the start: 31 x 429 at the vendor."""
    limiter = SlidingWindowLimiter(100, 10.0, margin=0.0)
    limiter.learn(RateFeedback(remaining=59, maximum=60, window=2.0), now=0.0)
    assert limiter.budgets == ((60, 2.0), (100, 10.0))
    assert (limiter.requests, limiter.per_seconds) == (60, 2.0)  # the burst
    sent = _burst(limiter, until=40.0)
    assert len([s for s in sent if s < 1.0]) == 60  # burst becomes 60 ...
    assert _most_within(sent, 2.0) == 60  # ... the vendor's window is never over-filled
    assert _most_within(sent, 10.0) == 100  # ... and the rate stays 10/s, not 30/s
    assert len(sent) <= 100 * 4 + 60  # 40 s at 10/s, plus at most one burst


def test_a_vendor_budget_that_is_stricter_by_rate_but_not_burst() -> None:
    """Vendor 20 per 10 s against our 5 per 1 s: burst stays 5, rate becomes 2/s."""
    limiter = SlidingWindowLimiter(5, 1.0, margin=0.0)
    limiter.learn(RateFeedback(remaining=19, maximum=20, window=10.0), now=0.0)
    assert limiter.budgets == ((5, 1.0), (20, 10.0))
    sent = _burst(limiter, until=30.0)
    assert _most_within(sent, 1.0) == 5
    assert _most_within(sent, 10.0) == 20


def test_an_implied_budget_is_dropped_and_nothing_is_loosened() -> None:
    limiter = SlidingWindowLimiter(100, 10.0, margin=0.0)
    limiter.learn(RateFeedback(remaining=4, maximum=5, window=1.0), now=0.0)
    assert limiter.budgets == ((5, 1.0),)  # 5 per 1 s already means <= 50 per 10 s
    for maximum, window in ((500, 1.0), (100, 10.0), (5, 0.5)):
        limiter.learn(RateFeedback(remaining=1, maximum=maximum, window=window), now=0.0)
    assert limiter.budgets == ((5, 1.0),)
    assert "5/1s" in repr(limiter)


@pytest.mark.parametrize("window", [math.inf, math.nan, -1.0, 1e9])
def test_nonsense_vendor_windows_are_ignored(window: float) -> None:
    limiter = SlidingWindowLimiter(100, 10.0, margin=0.0)
    limiter.learn(RateFeedback(remaining=0, maximum=1, window=window), now=0.0)
    assert limiter.budgets == ((100, 10.0),)
    assert limiter.available_at(0.0) == 0.0
