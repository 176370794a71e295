"""A 2xx that did not come from the vendor must not settle a row as applied.

Hostile check of "an accepted update is delivered, or becomes a dead letter": one
connection's ``base_url`` points at something that is not the vendor's API but answers
every request ``200`` with an HTML page (a proxy's maintenance page, a captive portal, a
web site's catch-all route). The vendor never saw the update.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgbridge import BearerToken, Connection, MessageStatus
from msgbridge.outbox import Outbox, OutboxWorker


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


@pytest.mark.xfail(
    strict=True,
    reason=(
        "adapters report any 2xx as applied, even a body that is not JSON at all "
        "(HighLevelAdapter._unreadable: 'a 2xx means the vendor applied the update'); "
        "the worker then deletes the row and records the state as applied, so the "
        "update is lost and a resend is refused as DUPLICATE. Whether a non-JSON 2xx "
        "should be a (retryable) MalformedResponse is a product decision."
    ),
)
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
