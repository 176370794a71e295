"""A 2xx that did not come from the vendor must not settle a row as applied.

Hostile check of "an accepted update is delivered, or becomes a dead letter": one
connection's ``base_url`` points at something that is not the vendor's API but answers
every request ``200`` with an HTML page (a proxy's maintenance page, a captive portal, a
web site's catch-all route). The vendor never saw the update.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgbridge import AsyncBridge, BearerToken, Bridge, Connection, MessageStatus
from msgbridge.errors import MalformedResponse, OutcomeUnknown
from msgbridge.fast import AiohttpSender
from msgbridge.inbound import IncomingMessage
from msgbridge.model import Outcome
from msgbridge.outbox import Outbox, OutboxWorker
from msgbridge.retry import RetryPolicy


class _HtmlPage(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        page = b"<!doctype html><title>Down for maintenance</title>"
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def do_PUT(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def html_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_html_200_from_a_wrong_base_url_does_not_settle_the_row(
    tmp_path: Path, html_site: str
) -> None:
    connection = Connection(
        "acme",
        adapter="highlevel",
        credentials=BearerToken("pit-example"),
        settings={"base_url": html_site, "location_id": "loc-1", "version": "2021-04-15"},
    )
    with Outbox(tmp_path / "outbox.db") as box:
        box.enqueue("acme", MessageStatus("m-1", "delivered"))
        with OutboxWorker.create(box, [connection]) as worker:
            report = worker.run_once()
        assert report.applied == 0
        assert box.guard().last("acme", "m-1") is None
        assert box.stats().pending + len(box.dead_letters()) == 1


SENDERS = ("httpx-sync", "httpx-async", "aiohttp")


def _call(kind: str, connection: Connection, retry: RetryPolicy, method: str, *args: Any) -> Any:
    """``method(*args)`` on a fresh bridge for the sender under test (its result)."""
    if kind == "httpx-sync":
        with Bridge([connection], retry=retry) as bridge:
            result = getattr(bridge, method)(*args)
            return list(result) if method == "update_many" else result

    async def run() -> Any:
        sender: Any = AiohttpSender() if kind == "aiohttp" else None
        async with AsyncBridge([connection], retry=retry, sender=sender) as abridge:
            if method == "update_many":
                return [r async for r in abridge.update_many(*args)]
            return await getattr(abridge, method)(*args)

    return asyncio.run(run())


@pytest.mark.parametrize("kind", SENDERS)
def test_an_html_200_is_retried_for_a_status_and_never_recorded(html_site: str, kind: str) -> None:
    """Through a plain bridge, on every sender and both entry points: FAILED and retryable
    after every attempt got the page; nothing recorded, so the real vendor gets the
    update once the URL is fixed."""
    connection = Connection(
        "acme",
        adapter="highlevel",
        credentials=BearerToken("pit-example"),
        settings={"base_url": html_site},
    )
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0)
    with pytest.raises(MalformedResponse, match=r"not JSON.*not 'highlevel''s API") as info:
        _call(kind, connection, retry, "update_status", "acme", MessageStatus("m-1", "delivered"))
    assert info.value.retryable
    assert info.value.attempts == 2
    assert info.value.http_status == 200
    [receipt] = _call(
        kind, connection, retry, "update_many", [("acme", MessageStatus("m-2", "read"))]
    )
    assert receipt.outcome is Outcome.FAILED
    assert isinstance(receipt.error, MalformedResponse)
    assert receipt.error.retryable


@pytest.mark.parametrize("kind", SENDERS)
def test_an_html_200_to_a_publish_is_outcome_unknown_not_a_retry(html_site: str, kind: str) -> None:
    """A publish that must not be repeated is not retried on a page either: whatever
    answered may have forwarded it."""
    connection = Connection(
        "acme",
        adapter="highlevel",
        credentials=BearerToken("pit-example"),
        settings={"base_url": html_site, "conversation_provider_id": "prov-1"},
    )
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.0, jitter=0.0)
    message = IncomingMessage("carrier-1", "sms", contact_id="c-1", text="Thanks")
    with pytest.raises(OutcomeUnknown, match="not JSON") as info:
        _call(kind, connection, retry, "publish_inbound", "acme", message)
    assert info.value.attempts == 1
    assert not info.value.retryable
