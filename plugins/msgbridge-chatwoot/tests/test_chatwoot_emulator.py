"""The emulated Chatwoot vendor, over real HTTP (skipped without msgbridge's emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("msgbridge.emulator", reason="msgbridge's emulator is not installed")
pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

from msgbridge_chatwoot.emulator import CHATWOOT_RATE_LIMIT, ChatwootVendor

from msgbridge import AdapterRegistry
from msgbridge.emulator import Emulator, RateLimit
from msgbridge.emulator.recording import MASK

TOKEN = "cw-emulator-token"
OTHER_ACCOUNT_TOKEN = "cw-other-account"
PATH = "/api/v1/accounts/1/conversations/12/messages/4711"
JSON = "application/json"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(vendors=[ChatwootVendor()], builtins=False) as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Emulator:
    server.reset()
    vendor = server.vendor("chatwoot")
    assert isinstance(vendor, ChatwootVendor)
    vendor.add_token(TOKEN, account="1")
    vendor.add_token(OTHER_ACCOUNT_TOKEN, account="2")
    vendor.seed_message("4711", account="1", conversation_id="12", content="hello")
    vendor.seed_message("4712", account="1", conversation_id="12")
    vendor.seed_message("4800", account="1", conversation_id="13", inbox_type="web_widget")
    return server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def patch(
    emu: Emulator,
    http: httpx.Client,
    body: Any,
    *,
    path: str = PATH,
    token: str | None = TOKEN,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["api_access_token"] = token
    url = emu.base_url("chatwoot") + path
    if raw is not None:
        return http.patch(url, content=raw, headers=headers)
    return http.patch(url, json=body, headers=headers)


def test_update_applies_and_answers_the_message(emu: Emulator, http: httpx.Client) -> None:
    response = patch(emu, http, {"status": "delivered"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == 4711
    assert body["conversation_id"] == 12
    assert body["account_id"] == 1
    assert body["status"] == "delivered"
    assert body["content"] == "hello"
    assert body["message_type"] == 1
    assert body["content_attributes"] == {}
    assert response.headers["x-request-id"]
    state = emu.message("chatwoot", "4711")
    assert state.status == "delivered"
    assert state.statuses == ["delivered"]
    assert state.history[0].previous == "sent"


def test_external_error_is_kept_only_with_failed(emu: Emulator, http: httpx.Client) -> None:
    failed = patch(emu, http, {"status": "failed", "external_error": "unreachable"})
    assert failed.json()["content_attributes"] == {"external_error": "unreachable"}
    assert emu.message("chatwoot", "4711").history[-1].error == "unreachable"
    retried = patch(emu, http, {"status": "sent", "external_error": "ignored"})
    assert retried.json()["status"] == "sent"
    assert retried.json()["content_attributes"] == {}
    assert emu.message("chatwoot", "4711").history[-1].error is None


def test_read_never_goes_back_to_delivered_silently(emu: Emulator, http: httpx.Client) -> None:
    assert patch(emu, http, {"status": "read"}).json()["status"] == "read"
    regression = patch(emu, http, {"status": "delivered"})
    assert regression.status_code == 200
    assert regression.json()["status"] == "read"
    assert emu.message("chatwoot", "4711").statuses == ["read"]
    # Chatwoot refuses only that one transition.
    assert patch(emu, http, {"status": "sent"}).json()["status"] == "sent"
    assert emu.message("chatwoot", "4711").statuses == ["read", "sent"]


def test_unknown_status_is_ignored(emu: Emulator, http: httpx.Client) -> None:
    response = patch(emu, http, {"status": "bogus"})
    assert response.status_code == 200
    assert response.json()["status"] == "sent"
    assert emu.message("chatwoot", "4711").statuses == []


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "Invalid Access Token"),
        ("nope", "Invalid Access Token"),
        (OTHER_ACCOUNT_TOKEN, "You are not authorized to access this account"),
    ],
)
def test_token_is_required_known_and_of_the_account(
    emu: Emulator, http: httpx.Client, token: str | None, message: str
) -> None:
    response = patch(emu, http, {"status": "read"}, token=token)
    assert response.status_code == 401
    assert response.json() == {"error": message}
    assert emu.message("chatwoot", "4711").statuses == []


def test_bearer_authorization_is_not_chatwoot_auth(emu: Emulator, http: httpx.Client) -> None:
    url = emu.base_url("chatwoot") + PATH
    response = http.patch(
        url, json={"status": "read"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 401


def test_non_api_inbox_is_forbidden(emu: Emulator, http: httpx.Client) -> None:
    path = "/api/v1/accounts/1/conversations/13/messages/4800"
    response = patch(emu, http, {"status": "read"}, path=path)
    assert response.status_code == 403
    assert response.json() == {"error": "Message status update is only allowed for API inboxes"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts/1/conversations/99/messages/4711",  # unknown conversation
        "/api/v1/accounts/1/conversations/12/messages/9999",  # unknown message
    ],
    ids=["conversation", "message"],
)
def test_unknown_ids_are_404(emu: Emulator, http: httpx.Client, path: str) -> None:
    response = patch(emu, http, {"status": "read"}, path=path)
    assert response.status_code == 404
    assert response.json() == {"error": "Resource could not be found"}


def test_message_of_another_conversation_is_404(emu: Emulator, http: httpx.Client) -> None:
    vendor = emu.vendor("chatwoot")
    assert isinstance(vendor, ChatwootVendor)
    vendor.seed_message("5000", account="1", conversation_id="14")
    response = patch(
        emu, http, {"status": "read"}, path="/api/v1/accounts/1/conversations/14/messages/4711"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "raw", "content_type", "code", "fragment"),
    [
        (
            {"status": "read", "extra": 1},
            None,
            "application/json",
            422,
            "unpermitted parameter: extra",
        ),
        ({"external_error": "x"}, None, JSON, 422, "status is required"),
        ({"status": 2}, None, JSON, 422, "status must be a string"),
        (
            {"status": "failed", "external_error": 5},
            None,
            "application/json",
            422,
            "external_error",
        ),
        (None, b"[1, 2]", JSON, 422, "JSON object"),
        (None, b"{not json", JSON, 400, "not valid JSON"),
        (None, b"status=read", "application/x-www-form-urlencoded", 422, "application/json"),
    ],
)
def test_strict_body_validation(
    emu: Emulator,
    http: httpx.Client,
    body: Any,
    raw: bytes | None,
    content_type: str,
    code: int,
    fragment: str,
) -> None:
    response = patch(emu, http, body, raw=raw, content_type=content_type)
    assert response.status_code == code
    assert fragment in response.json()["error"]
    assert emu.message("chatwoot", "4711").statuses == []


def test_lenient_body_drops_unpermitted_keys_like_chatwoot() -> None:
    with Emulator(vendors=[ChatwootVendor(strict_body=False)], builtins=False) as emu:
        emu.add_token("chatwoot", TOKEN, account="1")
        emu.seed_message("chatwoot", "4711", account="1", conversation_id="12")
        with httpx.Client(timeout=5.0) as http:
            ok = patch(emu, http, {"status": "read", "extra": 1})
            missing = patch(emu, http, {"external_error": "x"})
            form = patch(
                emu,
                http,
                None,
                raw=b"status=failed&external_error=gone",
                content_type="application/x-www-form-urlencoded",
            )
        assert (ok.status_code, missing.status_code, form.status_code) == (200, 200, 200)
        state = emu.message("chatwoot", "4711")
        assert state.statuses == ["read", "failed"]
        assert state.history[-1].error == "gone"


def test_rate_limit_is_rack_attack_shaped(emu: Emulator, http: httpx.Client) -> None:
    assert emu.vendor("chatwoot").settings.rate_limit == CHATWOOT_RATE_LIMIT
    emu.set_rate_limit("chatwoot", RateLimit(max_requests=2, interval=60.0))
    assert patch(emu, http, {"status": "delivered"}).status_code == 200
    assert patch(emu, http, {"status": "read"}).status_code == 200
    throttled = patch(emu, http, {"status": "read"})
    assert throttled.status_code == 429
    assert throttled.content == b"Retry later\n"
    assert "retry-after" not in throttled.headers
    emu.configure("chatwoot", retry_after=True)
    assert int(patch(emu, http, {"status": "read"}).headers["retry-after"]) >= 1


def test_unknown_messages_can_be_created(emu: Emulator, http: httpx.Client) -> None:
    emu.configure("chatwoot", unknown_messages="create")
    path = "/api/v1/accounts/1/conversations/77/messages/9001"
    response = patch(emu, http, {"status": "delivered"}, path=path)
    assert response.status_code == 200
    assert response.json()["id"] == 9001
    state = emu.message("chatwoot", "9001")
    assert (state.origin, state.account, state.conversation_id, state.status) == (
        "auto",
        "1",
        "77",
        "delivered",
    )


def test_seed_refuses_what_chatwoot_cannot_hold(emu: Emulator) -> None:
    vendor = emu.vendor("chatwoot")
    with pytest.raises(ValueError, match="status"):
        vendor.seed_message("1", account="1", status="pending")
    with pytest.raises(ValueError, match="channel_id"):
        vendor.seed_message("1", account="1", channel_id=5)
    with pytest.raises(ValueError, match="inbox_type"):
        emu.seed_message("chatwoot", "1", account="1", inbox_type="carrier-pigeon")
    assert emu.vendor("chatwoot").message("1") is None


def test_conversations_and_inbox_kinds_can_be_set(emu: Emulator, http: httpx.Client) -> None:
    emu.seed_conversation("chatwoot", "20", account="1")
    emu.configure("chatwoot", unknown_messages="create")
    path = "/api/v1/accounts/1/conversations/20/messages/6000"
    assert patch(emu, http, {"status": "read"}, path=path).status_code == 200
    vendor = emu.vendor("chatwoot")
    assert isinstance(vendor, ChatwootVendor)
    vendor.set_inbox_type("20", "sms", account="1")
    assert patch(emu, http, {"status": "read"}, path=path).status_code == 403
    with pytest.raises(ValueError, match="inbox_type"):
        vendor.set_inbox_type("20", "fax", account="1")


def test_snapshot_lists_inboxes(emu: Emulator) -> None:
    inboxes = emu.snapshot()["vendors"]["chatwoot"]["inboxes"]
    assert inboxes == {"1/12": "api", "1/13": "web_widget"}


def test_recorded_requests_mask_the_access_token(emu: Emulator, http: httpx.Client) -> None:
    patch(emu, http, {"status": "read"})
    record = emu.find_requests(vendor="chatwoot")[-1]
    assert record.headers["api_access_token"] == MASK


def test_plugin_registers_its_emulated_vendor() -> None:
    registry = AdapterRegistry.from_entry_points()
    vendors = [v for v in registry.emulated_vendors if isinstance(v, ChatwootVendor)]
    assert len(vendors) == 1
    assert vendors[0].name == "chatwoot"
    assert vendors[0].prefix == "/chatwoot"
    emu = Emulator(vendors=vendors, builtins=False)
    assert emu.vendor_names == ["chatwoot"]
