"""Every sender, built-in or third-party, against the sender contract, over real loopback HTTP.

The kit (``msgbridge.testing.senders``) must pass the three built-in senders and fail
senders that break the contract the way real HTTP clients do by default (aiohttp follows
redirects and re-encodes paths; a client without a total deadline waits out a trickle).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from yarl import URL

from msgbridge.adapter import PreparedRequest, ResponseView
from msgbridge.errors import ConnectFailed, MessagingError, VendorUnavailable
from msgbridge.fast import AiohttpSender
from msgbridge.senders import AsyncHttpxSender, HttpxSender, transport_error
from msgbridge.testing.senders import (
    SenderCheckServer,
    SenderConformanceError,
    acheck_sender,
    check_sender,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[SenderCheckServer]:
    with SenderCheckServer() as running:
        yield running


def test_httpx_sync_sender_keeps_the_contract(server: SenderCheckServer) -> None:
    check_sender(lambda deadline: HttpxSender(deadline=deadline), server)


async def test_httpx_async_sender_keeps_the_contract(server: SenderCheckServer) -> None:
    await acheck_sender(lambda deadline: AsyncHttpxSender(deadline=deadline), server)


async def test_aiohttp_sender_keeps_the_contract(server: SenderCheckServer) -> None:
    await acheck_sender(lambda deadline: AiohttpSender(deadline=deadline), server)


async def test_aiohttp_sender_with_a_callers_session_keeps_the_contract(
    server: SenderCheckServer,
) -> None:
    """A caller's session may be set up to follow redirects and to wait long: the sender
    still refuses both."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
    try:
        await acheck_sender(lambda deadline: AiohttpSender(session, deadline=deadline), server)
    finally:
        await session.close()


def test_httpx_sender_with_a_redirect_following_client_keeps_the_contract(
    server: SenderCheckServer,
) -> None:
    client = httpx.Client(follow_redirects=True, timeout=300)
    try:
        check_sender(lambda deadline: HttpxSender(client, deadline=deadline), server)
    finally:
        client.close()


# -- the kit catches what real clients do by default -------------------------------------


class _NaiveAiohttp:
    """What a third party would write first: aiohttp's defaults."""

    def __init__(self, deadline: float, *, encoded: bool = False, **request_options: Any) -> None:
        self.encoded = encoded
        self.options = request_options
        self.session: aiohttp.ClientSession | None = None

    async def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        self.session = self.session or aiohttp.ClientSession()
        try:
            async with self.session.request(
                request.method,
                URL(request.url, encoded=True) if self.encoded else request.url,
                headers=request.headers,
                data=request.body,
                **self.options,
            ) as response:
                return ResponseView(response.status, response.headers, await response.read())
        except aiohttp.ClientError as exc:
            return VendorUnavailable(str(exc))

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


async def test_kit_catches_a_sender_that_follows_redirects(server: SenderCheckServer) -> None:
    with pytest.raises(SenderConformanceError, match=r"redirect .* was followed"):
        await acheck_sender(lambda d: _NaiveAiohttp(d, encoded=True, allow_redirects=True), server)


async def test_kit_catches_a_sender_that_re_encodes_the_path(server: SenderCheckServer) -> None:
    with pytest.raises(SenderConformanceError, match="path was re-encoded"):
        await acheck_sender(lambda d: _NaiveAiohttp(d, allow_redirects=False), server)


class _NoDeadline(HttpxSender):
    """Per-read timeouts only: a byte every 0.1 s keeps it waiting for the whole answer."""

    def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        try:
            response = self.client.send(
                self.client.build_request(
                    request.method, request.url, headers=request.headers, content=request.body
                )
            )
        except httpx.TransportError as exc:
            return transport_error(request, exc, sent_nothing=isinstance(exc, httpx.ConnectError))
        return ResponseView(response.status_code, response.headers, response.content)


def test_kit_catches_a_sender_without_a_total_deadline(server: SenderCheckServer) -> None:
    with pytest.raises(SenderConformanceError, match="deadline must bound the whole attempt"):
        check_sender(lambda d: _NoDeadline(deadline=d), server)


class _Unclassified(HttpxSender):
    """Every transport failure a plain VendorUnavailable: a refused connection then looks
    like one that may have been applied, and a must-not-repeat publish is never retried."""

    def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        reply = super().send(request)
        if isinstance(reply, VendorUnavailable):
            return VendorUnavailable(reply.message)
        return reply


def test_kit_catches_a_sender_that_does_not_say_nothing_was_sent(
    server: SenderCheckServer,
) -> None:
    with pytest.raises(SenderConformanceError, match=r"refused connection must be .*ConnectFailed"):
        check_sender(lambda d: _Unclassified(deadline=d), server)


class _Resending(HttpxSender):
    """A client that "helpfully" resends once after a dropped connection, as aiohttp does
    for idempotent methods and msgbridge's fast sender used to for every request."""

    def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        reply = super().send(request)
        if isinstance(reply, VendorUnavailable) and not isinstance(reply, ConnectFailed):
            return super().send(request)
        return reply


def test_kit_catches_a_sender_that_resends_a_request_that_may_be_sent_once(
    server: SenderCheckServer,
) -> None:
    with pytest.raises(SenderConformanceError, match="reached the server 2 times"):
        check_sender(lambda d: _Resending(deadline=d), server)


async def test_aiohttp_sender_never_resends_a_put_that_may_be_sent_once(
    server: SenderCheckServer,
) -> None:
    """aiohttp resends a PUT on its own after a disconnect; the fast sender stops it."""
    sender = AiohttpSender(deadline=2.0)
    seen: dict[bool, int] = {}
    try:
        for retry_when_ambiguous in (True, False):
            server.vendor.recorder.clear()
            request = server.request(
                "PUT", "/hangup", body=b"{}", retry_when_ambiguous=retry_when_ambiguous
            )
            reply = await sender.send(request)
            assert isinstance(reply, VendorUnavailable)
            assert not isinstance(reply, ConnectFailed)
            seen[retry_when_ambiguous] = len(server.vendor.recorder.requests)
    finally:
        await sender.aclose()
    assert seen[True] > 1  # what aiohttp does by default
    assert seen[False] == 1
