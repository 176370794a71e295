"""The intake as a plain ASGI application: no web framework needed by the core.

Mount it in FastAPI/Starlette (``app.mount("/webhooks", intake.asgi())``) or serve it with
any ASGI server. ``POST {root}/{source}`` (or ``POST {root}/`` when there is one source)
reads the body up to the intake's limit (413 beyond, without reading the rest), verifies
and stores it in a worker thread, sends the answer, and only then hands the event to the
handler — in the same task, so a server that waits for the app to finish keeps the
hand-over inside the request's lifetime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from msgbridge.inbound.errors import PayloadTooLarge, UnknownWebhookSource
from msgbridge.inbound.intake import IntakeResponse, _refusal

if TYPE_CHECKING:
    from msgbridge.inbound.intake import Intake

__all__ = ["IntakeApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class IntakeApp:
    """ASGI app over an :class:`~msgbridge.inbound.intake.Intake`."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _send(
                send,
                IntakeResponse(405, {"error": "method not allowed; use POST"}, {"allow": "POST"}),
            )
            return
        source = _source_of(scope)
        if source is not None and source not in self.intake.sources:
            known = ", ".join(sorted(self.intake.sources))
            await _send(
                send,
                _refusal(
                    UnknownWebhookSource(f"no webhook source {source!r}; configured: {known}")
                ),
            )
            return
        body = await _read_body(scope, receive, self.intake.max_body)
        if body is None:
            await _send(
                send,
                _refusal(PayloadTooLarge(f"the body is larger than {self.intake.max_body} bytes")),
            )
            return
        headers = list(scope.get("headers") or [])
        response = await asyncio.to_thread(
            self.intake.receive, headers, body, source=source, method=scope["method"]
        )
        await _send(send, response)
        if response.status == 200 and response.key is not None:
            await self.intake.adispatch(response.key)


def _source_of(scope: Scope) -> str | None:
    path = str(scope.get("path") or "/")
    root = str(scope.get("root_path") or "")
    if root and path.startswith(root):
        path = path[len(root) :]
    name = path.strip("/")
    return name or None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, response: IntakeResponse) -> None:
    body = response.body_bytes()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items())
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
