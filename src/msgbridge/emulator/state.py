"""Messages and conversations with their current state and full update history.

Stores hold small mutable records; inspection returns frozen snapshots
(:class:`MessageState`, :class:`ConversationState`) that are safe to keep and compare
while the server keeps running in another thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "ConversationChange",
    "ConversationState",
    "ConversationStore",
    "MessageState",
    "MessageStore",
    "StatusChange",
]


class StatusChange(NamedTuple):
    """One applied status update."""

    status: str
    previous: str | None
    #: The vendor's error detail: an error object or an error message, as the vendor sends it.
    error: Any
    #: The validated request body as sent.
    fields: Mapping[str, Any]
    #: ``clock.time()`` when applied.
    at: float
    request_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "previous": self.previous,
            "error": self.error,
            "fields": dict(self.fields),
            "at": self.at,
            "request_id": self.request_id,
        }


@dataclass(frozen=True)
class MessageState:
    vendor: str
    id: str
    account: str
    status: str | None
    history: tuple[StatusChange, ...]
    conversation_id: str
    channel_id: int | None
    email_message_id: str | None
    #: ``"seeded"`` or ``"auto"`` (created by an update in ``unknown_messages="create"``).
    origin: str
    created_at: float
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def statuses(self) -> list[str]:
        return [change.status for change in self.history]

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "id": self.id,
            "account": self.account,
            "status": self.status,
            "conversation_id": self.conversation_id,
            "channel_id": self.channel_id,
            "email_message_id": self.email_message_id,
            "origin": self.origin,
            "created_at": self.created_at,
            "attributes": dict(self.attributes),
            "history": [change.to_dict() for change in self.history],
        }


class MessageRecord:
    __slots__ = (
        "account",
        "attributes",
        "channel_id",
        "conversation_id",
        "created_at",
        "created_mono",
        "email_message_id",
        "history",
        "id",
        "origin",
        "provider_ready_after",
        "status",
        "updated_at",
    )

    def __init__(
        self,
        message_id: str,
        account: str,
        conversation_id: str | None,
        channel_id: int | None,
        status: str | None,
        email_message_id: str | None,
        provider_ready_after: float | None,
        origin: str,
        created_mono: float,
        created_at: float,
        attributes: dict[str, Any] | None,
    ) -> None:
        self.id = message_id
        self.account = account
        #: ``None`` means the derived default (see :attr:`thread_id`); saves memory when
        #: a benchmark auto-creates a million messages.
        self.conversation_id = conversation_id
        self.channel_id = channel_id
        self.status = status
        self.email_message_id = email_message_id
        self.provider_ready_after = provider_ready_after
        self.origin = origin
        self.created_mono = created_mono
        self.created_at = created_at
        self.updated_at: float | None = None
        # A list (56 bytes empty) rather than a deque (~600): trimmed on append.
        self.history: list[StatusChange] = []
        self.attributes = attributes

    @property
    def thread_id(self) -> str:
        """The conversation (or thread) id, seeded or derived from the message id."""
        return self.conversation_id or f"conv_{self.id}"

    def attribute(self, key: str, default: Any = None) -> Any:
        return default if self.attributes is None else self.attributes.get(key, default)


class MessageStore:
    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.history_limit: int | None = None
        self._messages: dict[str, MessageRecord] = {}

    def create(
        self,
        message_id: str,
        *,
        account: str,
        now: float,
        wall: float,
        conversation_id: str | None = None,
        channel_id: int | None = None,
        status: str | None = None,
        email_message_id: str | None = None,
        provider_ready_after: float | None = None,
        origin: str = "seeded",
        attributes: dict[str, Any] | None = None,
    ) -> MessageRecord:
        if not message_id:
            raise ValueError("a message id cannot be empty")
        message = MessageRecord(
            message_id,
            account,
            conversation_id or None,
            channel_id,
            status,
            email_message_id,
            provider_ready_after,
            origin,
            now,
            wall,
            attributes or None,
        )
        self._messages[message_id] = message
        return message

    def get(self, message_id: str) -> MessageRecord | None:
        return self._messages.get(message_id)

    def apply(
        self,
        message: MessageRecord,
        status: str,
        *,
        error: Any,
        fields: Mapping[str, Any],
        wall: float,
        request_id: str,
    ) -> StatusChange:
        change = StatusChange(status, message.status, error, fields, wall, request_id)
        history = message.history
        history.append(change)
        limit = self.history_limit
        if limit is not None and len(history) > limit:
            del history[: len(history) - limit]
        message.status = status
        message.updated_at = wall
        return change

    def snapshot(self, message: MessageRecord) -> MessageState:
        return MessageState(
            vendor=self.vendor,
            id=message.id,
            account=message.account,
            status=message.status,
            history=tuple(message.history),
            conversation_id=message.thread_id,
            channel_id=message.channel_id,
            email_message_id=message.email_message_id,
            origin=message.origin,
            created_at=message.created_at,
            attributes=dict(message.attributes or {}),
        )

    def __iter__(self) -> Iterator[MessageRecord]:
        return iter(list(self._messages.values()))

    def __len__(self) -> int:
        return len(self._messages)

    def clear(self) -> None:
        self._messages.clear()


class ConversationChange(NamedTuple):
    fields: Mapping[str, Any]
    at: float
    request_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"fields": dict(self.fields), "at": self.at, "request_id": self.request_id}


@dataclass(frozen=True)
class ConversationState:
    vendor: str
    id: str
    account: str
    contact_id: str
    unread_count: float
    starred: bool
    feedback: Mapping[str, Any] | None
    deleted: bool
    origin: str
    history: tuple[ConversationChange, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "id": self.id,
            "account": self.account,
            "contact_id": self.contact_id,
            "unread_count": self.unread_count,
            "starred": self.starred,
            "feedback": None if self.feedback is None else dict(self.feedback),
            "deleted": self.deleted,
            "origin": self.origin,
            "history": [change.to_dict() for change in self.history],
        }


class ConversationRecord:
    __slots__ = (
        "account",
        "contact_id",
        "deleted",
        "feedback",
        "history",
        "id",
        "origin",
        "starred",
        "unread_count",
    )

    def __init__(
        self,
        conversation_id: str,
        account: str,
        contact_id: str,
        unread_count: float,
        starred: bool,
        origin: str,
    ) -> None:
        self.id = conversation_id
        self.account = account
        self.contact_id = contact_id
        self.unread_count = unread_count
        self.starred = starred
        self.feedback: dict[str, Any] | None = None
        self.deleted = False
        self.origin = origin
        self.history: list[ConversationChange] = []


class ConversationStore:
    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.history_limit: int | None = None
        self._items: dict[str, ConversationRecord] = {}

    def create(
        self,
        conversation_id: str,
        *,
        account: str,
        contact_id: str | None = None,
        unread_count: float = 0,
        starred: bool = False,
        origin: str = "seeded",
    ) -> ConversationRecord:
        if not conversation_id:
            raise ValueError("a conversation id cannot be empty")
        item = ConversationRecord(
            conversation_id,
            account,
            contact_id or f"contact_{conversation_id}",
            unread_count,
            starred,
            origin,
        )
        self._items[conversation_id] = item
        return item

    def get(self, conversation_id: str) -> ConversationRecord | None:
        return self._items.get(conversation_id)

    def record(self, item: ConversationRecord, change: ConversationChange) -> None:
        history = item.history
        history.append(change)
        limit = self.history_limit
        if limit is not None and len(history) > limit:
            del history[: len(history) - limit]

    def snapshot(self, item: ConversationRecord) -> ConversationState:
        return ConversationState(
            vendor=self.vendor,
            id=item.id,
            account=item.account,
            contact_id=item.contact_id,
            unread_count=item.unread_count,
            starred=item.starred,
            feedback=None if item.feedback is None else dict(item.feedback),
            deleted=item.deleted,
            origin=item.origin,
            history=tuple(item.history),
        )

    def __iter__(self) -> Iterator[ConversationRecord]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
