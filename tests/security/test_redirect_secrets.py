"""Issue 10: a redirect to another origin must never carry a secret there.

A loopback "vendor" answers every request with ``307 Temporary Redirect`` to a second
loopback server on another port (another origin) that records the raw requests it
gets. A bearer token, a Chatwoot ``api_access_token`` and an OAuth refresh (client
secret and refresh token in the form) are sent through every sender; whatever the
bridge reports, the other origin must have received none of them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    MessageStatus,
    RetryPolicy,
)
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.errors import MessagingError
from msgbridge.fast import AiohttpSender

pytest.importorskip("msgbridge_chatwoot", reason="the Chatwoot plugin is part of the suite")

from msgbridge_chatwoot import ChatwootToken

BEARER = "redir-bearer-SECRET-1a2b"
CHATWOOT = "redirChatwootSECRET3c4d"
CLIENT_SECRET = "redir-client-SECRET-5e6f"
REFRESH_TOKEN = "redir-refresh-SECRET-7a8b"
STALE_ACCESS = "redir-stale-SECRET-9c0d"
SECRETS = [BEARER, CHATWOOT, CLIENT_SECRET, REFRESH_TOKEN, STALE_ACCESS]
ONCE = RetryPolicy.none()


class _Server:
    """A threaded loopback HTTP server; ``handle`` answers, ``seen`` keeps raw requests."""

    def __init__(self, answer: Any) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                seen.append(f"{self.requestline}\n{self.headers}\n{body}")
                status, headers, payload = answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_PATCH = do_POST = _any  # noqa: N815 - http.server names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_ANYTHING_OK = json.dumps(
    {
        "conversationId": "c1",
        "messageId": "m1",
        "id": 1,
        "status": "read",
        "access_token": "other-origin-access",
        "refresh_token": "other-origin-refresh",
        "expires_in": 1800,
        "token_type": "bearer",
    }
).encode()


@pytest.fixture
def origins() -> Iterator[tuple[_Server, _Server]]:
    """(the redirecting vendor, the other origin it points to)."""
    other = _Server(lambda path: (200, {"content-type": "application/json"}, _ANYTHING_OK))
    vendor = _Server(lambda path: (307, {"location": other.url + path}, b""))
    try:
        yield vendor, other
    finally:
        vendor.close()
        other.close()


def _connections(vendor_url: str) -> list[Connection]:
    oauth = HubSpotOAuth(
        client_id="redir-client",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        access_token=STALE_ACCESS,
        expires_at=time.time() - 5,  # expired: the first request refreshes at token_url
        token_url=f"{vendor_url}/oauth/v1/token",
    )
    return [
        Connection(
            "hl",
            adapter="highlevel",
            credentials=BearerToken(BEARER),
            settings={"base_url": f"{vendor_url}/hl"},
        ),
        Connection(
            "cw",
            adapter="chatwoot",
            credentials=ChatwootToken(CHATWOOT),
            settings={"base_url": f"{vendor_url}/cw", "account_id": 1},
        ),
        Connection(
            "hs",
            adapter="hubspot",
            credentials=oauth,
            settings={"base_url": f"{vendor_url}/hs", "channel_id": 7},
        ),
    ]


UPDATES = [
    ("hl", MessageStatus("m1", "read")),
    ("cw", MessageStatus("41", "read", conversation_id="12")),
    ("hs", MessageStatus("m1", "read")),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "kind",
    [
        "sync-httpx",
        "async-httpx",
        "async-aiohttp",
    ],
)
async def test_a_redirect_never_carries_a_secret_to_another_origin(
    kind: str, origins: tuple[_Server, _Server]
) -> None:
    vendor, other = origins
    registry = AdapterRegistry.from_entry_points()
    outcomes: list[str] = []
    connections = _connections(vendor.url)
    if kind == "sync-httpx":
        with Bridge(connections, registry=registry, retry=ONCE) as bridge:
            for name, update in UPDATES:
                try:
                    outcomes.append(bridge.update_status(name, update).outcome.value)
                except MessagingError as exc:
                    outcomes.append(type(exc).__name__)
    else:
        sender = AiohttpSender() if kind == "async-aiohttp" else None
        async with AsyncBridge(connections, registry=registry, retry=ONCE, sender=sender) as b:
            for name, update in UPDATES:
                try:
                    outcomes.append((await b.update_status(name, update)).outcome.value)
                except MessagingError as exc:
                    outcomes.append(type(exc).__name__)
    assert len(vendor.seen) >= len(UPDATES), vendor.seen  # every request reached the vendor
    leaked = {s: [r.split("\n", 1)[0] for r in other.seen if s in r] for s in SECRETS}
    assert {s: where for s, where in leaked.items() if where} == {}, outcomes
    assert "applied" not in outcomes  # a 3xx is never a success
