"""The intake on PostgreSQL: one event stored and handled once across many concurrent intakes."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
from msgbridge.inbound import InboundDelivery, InboundStore, Intake

from .signing import HL_SMS_EXAMPLE, Ed25519Signer

pytest.importorskip("psycopg")

# The outbox suite's throwaway-PostgreSQL fixtures, reused rather than copied.
_spec = importlib.util.spec_from_file_location(
    "msgbridge_outbox_test_fixtures", Path(__file__).parents[1] / "outbox" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
pg_server = _fixtures.pg_server
pg_dsn = _fixtures.pg_dsn

SIGNER = Ed25519Signer()


def test_concurrent_intakes_store_and_handle_each_message_once(pg_dsn: str) -> None:
    handled: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(delivery: InboundDelivery) -> None:
        with lock:
            handled[delivery.key] += 1

    intakes = [
        Intake(
            InboundStore(pg_dsn),
            {"highlevel": HighLevelWebhookVerifier(public_key=SIGNER.public_b64)},
            handler,
        )
        for _ in range(4)
    ]
    bodies = []
    for n in range(10):
        data = json.loads(HL_SMS_EXAMPLE)
        data["messageId"] = f"pg-{n}"
        bodies.append(json.dumps(data).encode())
    statuses: list[int] = []

    def deliver(intake: Intake) -> None:
        for body in bodies:  # every intake process receives every webhook: 4 duplicates each
            response = intake.handle({"X-GHL-Signature": SIGNER.sign(body)}, body)
            with lock:
                statuses.append(response.status)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in intakes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 40
    assert handled == Counter({f"highlevel:message:pg-{n}": 1 for n in range(10)})
    assert intakes[0].store.counts() == {"handled": 10}
    for intake in intakes:
        intake.store.close()
