"""The emulated Kommo Chats API over real HTTP: it verifies each request's signature.

Skipped without msgbridge's emulator (or uvicorn, which serves it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("msgbridge.emulator", reason="msgbridge's emulator is not installed")
pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

from msgbridge_kommo import KommoSignature
from msgbridge_kommo.emulator import KommoVendor

from msgbridge.adapter import PreparedRequest
from msgbridge.emulator import Emulator, RateLimit

SECRET = "kommo-channel-secret-1"
OTHER_SECRET = "kommo-channel-secret-2"
SCOPE = "chan-1_acct-1"
OTHER_SCOPE = "chan-1_acct-2"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(vendors=[KommoVendor()], builtins=False) as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Emulator:
    server.reset()
    server.add_token("kommo", SECRET, account=SCOPE)
    server.add_token("kommo", OTHER_SECRET, account=OTHER_SCOPE)
    server.seed_message("kommo", "m1", account=SCOPE)
    server.seed_message("kommo", "m2", account=OTHER_SCOPE)
    return server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def post(
    emu: Emulator,
    http: httpx.Client,
    body: Any,
    *,
    msgid: str = "m1",
    scope: str = SCOPE,
    secret: str = SECRET,
    skew: float = 0.0,
    tamper: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    """Sign like msgbridge does (KommoSignature over the exact bytes), then send."""
    url = f"{emu.base_url('kommo')}/v2/origin/custom/{scope}/{msgid}/delivery_status"
    content = raw if raw is not None else json.dumps(body).encode()
    request = PreparedRequest("POST", url, {"Content-Type": "application/json"}, content)
    headers = dict(KommoSignature(secret, clock=lambda: time.time() + skew).headers(request))
    headers.update(tamper or {})
    return http.post(url, content=content, headers=headers)


def test_a_signed_update_is_applied(emu: Emulator, http: httpx.Client) -> None:
    response = post(emu, http, {"msgid": "m1", "delivery_status": 1})
    assert response.status_code == 200
    assert response.content == b""
    assert post(emu, http, {"msgid": "m1", "delivery_status": 2}).status_code == 200
    state = emu.message("kommo", "m1")
    assert state.statuses == ["1", "2"]
    assert state.status == "2"


def test_error_status_keeps_code_and_text(emu: Emulator, http: httpx.Client) -> None:
    body = {"msgid": "m1", "delivery_status": -1, "error_code": 905, "error": "Not last"}
    assert post(emu, http, body).status_code == 200
    last = emu.message("kommo", "m1").history[-1]
    assert last.status == "-1"
    assert last.error == {"code": 905, "text": "Not last"}


def test_a_wrong_signature_is_refused(emu: Emulator, http: httpx.Client) -> None:
    response = post(emu, http, {"msgid": "m1", "delivery_status": 1}, secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid signature"}
    assert emu.message("kommo", "m1").statuses == []


def test_another_channels_secret_is_refused(emu: Emulator, http: httpx.Client) -> None:
    response = post(emu, http, {"msgid": "m1", "delivery_status": 1}, secret=OTHER_SECRET)
    assert response.status_code == 401


@pytest.mark.parametrize("skew", [-16 * 60.0, 16 * 60.0, -3600.0])
def test_a_date_more_than_15_minutes_off_is_refused(
    emu: Emulator, http: httpx.Client, skew: float
) -> None:
    response = post(emu, http, {"msgid": "m1", "delivery_status": 1}, skew=skew)
    assert response.status_code == 401
    assert "valid for 15 minutes" in response.json()["error"]
    assert emu.message("kommo", "m1").statuses == []


def test_a_date_within_15_minutes_is_accepted(emu: Emulator, http: httpx.Client) -> None:
    assert (
        post(emu, http, {"msgid": "m1", "delivery_status": 1}, skew=-14 * 60.0).status_code == 200
    )


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        ({"Content-MD5": "0" * 32}, "Content-MD5 is not the MD5 of the body"),
        ({"Date": "yesterday"}, "Date must be RFC 2822"),
        ({"X-Signature": ""}, "missing header(s): x-signature"),
        ({"Content-Type": "application/json; charset=utf-8"}, "invalid signature"),
    ],
)
def test_each_signed_part_is_checked(
    emu: Emulator, http: httpx.Client, tamper: dict[str, str], error: str
) -> None:
    response = post(emu, http, {"msgid": "m1", "delivery_status": 1}, tamper=tamper)
    assert response.status_code == 401
    assert error in response.json()["error"]


def test_the_signature_covers_the_body_bytes(emu: Emulator, http: httpx.Client) -> None:
    url = f"{emu.base_url('kommo')}/v2/origin/custom/{SCOPE}/m1/delivery_status"
    signed = b'{"msgid":"m1","delivery_status":1}'
    request = PreparedRequest("POST", url, {"Content-Type": "application/json"}, signed)
    headers = dict(KommoSignature(SECRET).headers(request))
    sent = b'{"msgid":"m1","delivery_status":2}'  # same length, other bytes
    assert http.post(url, content=sent, headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"msgid": "other", "delivery_status": 1}, "msgid must match"),
        ({"msgid": "m1", "delivery_status": 3}, "delivery_status must be"),
        ({"msgid": "m1", "delivery_status": True}, "delivery_status must be"),
        ({"msgid": "m1", "delivery_status": -1}, "error_code must be"),
        ({"msgid": "m1", "delivery_status": -1, "error_code": 905}, "needs the error text"),
        ({"msgid": "m1", "delivery_status": 1, "error_code": 901}, "only with delivery_status -1"),
        ({"msgid": "m1", "delivery_status": 1, "status": "x"}, "unknown field 'status'"),
        ([1], "must be a JSON object"),
    ],
)
def test_bad_bodies_are_400(emu: Emulator, http: httpx.Client, body: Any, error: str) -> None:
    response = post(emu, http, body)
    assert response.status_code == 400
    assert error in response.json()["error"]


def test_unknown_message_and_foreign_scope_are_404(emu: Emulator, http: httpx.Client) -> None:
    assert post(emu, http, {"msgid": "nope", "delivery_status": 1}, msgid="nope").status_code == 404
    # m2 belongs to OTHER_SCOPE: signing correctly for SCOPE does not reach it.
    assert post(emu, http, {"msgid": "m2", "delivery_status": 1}, msgid="m2").status_code == 404


def test_unknown_messages_can_be_created(emu: Emulator, http: httpx.Client) -> None:
    emu.configure("kommo", unknown_messages="create")
    assert post(emu, http, {"msgid": "new", "delivery_status": 2}, msgid="new").status_code == 200
    assert emu.message("kommo", "new").status == "2"


def test_rate_limit_per_scope(emu: Emulator, http: httpx.Client) -> None:
    emu.set_rate_limit("kommo", RateLimit(max_requests=2, interval=60.0))
    codes = [post(emu, http, {"msgid": "m1", "delivery_status": 1}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    other = post(
        emu,
        http,
        {"msgid": "m2", "delivery_status": 1},
        msgid="m2",
        scope=OTHER_SCOPE,
        secret=OTHER_SECRET,
    )
    assert other.status_code == 200


def test_revoked_secret_and_state_snapshot(emu: Emulator, http: httpx.Client) -> None:
    vendor = emu.vendor("kommo")
    assert vendor.revoke_token(SECRET)
    assert post(emu, http, {"msgid": "m1", "delivery_status": 1}).status_code == 401
    snapshot = vendor.snapshot()
    assert snapshot["scopes"] == sorted([SCOPE, OTHER_SCOPE])
    assert SECRET not in json.dumps(snapshot)
    assert OTHER_SECRET not in json.dumps(snapshot)
