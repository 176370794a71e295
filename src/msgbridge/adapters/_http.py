"""Small, pure helpers shared by the built-in adapters (no I/O)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import cattrs
from cattrs.errors import BaseValidationError

from msgbridge.adapter import ResponseView
from msgbridge.errors import MalformedResponse

__all__ = ["lenient_converter", "parse_retry_after", "read_model"]

T = TypeVar("T")


def lenient_converter() -> cattrs.Converter:
    """Vendor responses: unknown fields ignored, only what we need is required."""
    return cattrs.Converter(forbid_extra_keys=False)


def read_model(
    converter: cattrs.Converter, response: ResponseView, cls: type[T], *, what: str
) -> T:
    """Structure a JSON object body as *cls*, or raise ``MalformedResponse`` saying why."""
    body = response.json_object()
    if body is None:
        raise MalformedResponse(
            f"{what}: expected a JSON object, got {response.text(120)!r}",
            http_status=response.status,
        )
    try:
        return converter.structure(body, cls)
    except (BaseValidationError, TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, BaseValidationError):
            problems = "; ".join(cattrs.transform_error(exc))
        else:
            problems = f"{type(exc).__name__}: {exc}"
        raise MalformedResponse(f"{what}: {problems}", http_status=response.status) from None


def parse_retry_after(
    value: str | None, *, now: Callable[[], dt.datetime] | None = None
) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    current = now() if now else dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - current).total_seconds())


def int_header(response: ResponseView, name: str) -> int | None:
    raw = response.header(name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def joined_message(value: Any) -> str | None:
    """A vendor ``message`` that may be a string or a list of strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [str(v) for v in value if v is not None]
        return "; ".join(parts) if parts else None
    return None
