"""The intake: store before answering, de-duplicate, hand over at least once, refuse cleanly."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier
from msgbridge.inbound import InboundDelivery, InboundStore, Intake

from .signing import (
    HL_SMS_EXAMPLE,
    NOW,
    Ed25519Signer,
    FakeClock,
    hubspot_outgoing,
    hubspot_v3,
    millis,
)

SIGNER = Ed25519Signer()
HS_SECRET = "hs-secret"
HS_URL = "https://hooks.example.com/hubspot"


def hl_body(message_id: str) -> bytes:
    data = json.loads(HL_SMS_EXAMPLE)
    data["messageId"] = message_id
    return json.dumps(data).encode()


def hl_headers(body: bytes) -> dict[str, str]:
    return {"X-GHL-Signature": SIGNER.sign(body), "Content-Type": "application/json"}


def rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT key, state, deliveries, attempts FROM msgbridge_inbound ORDER BY key"
        ).fetchall()


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[InboundDelivery] = []
        self.fail_times = fail_times
        self.lock = threading.Lock()

    def __call__(self, delivery: InboundDelivery) -> None:
        with self.lock:
            self.calls.append(delivery)
            if self.fail_times:
                self.fail_times -= 1
                raise RuntimeError("downstream carrier unavailable")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


_OPEN: list[InboundStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "inbound.db"


def make_intake(db: Path, clock: FakeClock, handler: Any, **kwargs: Any) -> Intake:
    sources = {
        "highlevel": HighLevelWebhookVerifier(public_key=SIGNER.public_b64),
        "hubspot": HubSpotWebhookVerifier(client_secret=HS_SECRET, public_url=HS_URL),
    }
    store = InboundStore(db, clock=clock)
    _OPEN.append(store)
    return Intake(store, sources, handler, clock=clock, **kwargs)


def test_valid_webhook_is_stored_then_handed_over_with_a_stable_key(
    db: Path, clock: FakeClock
) -> None:
    handler = Recorder()
    intake = make_intake(db, clock, handler)
    body = hl_body("m-1")
    response = intake.handle(hl_headers(body), body, source="highlevel")
    assert response.status == 200
    assert response.stored
    assert not response.duplicate
    assert response.key == "highlevel:message:m-1"
    assert [c.key for c in handler.calls] == ["highlevel:message:m-1"]
    assert handler.calls[0].event.outbound is not None
    assert handler.calls[0].attempt == 1
    assert rows(db) == [("highlevel:message:m-1", "handled", 1, 1)]


def test_duplicate_deliveries_are_stored_and_handled_once(db: Path, clock: FakeClock) -> None:
    handler = Recorder()
    intake = make_intake(db, clock, handler)
    body = hl_body("m-dup")
    answers = [intake.handle(hl_headers(body), body, source="highlevel") for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert [a.duplicate for a in answers] == [False, True, True]
    assert len(handler.calls) == 1
    assert rows(db) == [("highlevel:message:m-dup", "handled", 3, 1)]


def test_same_message_in_a_new_webhook_is_still_one_message(db: Path, clock: FakeClock) -> None:
    # HighLevel may wrap one message in two webhooks (new webhookId): the key is the message.
    handler = Recorder()
    intake = make_intake(db, clock, handler)
    for webhook_id in ("wh-1", "wh-2"):
        data = json.loads(hl_body("m-7"))
        data.update(webhookId=webhook_id, timestamp=NOW.isoformat())
        body = json.dumps(data).encode()
        assert intake.handle(hl_headers(body), body, source="highlevel").status == 200
    assert len(handler.calls) == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({}, hl_body("m-x"), 401, "SignatureMissing"),
        (
            {"X-GHL-Signature": Ed25519Signer().sign(hl_body("m-x"))},
            hl_body("m-x"),
            401,
            "SignatureInvalid",
        ),
        ({"X-GHL-Signature": SIGNER.sign(b"[]")}, b"[]", 400, "MalformedWebhook"),
        ({"X-GHL-Signature": SIGNER.sign(b"x" * 2000)}, b"x" * 2000, 413, "PayloadTooLarge"),
    ],
    ids=["missing", "forged", "malformed", "oversize"],
)
def test_refusals_store_nothing_and_reach_no_handler(
    db: Path, clock: FakeClock, headers: dict[str, str], body: bytes, status: int, error: str
) -> None:
    handler = Recorder()
    intake = make_intake(db, clock, handler, max_body=1500)
    response = intake.handle(headers, body, source="highlevel")
    assert response.status == status
    assert response.body["error"] == error
    assert response.body["reason"]
    assert handler.calls == []
    assert rows(db) == []


def test_a_failing_handler_gets_the_event_again_later(db: Path, clock: FakeClock) -> None:
    handler = Recorder(fail_times=2)
    intake = make_intake(db, clock, handler, retry_delay=10)
    body = hl_body("m-retry")
    assert intake.handle(hl_headers(body), body, source="highlevel").status == 200  # stored
    assert intake.process_pending() == 0  # backing off: not ready yet
    clock.advance(10)
    assert intake.process_pending() == 0  # second attempt fails too
    clock.advance(20)
    assert intake.process_pending() == 1
    assert [c.attempt for c in handler.calls] == [1, 2, 3]
    assert {c.key for c in handler.calls} == {"highlevel:message:m-retry"}
    assert rows(db)[0][1] == "handled"


def test_a_claim_whose_process_vanished_is_taken_over_after_the_lease(
    db: Path, clock: FakeClock
) -> None:
    handler = Recorder()
    first = make_intake(db, clock, None, lease=30)
    body = hl_body("m-lease")
    first.receive(hl_headers(body), body, source="highlevel")
    assert first.store.claim("highlevel:message:m-lease", owner="dead", lease=30) is not None
    other = make_intake(db, clock, handler, lease=30)
    assert other.process_pending() == 0  # still leased by the dead owner
    clock.advance(31)
    assert other.process_pending() == 1
    assert handler.calls[0].attempt == 2


def test_concurrency_bound_answers_429(db: Path, clock: FakeClock) -> None:
    intake = make_intake(db, clock, None, max_concurrency=1)
    assert intake._slots.acquire(blocking=False)  # one request in flight
    body = hl_body("m-busy")
    response = intake.handle(hl_headers(body), body, source="highlevel")
    assert (response.status, response.body["error"]) == (429, "IntakeBusy")
    assert response.headers["retry-after"] == "1"
    assert rows(db) == []
    intake._slots.release()
    assert intake.handle(hl_headers(body), body, source="highlevel").status == 200


def test_unknown_source_is_404(db: Path, clock: FakeClock) -> None:
    intake = make_intake(db, clock, None)
    body = hl_body("m")
    assert intake.handle(hl_headers(body), body, source="zoho").status == 404
    assert intake.handle(hl_headers(body), body).status == 404  # two sources: must name one


@pytest.mark.anyio
async def test_ahandle_in_async_code(db: Path, clock: FakeClock) -> None:
    seen: list[tuple[str, int]] = []

    async def handler(delivery: InboundDelivery) -> None:
        seen.append((delivery.key, delivery.attempt))

    intake = make_intake(db, clock, handler)
    body = hl_body("m-ahandle")
    first = await intake.ahandle(hl_headers(body), body, source="highlevel")
    second = await intake.ahandle(hl_headers(body), body, source="highlevel")
    assert (first.status, second.duplicate) == (200, True)
    assert seen == [("highlevel:message:m-ahandle", 1)]


def test_async_handler_is_awaited(db: Path, clock: FakeClock) -> None:
    seen: list[str] = []

    async def handler(delivery: InboundDelivery) -> None:
        seen.append(delivery.key)

    intake = make_intake(db, clock, handler)
    body = hl_body("m-async")
    intake.handle(hl_headers(body), body, source="highlevel")
    assert seen == ["highlevel:message:m-async"]


class ServedIntake:
    """The intake's ASGI app on a real loopback HTTP server (uvicorn)."""

    def __init__(self, intake: Intake) -> None:
        from msgbridge.emulator.server import ServerThread

        self.server = ServerThread(intake.asgi())
        self.server.start()
        self.url = self.server.url

    def close(self) -> None:
        self.server.stop()


def test_asgi_app_over_real_http(db: Path, clock: FakeClock) -> None:
    handler = Recorder()
    intake = make_intake(db, clock, handler, max_body=4096)
    served = ServedIntake(intake)
    try:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            body = hl_body("m-http")
            ok = client.post("/highlevel", content=body, headers=hl_headers(body))
            assert ok.status_code == 200
            assert ok.json()["key"] == "highlevel:message:m-http"
            again = client.post("/highlevel", content=body, headers=hl_headers(body))
            assert again.json()["duplicate"] is True
            forged = client.post("/highlevel", content=body, headers={"X-GHL-Signature": "AA=="})
            assert forged.status_code == 401
            assert forged.json()["error"] == "SignatureInvalid"
            big = client.post("/highlevel", content=b"x" * 5000, headers=hl_headers(b"x"))
            assert big.status_code == 413
            chunks = client.post("/highlevel", content=iter([b"x" * 3000, b"y" * 3000]))
            assert chunks.status_code == 413  # no content-length: streamed and cut off
            hs_body = hubspot_outgoing("hs-1")
            stamp = millis(NOW)
            hs = client.post("/hubspot", content=hs_body, headers={
                "X-HubSpot-Signature-v3": hubspot_v3(HS_SECRET, "POST", HS_URL, hs_body, stamp),
                "X-HubSpot-Request-Timestamp": stamp,
            })  # fmt: skip
            assert hs.status_code == 200, hs.text
            assert client.get("/highlevel").status_code == 405
            assert client.post("/nope", content=b"{}").status_code == 404
            # The app answers first and hands over after: wait for it (not a timing test).
            deadline = time.monotonic() + 30
            while len(handler.calls) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        served.close()
    assert sorted(c.key for c in handler.calls) == [
        "highlevel:message:m-http",
        "hubspot:message:hs-1",
    ]
    assert [r[1] for r in rows(db)] == ["handled", "handled"]
