"""Fault injection: scripts, seeded random errors, latency, dropped connections, the race."""

from __future__ import annotations

import time

import httpx
import pytest

NO_PROVIDER = {
    "statusCode": 403,
    "message": "No conversation provider found for this message",
    "error": "Forbidden",
}


def seed(emu, vendor="highlevel", message_id="m1", **kwargs):
    return emu.seed_message(vendor, message_id, account="demo-location", **kwargs)


def test_scripted_sequence(emu, api):
    seed(emu)
    emu.faults.script([503, 503, 200], vendor="highlevel", route="update_message_status")
    responses = [api.hl_status("m1", {"status": "delivered"}) for _ in range(4)]
    assert [r.status_code for r in responses] == [503, 503, 200, 200]
    body = responses[0].json()
    assert body["statusCode"] == 503
    assert body["error"] == "Service Unavailable"
    assert "traceId" in body
    # injected failures never reach the vendor's state
    assert emu.message("highlevel", "m1").statuses == ["delivered", "delivered"]
    faults = [r.fault for r in emu.find_requests(vendor="highlevel")]
    assert faults == ["status:503", "status:503", None, None]
    assert emu.faults.rules == ()


def test_script_is_scoped_to_vendor_and_route(emu, api):
    seed(emu)
    emu.seed_conversation("highlevel", "c1", account="demo-location")
    emu.faults.script([500], vendor="hubspot")
    emu.faults.script([502], route="update_conversation")
    assert api.hl_status("m1", {"status": "read"}).status_code == 200
    response = api.hl_conversation("c1", {"locationId": "demo-location"})
    assert response.status_code == 502
    assert api.hs_patch("x", {"statusType": "SENT"}).status_code == 500


def test_injected_500_uses_the_documented_highlevel_body(emu, api, strip_ids):
    seed(emu)
    emu.faults.fail_next(500)
    response = api.hl_status("m1", {"status": "read"})
    assert strip_ids(response.json()) == {"statusCode": 500, "message": "Internal server error"}


def test_injected_errors_use_hubspot_shapes(emu, api):
    emu.faults.script([502, 429])
    error = api.hs_patch("h1", {"statusType": "SENT"})
    assert error.status_code == 502
    assert error.json()["status"] == "error"
    assert error.json()["correlationId"] == error.headers["X-HubSpot-Correlation-Id"]
    assert "category" in error.json()
    limited = api.hs_patch("h1", {"statusType": "SENT"})
    assert limited.status_code == 429
    assert limited.json()["errorType"] == "RATE_LIMIT"


def run_random(api, n):
    return [api.hl_status("m1", {"status": "read"}).status_code for _ in range(n)]


def test_error_rate_is_reproducible_with_the_seed(emu, api):
    seed(emu)
    emu.faults.error_rate(0.3, [500, 503])
    first = run_random(api, 40)
    emu.reset()  # the RNG goes back to its seed
    seed(emu)
    emu.faults.error_rate(0.3, [500, 503])
    second = run_random(api, 40)
    assert first == second
    failures = [s for s in first if s != 200]
    assert 4 <= len(failures) <= 24
    assert set(failures) <= {500, 503}
    assert len(set(failures)) == 2

    emu.reset()
    emu.faults.reseed(12345)
    seed(emu)
    emu.faults.error_rate(0.3, [500, 503])
    assert run_random(api, 40) != first


def test_counted_rule_expires(emu, api):
    seed(emu)
    emu.faults.error_rate(1.0, [504], count=2)
    assert run_random(api, 3) == [504, 504, 200]


def test_latency_is_applied(emu, api):
    seed(emu)
    emu.faults.latency(0.05, vendor="highlevel")
    started = time.perf_counter()
    response = api.hl_status("m1", {"status": "read"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed >= 0.045  # without the fault this takes ~1 ms
    assert emu.requests[-1].fault == "latency:0.05"


def test_latency_lets_a_client_time_out_after_the_update_applied(emu, api):
    seed(emu)
    emu.faults.latency(0.3, after=True, count=1)
    with pytest.raises(httpx.ReadTimeout):
        api.http.put(
            emu.base_url("highlevel") + "/conversations/messages/m1/status",
            json={"status": "read"},
            headers=api.hl_headers(),
            timeout=0.05,
        )
    deadline = time.monotonic() + 5  # the server may still be catching up under load
    while not emu.message("highlevel", "m1").statuses and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.message("highlevel", "m1").statuses == ["read"]
    # The request is recorded only after the delay: wait for it, or it lands in the
    # next test's records (after that test's reset).
    while not emu.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.fault for r in emu.requests] == ["latency:0.3:after"]


def test_dropped_connection_is_a_transport_error(emu, api):
    seed(emu)
    emu.faults.drop(count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.hl_status("m1", {"status": "read"})
    assert emu.message("highlevel", "m1").history == ()  # dropped before the vendor
    assert api.hl_status("m1", {"status": "delivered"}).status_code == 200  # next one is fine
    assert emu.find_requests(vendor="highlevel")[0].fault == "drop"


def test_drop_after_apply_leaves_the_update_applied(emu, api):
    seed(emu, "hoop")
    emu.faults.drop(after=True, count=1, vendor="hoop")
    with pytest.raises(httpx.TransportError):
        api.hl_status("m1", {"status": "read"}, vendor="hoop")
    assert emu.message("hoop", "m1").statuses == ["read"]


def test_scripted_drop_step(emu, api):
    seed(emu)
    emu.faults.script(["drop", None])
    with pytest.raises(httpx.TransportError):
        api.hl_status("m1", {"status": "read"})
    assert api.hl_status("m1", {"status": "read"}).status_code == 200


def test_provider_race_per_message(emu, api, clock, strip_ids):
    seed(emu, provider_ready_after=8)
    early = api.hl_status("m1", {"status": "delivered"})
    assert early.status_code == 403
    assert strip_ids(early.json()) == NO_PROVIDER
    clock.advance(7.9)
    assert api.hl_status("m1", {"status": "delivered"}).status_code == 403
    clock.advance(0.1)
    assert api.hl_status("m1", {"status": "delivered"}).status_code == 200
    assert emu.message("highlevel", "m1").statuses == ["delivered"]


def test_provider_race_global_applies_to_auto_created_messages(emu, api, clock):
    emu.configure("leadway", unknown_messages="create")
    emu.set_provider_race(5)
    assert api.hl_status("new", {"status": "delivered"}, vendor="leadway").status_code == 403
    assert emu.message("leadway", "new").history == ()
    clock.advance(5)
    assert api.hl_status("new", {"status": "delivered"}, vendor="leadway").status_code == 200


def test_invalid_fault_specs_are_refused(emu):
    with pytest.raises(ValueError, match="rate"):
        emu.faults.error_rate(1.5)
    with pytest.raises(ValueError, match="status"):
        emu.faults.script([700])
    with pytest.raises(ValueError, match="step"):
        emu.faults.script([])
