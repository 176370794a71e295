"""Small pure helpers for reading Front's answers (no I/O, no clock)."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime
from typing import Any

from msgbridge.adapter import ResponseView

__all__ = ["error_text", "int_header", "rate_limit_wait"]

#: ``x-ratelimit-reset`` values above this are UNIX timestamps, below it delta seconds.
_EPOCH_FLOOR = 1_000_000_000


def _number(raw: str | None) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def int_header(response: ResponseView, name: str) -> int | None:
    value = _number(response.header(name))
    return None if value is None or value < 0 else int(value)


def _server_now(response: ResponseView) -> float | None:
    """The server's clock from its ``Date`` header (an adapter must not read its own)."""
    raw = response.header("date")
    if raw is None:
        return None
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def rate_limit_wait(response: ResponseView) -> float | None:
    """How long a 429 asks us to wait, in seconds, or ``None`` when it does not say.

    Front sends ``retry-after`` (seconds) with every 429. Failing that, the wait until
    ``x-ratelimit-reset`` (a UNIX timestamp), measured against the ``Date`` header.
    """
    retry_after = response.header("retry-after")
    seconds = _number(retry_after)
    if seconds is not None:
        return max(0.0, seconds)
    if retry_after is not None and retry_after.strip():
        try:
            until = parsedate_to_datetime(retry_after.strip())
        except (TypeError, ValueError, IndexError):
            until = None
        now = _server_now(response)
        if until is not None and until.tzinfo is not None and now is not None:
            return max(0.0, until.timestamp() - now)
    reset = _number(response.header("x-ratelimit-reset"))
    if reset is None:
        return None
    if reset < _EPOCH_FLOOR:
        return max(0.0, reset)
    now = _server_now(response)
    return None if now is None else max(0.0, reset - now)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list):
        parts = [item.strip() for item in value if isinstance(item, str) and item.strip()]
        return "; ".join(parts) or None
    return None


def error_text(response: ResponseView) -> str:
    """What Front said, else the raw (non-HTML) body, else ``HTTP <status>``.

    Front's error body is ``{"_error": {"status", "title", "message", "details"?}}``
    (unconfirmed for this endpoint); a plain ``message``/``error`` is read too.
    """
    body = response.json_object()
    if body is not None:
        inner = body.get("_error")
        if isinstance(inner, dict):
            message = _text(inner.get("message"))
            title = _text(inner.get("title"))
            details = _text(inner.get("details"))
            parts = [p for p in (title, message, details) if p]
            if title and message and message.lower().startswith(title.lower()):
                parts.remove(title)
            if parts:
                return ": ".join(parts[:2]) + (f" ({parts[2]})" if len(parts) > 2 else "")
        for key in ("message", "error", "errors"):
            found = _text(body.get(key))
            if found:
                return found
    raw = response.text(200).strip()
    if raw and not raw.startswith("<"):  # an HTML error page says nothing useful
        return raw
    return f"HTTP {response.status}"
