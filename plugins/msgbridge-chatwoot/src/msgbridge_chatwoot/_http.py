"""Small pure helpers for reading Chatwoot's answers (no I/O, no clock)."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime
from typing import Any

from msgbridge.adapter import ResponseView

__all__ = ["error_text", "retry_after_seconds"]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def retry_after_seconds(response: ResponseView) -> float | None:
    """Seconds from ``Retry-After``: delta-seconds, or an HTTP date minus the ``Date`` header.

    An adapter must not read a clock, so an HTTP-date ``Retry-After`` is measured against
    the response's own ``Date`` header; without one the wait is unknown (``None``), and
    the bridge falls back to its backoff.
    """
    raw = response.header("retry-after")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    try:
        seconds = _finite(float(raw))
    except ValueError:
        seconds = None
    else:
        return None if seconds is None else max(0.0, seconds)
    sent = response.header("date")
    if sent is None:
        return None
    try:
        until, now = parsedate_to_datetime(raw), parsedate_to_datetime(sent)
    except (TypeError, ValueError, IndexError):
        return None
    if (until.tzinfo is None) != (now.tzinfo is None):
        return None
    return max(0.0, (until - now).total_seconds())


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list):
        parts = [item.strip() for item in value if isinstance(item, str) and item.strip()]
        return "; ".join(parts) or None
    return None


def error_text(response: ResponseView) -> str:
    """What Chatwoot said, from any of its error shapes, else the raw body, else a label.

    Shapes seen in Chatwoot's controllers: ``{"error": "..."}`` (most errors, including the
    403 for non-API inboxes), ``{"message": "...", "attributes": [...]}`` (validation),
    ``{"errors": ["..."]}`` (devise-token-auth 401s). Rack-attack's 429 is plain text.
    """
    body = response.json_object()
    if body is not None:
        for key in ("error", "message", "errors"):
            found = _text(body.get(key))
            if found:
                return found
    raw = response.text(200).strip()
    if raw and not raw.startswith("<"):  # an HTML error page says nothing useful
        return raw
    return f"HTTP {response.status}"
