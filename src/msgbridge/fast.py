"""A fast async sender on aiohttp (extra ``msgbridge[fast]``).

httpx's ``AsyncClient`` gets slower as concurrency rises, while aiohttp gets faster
(docs/performance.md). This sender speaks the same seam as the httpx one: it takes a
:class:`~msgbridge.adapter.RequestSpec` and a credential and returns a
:class:`~msgbridge.adapter.ResponseView`, so retries, auth, limits and the state guard
are identical. Credentials are ``httpx.Auth`` flows; this sender drives the flow itself
(a refresh request goes through aiohttp too), with a fast path for static tokens.

Use: ``AsyncBridge(connections, sender=AiohttpSender())``. The session is created lazily
inside the running event loop and must not be shared across loops.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx

from msgbridge.adapter import RequestSpec, ResponseView
from msgbridge.auth import BearerToken
from msgbridge.errors import MessagingError, VendorUnavailable
from msgbridge.senders import DEFAULT_TIMEOUT

__all__ = ["AiohttpSender"]

_JSON_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "msgbridge",
}


class AiohttpSender:
    """Send through one ``aiohttp.ClientSession`` (one pool per host, keep-alive)."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limit: int = 256,
        limit_per_host: int = 128,
    ) -> None:
        self._session = session
        self._owned = session is None
        self._limit = limit
        self._limit_per_host = limit_per_host
        read = timeout.read if timeout.read is not None else 15.0
        connect = timeout.connect if timeout.connect is not None else 5.0
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True
            )
        return self._session

    async def send(self, request: RequestSpec, auth: httpx.Auth) -> ResponseView | MessagingError:
        headers = dict(_JSON_HEADERS)
        headers.update(request.headers)
        body = request.body_bytes()
        try:
            if isinstance(auth, BearerToken):
                headers["Authorization"] = auth.authorization()
                return await self._exchange(request.method, request.url, headers, body)
            return await self._with_auth_flow(request, headers, body, auth)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return VendorUnavailable(
                f"transport error talking to the vendor: {type(exc).__name__}: {exc}",
                subject_id=request.subject_id,
            )

    async def _exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> ResponseView:
        session = self._get_session()
        for attempt in (1, 2):
            try:
                async with session.request(method, url, headers=headers, data=body) as response:
                    content = await response.read()
                    return ResponseView(response.status, response.headers, content)
            except aiohttp.ServerDisconnectedError:
                # A pooled keep-alive connection the server had already closed: resend
                # at once on a fresh one (our calls are idempotent) instead of paying a
                # retry backoff. A second disconnect is a real failure.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _with_auth_flow(
        self, request: RequestSpec, headers: dict[str, str], body: bytes | None, auth: httpx.Auth
    ) -> ResponseView:
        """Drive an ``httpx.Auth`` flow (OAuth refresh) with aiohttp doing the I/O."""
        first = httpx.Request(request.method, request.url, headers=headers, content=body)
        flow = auth.async_auth_flow(first)
        outgoing = await flow.__anext__()
        try:
            while True:
                sent_headers = {
                    k: v
                    for k, v in outgoing.headers.items()
                    if k.lower() not in {"host", "content-length"}
                }
                view = await self._exchange(
                    outgoing.method, str(outgoing.url), sent_headers, outgoing.content or None
                )
                reply = httpx.Response(
                    view.status, headers=view.headers, content=view.body, request=outgoing
                )
                try:
                    outgoing = await flow.asend(reply)
                except StopAsyncIteration:
                    return view
        finally:
            await flow.aclose()

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
