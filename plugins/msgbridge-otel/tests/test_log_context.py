"""msgbridge's log records carry connection, adapter and subject id as ``extra`` fields,
so a structured handler (JSON, OpenTelemetry's LoggingHandler) gets them as attributes."""

from __future__ import annotations

import logging

import pytest

from msgbridge import Bridge, Connection, MessageStatus, Outcome, RetryPolicy
from msgbridge.adapter import Operation
from msgbridge.auth import BearerToken
from msgbridge.events import DeliveryAttempt
from msgbridge.registry import AdapterRegistry


def _fields(record: logging.LogRecord) -> tuple[str, str, str]:
    return (
        record.__dict__["connection"],
        record.__dict__["adapter"],
        record.__dict__["subject_id"],
    )


def test_retry_and_give_up_records_carry_the_delivery(caplog: pytest.LogCaptureFixture) -> None:
    connection = Connection(
        "down",
        adapter="highlevel",
        credentials=BearerToken("t"),
        settings={"base_url": "http://127.0.0.1:9/highlevel", "location_id": "loc"},
    )
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, jitter=0.0)
    caplog.set_level(logging.INFO, logger="msgbridge")
    with Bridge([connection], retry=retry) as bridge:
        receipts = list(bridge.update_many([("down", MessageStatus("m-7", "read"))]))
    assert receipts[0].outcome is Outcome.FAILED
    records = [r for r in caplog.records if r.name == "msgbridge" and "attempt" in r.msg]
    assert [r.levelname for r in records] == ["INFO", "WARNING"]
    assert all(_fields(r) == ("down", "highlevel", "m-7") for r in records)


def test_a_failing_observer_is_logged_with_the_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = AdapterRegistry()

    def broken(event: DeliveryAttempt) -> None:
        raise RuntimeError("observer bug")

    registry.add_observer(broken)
    event = DeliveryAttempt(
        connection="acme",
        adapter="highlevel",
        operation=Operation.UPDATE_STATUS,
        subject_id="m-1",
        attempt=1,
        http_status=200,
        elapsed=0.1,
    )
    with caplog.at_level(logging.ERROR, logger="msgbridge"):
        registry.notify(event)
    [record] = caplog.records
    assert _fields(record) == ("acme", "highlevel", "m-1")
