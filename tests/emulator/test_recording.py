"""Recorded requests: secrets masked before storage, ring buffer, filtering."""

from __future__ import annotations

import httpx

from msgbridge.emulator import Emulator, EmulatorConfig

SECRET_TOKEN = "tok-SUPER-secret-0001"
SECRET_CLIENT = "client-secret-XYZZY"
SECRET_REFRESH = "refresh-secret-PLUGH"


def test_no_secret_is_stored_or_served(emu, api):
    emu.add_token("highlevel", SECRET_TOKEN, account="demo-location")
    emu.seed_message("highlevel", "m1", account="demo-location")
    emu.add_oauth_client("highlevel", "app", SECRET_CLIENT, SECRET_REFRESH, account="demo-location")
    emu.add_oauth_client("hubspot", "hs", SECRET_CLIENT, SECRET_REFRESH + "-hs", account="42")

    assert (
        api.hl_status(
            "m1", {"status": "read"}, headers=api.hl_headers(token=SECRET_TOKEN)
        ).status_code
        == 200
    )
    assert (
        api.hl_status(
            "m1", {"status": "read"}, headers=api.hl_headers(token=SECRET_TOKEN + "x")
        ).status_code
        == 401
    )
    refresh = api.http.post(
        emu.base_url("highlevel") + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "app",
            "client_secret": SECRET_CLIENT,
            "refresh_token": SECRET_REFRESH,
        },
    ).json()
    hs = api.http.post(
        emu.base_url("hubspot") + "/oauth/v3/token?hapikey=" + SECRET_TOKEN,
        data={
            "grant_type": "refresh_token",
            "client_id": "hs",
            "client_secret": SECRET_CLIENT,
            "refresh_token": SECRET_REFRESH + "-hs",
        },
    ).json()
    secrets = [
        SECRET_TOKEN,
        SECRET_CLIENT,
        SECRET_REFRESH,
        refresh["access_token"],
        refresh["refresh_token"],
        hs["access_token"],
        hs["refresh_token"],
    ]

    records = emu.requests
    assert len(records) == 4
    dumped = repr(records)
    control_state = api.http.get(emu.url + "/_emulator/state").text
    control_requests = api.http.get(emu.url + "/_emulator/requests").text
    for secret in secrets:
        assert secret not in dumped
        assert secret not in control_state
        assert secret not in control_requests
    # what is kept is still useful
    first = records[0]
    assert first.headers["authorization"] == "Bearer ***"
    assert first.headers["version"] == "2021-04-15"
    assert first.account == "demo-location"
    assert first.body == {"status": "read"}
    assert records[2].body["client_secret"] == "***"
    assert records[2].body["client_id"] == "app"
    assert records[2].response["access_token"] == "***"
    assert records[3].query == {"hapikey": "***"}


def test_filtering(emu, api):
    emu.seed_message("highlevel", "m1", account="demo-location")
    api.hl_status("m1", {"status": "read"})
    api.hl_status("m1", {"status": "bad"})
    api.hs_patch("h1", {"statusType": "SENT"})
    assert len(emu.find_requests(vendor="highlevel")) == 2
    assert [r.status for r in emu.find_requests(status=400)] == [400]
    assert [r.vendor for r in emu.find_requests(route="update_message_status", method="patch")] == [
        "hubspot"
    ]
    assert len(emu.find_requests(path_contains="/m1/")) == 2
    emu.clear_requests()
    assert emu.requests == ()


def test_ring_buffer_caps_memory():
    config = EmulatorConfig(demo=True, record_limit=3, unknown_messages="create")
    with Emulator(config) as emu, httpx.Client() as http:
        headers = {"Authorization": "Bearer demo-hoop-token", "Version": "2021-04-15"}
        for i in range(5):
            url = f"{emu.base_url('hoop')}/conversations/messages/m{i}/status"
            assert http.put(url, json={"status": "read"}, headers=headers).status_code == 200
        assert [r.path.rsplit("/", 2)[-2] for r in emu.requests] == ["m2", "m3", "m4"]
        assert emu.request_count == 5


def test_recording_can_be_off():
    with Emulator(EmulatorConfig(demo=True, record_limit=0)) as emu, httpx.Client() as http:
        http.put(emu.base_url("highlevel") + "/conversations/messages/x/status", json={})
        assert emu.requests == ()
