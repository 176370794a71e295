"""Rate limits: headers on every response, 429 in each vendor's shape, rolling recovery."""

from __future__ import annotations

from msgbridge.emulator import RateLimit

HL_429 = {"statusCode": 429, "message": "Too many requests", "error": "Too Many Requests"}


def test_highlevel_headers_decrease_then_429_then_recover(emu, api, clock, strip_ids):
    emu.set_rate_limit("highlevel", RateLimit(max_requests=3, interval=10.0, daily=1000))
    emu.seed_message("highlevel", "m1", account="demo-location")
    remaining = []
    for _ in range(3):
        response = api.hl_status("m1", {"status": "delivered"})
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Max"] == "3"
        assert response.headers["X-RateLimit-Interval-Milliseconds"] == "10000"
        assert response.headers["X-RateLimit-Limit-Daily"] == "1000"
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]

    limited = api.hl_status("m1", {"status": "read"})
    assert limited.status_code == 429
    assert strip_ids(limited.json()) == HL_429
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Daily-Remaining"] == "997"
    assert "Retry-After" not in limited.headers
    assert emu.message("highlevel", "m1").statuses == ["delivered"] * 3

    clock.advance(10)
    recovered = api.hl_status("m1", {"status": "read"})
    assert recovered.status_code == 200
    assert recovered.headers["X-RateLimit-Remaining"] == "2"


def test_window_is_rolling_not_fixed(emu, api, clock):
    emu.set_rate_limit("highlevel", RateLimit(max_requests=2, interval=10.0))
    emu.seed_message("highlevel", "m1", account="demo-location")
    assert api.hl_status("m1", {"status": "read"}).status_code == 200  # t=0
    clock.advance(5)
    assert api.hl_status("m1", {"status": "read"}).status_code == 200  # t=5
    clock.advance(4)
    assert api.hl_status("m1", {"status": "read"}).status_code == 429  # t=9: both in window
    clock.advance(1)
    assert api.hl_status("m1", {"status": "read"}).status_code == 200  # t=10: t=0 left
    clock.advance(1)
    assert api.hl_status("m1", {"status": "read"}).status_code == 429  # t=11: t=5, t=10


def test_budgets_are_per_location(emu, api):
    emu.set_rate_limit("highlevel", RateLimit(max_requests=1, interval=10.0))
    emu.add_token("highlevel", "other-token", account="other-location")
    emu.seed_message("highlevel", "m1", account="demo-location")
    emu.seed_message("highlevel", "m2", account="other-location")
    assert api.hl_status("m1", {"status": "read"}).status_code == 200
    assert api.hl_status("m1", {"status": "read"}).status_code == 429
    other = api.hl_headers(token="other-token")
    assert api.hl_status("m2", {"status": "read"}, headers=other).status_code == 200


def test_per_account_budget_override(emu, api):
    emu.set_rate_limit(
        "highlevel", RateLimit(max_requests=1, interval=10.0), account="demo-location"
    )
    emu.seed_message("highlevel", "m1", account="demo-location")
    response = api.hl_status("m1", {"status": "read"})
    assert response.headers["X-RateLimit-Max"] == "1"


def test_daily_budget(emu, api, clock):
    emu.set_rate_limit("leadway", RateLimit(max_requests=100, interval=10.0, daily=2))
    emu.seed_message("leadway", "m1", account="demo-location")
    assert api.hl_status("m1", {"status": "read"}, vendor="leadway").status_code == 200
    last = api.hl_status("m1", {"status": "read"}, vendor="leadway")
    assert last.headers["X-RateLimit-Daily-Remaining"] == "0"
    assert api.hl_status("m1", {"status": "read"}, vendor="leadway").status_code == 429
    clock.advance(86_400)
    assert api.hl_status("m1", {"status": "read"}, vendor="leadway").status_code == 200


def test_retry_after_only_when_configured(emu, api, clock):
    emu.configure("highlevel", retry_after=True)
    emu.set_rate_limit("highlevel", RateLimit(max_requests=1, interval=10.0))
    emu.seed_message("highlevel", "m1", account="demo-location")
    api.hl_status("m1", {"status": "read"})
    clock.advance(3)
    limited = api.hl_status("m1", {"status": "read"})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"


def test_rate_limits_can_be_disabled(emu, api):
    emu.configure("highlevel", rate_limits_enabled=False)
    emu.set_rate_limit("highlevel", RateLimit(max_requests=1, interval=10.0))
    emu.seed_message("highlevel", "m1", account="demo-location")
    for _ in range(3):
        response = api.hl_status("m1", {"status": "read"})
        assert response.status_code == 200
        assert "X-RateLimit-Remaining" not in response.headers


def test_default_highlevel_budget_is_the_vendors(emu, api):
    emu.seed_message("hoop", "m1", account="demo-location")
    response = api.hl_status("m1", {"status": "read"}, vendor="hoop")
    assert response.headers["X-RateLimit-Max"] == "100"
    assert response.headers["X-RateLimit-Limit-Daily"] == "200000"
    assert response.headers["X-RateLimit-Remaining"] == "99"


def test_hubspot_headers_and_legacy_429_body(emu, api, clock):
    emu.seed_message("hubspot", "h1", account="1234567", channel_id=1000)
    first = api.hs_patch("h1", {"statusType": "SENT"})
    assert first.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "109"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert "X-HubSpot-RateLimit-Daily" not in first.headers

    emu.set_rate_limit("hubspot", RateLimit(max_requests=2, interval=10.0))
    emu.reset()
    emu.set_rate_limit("hubspot", RateLimit(max_requests=2, interval=10.0))
    emu.seed_message("hubspot", "h1", account="1234567", channel_id=1000)
    assert [api.hs_patch("h1", {"statusType": "SENT"}).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    limited = api.hs_patch("h1", {"statusType": "READ"})
    body = limited.json()
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert "category" not in body
    assert body["correlationId"] == limited.headers["X-HubSpot-Correlation-Id"]
    assert "1234567" in body["groupName"]
    clock.advance(10)
    assert api.hs_patch("h1", {"statusType": "READ"}).status_code == 200


def test_hubspot_secondly_budget(emu, api, clock):
    emu.set_rate_limit("hubspot", RateLimit(max_requests=10, interval=10.0, secondly=1))
    emu.seed_message("hubspot", "h1", account="1234567", channel_id=1000)
    ok = api.hs_patch("h1", {"statusType": "SENT"})
    assert ok.headers["X-HubSpot-RateLimit-Secondly"] == "1"
    assert ok.headers["X-HubSpot-RateLimit-Secondly-Remaining"] == "0"
    limited = api.hs_patch("h1", {"statusType": "SENT"})
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "SECONDLY"
    clock.advance(1)
    assert api.hs_patch("h1", {"statusType": "SENT"}).status_code == 200
