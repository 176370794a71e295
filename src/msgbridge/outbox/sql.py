"""The outbox's SQL, shared by both dialects (each function runs inside one ``Tx``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from msgbridge.errors import InvalidStatus
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus
from msgbridge.outbox.codec import (
    Encoded,
    decode,
    encode_update,
    merge_conversation,
    replace_status,
)
from msgbridge.outbox.errors import StorageError
from msgbridge.outbox.model import (
    INBOUND,
    STATUS,
    DeadLetter,
    EnqueueOutcome,
    EnqueueResult,
    PendingUpdate,
    StatsRow,
    Update,
)
from msgbridge.outbox.store import Row, Tx

#: (connection, message id)
MessageKey = tuple[str, str]

__all__ = [
    "LeasedRow",
    "applied_for",
    "enqueue",
]


def state_or_none(value: object) -> DeliveryState | None:
    if value is None:
        return None
    try:
        return DeliveryState(value)
    except ValueError:
        return None


def _result(enc: Encoded, outcome: EnqueueOutcome, **fields: Any) -> EnqueueResult:
    return EnqueueResult(
        outcome, connection=enc.connection, kind=enc.kind, subject_id=enc.subject_id, **fields
    )


_SELECT_PENDING = (
    "SELECT id, state, payload, version FROM msgbridge_outbox "
    "WHERE connection = ? AND kind = ? AND subject_id = ?"
)


def enqueue(tx: Tx, enc: Encoded, now: float) -> EnqueueResult:
    """Coalesce *enc* into the pending row for its key (see :meth:`Outbox.enqueue`)."""
    applied: DeliveryState | None = None
    if enc.kind == STATUS:
        assert enc.state is not None
        row = tx.fetchone(
            "SELECT state FROM msgbridge_applied WHERE connection = ? AND message_id = ?",
            (enc.connection, enc.subject_id),
        )
        applied = state_or_none(row[0]) if row is not None else None
        if applied is not None:
            if not enc.state.may_follow(applied):
                return _result(
                    enc,
                    EnqueueOutcome.STALE,
                    applied_state=applied,
                    detail=f"{enc.state.value!r} may not follow the applied {applied.value!r}",
                )
            if enc.state is applied:
                return _result(
                    enc,
                    EnqueueOutcome.DUPLICATE,
                    applied_state=applied,
                    detail=f"{applied.value!r} is already applied",
                )
    key = (enc.connection, enc.kind, enc.subject_id)
    state = enc.state.value if enc.state is not None else None
    # Insert first: most updates find no pending row (the previous one was delivered).
    for _ in range(3):
        inserted = tx.fetchone(
            "INSERT INTO msgbridge_outbox (connection, kind, subject_id, state, payload, "
            "created_at, updated_at, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (connection, kind, subject_id) DO NOTHING RETURNING id, version",
            (*key, state, enc.payload, now, now, now),
        )
        if inserted is not None:
            return _result(
                enc,
                EnqueueOutcome.ENQUEUED,
                id=int(inserted[0]),
                version=int(inserted[1]),
                pending_state=enc.state,
                applied_state=applied,
            )
        pending = tx.fetchone(_SELECT_PENDING + tx.for_update, key)
        if pending is not None:
            break
        # PostgreSQL: the conflicting row was deleted meanwhile (delivered); insert again.
    else:  # pragma: no cover - three lost races in a row
        raise StorageError("enqueue kept racing with concurrent deliveries; try again")
    row_id, _, old_payload, version = int(pending[0]), pending[1], str(pending[2]), int(pending[3])
    if enc.kind == INBOUND:
        # Publishes are never coalesced: the id is the message's identity.
        if enc.payload == old_payload:
            return _result(enc, EnqueueOutcome.UNCHANGED, id=row_id, version=version)
        return _result(
            enc,
            EnqueueOutcome.DUPLICATE,
            id=row_id,
            version=version,
            detail=f"another message with id {enc.subject_id!r} is already pending for "
            "publishing; message ids must be unique per connection",
        )
    try:
        old: Update | None = decode(enc.kind, old_payload)
    except InvalidStatus:
        old = None  # a damaged pending payload is replaced whole
    merged: Update
    if isinstance(enc.update, MessageStatus):
        outcome = EnqueueOutcome.REPLACED
        if isinstance(old, MessageStatus):
            if not enc.update.state.may_follow(old.state):
                return _result(
                    enc,
                    EnqueueOutcome.SUPERSEDED,
                    id=row_id,
                    version=version,
                    pending_state=old.state,
                    applied_state=applied,
                    detail=f"{enc.update.state.value!r} may not follow the pending "
                    f"{old.state.value!r}",
                )
            merged = replace_status(old, enc.update)
        else:
            merged = enc.update
    else:
        assert isinstance(enc.update, ConversationUpdate)
        outcome = EnqueueOutcome.MERGED
        merged = (
            merge_conversation(old, enc.update)
            if isinstance(old, ConversationUpdate)
            else enc.update
        )
    payload = encode_update(merged)
    new_state = merged.state if isinstance(merged, MessageStatus) else None
    if payload == old_payload:
        return _result(
            enc,
            EnqueueOutcome.UNCHANGED,
            id=row_id,
            version=version,
            pending_state=new_state,
            applied_state=applied,
        )
    tx.execute(
        "UPDATE msgbridge_outbox SET state = ?, payload = ?, version = version + 1, "
        "attempts = 0, updated_at = ? WHERE id = ?",
        (new_state.value if new_state is not None else None, payload, now, row_id),
    )
    return _result(
        enc,
        outcome,
        id=row_id,
        version=version + 1,
        pending_state=new_state,
        applied_state=applied,
    )


# -- leasing and completing -------------------------------------------------------------------


@attrs.define
class LeasedRow:
    id: int
    connection: str
    kind: str
    subject_id: str
    state: DeliveryState | None
    payload: str
    version: int
    attempts: int
    created_at: float
    #: The connection lease's fence under which the row was leased (``None``: no lease).
    fence: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> LeasedRow:
        return cls(
            id=int(row[0]),
            connection=str(row[1]),
            kind=str(row[2]),
            subject_id=str(row[3]),
            state=state_or_none(row[4]),
            payload=str(row[5]),
            version=int(row[6]),
            attempts=int(row[7]),
            created_at=float(row[8]),
            fence=int(row[9]) if len(row) > 9 and row[9] is not None else None,
        )

    @property
    def fence_value(self) -> int:
        """The fence as matched by :data:`HELD` (``-1`` for a row leased without one)."""
        return self.fence if self.fence is not None else -1


def applied_for(tx: Tx, ids: Sequence[int]) -> dict[int, tuple[DeliveryState, str]]:
    """Applied (state, vendor value) of the status rows *ids*, keyed by row id."""
    if not ids:
        return {}
    rows = tx.fetchall(
        "SELECT o.id, a.state, a.vendor_value FROM msgbridge_outbox o "  # noqa: S608
        "JOIN msgbridge_applied a ON a.connection = o.connection AND a.message_id = o.subject_id "
        f"WHERE o.kind = 'status' AND o.id {tx.in_list}",
        (tx.id_list(list(ids)),),
    )
    result: dict[int, tuple[DeliveryState, str]] = {}
    for row_id, state, vendor_value in rows:
        known = state_or_none(state)
        if known is not None:
            result[int(row_id)] = (known, str(vendor_value))
    return result


def applied_one(tx: Tx, connection: str, message_id: str) -> tuple[DeliveryState, str] | None:
    row = tx.fetchone(
        "SELECT state, vendor_value FROM msgbridge_applied WHERE connection = ? AND message_id = ?",
        (connection, message_id),
    )
    if row is None:
        return None
    state = state_or_none(row[0])
    return (state, str(row[1])) if state is not None else None


#: SQL: ``state_new`` may follow ``state_old`` (:meth:`DeliveryState.may_follow`).
def may_follow_sql(new: str, old: str) -> str:
    rank = (
        "CASE {0} WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 "
        "WHEN 'failed' THEN 2 WHEN 'read' THEN 3 ELSE -1 END"
    )
    return (
        f"(CASE WHEN {old} = 'failed' THEN {new} = 'failed' "
        f"WHEN {new} = 'failed' THEN {old} IN ('pending', 'sent', 'failed') "
        f"ELSE {rank.format(new)} >= {rank.format(old)} END)"
    )


_RECORD = (
    "INSERT INTO msgbridge_applied (connection, message_id, state, vendor_value, applied_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (connection, message_id) DO UPDATE SET "
    "state = excluded.state, vendor_value = excluded.vendor_value, "
    "applied_at = excluded.applied_at WHERE "
    + may_follow_sql("excluded.state", "msgbridge_applied.state")
)


def record_applied(tx: Tx, records: Iterable[tuple[str, str, DeliveryState, str, float]]) -> None:
    """Store applied states; monotonic: a state that may not follow the stored one is
    ignored, so two processes recording out of order never move a message backwards."""
    tx.executemany(_RECORD, [(c, m, s.value, v, t) for c, m, s, v, t in records])


#: The WHERE fragment (with :func:`_held`'s parameters) that says "this worker still holds
#: the row under the lease it was sent with": the owner *and* the connection lease's fence.
HELD = "lease_owner = ? AND COALESCE(fence, -1) = ?"


def _held(row: LeasedRow, owner: str) -> tuple[str, int]:
    return (owner, row.fence_value)


def finish(tx: Tx, row: LeasedRow, owner: str, now: float) -> str:
    """The row was delivered (or needs no delivery): ``"done"``, ``"released"`` or ``"lost"``."""
    if tx.execute(
        f"DELETE FROM msgbridge_outbox WHERE id = ? AND version = ? AND {HELD}",  # noqa: S608
        (row.id, row.version, *_held(row, owner)),
    ):
        return "done"
    return release(tx, row, owner, now)


def release(tx: Tx, row: LeasedRow, owner: str, now: float, *, unsent: bool = True) -> str:
    """Give the row back (a newer version is pending, or it was not sent):
    ``"released"`` or ``"lost"``. ``unsent=False`` when it may have been sent (no
    receipt): its ``sent_at`` stays, so a publish that must not repeat is not resent."""
    sent = "sent_at = NULL, " if unsent else ""
    changed = tx.execute(
        f"UPDATE msgbridge_outbox SET {sent}lease_owner = NULL, lease_until = NULL, "  # noqa: S608
        f"available_at = ? WHERE id = ? AND {HELD}",
        (now, row.id, *_held(row, owner)),
    )
    return "released" if changed else "lost"


def mark_sending(tx: Tx, rows: Sequence[LeasedRow], owner: str, now: float) -> None:
    """Record, before the requests go out, that these publishes are being sent."""
    tx.executemany(
        f"UPDATE msgbridge_outbox SET sent_at = ? WHERE id = ? AND {HELD}",  # noqa: S608
        [(now, row.id, *_held(row, owner)) for row in rows],
    )


def interrupted(tx: Tx, ids: Sequence[int]) -> set[int]:
    """Which of the publish rows *ids* were being sent by a worker that never settled them."""
    if not ids:
        return set()
    rows = tx.fetchall(
        "SELECT id FROM msgbridge_outbox "  # noqa: S608
        f"WHERE sent_at IS NOT NULL AND id {tx.in_list}",
        (tx.id_list(list(ids)),),
    )
    return {int(r[0]) for r in rows}


def reschedule(tx: Tx, row: LeasedRow, owner: str, at: float, error: str, now: float) -> bool:
    return bool(
        tx.execute(
            "UPDATE msgbridge_outbox SET attempts = attempts + 1, available_at = ?, "  # noqa: S608
            "lease_owner = NULL, lease_until = NULL, last_error = ?, updated_at = ?, "
            "sent_at = NULL "
            f"WHERE id = ? AND {HELD}",
            (at, error[:4000], now, row.id, *_held(row, owner)),
        )
    )


def bury(
    tx: Tx,
    row: LeasedRow,
    owner: str,
    now: float,
    *,
    reason: str,
    error_type: str | None,
    http_status: int | None,
    trace_id: str | None,
) -> str:
    """Dead-letter the leased payload: ``"dead"``, ``"dead+released"`` or ``"lost"``."""
    held = tx.fetchone(
        f"SELECT version FROM msgbridge_outbox WHERE id = ? AND {HELD}"  # noqa: S608
        + tx.for_update,
        (row.id, *_held(row, owner)),
    )
    if held is None:
        return "lost"
    tx.execute(
        "INSERT INTO msgbridge_dead_letters (connection, kind, subject_id, state, payload, "
        "attempts, reason, error_type, http_status, trace_id, created_at, failed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.connection,
            row.kind,
            row.subject_id,
            row.state.value if row.state is not None else None,
            row.payload,
            row.attempts + 1,
            reason[:4000],
            error_type,
            http_status,
            trace_id,
            row.created_at,
            now,
        ),
    )
    if int(held[0]) == row.version:
        tx.execute("DELETE FROM msgbridge_outbox WHERE id = ?", (row.id,))
        return "dead"
    release(tx, row, owner, now)
    return "dead+released"


def extend(tx: Tx, rows: Sequence[LeasedRow], owner: str, until: float) -> int:
    """Extend the leases of *rows* still held (owner and fence); returns how many."""
    changed = 0
    by_fence: dict[int, list[int]] = {}
    for row in rows:
        by_fence.setdefault(row.fence_value, []).append(row.id)
    for fence, ids in by_fence.items():
        changed += tx.execute(
            "UPDATE msgbridge_outbox SET lease_until = ?, available_at = ? "  # noqa: S608
            f"WHERE lease_owner = ? AND COALESCE(fence, -1) = ? AND id {tx.in_list}",
            (until, until, owner, fence, tx.id_list(ids)),
        )
    return changed


# -- a worker batch's claims (PersistentGuard's msgbridge_claims) -----------------------------

Keys = Sequence[tuple[str, str]]


def _by_connection(keys: Keys) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for connection, message_id in keys:
        grouped.setdefault(connection, []).append(message_id)
    return grouped


def claim_batch(
    tx: Tx, keys: Keys, holder: str, now: float, until: float
) -> dict[MessageKey, float]:
    """Claim the messages *keys* for a worker batch (*holder*) where no one else holds a
    live claim; returns the others' claims (message → until). On PostgreSQL the upsert
    waits for a plain bridge's uncommitted claim, so one of the two always sees the other."""
    if not keys:
        return {}
    tx.executemany(
        "INSERT INTO msgbridge_claims (connection, message_id, holder, until) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (connection, message_id) DO UPDATE SET "
        "holder = excluded.holder, until = excluded.until WHERE "
        "msgbridge_claims.holder IS NULL OR msgbridge_claims.until <= ? "
        "OR msgbridge_claims.holder = excluded.holder",
        [(connection, message_id, holder, until, now) for connection, message_id in keys],
    )
    elsewhere: dict[MessageKey, float] = {}
    for connection, ids in _by_connection(keys).items():
        for message_id, other_until in tx.fetchall(
            "SELECT message_id, until FROM msgbridge_claims WHERE connection = ? "  # noqa: S608
            f"AND message_id {tx.in_list} AND holder <> ? AND until > ?",
            (connection, tx.id_list(ids), holder, now),
        ):
            elsewhere[(connection, str(message_id))] = float(other_until)
    return elsewhere


def extend_claims(tx: Tx, keys: Keys, holder: str, until: float) -> None:
    """Keep a batch's claims as long as its row leases (the heartbeat)."""
    for connection, ids in _by_connection(keys).items():
        tx.execute(
            "UPDATE msgbridge_claims SET until = ? WHERE connection = ? "  # noqa: S608
            f"AND message_id {tx.in_list} AND holder = ?",
            (until, connection, tx.id_list(ids), holder),
        )


def end_claims(tx: Tx, keys: Keys, holder: str) -> None:
    """End a batch's claims (when it settles): waiting plain bridges go on at once."""
    for connection, ids in _by_connection(keys).items():
        tx.execute(
            "UPDATE msgbridge_claims SET holder = NULL, until = 0 WHERE connection = ? "  # noqa: S608
            f"AND message_id {tx.in_list} AND holder = ?",
            (connection, tx.id_list(ids), holder),
        )


def next_available(tx: Tx, connections: Sequence[str] | None) -> tuple[int, float | None]:
    """(rows pending, earliest ``available_at``) for *connections* (all when ``None``)."""
    if connections is None:
        row = tx.fetchone("SELECT count(*), min(available_at) FROM msgbridge_outbox")
    else:
        row = tx.fetchone(
            "SELECT count(*), min(available_at) FROM msgbridge_outbox "  # noqa: S608
            f"WHERE connection {tx.in_list}",
            (tx.id_list(list(connections)),),
        )
    assert row is not None
    return int(row[0]), (float(row[1]) if row[1] is not None else None)


def next_sendable(tx: Tx, connections: Sequence[str], owner: str, now: float) -> float | None:
    """Earliest ``available_at`` of rows of *connections* that *owner* holds or could
    take now (no live lease of another worker)."""
    row = tx.fetchone(
        "SELECT min(available_at) FROM msgbridge_outbox "  # noqa: S608
        f"WHERE connection {tx.in_list} AND connection NOT IN ("
        "SELECT connection FROM msgbridge_leases "
        "WHERE owner IS NOT NULL AND owner <> ? AND until > ?)",
        (tx.id_list(list(connections)), owner, now),
    )
    return float(row[0]) if row is not None and row[0] is not None else None


# -- inspection -------------------------------------------------------------------------------

_PENDING_COLUMNS = (
    "id, connection, kind, subject_id, state, payload, version, attempts, created_at, "
    "updated_at, available_at, lease_owner, lease_until, last_error"
)


def _decoded(kind: str, payload: str) -> Update | None:
    try:
        return decode(kind, payload)
    except InvalidStatus:
        return None


def pending(tx: Tx, connection: str | None, limit: int) -> list[PendingUpdate]:
    where, params = ("WHERE connection = ? ", [connection]) if connection is not None else ("", [])
    rows = tx.fetchall(
        f"SELECT {_PENDING_COLUMNS} FROM msgbridge_outbox {where}"  # noqa: S608
        "ORDER BY available_at, id LIMIT ?",
        (*params, limit),
    )
    return [
        PendingUpdate(
            id=int(r[0]),
            connection=str(r[1]),
            kind=str(r[2]),
            subject_id=str(r[3]),
            state=state_or_none(r[4]),
            update=_decoded(str(r[2]), str(r[5])),
            version=int(r[6]),
            attempts=int(r[7]),
            created_at=float(r[8]),
            updated_at=float(r[9]),
            available_at=float(r[10]),
            lease_owner=r[11],
            lease_until=float(r[12]) if r[12] is not None else None,
            last_error=r[13],
        )
        for r in rows
    ]


_DEAD_COLUMNS = (
    "id, connection, kind, subject_id, state, payload, attempts, reason, error_type, "
    "http_status, trace_id, created_at, failed_at"
)


def _dead(r: Row) -> DeadLetter:
    import json

    payload = str(r[5])
    try:
        data = json.loads(payload)
    except ValueError:
        data = {"unreadable": payload}
    return DeadLetter(
        id=int(r[0]),
        connection=str(r[1]),
        kind=str(r[2]),
        subject_id=str(r[3]),
        state=state_or_none(r[4]),
        update=_decoded(str(r[2]), payload),
        payload=data if isinstance(data, dict) else {"unreadable": payload},
        attempts=int(r[6]),
        reason=str(r[7]),
        error_type=r[8],
        http_status=int(r[9]) if r[9] is not None else None,
        trace_id=r[10],
        created_at=float(r[11]),
        failed_at=float(r[12]),
    )


def dead_letters(
    tx: Tx, connection: str | None, ids: Sequence[int] | None, limit: int | None
) -> list[DeadLetter]:
    clauses: list[str] = []
    params: list[Any] = []
    if connection is not None:
        clauses.append("connection = ?")
        params.append(connection)
    if ids is not None:
        clauses.append(f"id {tx.in_list}")
        params.append(tx.id_list(list(ids)))
    where = ("WHERE " + " AND ".join(clauses) + " ") if clauses else ""
    sql = f"SELECT {_DEAD_COLUMNS} FROM msgbridge_dead_letters {where}ORDER BY id"  # noqa: S608
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_dead(r) for r in tx.fetchall(sql, params)]


def delete_dead(tx: Tx, dead_id: int) -> None:
    tx.execute("DELETE FROM msgbridge_dead_letters WHERE id = ?", (dead_id,))


def stats(tx: Tx, now: float) -> tuple[list[StatsRow], float | None]:
    rows = tx.fetchall(
        "SELECT connection, COALESCE(state, kind), kind, "
        "SUM(CASE WHEN lease_owner IS NOT NULL AND lease_until > ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN (lease_owner IS NULL OR lease_until <= ?) AND available_at <= ? "
        "THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN lease_owner IS NULL AND available_at > ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), "
        "MIN(created_at) "
        "FROM msgbridge_outbox GROUP BY connection, COALESCE(state, kind), kind",
        (now, now, now, now),
    )
    dead = tx.fetchall(
        "SELECT connection, COALESCE(state, kind), kind, count(*) "
        "FROM msgbridge_dead_letters GROUP BY connection, COALESCE(state, kind), kind",
    )
    table: dict[tuple[str, str], StatsRow] = {}
    oldest: float | None = None
    for connection, state, kind, leased, ready, scheduled, retrying, created in rows:
        table[(str(connection), str(state))] = StatsRow(
            str(connection),
            str(state),
            kind=str(kind),
            ready=int(ready or 0),
            scheduled=int(scheduled or 0),
            leased=int(leased or 0),
            retrying=int(retrying or 0),
        )
        if created is not None:
            oldest = float(created) if oldest is None else min(oldest, float(created))
    for connection, state, kind, count in dead:
        key = (str(connection), str(state))
        row = table.get(key, StatsRow(key[0], key[1], kind=str(kind)))
        table[key] = attrs.evolve(row, dead=int(count))
    ordered = [table[k] for k in sorted(table)]
    return ordered, (max(0.0, now - oldest) if oldest is not None else None)
