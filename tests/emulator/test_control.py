"""The /_emulator control endpoint: seed, inspect, faults, config, clock, reset."""

from __future__ import annotations


def test_seed_inspect_reset(emu, api):
    control = emu.url + "/_emulator"
    seeded = api.http.post(
        control + "/seed",
        json={
            "tokens": [{"vendor": "hubspot", "token": "ctl-token", "account": "999"}],
            "messages": [
                {"vendor": "hubspot", "id": "h1", "account": "999", "channel_id": 7, "text": "hi"},
                {"vendor": "highlevel", "id": "m1", "account": "demo-location"},
            ],
            "conversations": [{"vendor": "highlevel", "id": "c1", "account": "demo-location"}],
        },
    )
    assert seeded.status_code == 200, seeded.text
    assert seeded.json() == {"tokens": 1, "oauth_clients": 0, "messages": 2, "conversations": 1}

    patched = api.hs_patch("h1", {"statusType": "SENT"}, channel=7, token="ctl-token")
    assert patched.status_code == 200
    assert patched.json()["text"] == "hi"

    message = api.http.get(control + "/messages/hubspot/h1").json()
    assert message["status"] == "SENT"
    assert [h["status"] for h in message["history"]] == ["SENT"]
    assert message["history"][0]["request_id"] == patched.headers["X-HubSpot-Correlation-Id"]

    recorded = api.http.get(control + "/requests", params={"vendor": "hubspot"}).json()
    assert [r["status"] for r in recorded] == [200]

    state = api.http.get(control + "/state").json()
    assert "h1" in state["vendors"]["hubspot"]["messages"]
    assert state["vendors"]["hubspot"]["tokens"][0]["fingerprint"].startswith("sha256:")

    assert api.http.post(control + "/reset").status_code == 200
    assert api.http.get(control + "/messages/hubspot/h1").status_code == 404
    assert (
        api.hs_patch("h1", {"statusType": "SENT"}, channel=7, token="ctl-token").status_code == 401
    )
    # the baseline (demo tokens) survives a reset
    emu.seed_message("hubspot", "h2", account="1234567", channel_id=1000)
    assert api.hs_patch("h2", {"statusType": "SENT"}).status_code == 200


def test_faults_config_and_clock(emu, api):
    control = emu.url + "/_emulator"
    emu.seed_message("highlevel", "m1", account="demo-location")
    rule = api.http.post(
        control + "/faults", json={"kind": "script", "steps": [502], "vendor": "highlevel"}
    ).json()
    assert rule["kind"] == "script"
    assert api.hl_status("m1", {"status": "read"}).status_code == 502
    api.http.post(control + "/faults", json={"kind": "error", "rate": 1.0, "statuses": [503]})
    assert len(api.http.get(control + "/faults").json()) == 1
    assert api.http.delete(control + "/faults").status_code == 200
    assert api.hl_status("m1", {"status": "read"}).status_code == 200

    settings = api.http.post(
        control + "/config",
        json={"vendor": "highlevel", "rate_limit": {"max_requests": 1, "interval": 60}},
    ).json()
    assert settings["rate_limit"]["max_requests"] == 1
    # the request a moment ago already used the new budget of 1 per minute
    assert api.hl_status("m1", {"status": "read"}).status_code == 429
    moved = api.http.post(control + "/clock", json={"advance": 60})
    assert moved.status_code == 200
    assert api.hl_status("m1", {"status": "read"}).status_code == 200


def test_control_errors(emu, api):
    control = emu.url + "/_emulator"
    assert api.http.get(control + "/nope").status_code == 404
    assert "error" in api.http.get(control + "/nope").json()
    assert api.http.post(control + "/seed", content=b"{").status_code == 400
    bad = api.http.post(
        control + "/seed", json={"messages": [{"vendor": "hubspot", "id": "x", "account": "1"}]}
    )
    assert bad.status_code == 400
    assert "channel_id" in bad.json()["error"]
    assert api.http.post(control + "/seed", json={"widgets": []}).status_code == 400
    assert api.http.get(control + "/messages/nosuch/x").status_code == 404
    assert api.http.post(control + "/faults", json={"kind": "explode"}).status_code == 400


def test_unknown_prefix_lists_vendors(emu, api):
    response = api.http.get(emu.url + "/salesforce/x")
    assert response.status_code == 404
    assert response.json()["vendors"] == ["/highlevel", "/hoop", "/hubspot", "/leadway"]
