"""Enqueue, coalescing and staleness rules, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgbridge import ConversationUpdate, DeliveryState, MessageStatus, StatusError
from msgbridge.errors import InvalidStatus, MessagingError
from msgbridge.outbox import EnqueueOutcome, Outbox, OutboxStats
from msgbridge.outbox.sql import record_applied

from .conftest import FakeClock

S = DeliveryState


@pytest.fixture(params=["sqlite", "postgresql"])
def box(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Outbox]:
    if request.param == "sqlite":
        target: str = str(tmp_path / "outbox.db")
    else:
        target = request.getfixturevalue("pg_dsn")
    with Outbox(target, clock=clock) as outbox:
        yield outbox


def applied(box: Outbox, connection: str, message_id: str, state: DeliveryState) -> None:
    with box.store.transaction() as tx:
        record_applied(tx, [(connection, message_id, state, state.value, box.clock())])


def pending_states(box: Outbox) -> dict[str, DeliveryState | None]:
    return {p.subject_id: p.state for p in box.pending(limit=10_000)}


def test_first_update_is_enqueued_and_durable(box: Outbox) -> None:
    result = box.enqueue("acme", MessageStatus("m1", "delivered"))
    assert result.outcome is EnqueueOutcome.ENQUEUED
    assert result.accepted
    assert (result.id, result.version, result.pending_state) == (result.id, 1, S.DELIVERED)
    [row] = box.pending()
    assert (row.connection, row.kind, row.subject_id, row.state) == (
        "acme",
        "status",
        "m1",
        S.DELIVERED,
    )
    assert row.update == MessageStatus("m1", "delivered")
    assert row.attempts == 0
    assert row.lease_owner is None


def test_later_state_replaces_and_bumps_version(box: Outbox) -> None:
    first = box.enqueue("acme", MessageStatus("m1", "sent"))
    second = box.enqueue("acme", MessageStatus("m1", "read"))
    assert second.outcome is EnqueueOutcome.REPLACED
    assert (second.id, second.version, second.pending_state) == (first.id, 2, S.READ)
    assert pending_states(box) == {"m1": S.READ}


def test_older_state_is_superseded_and_dropped(box: Outbox) -> None:
    box.enqueue("acme", MessageStatus("m1", "read"))
    result = box.enqueue("acme", MessageStatus("m1", "delivered"))
    assert result.outcome is EnqueueOutcome.SUPERSEDED
    assert not result.accepted
    assert result.pending_state is S.READ
    assert result.detail is not None
    assert "may not follow" in result.detail
    [row] = box.pending()
    assert row.state is S.READ
    assert row.version == 1


def test_failed_after_delivered_is_superseded_but_after_sent_replaces(box: Outbox) -> None:
    box.enqueue("acme", MessageStatus("a", "delivered"))
    box.enqueue("acme", MessageStatus("b", "sent"))
    error = StatusError("carrier rejected", code="30007")
    outcome_a = box.enqueue("acme", MessageStatus("a", "failed", error=error)).outcome
    outcome_b = box.enqueue("acme", MessageStatus("b", "failed", error=error)).outcome
    assert outcome_a is EnqueueOutcome.SUPERSEDED
    assert outcome_b is EnqueueOutcome.REPLACED
    assert pending_states(box) == {"a": S.DELIVERED, "b": S.FAILED}
    rows = {p.subject_id: p for p in box.pending()}
    assert rows["b"].update == MessageStatus("b", "failed", error=error)


def test_same_payload_twice_is_unchanged(box: Outbox) -> None:
    box.enqueue("acme", MessageStatus("m1", "sent"))
    result = box.enqueue("acme", MessageStatus("m1", "sent"))
    assert result.outcome is EnqueueOutcome.UNCHANGED
    assert result.accepted
    assert result.version == 1


def test_replacement_keeps_addressing_ids_it_lacks(box: Outbox) -> None:
    box.enqueue("hs", MessageStatus("m1", "sent", channel_id="7", conversation_id="c9"))
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    box.enqueue("hs", MessageStatus("m1", "read", occurred_at=at))
    [row] = box.pending()
    assert row.update == MessageStatus(
        "m1", "read", occurred_at=at, channel_id="7", conversation_id="c9"
    )


def test_keys_are_per_connection_and_kind(box: Outbox) -> None:
    box.enqueue("acme", MessageStatus("x", "read"))
    box.enqueue("other", MessageStatus("x", "sent"))
    box.enqueue("acme", ConversationUpdate("x", unread_count=0))
    rows = {(p.connection, p.kind): p.state for p in box.pending()}
    assert rows == {
        ("acme", "status"): S.READ,
        ("other", "status"): S.SENT,
        ("acme", "conversation"): None,
    }


def test_conversation_updates_merge_later_non_null_wins(box: Outbox) -> None:
    box.enqueue("acme", ConversationUpdate("c1", unread_count=3, account_id="loc-1"))
    box.enqueue("acme", ConversationUpdate("c1", starred=True))
    result = box.enqueue("acme", ConversationUpdate("c1", unread_count=0))
    assert result.outcome is EnqueueOutcome.MERGED
    assert result.version == 3
    [row] = box.pending()
    assert row.update == ConversationUpdate("c1", account_id="loc-1", unread_count=0, starred=True)


def test_stale_against_applied_is_refused(box: Outbox) -> None:
    applied(box, "acme", "m1", S.READ)
    result = box.enqueue("acme", MessageStatus("m1", "delivered"))
    assert result.outcome is EnqueueOutcome.STALE
    assert result.applied_state is S.READ
    assert result.id is None
    assert box.pending() == []


def test_same_as_applied_is_a_duplicate(box: Outbox) -> None:
    applied(box, "acme", "m1", S.DELIVERED)
    assert box.enqueue("acme", MessageStatus("m1", "delivered")).outcome is (
        EnqueueOutcome.DUPLICATE
    )
    assert box.enqueue("acme", MessageStatus("m1", "read")).outcome is EnqueueOutcome.ENQUEUED


def test_failed_after_applied_failed_is_a_duplicate_and_read_is_stale(box: Outbox) -> None:
    applied(box, "acme", "m1", S.FAILED)
    error = StatusError("again")
    assert box.enqueue("acme", MessageStatus("m1", "failed", error=error)).outcome is (
        EnqueueOutcome.DUPLICATE
    )
    assert box.enqueue("acme", MessageStatus("m1", "read")).outcome is EnqueueOutcome.STALE


@pytest.mark.parametrize(
    ("connection", "update", "field"),
    [
        ("", MessageStatus("m1", "sent"), "connection"),
        ("a\nb", MessageStatus("m1", "sent"), "connection"),
        (42, MessageStatus("m1", "sent"), "connection"),
        ("acme", {"message_id": "m1", "state": "sent"}, None),
        ("acme", "delivered", None),
    ],
)
def test_invalid_input_raises_before_touching_the_database(
    box: Outbox, connection: object, update: object, field: str | None
) -> None:
    with pytest.raises(InvalidStatus) as caught:
        box.enqueue(connection, update)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert isinstance(caught.value, MessagingError)
    assert box.pending() == []


def test_a_mutated_update_is_revalidated(box: Outbox) -> None:
    status = MessageStatus("m1", "sent")
    object.__setattr__(status, "message_id", "")  # what a buggy caller could do
    with pytest.raises(InvalidStatus, match="message_id"):
        box.enqueue("acme", status)
    assert box.pending() == []


def test_enqueue_many_is_one_transaction_and_checks_everything_first(box: Outbox) -> None:
    items = [("acme", MessageStatus(f"m{i}", "sent")) for i in range(50)]
    with pytest.raises(InvalidStatus):
        box.enqueue_many([*items, ("acme", "nonsense")])  # type: ignore[list-item]
    assert box.pending() == []
    results = box.enqueue_many([*items, ("acme", MessageStatus("m0", "read"))])
    assert [r.outcome for r in results[:50]] == [EnqueueOutcome.ENQUEUED] * 50
    assert results[50].outcome is EnqueueOutcome.REPLACED
    assert len(box.pending(limit=100)) == 50


def test_coalescing_follows_may_follow_for_every_ordered_pair(box: Outbox) -> None:
    for index, (first, second) in enumerate(itertools.product(S, repeat=2)):
        message_id = f"m{index}"
        box.enqueue("acme", MessageStatus(message_id, first))
        outcome = box.enqueue("acme", MessageStatus(message_id, second)).outcome
        if first is second:
            assert outcome is EnqueueOutcome.UNCHANGED
        elif second.may_follow(first):
            assert outcome is EnqueueOutcome.REPLACED
        else:
            assert outcome is EnqueueOutcome.SUPERSEDED
        expected = second if second.may_follow(first) else first
        assert pending_states(box)[message_id] is expected


def test_stats_count_by_connection_and_state(box: Outbox, clock: FakeClock) -> None:
    box.enqueue("acme", MessageStatus("m1", "sent"))
    box.enqueue("acme", MessageStatus("m2", "sent"))
    box.enqueue("acme", MessageStatus("m3", "read"))
    box.enqueue("hs", ConversationUpdate("c1", starred=True))
    clock.advance(30)
    stats = box.stats()
    assert isinstance(stats, OutboxStats)
    table = {(r.connection, r.state): (r.ready, r.pending, r.dead) for r in stats.rows}
    assert table == {
        ("acme", "sent"): (2, 2, 0),
        ("acme", "read"): (1, 1, 0),
        ("hs", "conversation"): (1, 1, 0),
    }
    assert stats.pending == 4
    assert stats.dead == 0
    assert stats.oldest_pending_age == pytest.approx(30)
    assert stats.by_connection()["acme"]["pending"] == 3


def test_prune_applied_forgets_old_states(box: Outbox, clock: FakeClock) -> None:
    applied(box, "acme", "old", S.READ)
    clock.advance(3600)
    applied(box, "acme", "new", S.READ)
    assert box.prune_applied(older_than=1800) == 1
    assert box.enqueue("acme", MessageStatus("old", "delivered")).outcome is (
        EnqueueOutcome.ENQUEUED
    )
    assert box.enqueue("acme", MessageStatus("new", "delivered")).outcome is EnqueueOutcome.STALE


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: ("\ud800", MessageStatus("m1", "sent")), id="connection"),
        pytest.param(lambda: ("acme", MessageStatus("m\ud800", "sent")), id="message-id"),
        pytest.param(
            lambda: ("acme", MessageStatus("m1", "failed", error=StatusError("x\udc00"))),
            id="error-text",
        ),
        pytest.param(lambda: ("acme\u202e", MessageStatus("m1", "sent")), id="bidi-name"),
    ],
)
def test_lone_surrogates_are_invalid_status_not_unicode_errors(box: Outbox, make: Any) -> None:
    """Issue 10: a lone surrogate (from JSON's "\\ud800") raised a raw UnicodeEncodeError
    from the database driver on main; now it is refused, typed, before any write."""
    with pytest.raises(InvalidStatus) as info:
        box.enqueue(*make())
    assert "U+" in info.value.message
    assert box.pending() == []
