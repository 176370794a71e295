"""msgbridge's public conformance kit, run against the Chatwoot adapter (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("msgbridge.testing", reason="msgbridge.testing (the conformance kit) is absent")

from msgbridge_chatwoot import ChatwootAdapter

from msgbridge.testing import AdapterConformance


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


class TestChatwootConformance(AdapterConformance):
    adapter = ChatwootAdapter()
    settings = {"base_url": "https://chat.example.com", "account_id": 3}
    sample_status_kwargs = {"conversation_id": "12"}
    success_body = _json(
        {
            "id": 4711,
            "content": "hello",
            "inbox_id": 2,
            "conversation_id": 12,
            "message_type": 1,
            "content_type": "text",
            "status": "delivered",
            "content_attributes": {},
            "created_at": 1_700_000_000,
            "private": False,
            "source_id": None,
        }
    )
    required_success_fields = ("id",)
    trace_id_header = "X-Request-Id"
    # Shapes from Chatwoot's controllers; 5xx and proxy pages are unconfirmed.
    error_bodies = {
        400: _json({"error": "param is missing or the value is empty: status"}),
        401: _json({"error": "Invalid Access Token"}),
        403: _json({"error": "Message status update is only allowed for API inboxes"}),
        404: _json({"error": "Resource could not be found"}),
        429: b"Retry later\n",
        500: _json({"error": "Internal Server Error"}),
        502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        503: b"",
        504: b"<html><body><h1>504 Gateway Time-out</h1></body></html>",
    }
