"""Sender conformance: hold any sender (built-in or a third party's) to the sender contract.

The contract (:mod:`msgbridge.senders`): send exactly the URL, headers and body it is
given; never follow a redirect; bound every attempt by a total deadline; report a
transport failure as :class:`~msgbridge.errors.VendorUnavailable`, and as
:class:`~msgbridge.errors.ConnectFailed` exactly when nothing can have been sent (a
refused connection); never resend a request whose ``retry_when_ambiguous`` is ``False``
(a server that reads it and hangs up must see it once). These checks run a
real HTTP server on loopback (the standard library's, in a thread), so they prove what
reaches the wire, not what a mock saw::

    from msgbridge.testing.senders import SenderCheckServer, check_sender, acheck_sender

    def test_my_sender() -> None:
        with SenderCheckServer() as server:
            check_sender(lambda deadline: MySender(deadline=deadline), server)

Each check raises :class:`SenderConformanceError` naming what the sender did wrong.
"""

from __future__ import annotations

import contextlib
import http.server
import inspect
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from msgbridge.adapter import PreparedRequest, ResponseView
from msgbridge.errors import ConnectFailed, VendorUnavailable

__all__ = [
    "REDIRECT_STATUSES",
    "RESERVED_PATH",
    "SenderCheckServer",
    "SenderConformanceError",
    "acheck_sender",
    "check_sender",
]

#: A path segment holding every reserved character, percent-encoded (what
#: ``msgbridge.adapter.path_segment`` builds for an id like ``x;v=1!$&'()*,:@/``).
RESERVED_PATH = "/raw/x%3Bv%3D1%21%24%26%27%28%29%2A%2C%3A%40%2F%3F%23%25%20%2B"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
#: What the trickling endpoint sends, one byte at a time.
_TRICKLE_SECONDS = 6.0


class SenderConformanceError(AssertionError):
    """A sender broke the sender contract."""


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def add(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        with self.lock:
            self.requests.append((method, path, headers, body))

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def _handler(recorder: _Recorder, other_origin: Callable[[], str]) -> type[Any]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.add(self.command, self.path, dict(self.headers.items()), body)
            path = self.path
            if path.startswith("/redirect/"):
                status = int(path.split("/")[2])
                self.send_response(status)
                self.send_header("Location", f"{other_origin()}/stolen?secret=query")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path.startswith("/hangup"):
                # Read the whole request, then close without a word: the client cannot
                # tell whether it was applied.
                self.close_connection = True
            elif path.startswith("/trickle"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(int(_TRICKLE_SECONDS * 10)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(int(_TRICKLE_SECONDS * 10)):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.1)
            else:
                payload = b'{"ok":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Echo-Path", "yes")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815

    return Handler


class _Server:
    def __init__(self, other_origin: Callable[[], str]) -> None:
        self.recorder = _Recorder()
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), _handler(self.recorder, other_origin)
        )
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SenderCheckServer:
    """Two loopback HTTP servers: the vendor, and the "other origin" a redirect points to
    (which must never see a request)."""

    def __init__(self) -> None:
        self.other = _Server(lambda: "http://127.0.0.1:1")
        self.vendor = _Server(lambda: self.other.origin)

    def __enter__(self) -> SenderCheckServer:
        self.other.start()
        self.vendor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.vendor.stop()
        self.other.stop()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        retry_when_ambiguous: bool = True,
        **headers: str,
    ) -> PreparedRequest:
        sent = {"Accept": "application/json", "User-Agent": "msgbridge", **headers}
        if body is not None:
            sent["Content-Type"] = "application/json"
        return PreparedRequest(
            method,
            f"{self.vendor.origin}{path}",
            sent,
            body,
            subject_id="s1",
            retry_when_ambiguous=retry_when_ambiguous,
        )

    def closed_port_request(self) -> PreparedRequest:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return PreparedRequest("GET", f"http://127.0.0.1:{port}/", {"Accept": "*/*"})


def _fail(message: str) -> SenderConformanceError:
    return SenderConformanceError(f"sender contract: {message}")


def _cases(
    server: SenderCheckServer,
) -> Iterator[tuple[str, PreparedRequest, Callable[[Any], None]]]:
    """(name, request, judge(reply)) for every check but the deadline."""
    vendor, other = server.vendor.recorder, server.other.recorder

    def verbatim(reply: Any) -> None:
        if not isinstance(reply, ResponseView) or reply.status != 200:
            raise _fail(f"a plain PUT did not come back as a 200 ResponseView: {reply!r}")
        method, path, headers, body = vendor.requests[-1]
        if path != RESERVED_PATH:
            raise _fail(
                f"the path was re-encoded on the wire: sent {RESERVED_PATH!r}, got {path!r}"
            )
        if method != "PUT" or body != b'{"status":"read","note":"\xc3\xa9"}':
            raise _fail(f"the method or body bytes changed on the wire: {method} {body!r}")
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("x-signature") != "abc123" or lowered.get("version") != "2021-04-15":
            raise _fail("headers given to the sender did not reach the wire unchanged")
        if reply.header("x-echo-path") != "yes":
            raise _fail("the ResponseView lost the response headers")

    signed: dict[str, Any] = {"X-Signature": "abc123", "Version": "2021-04-15"}
    yield (
        "sends the URL, headers and body bytes exactly",
        server.request(
            "PUT", RESERVED_PATH, body='{"status":"read","note":"é"}'.encode(), **signed
        ),
        verbatim,
    )
    for status in REDIRECT_STATUSES:
        for method in ("PUT", "POST"):

            def no_follow(reply: Any, status: int = status, method: str = method) -> None:
                if other.requests:
                    raise _fail(
                        f"a {status} redirect of a {method} was followed to another origin "
                        "(credentials would be resent there)"
                    )
                if not isinstance(reply, ResponseView) or reply.status != status:
                    raise _fail(
                        f"a {status} answer must come back as it is (the delivery loop refuses "
                        f"it), got {reply!r}"
                    )

            yield (
                f"does not follow a {status} redirect of a {method}",
                server.request(
                    method, f"/redirect/{status}", body=b"{}", Authorization="Bearer s3cret"
                ),
                no_follow,
            )

    def unavailable(reply: Any) -> None:
        if not isinstance(reply, ConnectFailed) or not reply.retryable:
            raise _fail(
                "a refused connection must be a retryable ConnectFailed (nothing was sent, "
                f"so even a request that must not be repeated may be retried): {reply!r}"
            )

    yield (
        "reports a refused connection as ConnectFailed",
        server.closed_port_request(),
        unavailable,
    )
    for method in ("POST", "PUT"):

        def once(reply: Any, method: str = method) -> None:
            seen = len(vendor.requests)
            if seen != 1:
                raise _fail(
                    f"a {method} with retry_when_ambiguous=False reached the server {seen} "
                    "times after it hung up (a sender must never resend such a request)"
                )
            if not isinstance(reply, VendorUnavailable) or isinstance(reply, ConnectFailed):
                raise _fail(
                    "a server that read the request and hung up must be reported as a "
                    "VendorUnavailable that is not ConnectFailed (the request may have been "
                    f"applied): {reply!r}"
                )

        yield (
            f"never resends a {method} that may be sent only once",
            server.request(method, "/hangup", body=b"{}", retry_when_ambiguous=False),
            once,
        )


def _judge_deadline(reply: Any, took: float, deadline: float) -> None:
    if took > deadline + 2.0:
        raise _fail(
            f"an answer trickling byte by byte held the attempt {took:.1f} s with a "
            f"{deadline:g} s deadline (the deadline must bound the whole attempt)"
        )
    if not isinstance(reply, VendorUnavailable):
        raise _fail(f"an answer trickling past the deadline must be a VendorUnavailable: {reply!r}")


def check_sender(factory: Callable[[float], Any], server: SenderCheckServer) -> None:
    """Run every check on a sync sender; ``factory(deadline)`` builds one."""
    sender = factory(1.0)
    try:
        for _name, request, judge in _cases(server):
            server.vendor.recorder.clear()
            server.other.recorder.clear()
            judge(sender.send(request))
        started = time.monotonic()
        reply = sender.send(server.request("GET", "/trickle"))
        _judge_deadline(reply, time.monotonic() - started, 1.0)
    finally:
        sender.close()


async def acheck_sender(factory: Callable[[float], Any], server: SenderCheckServer) -> None:
    """Run every check on an async sender; ``factory(deadline)`` builds one."""
    sender = factory(1.0)
    try:
        for _name, request, judge in _cases(server):
            server.vendor.recorder.clear()
            server.other.recorder.clear()
            reply = sender.send(request)
            judge(await reply if inspect.isawaitable(reply) else reply)
        started = time.monotonic()
        reply = await sender.send(server.request("GET", "/trickle"))
        _judge_deadline(reply, time.monotonic() - started, 1.0)
    finally:
        await sender.aclose()
