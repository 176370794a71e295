"""msgbridge's public conformance kit, run against the Front adapter (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("msgbridge.testing", reason="msgbridge.testing (the conformance kit) is absent")

from msgbridge_front import FrontAdapter

from msgbridge.adapter import RateFeedback
from msgbridge.testing import AdapterConformance


def _error(status: int, title: str, message: str) -> bytes:
    body: dict[str, Any] = {"_error": {"status": status, "title": title, "message": message}}
    return json.dumps(body).encode()


class TestFrontConformance(AdapterConformance):
    adapter = FrontAdapter()
    settings: dict[str, Any] = {}
    # Front answers 204 No Content: no success body to hold the adapter to.
    success_body = None
    success_is_empty = True
    rate_limit_headers = {"X-RateLimit-Remaining": "49", "X-RateLimit-Limit": "50"}
    rate_limit_feedback = RateFeedback(remaining=49, maximum=50, window=60.0)
    # Front's general error shape; unconfirmed for this endpoint.
    error_bodies = {
        400: _error(400, "Bad request", "Body did not satisfy requirements"),
        401: _error(401, "Unauthenticated", "The provided API token is invalid"),
        403: _error(403, "Forbidden", "You do not have the scope to do this"),
        404: _error(404, "Not found", "Unknown message"),
        429: _error(429, "Too Many Requests", "Rate limit exceeded"),
        500: _error(500, "Internal Server Error", "Something went wrong"),
        502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        503: b"",
        504: b"<html><body><h1>504 Gateway Time-out</h1></body></html>",
    }
