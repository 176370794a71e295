"""Strict JSON form of the inbound model (storage, JSON lines, the CLI).

Unknown keys and bad values raise :class:`~msgbridge.errors.InvalidStatus` naming the
field, exactly like :mod:`msgbridge.serialization` does for statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from msgbridge.errors import InvalidStatus
from msgbridge.inbound.model import (
    ChannelKind,
    EventKind,
    IncomingMessage,
    OutboundRequest,
    Party,
    WebhookEvent,
)
from msgbridge.strict import make_strict_converter, structure_strictly

__all__ = [
    "converter",
    "event_from_json",
    "event_to_json",
    "incoming_from_json",
    "incoming_to_json",
    "outbound_from_json",
    "outbound_to_json",
]

T = TypeVar("T")

converter = make_strict_converter()


def _enum(kind: type[Any]) -> Any:
    allowed = ", ".join(m.value for m in kind)

    def structure(value: Any, _: type[Any]) -> Any:
        if isinstance(value, kind):
            return value
        if not isinstance(value, str):
            raise TypeError(f"expected one of {allowed}, got {type(value).__name__}")
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"expected one of {allowed}, got {value!r}") from None

    return structure


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _object(value: Any, _: type[Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return dict(value)


for _kind in (ChannelKind, EventKind):
    converter.register_structure_hook(_kind, _enum(_kind))
    converter.register_unstructure_hook(_kind, lambda e: e.value)
converter.register_structure_hook_func(
    lambda t: t == tuple[str, ...],
    lambda v, _: tuple(converter.structure(i, str) for i in _list(v)),
)
converter.register_structure_hook_func(
    lambda t: t == tuple[Party, ...],
    lambda v, _: tuple(converter.structure(i, Party) for i in _list(v)),
)
converter.register_structure_hook_func(lambda t: t == Mapping[str, Any], _object)
converter.register_unstructure_hook_func(lambda t: t == Mapping[str, Any], dict)


def _error(message: str, field: str | None) -> InvalidStatus:
    return InvalidStatus(message, field=field)


def _to_json(value: object) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(value)
    return result


def outbound_from_json(data: Mapping[str, Any]) -> OutboundRequest:
    return structure_strictly(converter, data, OutboundRequest, _error)


def outbound_to_json(request: OutboundRequest) -> dict[str, Any]:
    return _to_json(request)


def incoming_from_json(data: Mapping[str, Any]) -> IncomingMessage:
    return structure_strictly(converter, data, IncomingMessage, _error)


def incoming_to_json(message: IncomingMessage) -> dict[str, Any]:
    return _to_json(message)


def event_from_json(data: Mapping[str, Any]) -> WebhookEvent:
    return structure_strictly(converter, data, WebhookEvent, _error)


def event_to_json(event: WebhookEvent) -> dict[str, Any]:
    return _to_json(event)
