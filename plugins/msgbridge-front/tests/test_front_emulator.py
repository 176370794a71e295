"""The emulated Front vendor, over real HTTP (skipped without msgbridge's emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("msgbridge.emulator", reason="msgbridge's emulator is not installed")
pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

from msgbridge_front.emulator import FRONT_RATE_LIMIT, FrontVendor

from msgbridge import AdapterRegistry
from msgbridge.emulator import Emulator, RateLimit

TOKEN = "front-emulator-token"
OTHER_COMPANY_TOKEN = "front-other-company"
JSON = "application/json"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(vendors=[FrontVendor()], builtins=False) as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Emulator:
    server.reset()
    server.add_token("front", TOKEN, account="acme")
    server.add_token("front", OTHER_COMPANY_TOKEN, account="globex")
    server.seed_message("front", "msg_1", account="acme", conversation_id="cnv_1")
    server.seed_message(
        "front", "msg_in", account="acme", conversation_id="cnv_2", direction="inbound"
    )
    return server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def put(
    emu: Emulator,
    http: httpx.Client,
    body: Any,
    *,
    message_id: str = "msg_1",
    token: str | None = TOKEN,
    raw: bytes | None = None,
    content_type: str = JSON,
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{emu.base_url('front')}/messages/{message_id}/status"
    if raw is not None:
        return http.put(url, content=raw, headers=headers)
    return http.put(url, json=body, headers=headers)


def vendor(emu: Emulator) -> FrontVendor:
    found = emu.vendor("front")
    assert isinstance(found, FrontVendor)
    return found


def test_failed_is_204_and_reopens_the_conversation(emu: Emulator, http: httpx.Client) -> None:
    assert vendor(emu).conversation_status("cnv_1") == "archived"
    response = put(emu, http, {"status": "failed", "reason": "carrier rejected"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-ratelimit-limit"] == "50"
    assert response.headers["x-ratelimit-remaining"] == "49"
    assert int(response.headers["x-ratelimit-reset"]) > 1_700_000_000
    state = emu.message("front", "msg_1")
    assert state.status == "failed"
    assert state.history[-1].error == "carrier rejected"
    assert vendor(emu).conversation_status("cnv_1") == "open"


def test_failing_twice_is_idempotent(emu: Emulator, http: httpx.Client) -> None:
    assert put(emu, http, {"status": "failed"}).status_code == 204
    assert put(emu, http, {"status": "failed"}).status_code == 204
    assert emu.message("front", "msg_1").statuses == ["failed", "failed"]


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "You must be authenticated"), ("nope", "The provided API token is invalid")],
)
def test_bearer_token_is_required(
    emu: Emulator, http: httpx.Client, token: str | None, message: str
) -> None:
    response = put(emu, http, {"status": "failed"}, token=token)
    assert response.status_code == 401
    error = response.json()["_error"]
    assert (error["status"], error["title"]) == (401, "Unauthenticated")
    assert error["message"].startswith(message)


@pytest.mark.parametrize(
    ("message_id", "token"),
    [("msg_unknown", TOKEN), ("msg_1", OTHER_COMPANY_TOKEN)],
    ids=["unknown", "other-company"],
)
def test_unknown_or_foreign_message_is_404(
    emu: Emulator, http: httpx.Client, message_id: str, token: str
) -> None:
    response = put(emu, http, {"status": "failed"}, message_id=message_id, token=token)
    assert response.status_code == 404
    assert response.json()["_error"]["title"] == "Not found"
    assert emu.message("front", "msg_1").statuses == []


@pytest.mark.parametrize(
    ("body", "raw", "content_type", "fragment"),
    [
        ({"status": "delivered"}, None, JSON, "'status' must be one of [failed]"),
        ({"reason": "x"}, None, JSON, "'status' is required"),
        ({"status": "failed", "error_message": "x"}, None, JSON, "unknown field 'error_message'"),
        ({"status": "failed", "reason": 5}, None, JSON, "'reason' must be a string"),
        (None, b"[]", JSON, "JSON object"),
        (None, b"{oops", JSON, "not valid JSON"),
        (None, b"status=failed", "application/x-www-form-urlencoded", "application/json"),
    ],
)
def test_strict_body(
    emu: Emulator,
    http: httpx.Client,
    body: Any,
    raw: bytes | None,
    content_type: str,
    fragment: str,
) -> None:
    response = put(emu, http, body, raw=raw, content_type=content_type)
    assert response.status_code == 400
    assert fragment in response.json()["_error"]["message"]
    assert emu.message("front", "msg_1").statuses == []


def test_inbound_messages_cannot_be_failed(emu: Emulator, http: httpx.Client) -> None:
    response = put(emu, http, {"status": "failed"}, message_id="msg_in")
    assert response.status_code == 400
    assert "outbound" in response.json()["_error"]["message"]


def test_reason_field_is_configurable() -> None:
    with Emulator(vendors=[FrontVendor(reason_field="error_message")], builtins=False) as emu:
        emu.add_token("front", TOKEN, account="acme")
        emu.seed_message("front", "msg_1", account="acme")
        with httpx.Client(timeout=5.0) as http:
            ok = put(emu, http, {"status": "failed", "error_message": "x"})
            refused = put(emu, http, {"status": "failed", "reason": "x"})
        assert (ok.status_code, refused.status_code) == (204, 400)


def test_rate_limit_per_company_with_retry_after(emu: Emulator, http: httpx.Client) -> None:
    assert vendor(emu).settings.rate_limit == FRONT_RATE_LIMIT
    emu.set_rate_limit("front", RateLimit(max_requests=2, interval=60.0))
    emu.seed_message("front", "msg_g", account="globex")
    assert put(emu, http, {"status": "failed"}).status_code == 204
    last = put(emu, http, {"status": "failed"})
    assert last.headers["x-ratelimit-remaining"] == "0"
    throttled = put(emu, http, {"status": "failed"})
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert throttled.json()["_error"]["status"] == 429
    # Another company has its own budget.
    other = put(emu, http, {"status": "failed"}, message_id="msg_g", token=OTHER_COMPANY_TOKEN)
    assert other.status_code == 204


def test_injected_429_carries_retry_after(emu: Emulator, http: httpx.Client) -> None:
    emu.faults.fail_next(429, vendor="front")
    response = put(emu, http, {"status": "failed"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"


def test_unknown_messages_can_be_created(emu: Emulator, http: httpx.Client) -> None:
    emu.configure("front", unknown_messages="create")
    assert put(emu, http, {"status": "failed"}, message_id="msg_new").status_code == 204
    state = emu.message("front", "msg_new")
    assert (state.origin, state.account, state.status) == ("auto", "acme", "failed")


def test_seed_refuses_what_front_cannot_hold(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="status"):
        emu.seed_message("front", "m", account="acme", status="delivered")
    with pytest.raises(ValueError, match="direction"):
        emu.seed_message("front", "m", account="acme", direction="sideways")
    with pytest.raises(ValueError, match="channel_id"):
        emu.seed_message("front", "m", account="acme", channel_id=1)
    assert vendor(emu).message("m") is None


def test_recorded_requests_mask_the_bearer_token(emu: Emulator, http: httpx.Client) -> None:
    put(emu, http, {"status": "failed", "reason": "x"})
    record = emu.find_requests(vendor="front")[-1]
    assert TOKEN not in repr(record.to_dict())
    assert record.body == {"status": "failed", "reason": "x"}
    assert (record.status, record.account, record.route) == (204, "acme", "update_message_status")


def test_plugin_registers_its_emulated_vendor() -> None:
    registry = AdapterRegistry.from_entry_points()
    vendors = [v for v in registry.emulated_vendors if isinstance(v, FrontVendor)]
    assert len(vendors) == 1
    assert vendors[0].prefix == "/front"
    assert Emulator(vendors=vendors, builtins=False).vendor_names == ["front"]
