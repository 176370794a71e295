"""Senders: the only place msgbridge does HTTP. A seam, so the client can change.

A sender turns a :class:`~msgbridge.adapter.RequestSpec` plus a credential into a
:class:`~msgbridge.adapter.ResponseView`, or returns a retryable
:class:`~msgbridge.errors.VendorUnavailable` for transport failures. httpx is the
default (and the client type callers may hand in). One client, and so one connection
pool per vendor host, is shared by every connection of a bridge.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from msgbridge.adapter import RequestSpec, ResponseView
from msgbridge.errors import MalformedResponse, MessagingError, VendorUnavailable

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AsyncHttpxSender",
    "AsyncSender",
    "HttpxSender",
    "SyncSender",
]

#: Explicit timeouts; never ``None``: a hung vendor must not hang a worker.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
#: httpx's pool scans its connections on every request, so it slows down as the pool
#: and the concurrency grow (measured against one loopback server at 64 in flight:
#: 64 connections 231/s, 16 connections 543/s, 8 connections 657/s). 16 keeps the
#: default off that cliff while still allowing 16 concurrent requests per vendor host
#: over a WAN; for more, use the fast aiohttp sender (docs/performance.md).
DEFAULT_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)

_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_USER_AGENT = {"User-Agent": "msgbridge"}


class SyncSender(Protocol):
    def send(self, request: RequestSpec, auth: httpx.Auth) -> ResponseView | MessagingError: ...

    def close(self) -> None: ...


class AsyncSender(Protocol):
    async def send(
        self, request: RequestSpec, auth: httpx.Auth
    ) -> ResponseView | MessagingError: ...

    async def aclose(self) -> None: ...


def _effective_timeout(
    client: httpx.Client | httpx.AsyncClient | None, default: httpx.Timeout
) -> httpx.Timeout:
    """A caller's client keeps its own timeouts, unless they are all ``None`` (never
    wait forever on a vendor)."""
    if client is None:
        return default
    own = client.timeout
    unset = (own.connect, own.read, own.write, own.pool) == (None, None, None, None)
    return default if unset else own


def _headers(request: RequestSpec) -> dict[str, str]:
    headers = dict(_JSON) if request.json is not None else {"Accept": "application/json"}
    headers.update(request.headers)
    return headers


def _transport_error(request: RequestSpec, exc: httpx.HTTPError) -> VendorUnavailable:
    return VendorUnavailable(
        f"transport error talking to the vendor: {type(exc).__name__}: {exc}",
        subject_id=request.subject_id,
    )


def _undecodable(request: RequestSpec, exc: httpx.DecodingError) -> MalformedResponse:
    return MalformedResponse(
        f"the vendor's answer could not be decoded: {exc}", subject_id=request.subject_id
    )


def _view(response: httpx.Response) -> ResponseView:
    return ResponseView(response.status_code, response.headers, response.content)


class HttpxSender:
    """Sends with an ``httpx.Client``; closes it only if it created it."""

    def __init__(
        self, client: httpx.Client | None = None, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT
    ) -> None:
        self._owned = client is None
        self.client = client or httpx.Client(
            timeout=timeout, limits=DEFAULT_LIMITS, follow_redirects=False, headers=_USER_AGENT
        )
        self.timeout = _effective_timeout(client, timeout)

    def send(self, request: RequestSpec, auth: httpx.Auth) -> ResponseView | MessagingError:
        built = self.client.build_request(
            request.method,
            request.url,
            headers=_headers(request),
            content=request.body_bytes(),
            timeout=self.timeout,
        )
        try:
            return _view(self.client.send(built, auth=auth))
        except httpx.TransportError as exc:
            return _transport_error(request, exc)
        except httpx.DecodingError as exc:
            return _undecodable(request, exc)

    def close(self) -> None:
        if self._owned:
            self.client.close()


class AsyncHttpxSender:
    """Sends with an ``httpx.AsyncClient``; closes it only if it created it."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._owned = client is None
        self.client = client or httpx.AsyncClient(
            timeout=timeout, limits=DEFAULT_LIMITS, follow_redirects=False, headers=_USER_AGENT
        )
        self.timeout = _effective_timeout(client, timeout)

    async def send(self, request: RequestSpec, auth: httpx.Auth) -> ResponseView | MessagingError:
        built = self.client.build_request(
            request.method,
            request.url,
            headers=_headers(request),
            content=request.body_bytes(),
            timeout=self.timeout,
        )
        try:
            return _view(await self.client.send(built, auth=auth))
        except httpx.TransportError as exc:
            return _transport_error(request, exc)
        except httpx.DecodingError as exc:
            return _undecodable(request, exc)

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()
