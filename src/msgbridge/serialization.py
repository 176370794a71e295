"""The neutral model's own JSON form (JSON lines input, storage), strict both ways.

Unknown keys and bad values raise :class:`~msgbridge.errors.InvalidStatus` naming the
field, e.g. ``state 'delivred' is unknown; allowed: pending, sent, ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgbridge.errors import InvalidStatus
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus
from msgbridge.strict import make_strict_converter, structure_strictly

__all__ = [
    "conversation_from_json",
    "conversation_to_json",
    "converter",
    "status_from_json",
    "status_to_json",
]

#: Strict converter for msgbridge's own formats; adapters keep private, lenient ones.
converter = make_strict_converter()


def _state(value: Any, _: type[Any]) -> DeliveryState:
    if isinstance(value, DeliveryState):
        return value
    allowed = ", ".join(s.value for s in DeliveryState)
    if not isinstance(value, str):
        raise TypeError(f"expected one of {allowed}, got {type(value).__name__}")
    try:
        return DeliveryState(value)
    except ValueError:
        raise ValueError(f"expected one of {allowed}, got {value!r}") from None


converter.register_structure_hook(DeliveryState, _state)
converter.register_unstructure_hook(DeliveryState, lambda s: s.value)
converter.register_structure_hook_func(
    lambda t: t == tuple[str, ...],
    lambda v, _: tuple(converter.structure(i, str) for i in _list(v)),
)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _error(message: str, field: str | None) -> InvalidStatus:
    return InvalidStatus(message, field=field)


def status_from_json(data: Mapping[str, Any]) -> MessageStatus:
    return structure_strictly(converter, data, MessageStatus, _error)


def status_to_json(status: MessageStatus) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(status)
    return result


def conversation_from_json(data: Mapping[str, Any]) -> ConversationUpdate:
    return structure_strictly(converter, data, ConversationUpdate, _error)


def conversation_to_json(update: ConversationUpdate) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(update)
    return result
