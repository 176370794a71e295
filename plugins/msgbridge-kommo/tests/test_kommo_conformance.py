"""msgbridge's public conformance kit, run against the Kommo adapter (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("msgbridge.testing", reason="msgbridge.testing (the conformance kit) is absent")

from msgbridge_kommo import KommoAdapter

from msgbridge.testing import AdapterConformance


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


class TestKommoConformance(AdapterConformance):
    adapter = KommoAdapter()
    settings = {"scope_id": "f90ba33d-c9d9-44da-b76c-c349b0ecbe41_af9945ff"}
    # Kommo documents no success body: an empty one (and any JSON object) is a success.
    success_is_empty = True
    success_body = b"{}"
    # Kommo's error bodies are undocumented: these are the emulator's assumed shapes.
    error_bodies = {
        400: _json({"error": "msgid must match the message id in the URL"}),
        401: _json({"error": "invalid signature"}),
        404: _json({"error": "message not found"}),
        429: _json({"error": "Too Many Requests"}),
        500: _json({"error": "Internal Server Error"}),
        502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        503: b"",
    }
