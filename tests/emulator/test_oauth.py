"""OAuth refresh: single-use rotating refresh tokens, new tokens work, expiry per vendor."""

from __future__ import annotations

import pytest

HL_TOKEN_URL = "/oauth/token"


SECRET = "s3cret"


def hl_refresh(api, refresh_token, *, client_id="app", client_secret=SECRET, vendor="highlevel"):
    return api.http.post(
        api.emu.base_url(vendor) + HL_TOKEN_URL,
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "user_type": "Location",
        },
    )


def test_highlevel_refresh_rotates_and_old_refresh_token_dies(emu, api, clock):
    emu.add_oauth_client("highlevel", "app", "s3cret", "rt-1", account="loc-1")
    emu.seed_message("highlevel", "m1", account="loc-1")
    first = hl_refresh(api, "rt-1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86399
    assert body["locationId"] == "loc-1"
    assert body["userType"] == "Location"
    assert body["refresh_token"] != "rt-1"
    # the new access token works on the API
    headers = api.hl_headers(token=body["access_token"])
    assert api.hl_status("m1", {"status": "read"}, headers=headers).status_code == 200
    # the old refresh token is spent
    again = hl_refresh(api, "rt-1")
    assert again.status_code == 400
    assert again.json()["message"] == "Invalid grant: refresh token is invalid"
    assert again.json()["statusCode"] == 400
    # the new one works once
    assert hl_refresh(api, body["refresh_token"]).status_code == 200
    assert hl_refresh(api, body["refresh_token"]).status_code == 400
    # the access token expires after its lifetime
    clock.advance(86399)
    expired = api.hl_status("m1", {"status": "read"}, headers=headers)
    assert expired.status_code == 401
    assert expired.json()["message"] == "Invalid token: access token is invalid"


def test_highlevel_refresh_errors(emu, api):
    emu.add_oauth_client("highlevel", "app", "s3cret", "rt-1", account="loc-1")
    assert hl_refresh(api, "rt-1", client_secret="wrong").status_code == 401
    assert hl_refresh(api, "rt-1", client_id="other").status_code == 401
    missing = api.http.post(
        emu.base_url("highlevel") + HL_TOKEN_URL, data={"grant_type": "refresh_token"}
    )
    assert missing.status_code == 422
    assert missing.json()["error"] == "Unprocessable Entity"
    assert "client_id should not be empty" in missing.json()["message"]
    # failed attempts did not spend the refresh token
    assert hl_refresh(api, "rt-1").status_code == 200


def test_inactive_location_keeps_its_refresh_token(emu, api):
    emu.add_oauth_client("leadway", "app", "s3cret", "rt-1", account="loc-1")
    emu.set_account_active("leadway", "loc-1", False)
    paused = hl_refresh(api, "rt-1", vendor="leadway")
    assert paused.status_code == 400
    assert paused.json()["message"] == "Location is not active"
    emu.set_account_active("leadway", "loc-1", True)
    assert hl_refresh(api, "rt-1", vendor="leadway").status_code == 200


def test_configurable_access_token_lifetime(emu, api, clock):
    emu.configure("hoop", access_token_ttl=60)
    emu.add_oauth_client("hoop", "app", "s3cret", "rt-1", account="demo-location")
    emu.seed_message("hoop", "m1", account="demo-location")
    body = hl_refresh(api, "rt-1", vendor="hoop").json()
    assert body["expires_in"] == 60
    headers = api.hl_headers("hoop", token=body["access_token"])
    clock.advance(59)
    assert (
        api.hl_status("m1", {"status": "read"}, vendor="hoop", headers=headers).status_code == 200
    )
    clock.advance(1)
    assert (
        api.hl_status("m1", {"status": "read"}, vendor="hoop", headers=headers).status_code == 401
    )


def hs_refresh(api, refresh_token, path="/oauth/v1/token", client_secret=SECRET):
    return api.http.post(
        api.emu.base_url("hubspot") + path,
        data={
            "grant_type": "refresh_token",
            "client_id": "hs-app",
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
    )


@pytest.mark.parametrize("path", ["/oauth/v1/token", "/oauth/v3/token", "/oauth/2026-03/token"])
def test_hubspot_refresh_rotates_and_expires(emu, api, clock, path):
    emu.add_oauth_client("hubspot", "hs-app", "s3cret", "rt-1", account="555")
    emu.seed_message("hubspot", "h1", account="555", channel_id=1000)
    response = hs_refresh(api, "rt-1", path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["token_use"] == "access_token"
    assert body["expires_in"] == 1800
    assert body["hub_id"] == 555
    assert body["refresh_token"] != "rt-1"
    assert api.hs_patch("h1", {"statusType": "SENT"}, token=body["access_token"]).status_code == 200

    reused = hs_refresh(api, "rt-1", path)
    assert reused.status_code == 400
    assert reused.json()["status"] == "BAD_REFRESH_TOKEN"
    assert reused.json()["message"] == "missing or invalid refresh token"

    clock.advance(1805)
    expired = api.hs_patch("h1", {"statusType": "READ"}, token=body["access_token"])
    assert expired.status_code == 401
    payload = expired.json()
    assert payload["category"] == "EXPIRED_AUTHENTICATION"
    assert payload["message"] == "The OAuth token used to make this call expired 5 second(s) ago."
    assert payload["context"]["expire time"][0].endswith("Z")
    assert emu.message("hubspot", "h1").statuses == ["SENT"]


def test_hubspot_refresh_errors_and_stable_tokens_option(emu, api):
    emu.add_oauth_client("hubspot", "hs-app", "s3cret", "rt-1", account="555")
    assert hs_refresh(api, "rt-1", client_secret="nope").json()["status"] == "BAD_CLIENT_SECRET"
    bad_grant = api.http.post(
        emu.base_url("hubspot") + "/oauth/v1/token", data={"grant_type": "password"}
    )
    assert bad_grant.status_code == 400
    assert bad_grant.json()["status"] == "BAD_GRANT_TYPE"
    emu.configure("hubspot", rotate_refresh_tokens=False)
    first = hs_refresh(api, "rt-1").json()
    assert first["refresh_token"] == "rt-1"
    assert hs_refresh(api, "rt-1").status_code == 200
