"""Rate-limit headers as the vendors document them (issue 13), read with no I/O.

HighLevel (``highlevel.md`` §6, [confirmed]): ``X-RateLimit-Limit-Daily``,
``X-RateLimit-Daily-Remaining``, ``X-RateLimit-Interval-Milliseconds``, ``X-RateLimit-Max``,
``X-RateLimit-Remaining``. HubSpot (``hubspot.md`` §4): ``X-HubSpot-RateLimit-Secondly`` /
``-Secondly-Remaining`` / ``-Daily`` / ``-Daily-Remaining`` are documented;
``-Max`` / ``-Remaining`` / ``-Interval-Milliseconds`` are only observed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from msgbridge.adapter import RateFeedback, ResponseView
from msgbridge.adapters.highlevel import HIGHLEVEL, HOOP, LEADWAY, HighLevelAdapter
from msgbridge.adapters.hubspot import HubSpotAdapter
from msgbridge.errors import MessagingError, RateLimited
from msgbridge.model import MessageStatus

HL = {v.id: HighLevelAdapter(v) for v in (HIGHLEVEL, LEADWAY, HOOP)}
HS = HubSpotAdapter()

HL_BURST = {
    "X-RateLimit-Interval-Milliseconds": "10000",
    "X-RateLimit-Max": "100",
    "X-RateLimit-Remaining": "57",
}
HL_429 = {"statusCode": 429, "message": "Too many requests", "error": "Too Many Requests"}


def _hl_error(headers: dict[str, str], variant: str = "highlevel") -> MessagingError:
    adapter = HL[variant]
    settings = adapter.parse_settings({})
    request = adapter.prepare_status(MessageStatus("m1", "delivered"), settings)
    response = ResponseView(429, headers, json.dumps(HL_429).encode())
    with pytest.raises(MessagingError) as info:
        adapter.interpret(request, response, settings)
    return info.value


def _hs_error(headers: dict[str, str], body: dict[str, Any]) -> MessagingError:
    settings = HS.parse_settings({})
    request = HS.prepare_status(MessageStatus("m1", "read", channel_id="1000"), settings)
    with pytest.raises(MessagingError) as info:
        HS.interpret(request, ResponseView(429, headers, json.dumps(body).encode()), settings)
    return info.value


# -- HighLevel ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(HL))
def test_highlevel_spent_daily_budget_is_not_retried(variant: str) -> None:
    # Before issue 13 this was a retryable RateLimited: retried five times with backoff.
    headers = {
        **HL_BURST,
        "X-RateLimit-Limit-Daily": "200000",
        "X-RateLimit-Daily-Remaining": "0",
    }
    error = _hl_error(headers, variant)
    assert type(error) is RateLimited
    assert error.retryable is False
    assert error.retry_after is None
    assert error.http_status == 429
    assert "daily request budget" in error.message
    assert "200000 requests per day" in error.message
    assert "HighLevel documents no reset time" in error.message


def test_highlevel_spent_daily_budget_with_retry_after_waits_as_told() -> None:
    headers = {"X-RateLimit-Daily-Remaining": "0", "Retry-After": "30"}
    error = _hl_error(headers)
    assert type(error) is RateLimited
    assert (error.retryable, error.retry_after) == (True, 30.0)


def test_highlevel_burst_429_with_daily_budget_left_is_still_retried() -> None:
    headers = {
        "X-RateLimit-Interval-Milliseconds": "10000",
        "X-RateLimit-Max": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Limit-Daily": "200000",
        "X-RateLimit-Daily-Remaining": "1234",
    }
    error = _hl_error(headers)
    assert type(error) is RateLimited
    assert (error.retryable, error.retry_after) == (True, 10.0)


def test_highlevel_feedback_carries_the_daily_budget() -> None:
    headers = {**HL_BURST, "X-RateLimit-Limit-Daily": "200000", "X-RateLimit-Daily-Remaining": "7"}
    assert HL["highlevel"].rate_limit_feedback(ResponseView(200, headers)) == RateFeedback(
        remaining=57, maximum=100, window=10.0, daily_remaining=7, daily_maximum=200_000
    )


def test_highlevel_feedback_from_the_daily_headers_alone() -> None:
    headers = {"X-RateLimit-Limit-Daily": "200000", "X-RateLimit-Daily-Remaining": "0"}
    assert HL["leadway"].rate_limit_feedback(ResponseView(200, headers)) == RateFeedback(
        daily_remaining=0, daily_maximum=200_000
    )


def test_highlevel_feedback_without_headers_is_none() -> None:
    assert HL["hoop"].rate_limit_feedback(ResponseView(200, {})) is None


# -- HubSpot -----------------------------------------------------------------------------


def test_hubspot_documented_headers_are_read() -> None:
    headers = {
        "X-HubSpot-RateLimit-Secondly": "19",
        "X-HubSpot-RateLimit-Secondly-Remaining": "18",
        "X-HubSpot-RateLimit-Daily": "650000",
        "X-HubSpot-RateLimit-Daily-Remaining": "649990",
    }
    assert HS.rate_limit_feedback(ResponseView(200, headers)) == RateFeedback(
        remaining=18, maximum=19, window=1.0, daily_remaining=649_990, daily_maximum=650_000
    )


def test_hubspot_documented_headers_win_over_the_observed_ones() -> None:
    headers = {
        "X-HubSpot-RateLimit-Secondly": "19",
        "X-HubSpot-RateLimit-Secondly-Remaining": "3",
        "X-HubSpot-RateLimit-Max": "190",
        "X-HubSpot-RateLimit-Remaining": "150",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    assert HS.rate_limit_feedback(ResponseView(200, headers)) == RateFeedback(
        remaining=3, maximum=19, window=1.0
    )


def test_hubspot_observed_headers_are_the_fallback() -> None:
    headers = {
        "X-HubSpot-RateLimit-Max": "110",
        "X-HubSpot-RateLimit-Remaining": "109",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Daily": "250000",
        "X-HubSpot-RateLimit-Daily-Remaining": "249999",
    }
    assert HS.rate_limit_feedback(ResponseView(200, headers)) == RateFeedback(
        remaining=109, maximum=110, window=10.0, daily_remaining=249_999, daily_maximum=250_000
    )


def test_hubspot_daily_headers_alone() -> None:
    headers = {"X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "5"}
    assert HS.rate_limit_feedback(ResponseView(200, headers)) == RateFeedback(
        daily_remaining=5, daily_maximum=250_000
    )
    assert HS.rate_limit_feedback(ResponseView(200, {})) is None


def test_hubspot_429_with_a_spent_daily_header_is_not_retried() -> None:
    # No policyName in the body: the documented daily header alone says it is the day.
    body = {"status": "error", "message": "You have reached your daily limit.", "errorType": "x"}
    error = _hs_error({"X-HubSpot-RateLimit-Daily-Remaining": "0"}, body)
    assert type(error) is RateLimited
    assert error.retryable is False


def test_hubspot_secondly_429_is_retried() -> None:
    body = {"status": "error", "message": "secondly", "policyName": "SECONDLY"}
    headers = {"X-HubSpot-RateLimit-Secondly-Remaining": "0", "X-HubSpot-RateLimit-Secondly": "19"}
    error = _hs_error(headers, body)
    assert (type(error), error.retryable, error.retry_after) == (RateLimited, True, 1.0)
