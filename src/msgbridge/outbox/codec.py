"""The stored form of an update (msgbridge's strict JSON), and the coalescing rules."""

from __future__ import annotations

import json
from typing import Any

import attrs

from msgbridge.errors import InvalidStatus
from msgbridge.inbound.model import IncomingMessage
from msgbridge.inbound.serialization import incoming_from_json, incoming_to_json
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus, check_identifier
from msgbridge.outbox.model import CONVERSATION, INBOUND, STATUS, Update
from msgbridge.serialization import (
    conversation_from_json,
    conversation_to_json,
    status_from_json,
    status_to_json,
)

__all__ = ["Encoded", "decode", "encode", "merge_conversation", "replace_status"]


@attrs.frozen
class Encoded:
    connection: str
    kind: str
    subject_id: str
    state: DeliveryState | None
    payload: str
    update: Update


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode(connection: object, update: object) -> Encoded:
    """Check *connection* and *update* and give their stored form; raises ``InvalidStatus``."""
    try:
        check_identifier("connection", connection)
    except InvalidStatus as exc:
        raise InvalidStatus(exc.message, field="connection") from None
    assert isinstance(connection, str)
    if isinstance(update, MessageStatus):
        attrs.validate(update)
        data = status_to_json(update)
        # The stored form must read back exactly (refuse anything that would not).
        if status_from_json(json.loads(_dumps(data))) != update:
            raise InvalidStatus(
                "update does not survive its JSON form", connection=connection, field="status"
            )
        return Encoded(connection, STATUS, update.message_id, update.state, _dumps(data), update)
    if isinstance(update, ConversationUpdate):
        attrs.validate(update)
        data = conversation_to_json(update)
        if conversation_from_json(json.loads(_dumps(data))) != update:
            raise InvalidStatus(
                "update does not survive its JSON form",
                connection=connection,
                field="conversation",
            )
        return Encoded(connection, CONVERSATION, update.conversation_id, None, _dumps(data), update)
    if isinstance(update, IncomingMessage):
        attrs.validate(update)
        data = incoming_to_json(update)
        if incoming_from_json(json.loads(_dumps(data))) != update:
            raise InvalidStatus(
                "message does not survive its JSON form", connection=connection, field="message"
            )
        # Keyed by the message's own id (its idempotency key): never coalesced.
        return Encoded(connection, INBOUND, update.message_id, None, _dumps(data), update)
    raise InvalidStatus(
        "expected a MessageStatus, ConversationUpdate or IncomingMessage, got "
        f"{type(update).__name__}",
        connection=connection,
    )


def decode(kind: str, payload: str) -> Update:
    """The update of a stored row; ``InvalidStatus`` if the stored form is damaged."""
    try:
        data = json.loads(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidStatus(f"stored update is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidStatus("stored update is not a JSON object")
    if kind == STATUS:
        return status_from_json(data)
    if kind == CONVERSATION:
        return conversation_from_json(data)
    if kind == INBOUND:
        return incoming_from_json(data)
    raise InvalidStatus(f"stored update has unknown kind {kind!r}")


def encode_update(update: Update) -> str:
    if isinstance(update, MessageStatus):
        return _dumps(status_to_json(update))
    if isinstance(update, IncomingMessage):
        return _dumps(incoming_to_json(update))
    return _dumps(conversation_to_json(update))


def replace_status(pending: MessageStatus, new: MessageStatus) -> MessageStatus:
    """*new* replacing *pending*; addressing ids *new* lacks are kept from *pending*.

    ``conversation_id``, ``channel_id`` and ``email_message_id`` say where the message
    lives, not what happened to it, so a later status that omits them must not lose them.
    """
    return attrs.evolve(
        new,
        conversation_id=new.conversation_id or pending.conversation_id,
        channel_id=new.channel_id or pending.channel_id,
        email_message_id=new.email_message_id or pending.email_message_id,
    )


def merge_conversation(pending: ConversationUpdate, new: ConversationUpdate) -> ConversationUpdate:
    """Field by field, the later non-null value wins."""
    return ConversationUpdate(
        new.conversation_id,
        account_id=new.account_id if new.account_id is not None else pending.account_id,
        unread_count=new.unread_count if new.unread_count is not None else pending.unread_count,
        starred=new.starred if new.starred is not None else pending.starred,
    )
