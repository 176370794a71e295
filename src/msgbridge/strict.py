"""Strict cattrs converters for our own formats (settings, JSON lines, storage).

Unknown keys are errors and scalars are not coerced (``123`` is not a string), so a
typo in a config or an input line is reported, naming the field, instead of ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs import v as cattrs_messages
from cattrs.errors import BaseValidationError, ForbiddenExtraKeysError

from msgbridge.errors import MessagingError

__all__ = ["exact_scalar_hooks", "make_strict_converter", "structure_strictly"]

T = TypeVar("T")


def _exact(kind: type[Any], label: str) -> Callable[[Any, type[Any]], Any]:
    def structure(value: Any, _: type[Any]) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {label}, got a boolean")
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {type(value).__name__}")
        return value

    return structure


def _float(value: Any, _: type[Any]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _datetime(value: Any, _: type[Any]) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 timestamp string, got {type(value).__name__}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 timestamp such as 2026-01-31T12:00:00Z, got {value!r}"
        ) from None


def exact_scalar_hooks(converter: cattrs.Converter) -> None:
    """No coercion of scalars: ``123`` is not a string and ``"no"`` is not ``True``."""
    converter.register_structure_hook(str, _exact(str, "a string"))
    converter.register_structure_hook(int, _exact(int, "an integer"))
    converter.register_structure_hook(bool, _exact(bool, "true or false"))
    converter.register_structure_hook(float, _float)


def make_strict_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, omit_if_default=True)
    exact_scalar_hooks(converter)
    converter.register_structure_hook(dt.datetime, _datetime)
    converter.register_unstructure_hook(dt.datetime, lambda d: d.isoformat())
    return converter


def _format(exc: BaseException, kind: type | None) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = ", ".join(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else ""
        unknown = ", ".join(repr(k) for k in sorted(exc.extra_fields))
        return f"unknown key(s) {unknown}; allowed: {allowed}"
    if isinstance(exc, MessagingError):
        return exc.message
    if isinstance(exc, (TypeError, ValueError)) and str(exc).startswith("expected"):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    return cattrs_messages.format_exception(exc, kind)


def structure_strictly(
    converter: cattrs.Converter,
    data: Mapping[str, Any],
    cls: type[T],
    error: Callable[[str, str | None], MessagingError],
) -> T:
    """Structure *data* as *cls*; any problem becomes ``error(message, field)``.

    Every problem is listed (``unread_count: expected an integer @ $.unread_count``) so a
    caller fixes all of them in one go.
    """
    if not isinstance(data, Mapping):
        raise error(f"expected a JSON object, got {type(data).__name__}", None)
    try:
        return converter.structure(dict(data), cls)
    except MessagingError as exc:
        raise error(exc.message, getattr(exc, "field", None) or getattr(exc, "key", None)) from None
    except (BaseValidationError, TypeError, ValueError) as exc:
        if isinstance(exc, BaseValidationError):
            lines = cattrs.transform_error(exc, format_exception=_format)
        else:
            lines = [_format(exc, cls)]
        raise error("; ".join(lines), _first_field(exc, lines)) from None


def _first_field(exc: BaseException, lines: list[str]) -> str | None:
    """The field to blame, as precisely as known (``error.code``, not ``error``).

    cattrs gives the path of the object that failed; the leaf exception may name a key
    below it (an unknown key, or a validator's own dotted field name).
    """
    path = next((line.rsplit(" @ $.", 1)[1] for line in lines if " @ $." in line), None)
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if isinstance(current, ForbiddenExtraKeysError):
            key = sorted(current.extra_fields)[0]
            return f"{path}.{key}" if path else key
        named = getattr(current, "field", None) or getattr(current, "key", None)
        if isinstance(current, MessagingError) and named:
            named = str(named)
            if path is None or named.startswith(path):
                return named
        pending.extend(getattr(current, "exceptions", ()))
    return path
