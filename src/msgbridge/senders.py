"""Senders: the only place msgbridge does HTTP. A seam, so the client can change.

A sender takes a :class:`~msgbridge.adapter.PreparedRequest` (method, encoded URL,
every header, body bytes; credentials already applied) and returns a
:class:`~msgbridge.adapter.ResponseView`, or a retryable
:class:`~msgbridge.errors.VendorUnavailable` for transport failures. The contract, which
``msgbridge.testing.check_sender`` verifies for any sender:

- classify transport failures: :class:`~msgbridge.errors.ConnectFailed` only when nothing
  can have been sent (connect refused or timed out, DNS), a plain ``VendorUnavailable``
  when the request may have reached the vendor (the delivery loop then refuses to retry
  a request with ``retry_when_ambiguous=False``);
- never resend a request on its own when its ``retry_when_ambiguous`` is ``False``;
- send exactly the URL, headers and body it was given (no re-encoding of the path);
- never follow a redirect (a redirect would resend credentials to another origin): return
  the 3xx answer as it is, the delivery loop turns it into a typed error;
- give every attempt a total deadline (connect + send + the full answer), so a vendor
  that trickles bytes cannot hold an update for longer than ``deadline`` seconds.

httpx is the default (and the client type callers may hand in). One client, and so one
connection pool per vendor host, is shared by every connection of a bridge.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

import httpx

from msgbridge.adapter import PreparedRequest, ResponseView
from msgbridge.errors import (
    ConfigurationError,
    ConnectFailed,
    MalformedResponse,
    MessagingError,
    UnexpectedError,
    VendorUnavailable,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AsyncHttpxSender",
    "AsyncSender",
    "HttpxSender",
    "SyncSender",
    "check_deadline",
]

#: Explicit timeouts; never ``None``: a hung vendor must not hang a worker.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
#: Seconds one attempt may take in all (connect, send, the whole answer).
DEFAULT_DEADLINE = 30.0
#: httpx's pool scans its connections on every request, so it slows down as the pool
#: and the concurrency grow (measured against one loopback server at 64 in flight:
#: 64 connections 231/s, 16 connections 543/s, 8 connections 657/s). 16 keeps the
#: default off that cliff while still allowing 16 concurrent requests per vendor host
#: over a WAN; for more, use the fast aiohttp sender (docs/performance.md).
DEFAULT_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)


class SyncSender(Protocol):
    def send(self, request: PreparedRequest) -> ResponseView | MessagingError: ...

    def close(self) -> None: ...


class AsyncSender(Protocol):
    async def send(self, request: PreparedRequest) -> ResponseView | MessagingError: ...

    async def aclose(self) -> None: ...


def check_deadline(value: object) -> float:
    """A per-attempt deadline: a finite number of seconds above zero (at most a day)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= 86_400
    ):
        raise ConfigurationError(
            f"deadline must be a finite number of seconds above 0 and at most 86400, got {value!r}",
            key="deadline",
        )
    return float(value)


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


def _capped(timeout: httpx.Timeout, deadline: float) -> httpx.Timeout:
    def cap(value: float | None) -> float:
        return deadline if value is None else min(value, deadline)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


def transport_error(
    request: PreparedRequest, exc: BaseException, *, sent_nothing: bool = False
) -> VendorUnavailable:
    """A transport failure; *sent_nothing* when no byte of the request can have left
    (connect refused or timed out, DNS, TLS handshake, pool wait): a
    :class:`~msgbridge.errors.ConnectFailed`, always safe to retry. Anything else may have
    reached the vendor (the delivery loop decides whether that may be retried)."""
    if sent_nothing:
        return ConnectFailed(
            f"could not connect to the vendor (nothing was sent): {type(exc).__name__}: {exc}",
            subject_id=request.subject_id,
        )
    return VendorUnavailable(
        f"transport error talking to the vendor: {type(exc).__name__}: {exc}",
        subject_id=request.subject_id,
    )


#: httpx's failures that happen before any byte of the request is written.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def deadline_error(request: PreparedRequest, deadline: float) -> VendorUnavailable:
    return VendorUnavailable(
        f"no complete answer from the vendor within the {deadline:g} s deadline",
        subject_id=request.subject_id,
    )


def unsendable(request: PreparedRequest, exc: BaseException) -> UnexpectedError:
    """The request itself cannot go on the wire (a header with a line break, a URL the
    client refuses): our side's fault, so never retried. The client's message is not
    shown: it quotes the header value, which may be a secret."""
    return UnexpectedError(
        f"the request could not be sent as built ({type(exc).__name__}: an invalid header "
        "name or value, or URL); fix the adapter, credential or settings that produced it",
        subject_id=request.subject_id,
    )


def _undecodable(request: PreparedRequest, exc: httpx.DecodingError) -> MalformedResponse:
    return MalformedResponse(
        f"the vendor's answer could not be decoded: {exc}", subject_id=request.subject_id
    )


def _build(
    client: httpx.Client | httpx.AsyncClient, request: PreparedRequest, timeout: httpx.Timeout
) -> httpx.Request:
    # httpx.URL re-normalises a str; the adapters' paths are already percent-encoded and
    # httpx keeps those escapes as they are (tests/integration/test_wire_paths.py).
    return client.build_request(
        request.method, request.url, headers=request.headers, content=request.body, timeout=timeout
    )


class _Expired(Exception):
    pass


class HttpxSender:
    """Sends with an ``httpx.Client``; closes it only if it created it."""

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.deadline = check_deadline(deadline)
        self._owned = client is None
        self.client = client or httpx.Client(
            timeout=timeout, limits=DEFAULT_LIMITS, follow_redirects=False
        )
        self.timeout = _capped(_effective_timeout(client, timeout), self.deadline)

    def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        built = _build(self.client, request, self.timeout)
        ends = time.monotonic() + self.deadline
        try:
            response = self.client.send(built, stream=True, follow_redirects=False)
            try:
                chunks = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > ends:
                        raise _Expired
            finally:
                response.close()
            return ResponseView(response.status_code, response.headers, b"".join(chunks))
        except _Expired:
            return deadline_error(request, self.deadline)
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            return unsendable(request, exc)
        except httpx.TransportError as exc:
            return transport_error(request, exc, sent_nothing=isinstance(exc, _NOT_SENT))
        except httpx.DecodingError as exc:
            return _undecodable(request, exc)

    def close(self) -> None:
        if self._owned:
            self.client.close()


T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(seconds: float, work: Awaitable[T]) -> T:
        """*work*, or ``TimeoutError`` after *seconds* (no extra task on 3.11+)."""
        async with asyncio.timeout(seconds):
            return await work

else:  # pragma: no cover - Python 3.10

    async def within(seconds: float, work: Awaitable[T]) -> T:
        return await asyncio.wait_for(work, seconds)


class AsyncHttpxSender:
    """Sends with an ``httpx.AsyncClient``; closes it only if it created it."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.deadline = check_deadline(deadline)
        self._owned = client is None
        self.client = client or httpx.AsyncClient(
            timeout=timeout, limits=DEFAULT_LIMITS, follow_redirects=False
        )
        self.timeout = _capped(_effective_timeout(client, timeout), self.deadline)

    async def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        built = _build(self.client, request, self.timeout)
        try:
            return await within(self.deadline, self._exchange(built))
        except (TimeoutError, asyncio.TimeoutError):
            return deadline_error(request, self.deadline)
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            return unsendable(request, exc)
        except httpx.TransportError as exc:
            return transport_error(request, exc, sent_nothing=isinstance(exc, _NOT_SENT))
        except httpx.DecodingError as exc:
            return _undecodable(request, exc)

    async def _exchange(self, built: httpx.Request) -> ResponseView:
        response = await self.client.send(built, follow_redirects=False)
        return ResponseView(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()
