"""A fast async sender on aiohttp (extra ``msgbridge[fast]``).

httpx's ``AsyncClient`` gets slower as concurrency rises, while aiohttp gets faster
(docs/performance.md). This sender keeps the sender contract of
:mod:`msgbridge.senders`: it sends the prepared URL without re-encoding it (yarl would
otherwise turn ``%3B`` back into ``;``), never follows a redirect (aiohttp's default
would resend credentials to another origin), bounds every attempt by a total deadline,
and never resends a request whose ``retry_when_ambiguous`` is ``False`` (neither its own
quick resend on a stale keep-alive connection nor aiohttp's own one for PUT/DELETE).

Use: ``AsyncBridge(connections, sender=AiohttpSender())``. The session is created lazily
inside the running event loop and must not be shared across loops.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
from yarl import URL

from msgbridge.adapter import PreparedRequest, ResponseView
from msgbridge.errors import MessagingError
from msgbridge.senders import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    check_deadline,
    deadline_error,
    transport_error,
)

__all__ = ["AiohttpSender"]

#: Methods aiohttp resends on its own after a dropped keep-alive connection.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class _SendRefused(Exception):
    """aiohttp tried to send a second time a request that may be sent only once."""


def _single_send() -> Any:
    """A per-request aiohttp middleware that lets the request through once: aiohttp's own
    resend after a dropped connection becomes an error instead of a second request."""
    failed: list[BaseException] = []
    calls = 0

    async def middleware(request: aiohttp.ClientRequest, handler: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise _SendRefused(
                "aiohttp tried to resend a request that may be sent only once"
            ) from (failed[0] if failed else None)
        try:
            return await handler(request)
        except BaseException as exc:
            failed.append(exc)
            raise

    return middleware


def _session_middlewares(session: aiohttp.ClientSession) -> tuple[Any, ...]:
    """A caller's session middlewares, kept when a per-request one is added (per-request
    middlewares replace the session's in aiohttp)."""
    return tuple(getattr(session, "_middlewares", None) or ())


class AiohttpSender:
    """Send through one ``aiohttp.ClientSession`` (one pool per host, keep-alive)."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        limit: int = 256,
        limit_per_host: int = 128,
    ) -> None:
        self.deadline = check_deadline(deadline)
        self._session = session
        self._owned = session is None
        self._limit = limit
        self._limit_per_host = limit_per_host
        read = timeout.read if timeout.read is not None else 15.0
        connect = timeout.connect if timeout.connect is not None else 5.0
        # ``total`` is the per-attempt deadline; a caller's session keeps its own
        # settings otherwise, but never loses the deadline (passed per request).
        self._timeout = aiohttp.ClientTimeout(
            total=self.deadline, connect=min(connect, self.deadline), sock_read=read
        )
        self._request_timeout: aiohttp.ClientTimeout | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is not None and not self._owned and self._request_timeout is None:
            # A caller's session keeps its own timeouts, bounded by the deadline.
            own = self._session.timeout
            total = self.deadline if own.total is None else min(own.total, self.deadline)
            self._request_timeout = aiohttp.ClientTimeout(
                total=total,
                connect=own.connect,
                sock_read=own.sock_read,
                sock_connect=own.sock_connect,
            )
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True
            )
            self._owned = True
            self._request_timeout = self._timeout
        return self._session

    async def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        session = self._get_session()
        url = URL(request.url, encoded=True)
        once = not request.retry_when_ambiguous
        options: dict[str, Any] = {}
        if once and request.method.upper() in IDEMPOTENT_METHODS:
            # aiohttp itself resends a PUT/DELETE once on a dropped keep-alive connection;
            # this request must reach the wire at most once.
            options["middlewares"] = (*_session_middlewares(session), _single_send())
        for attempt in (1, 2):
            try:
                async with session.request(
                    request.method,
                    url,
                    headers=request.headers,
                    data=request.body,
                    allow_redirects=False,
                    timeout=self._request_timeout,
                    **options,
                ) as response:
                    content = await response.read()
                    return ResponseView(response.status, response.headers, content)
            except aiohttp.ServerDisconnectedError as exc:
                # A pooled keep-alive connection the server had already closed: resend
                # at once on a fresh one instead of paying a retry backoff, unless the
                # request must not be sent twice (the server may have read it before
                # closing). A second disconnect is a real failure.
                if attempt == 2 or once:
                    return transport_error(request, exc)
            except _SendRefused as exc:
                return transport_error(request, exc.__cause__ or exc)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                return transport_error(request, exc, sent_nothing=True)
            except aiohttp.ClientError as exc:  # ServerTimeoutError (a slow read) included
                return transport_error(request, exc)
            except (asyncio.TimeoutError, TimeoutError):
                return deadline_error(request, self.deadline)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
