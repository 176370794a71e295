"""Reading Chatwoot's error answers (pure; the shared helpers are in msgbridge.wire)."""

from __future__ import annotations

from typing import Any

from msgbridge.adapter import ResponseView

__all__ = ["error_text"]


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
