"""Publishing through the outbox (kind ``inbound``), on SQLite and PostgreSQL, against the
emulator over loopback: each message applied once, the ambiguous HighLevel outcome
dead-lettered (never resent), requeue, the CLI showing the kind, and schema v2 → v3."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from msgbridge import BearerToken, Connection, MessageStatus
from msgbridge.cli.outbox_cmd import outbox_app
from msgbridge.emulator import Emulator
from msgbridge.errors import InvalidStatus
from msgbridge.inbound import IncomingMessage, Party
from msgbridge.model import ConversationUpdate
from msgbridge.outbox import EnqueueOutcome, Outbox
from msgbridge.outbox.postgres import _COMPONENT as PG_COMPONENT
from msgbridge.outbox.schema import MIGRATIONS
from msgbridge.outbox.store import APPLICATION_ID, SCHEMA_VERSION
from msgbridge.retry import RetryPolicy

from .conftest import LOCATION, FakeClock, make_worker


def hl(emu: Emulator) -> Connection:
    return Connection(
        "hl",
        adapter="highlevel",
        credentials=BearerToken("demo-highlevel-token"),
        settings={"base_url": emu.base_url("highlevel"), "version": "2021-04-15",
                  "location_id": LOCATION, "conversation_provider_id": "prov-1"},
    )  # fmt: skip


def hs(emu: Emulator) -> Connection:
    return Connection(
        "hs",
        adapter="hubspot",
        credentials=BearerToken("hs-token"),
        settings={"base_url": emu.base_url("hubspot"), "channel_id": 3001,
                  "channel_account_id": "55"},
    )  # fmt: skip


def sms(message_id: str, text: str = "Thanks") -> IncomingMessage:
    return IncomingMessage(message_id, "sms", contact_id="c-1", text=text)


def chat(message_id: str) -> IncomingMessage:
    return IncomingMessage(message_id, "custom", text="Hi", sender=Party("+1555", kind="phone"))


@pytest.fixture
def emu_hs(emu: Emulator) -> Emulator:
    emu.add_token("hubspot", "hs-token", account="900")
    return emu


@pytest.fixture(params=["sqlite", "postgresql"])
def box(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Outbox]:
    target: Any = tmp_path / "outbox.db"
    if request.param == "postgresql":
        target = request.getfixturevalue("pg_dsn")
    with Outbox(target, clock=clock) as outbox:
        yield outbox


def published(emu: Emulator) -> list[str]:
    return sorted(m["body"]["altId"] for m in emu.inbound_messages("highlevel"))


def test_publishes_are_applied_once_each_and_never_coalesced(
    box: Outbox, emu_hs: Emulator, clock: FakeClock
) -> None:
    results = [box.publish("hl", sms(f"sms-{n}")) for n in range(3)]
    results += [box.publish("hs", chat(f"chat-{n}")) for n in range(2)]
    assert [r.outcome for r in results] == [EnqueueOutcome.ENQUEUED] * 5
    assert {r.kind for r in results} == {"inbound"}
    # the same message again is the same row; another message under its id is refused
    again = box.publish("hl", sms("sms-0"))
    assert (again.outcome, again.id) == (EnqueueOutcome.UNCHANGED, results[0].id)
    clash = box.publish("hl", sms("sms-0", text="something else"))
    assert clash.outcome is EnqueueOutcome.DUPLICATE
    assert not clash.accepted
    assert "already pending" in (clash.detail or "")
    stats = box.stats()
    assert [(r.connection, r.kind, r.state, r.ready) for r in stats.rows] == [
        ("hl", "inbound", "inbound", 3),
        ("hs", "inbound", "inbound", 2),
    ]
    pending = box.pending()
    assert {p.update for p in pending} == {*(sms(f"sms-{n}") for n in range(3)),
                                           *(chat(f"chat-{n}") for n in range(2))}  # fmt: skip

    with make_worker(box, [hl(emu_hs), hs(emu_hs)], clock) as worker:
        report = worker.drain()
    assert (report.applied, report.dead, report.retried) == (5, 0, 0)
    assert published(emu_hs) == ["sms-0", "sms-1", "sms-2"]
    assert [m["body"]["text"] for m in emu_hs.inbound_messages("hubspot")] == ["Hi", "Hi"]
    assert box.pending() == []
    assert box.dead_letters() == []


def test_publish_refuses_what_is_not_a_message_before_touching_the_database(
    box: Outbox,
) -> None:
    with pytest.raises(InvalidStatus, match="IncomingMessage"):
        box.publish("hl", MessageStatus("m1", "read"))  # type: ignore[arg-type]
    with pytest.raises(InvalidStatus, match="connection"):
        box.publish("", sms("x"))
    assert box.pending() == []


def test_ambiguous_highlevel_outcome_is_dead_lettered_not_resent(
    box: Outbox, emu: Emulator, clock: FakeClock
) -> None:
    # Applied, then the connection drops: the worker must not publish it a second time.
    emu.faults.drop(vendor="highlevel", route="add_inbound_message", after=True)
    box.publish("hl", sms("sms-1"))
    with make_worker(box, [hl(emu)], clock, retry=box_retry()) as worker:
        report = worker.drain()
    assert (report.applied, report.retried, report.dead) == (0, 0, 1)
    assert published(emu) == ["sms-1"]  # exactly one, despite the failure
    (letter,) = box.dead_letters()
    assert (letter.kind, letter.error_type, letter.attempts) == ("inbound", "OutcomeUnknown", 1)
    assert "did not retry it to avoid a duplicate" in letter.reason
    assert letter.update == sms("sms-1")
    assert [(r.kind, r.dead) for r in box.stats().rows] == [("inbound", 1)]


def test_requeue_of_an_ambiguous_publish_sends_it_again(
    box: Outbox, emu: Emulator, clock: FakeClock
) -> None:
    # Dropped before HighLevel applied it: the operator checks, then requeues.
    emu.faults.drop(vendor="highlevel", route="add_inbound_message", count=1)
    box.publish("hl", sms("sms-1"))
    with make_worker(box, [hl(emu)], clock, retry=box_retry()) as worker:
        assert worker.drain().dead == 1
        assert published(emu) == []
        (letter,) = box.dead_letters()
        requeued = box.requeue(letter.id)
        assert requeued[letter.id].outcome is EnqueueOutcome.ENQUEUED
        assert worker.drain().applied == 1
    assert published(emu) == ["sms-1"]
    assert box.dead_letters() == []


def test_hubspot_publish_after_a_dropped_answer_is_one_message(
    box: Outbox, emu_hs: Emulator, clock: FakeClock
) -> None:
    emu_hs.faults.drop(vendor="hubspot", route="publish", count=1, after=True)
    box.publish("hs", chat("chat-1"))
    with make_worker(box, [hs(emu_hs)], clock, retry=box_retry()) as worker:
        report = worker.drain()
    # the worker's bridge makes one attempt; the outbox retries with the same idempotency id
    assert (report.applied, report.retried, report.dead) == (1, 1, 0)
    assert len(emu_hs.inbound_messages("hubspot")) == 1


def test_a_connect_failure_is_rescheduled_then_published(
    box: Outbox, emu: Emulator, clock: FakeClock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = Connection(
        "hl",
        adapter="highlevel",
        credentials=BearerToken("demo-highlevel-token"),
        settings={**hl(emu).settings, "base_url": f"http://127.0.0.1:{port}"},
    )
    box.publish("hl", sms("sms-1"))
    with make_worker(box, [refused], clock, retry=box_retry()) as worker:
        report = worker.run_once()
    assert (report.retried, report.dead) == (1, 0)  # nothing was sent: safe to retry
    (row,) = box.pending()
    assert row.last_error is not None
    assert row.last_error.startswith("ConnectFailed")
    with make_worker(box, [hl(emu)], clock, retry=box_retry()) as worker:
        assert worker.drain().applied == 1
    assert published(emu) == ["sms-1"]


def box_retry() -> RetryPolicy:
    """The outbox's retries across batches (the worker's bridge makes one attempt)."""
    return RetryPolicy(max_attempts=5, initial_backoff=1.0, jitter=0.0)


# -- the CLI shows the kind ---------------------------------------------------------------------

root = typer.Typer(add_completion=False, rich_markup_mode=None)


@root.callback()
def _root() -> None:
    """The stand-in for the msgbridge app."""


root.add_typer(outbox_app, name="outbox")


def test_cli_status_and_dead_show_the_kind(tmp_path: Path, emu: Emulator, clock: FakeClock) -> None:
    db = tmp_path / "cli.db"
    emu.faults.drop(vendor="highlevel", route="add_inbound_message", count=1)
    with Outbox(db, clock=clock) as outbox:
        outbox.enqueue("hl", MessageStatus("m1", "read"))
        outbox.publish("hl", sms("sms-1"))
        with make_worker(outbox, [hl(emu)], clock, retry=box_retry()) as worker:
            worker.run_once()  # the publish is dropped (dead letter), the status applied
        outbox.publish("hl", sms("sms-2"))
        outbox.enqueue("hl", MessageStatus("m3", "delivered"))

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(
            root, ["outbox", *args, "--db", str(db)], env={"COLUMNS": "200"},
            catch_exceptions=False,
        )  # fmt: skip
        assert result.exit_code == 0, result.stdout
        return result.stdout

    status = json.loads(invoke("status", "--json"))
    kinds = {(r["kind"], r["state"]): (r["ready"], r["dead"]) for r in status["rows"]}
    assert kinds == {("inbound", "inbound"): (1, 1), ("status", "delivered"): (1, 0)}
    table = invoke("status")
    assert "kind" in table
    assert "inbound" in table
    dead = json.loads(invoke("dead", "--json"))["dead_letters"]
    assert [(d["kind"], d["subject_id"], d["error_type"]) for d in dead] == [
        ("inbound", "sms-1", "OutcomeUnknown")
    ]
    listing = invoke("dead")
    assert "inbound" in listing
    assert "OutcomeUnknown" in listing


# -- schema v2 → v3 ------------------------------------------------------------------------------


def _v2_rows() -> list[tuple[str, str]]:
    """Statements (``%s`` placeholders) that put a retrying status, a leased conversation
    update and a dead letter into a version-2 outbox: every kind version 2 knew."""
    columns = (
        "INSERT INTO msgbridge_outbox (connection, kind, subject_id, state, payload, version, "
        "attempts, created_at, updated_at, available_at, lease_owner, lease_until, last_error, "
        "fence) VALUES "
    )
    return [
        (
            columns + "('hl', 'status', 'm1', 'read', %s, 2, 1, 10, 11, 12, NULL, NULL, 'boom', "
            "NULL)",
            json.dumps({"message_id": "m1", "state": "read"}),
        ),
        (
            columns + "('hl', 'conversation', 'c1', NULL, %s, 1, 0, 10, 10, 99, 'w1', 99, NULL, 4)",
            json.dumps({"conversation_id": "c1", "unread_count": 0}),
        ),
        (
            "INSERT INTO msgbridge_dead_letters (connection, kind, subject_id, state, payload, "
            "attempts, reason, error_type, http_status, trace_id, created_at, failed_at) "
            "VALUES ('hl', 'status', 'm2', 'sent', %s, 3, 'gave up', 'NotFound', 404, NULL, 1, 2)",
            json.dumps({"message_id": "m2", "state": "sent"}),
        ),
    ]


_BOGUS = (
    "INSERT INTO msgbridge_outbox (connection, kind, subject_id, payload, created_at, "
    "updated_at, available_at) VALUES ('hl', 'bogus', 'x', '{}', 0, 0, 0)"
)


def _check_migrated(outbox: Outbox) -> None:
    assert outbox.store.schema_version == SCHEMA_VERSION == 3
    pending = {p.subject_id: p for p in outbox.pending()}
    assert set(pending) == {"m1", "c1"}
    assert pending["m1"].update == MessageStatus("m1", "read")
    assert (pending["m1"].version, pending["m1"].attempts) == (2, 1)
    assert pending["m1"].last_error == "boom"
    assert pending["c1"].update == ConversationUpdate("c1", unread_count=0)
    assert (pending["c1"].lease_owner, pending["c1"].lease_until) == ("w1", 99.0)
    (letter,) = outbox.dead_letters()
    assert (letter.subject_id, letter.error_type, letter.http_status) == ("m2", "NotFound", 404)
    result = outbox.publish("hl", sms("sms-1"))
    assert result.outcome is EnqueueOutcome.ENQUEUED
    assert result.id not in {p.id for p in pending.values()}
    assert {p.kind for p in outbox.pending()} == {"status", "conversation", "inbound"}


def test_sqlite_v2_database_migrates_to_v3_keeping_its_rows(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS["sqlite"][:2]:
        for statement in step:
            conn.execute(statement)
    for statement, payload in _v2_rows():
        conn.execute(statement.replace("%s", "?"), (payload,))
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 2")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # what v2 could not hold
        conn.execute(_BOGUS.replace("'bogus'", "'inbound'"))
    conn.close()

    with Outbox(path, clock=clock) as outbox:
        _check_migrated(outbox)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(msgbridge_outbox)")}
        assert "msgbridge_outbox_ready" in indexes
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "msgbridge_outbox_v3" not in tables
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(_BOGUS)
    finally:
        conn.close()


def test_postgres_v2_database_migrates_to_v3_keeping_its_rows(
    pg_dsn: str, clock: FakeClock
) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE msgbridge_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        for step in MIGRATIONS["postgresql"][:2]:
            for statement in step:
                conn.execute(statement.encode())
        for statement, payload in _v2_rows():
            conn.execute(statement.encode(), (payload,))
        conn.execute("INSERT INTO msgbridge_schema VALUES (%s, 2)", (PG_COMPONENT,))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(_BOGUS.replace("'bogus'", "'inbound'").encode())
    with Outbox(pg_dsn, clock=clock) as outbox:
        _check_migrated(outbox)
    with (
        psycopg.connect(pg_dsn, autocommit=True) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute(_BOGUS.encode())
