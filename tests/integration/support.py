"""Helpers for the integration suite: one scenario, three runners, real HTTP on loopback.

Nothing here stands in for a msgbridge part. Every test talks to the real emulator
(uvicorn on 127.0.0.1) through a real bridge and a real sender:

* ``sync``: :class:`msgbridge.Bridge` with its httpx sender, driven from worker threads;
* ``async-httpx``: :class:`msgbridge.AsyncBridge` with its httpx sender;
* ``async-aiohttp``: :class:`msgbridge.AsyncBridge` with :class:`msgbridge.fast.AiohttpSender`.

A :class:`Runner` gives the three the same async face, so one test body covers all of them.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio.to_thread
import httpx

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    Receipt,
    RetryPolicy,
)
from msgbridge.emulator import (
    DEMO_CLIENT_SECRET,
    Emulator,
    MessageState,
    RecordedRequest,
    demo_client_id,
    demo_refresh_token,
    demo_token,
)
from msgbridge.emulator.highlevel import DEMO_LOCATION
from msgbridge.emulator.hubspot import DEMO_CHANNEL_ID, DEMO_PORTAL
from msgbridge.fast import AiohttpSender
from msgbridge.senders import AsyncHttpxSender, HttpxSender

T = TypeVar("T")

RUNNERS = ("sync", "async-httpx", "async-aiohttp")
DEMO_ACCOUNTS = {
    "highlevel": DEMO_LOCATION,
    "leadway": DEMO_LOCATION,
    "hoop": DEMO_LOCATION,
    "hubspot": DEMO_PORTAL,
}
HIGHLEVEL_FAMILY = ("highlevel", "leadway", "hoop")
VENDORS = (*HIGHLEVEL_FAMILY, "hubspot")
#: The ``Version`` header each HighLevel-family adapter sends by default.
VERSIONS = {"highlevel": "2021-04-15", "leadway": "2021-07-28", "hoop": "2021-04-15"}
CHANNEL = DEMO_CHANNEL_ID
HUBSPOT_API_VERSION = "2026-03"
#: Short waits everywhere: retries must not make the suite slow.
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_attempts=5)
#: HighLevel's "No conversation provider" wait, shortened from the vendor's 5 s.
PROVIDER_RETRY_AFTER = 0.2


def account(vendor: str) -> str:
    """The account of the vendor's demo token, as the emulated vendor declares it."""
    return DEMO_ACCOUNTS[vendor]


def token_url(emu: Emulator, vendor: str) -> str:
    if vendor == "hubspot":
        return f"{emu.base_url('hubspot')}/oauth/{HUBSPOT_API_VERSION}/token"
    return f"{emu.base_url(vendor)}/oauth/token"


def connection(
    emu: Emulator,
    vendor: str,
    *,
    name: str | None = None,
    credentials: httpx.Auth | None = None,
    strict: bool = False,
    rate_limit: tuple[int, float] | None = None,
    **settings: Any,
) -> Connection:
    """A connection to *vendor* on the emulator, with the adapter's default Version."""
    merged: dict[str, Any] = {"base_url": emu.base_url(vendor)}
    if vendor == "hubspot":
        merged["channel_id"] = CHANNEL
    else:
        merged["provider_retry_after"] = PROVIDER_RETRY_AFTER
    merged.update(settings)
    return Connection(
        name or vendor,
        adapter=vendor,
        credentials=credentials or BearerToken(demo_token(vendor)),
        settings=merged,
        strict=strict,
        rate_limit=rate_limit,
    )


def seed(emu: Emulator, vendor: str, message_id: str, **kwargs: Any) -> MessageState:
    """Make *message_id* known to *vendor* under the demo account (and channel)."""
    if vendor == "hubspot":
        kwargs.setdefault("channel_id", CHANNEL)
    return emu.seed_message(vendor, message_id, account=account(vendor), **kwargs)


# -- the neutral model, as each vendor sees it -----------------------------------------------

_HIGHLEVEL_VALUES = {
    DeliveryState.PENDING: "pending",
    DeliveryState.SENT: "pending",
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.READ: "read",
    DeliveryState.FAILED: "failed",
}
_HUBSPOT_VALUES = {
    DeliveryState.PENDING: None,
    DeliveryState.SENT: "SENT",
    DeliveryState.DELIVERED: "SENT",
    DeliveryState.READ: "READ",
    DeliveryState.FAILED: "FAILED",
}
#: The most precise neutral state each vendor value stands for (to judge a history).
_NEUTRAL_OF = {
    "pending": DeliveryState.PENDING,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
    "SENT": DeliveryState.SENT,
    "READ": DeliveryState.READ,
    "FAILED": DeliveryState.FAILED,
}


def vendor_value(vendor: str, state: DeliveryState) -> str | None:
    """The adapter's mapping (HighLevel: sent -> pending; HubSpot: no pending)."""
    table = _HUBSPOT_VALUES if vendor == "hubspot" else _HIGHLEVEL_VALUES
    return table[state]


def neutral_of(value: str) -> DeliveryState:
    return _NEUTRAL_OF[value]


def expected_vendor_status(vendor: str, states: Sequence[DeliveryState]) -> str | None:
    """What the emulator should hold after *states* arrived in this order."""
    last: DeliveryState | None = None
    for state in states:
        if vendor_value(vendor, state) is None:
            continue  # skipped as unsupported: never sent, never remembered
        if last is None or state.may_follow(last):
            last = state
    return None if last is None else vendor_value(vendor, last)


def status_body(vendor: str, status: MessageStatus) -> dict[str, Any]:
    """The exact JSON body the vendor should receive for *status*."""
    value = vendor_value(vendor, status.state)
    if vendor == "hubspot":
        body: dict[str, Any] = {"statusType": value}
        if status.error is not None:
            body["errorMessage"] = status.error.message
        return body
    body = {"status": value}
    if status.error is not None:
        body["error"] = {
            "code": status.error.code or "unknown",
            "type": status.error.kind or "unknown",
            "message": status.error.message,
        }
    if status.email_message_id is not None:
        body["emailMessageId"] = status.email_message_id
    if status.recipients:
        body["recipients"] = list(status.recipients)
    return body


def status_path(emu: Emulator, vendor: str, encoded_id: str) -> str:
    """The path the emulator records for a status update of the (encoded) id."""
    prefix = emu.vendor(vendor).prefix
    if vendor == "hubspot":
        return (
            f"{prefix}/conversations/custom-channels/{HUBSPOT_API_VERSION}/{CHANNEL}"
            f"/messages/{encoded_id}"
        )
    return f"{prefix}/conversations/messages/{encoded_id}/status"


def vendor_ids(vendor: str, message_id: str, conversation_id: str) -> dict[str, str]:
    """What each emulated vendor answers, as the adapter reports it in the receipt."""
    if vendor == "hubspot":
        return {
            "id": message_id,
            "channelId": str(CHANNEL),
            "conversationsThreadId": conversation_id,
        }
    ids = {"conversationId": conversation_id, "messageId": message_id}
    if vendor == "leadway":  # Leadway's richer DTO carries forwardData
        ids["forwardData.messageId"] = message_id
    return ids


# -- requests the emulator saw -----------------------------------------------------------------


def api_requests(emu: Emulator, vendor: str | None = None) -> list[RecordedRequest]:
    """Recorded vendor API calls (token-endpoint requests excluded)."""
    return [r for r in emu.find_requests(vendor=vendor) if r.route != "oauth_token"]


def token_requests(emu: Emulator, vendor: str | None = None) -> list[RecordedRequest]:
    return emu.find_requests(vendor=vendor, route="oauth_token")


def wait_for_requests(emu: Emulator, count: int, *, timeout: float = 3.0) -> None:
    """Block until the emulator has recorded *count* requests (stragglers finish)."""
    deadline = time.monotonic() + timeout
    while len(emu.requests) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} recorded requests, got {len(emu.requests)}")
        time.sleep(0.01)


def redeem(
    emu: Emulator,
    vendor: str,
    refresh_token: str,
    *,
    client_id: str | None = None,
    client_secret: str = DEMO_CLIENT_SECRET,
) -> httpx.Response:
    """Spend *refresh_token* at the emulator's token endpoint, as another process would."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id or demo_client_id(vendor),
        "client_secret": client_secret,
    }
    return httpx.post(token_url(emu, vendor), data=form, timeout=5.0)


def demo_oauth(vendor: str) -> dict[str, str]:
    """Constructor arguments of the demo OAuth client (``client_id``, secret, refresh)."""
    return {
        "client_id": demo_client_id(vendor),
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": demo_refresh_token(vendor),
    }


# -- runners -----------------------------------------------------------------------------------


class Runner:
    """One async face over the three ways of sending: tests await it the same way."""

    def __init__(self, kind: str, bridge: Bridge | AsyncBridge) -> None:
        self.kind = kind
        self.bridge = bridge

    @property
    def is_sync(self) -> bool:
        return isinstance(self.bridge, Bridge)

    async def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        if self.is_sync:
            return await anyio.to_thread.run_sync(functools.partial(func, *args))
        return await func(*args)

    async def update_status(self, connection_name: str, status: MessageStatus) -> Receipt:
        receipt: Receipt = await self._call(self.bridge.update_status, connection_name, status)
        return receipt

    async def update_conversation(
        self, connection_name: str, update: ConversationUpdate
    ) -> Receipt:
        receipt: Receipt = await self._call(
            self.bridge.update_conversation, connection_name, update
        )
        return receipt

    async def update_many(
        self, items: Sequence[tuple[str, MessageStatus | ConversationUpdate]], **options: Any
    ) -> list[Receipt]:
        bridge = self.bridge
        if isinstance(bridge, Bridge):
            sync_bridge = bridge
            return await anyio.to_thread.run_sync(
                lambda: list(sync_bridge.update_many(items, **options))
            )
        return [receipt async for receipt in bridge.update_many(items, **options)]

    async def gather(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
        """Run *calls* concurrently (threads for the sync bridge, tasks for the async one)."""
        return list(await asyncio.gather(*(call() for call in calls), return_exceptions=True))


@asynccontextmanager
async def open_runner(
    kind: str,
    connections: Iterable[Connection],
    *,
    registry: AdapterRegistry,
    retry: RetryPolicy = FAST_RETRY,
    sender_timeout: httpx.Timeout | None = None,
    **options: Any,
) -> AsyncIterator[Runner]:
    """A bridge of *kind* (see :data:`RUNNERS`); always closed on the way out.

    ``sender_timeout`` goes to the sender (``HttpxSender``/``AsyncHttpxSender``/``AiohttpSender``).
    """
    connections = list(connections)
    if kind == "sync":
        sync_sender = HttpxSender(timeout=sender_timeout) if sender_timeout else None
        bridge = Bridge(connections, registry=registry, retry=retry, sender=sync_sender, **options)
        try:
            yield Runner(kind, bridge)
        finally:
            bridge.close()
        return
    if kind == "async-httpx":
        sender: Any = AsyncHttpxSender(timeout=sender_timeout) if sender_timeout else None
    elif kind == "async-aiohttp":
        sender = AiohttpSender(timeout=sender_timeout) if sender_timeout else AiohttpSender()
    else:  # pragma: no cover - a typo in a test
        raise ValueError(f"unknown runner {kind!r}")
    async with AsyncBridge(
        connections, registry=registry, retry=retry, sender=sender, **options
    ) as async_bridge:
        yield Runner(kind, async_bridge)


# -- a slow network path -------------------------------------------------------------------------


class SlowStartProxy:
    """A loopback TCP proxy in front of the emulator whose *new* connections wait
    ``delay`` seconds before any byte flows (what a TLS handshake costs on a real
    network); kept-alive connections then pass traffic straight through.

    Real sockets and real HTTP: only the path to the emulator gets slower to open.
    """

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, emu: Emulator, vendor: str) -> str:
        return f"http://127.0.0.1:{self.port}{emu.vendor(vendor).prefix}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await asyncio.sleep(self.delay)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except BaseException:
            writer.close()
            raise
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            await server.wait_closed()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.sleep(0.01)  # let closed transports finish closing

    def __enter__(self) -> SlowStartProxy:
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(),), name="slow-start-proxy", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError("the proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(5.0)
