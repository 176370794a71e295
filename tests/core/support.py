"""Test doubles for the core suite: a fake clock and a fake vendor behind MockTransport.

Nothing here replaces a msgbridge part: the bridges, adapters, retry loop, credentials
and httpx clients under test are the real ones. Only the network (``httpx.MockTransport``)
and time (``clock``/``sleep``) are stand-ins.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

import attrs
import httpx

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    Bridge,
    Connection,
    ConversationUpdate,
    MessageStatus,
    Receipt,
)
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.auth import TokenStore
from msgbridge.registry import ALLOW_ENV

HL_HOST = "services.leadconnectorhq.com"
HS_HOST = "api.hubapi.com"
HL_TOKEN_PATH = "/oauth/token"
HS_TOKEN_PATH = "/oauth/2026-03/token"
HS_CHANNEL = 4242

#: A distinctive marker in every secret the suite hands out (tokens, client secrets).
SECRET = "SECRET"
ACCESS_TOKEN = f"tok-{SECRET}-123"
REFRESH_TOKEN = f"refresh-{SECRET}-0"
CLIENT_ID = "client-id-1"
CLIENT_SECRET = f"client-{SECRET}-789"


class FakeClock:
    """Monotonic *and* epoch clock in one; ``sleep`` records the wait and advances time."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class DualStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives as a stream, as from a real network transport (not pre-read)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data


@attrs.define
class Seen:
    """One request the fake vendor received."""

    kind: str  # "api" or "token"
    method: str
    host: str
    path: str
    raw_path: str
    headers: httpx.Headers
    body: Any  # parsed JSON (api) or form fields (token)

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization")
        return value.removeprefix("Bearer ") if value else None


Script = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeVendor:
    """A MockTransport handler playing HighLevel and HubSpot.

    API answers come from ``script`` in order (a response, an exception to raise, or a
    callable); once it is empty every API call succeeds with a realistic body. The OAuth
    token endpoints implement single-use rotating refresh tokens: a refresh token works
    once, and a reused one gets HighLevel's ``Invalid grant`` 400.
    """

    def __init__(
        self,
        script: Iterable[Script] = (),
        *,
        refresh_token: str = REFRESH_TOKEN,
        streaming: bool = False,
        events: list[str] | None = None,
        token_delay: float = 0.0,
    ) -> None:
        self.script: list[Script] = list(script)
        self.seen: list[Seen] = []
        #: The one refresh token each token endpoint accepts next (they rotate).
        self.valid_refresh = {HL_TOKEN_PATH: refresh_token, HS_TOKEN_PATH: refresh_token}
        self.issued = 0
        self.streaming = streaming
        self.events = events if events is not None else []
        self.token_delay = token_delay
        self._lock = threading.Lock()

    # -- views ------------------------------------------------------------------------

    @property
    def api(self) -> list[Seen]:
        return [s for s in self.seen if s.kind == "api"]

    @property
    def token(self) -> list[Seen]:
        return [s for s in self.seen if s.kind == "token"]

    # -- handler ----------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self._answer(request)
        if self.streaming:
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=DualStream(response.content),
            )
        return response

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path in (HL_TOKEN_PATH, HS_TOKEN_PATH):
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self._record("token", request, form)
            if self.token_delay:
                threading.Event().wait(self.token_delay)
            return self._refresh(path, form)
        body = json.loads(request.content) if request.content else None
        self._record("api", request, body)
        with self._lock:
            step = self.script.pop(0) if self.script else None
        if step is None:
            return success_for(request, body)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):  # a fresh copy: scripts may be shared
            return httpx.Response(step.status_code, headers=step.headers, content=step.content)
        return step(request)

    def _record(self, kind: str, request: httpx.Request, body: Any) -> None:
        seen = Seen(
            kind=kind,
            method=request.method,
            host=request.url.host,
            path=request.url.path,
            raw_path=request.url.raw_path.decode(),
            headers=httpx.Headers(request.headers),
            body=body,
        )
        with self._lock:
            self.seen.append(seen)
            self.events.append(f"{kind}:{request.method} {request.url.path}")

    def _refresh(self, path: str, form: dict[str, str]) -> httpx.Response:
        with self._lock:
            if (
                form.get("grant_type") != "refresh_token"
                or form.get("client_id") != CLIENT_ID
                or form.get("client_secret") != CLIENT_SECRET
                or form.get("refresh_token") != self.valid_refresh[path]
            ):
                return httpx.Response(
                    400,
                    json={
                        "statusCode": 400,
                        "message": "Invalid grant: refresh token is invalid",
                    },
                )
            self.issued += 1
            access = f"at-{SECRET}-{self.issued}"
            refresh = self.valid_refresh[path] = f"rt-{SECRET}-{self.issued}"
            return httpx.Response(
                200,
                json={
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_in": 3600,
                    "token_type": "Bearer",
                    "scope": "conversations/message.write",
                },
            )


class AsyncYieldingVendor:
    """Wraps a FakeVendor as an async handler that yields to the loop on every request."""

    def __init__(self, vendor: FakeVendor) -> None:
        self.vendor = vendor

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return self.vendor(request)


def success_for(request: httpx.Request, body: Any) -> httpx.Response:
    """What the vendor answers when it applied the update."""
    parts = [unquote(p) for p in request.url.raw_path.decode().split("?")[0].split("/")]
    if request.url.host == HS_HOST:
        return httpx.Response(
            200,
            json={
                "id": parts[-1],
                "channelId": int(parts[-3]),
                "conversationsThreadId": "thread-1",
                "status": {"statusType": (body or {}).get("statusType")},
            },
            headers={"X-HubSpot-Correlation-Id": "corr-ok"},
        )
    if parts[1:3] == ["conversations", "messages"]:
        return httpx.Response(
            200,
            json={
                "conversationId": "conv-1",
                "messageId": parts[3],
                "status": (body or {}).get("status"),
                "traceId": "trace-ok",
            },
        )
    return httpx.Response(
        200,
        json={
            "success": True,
            "conversation": {"id": parts[-1], "locationId": (body or {}).get("locationId")},
            "traceId": "trace-conv",
        },
    )


# -- vendor answers -----------------------------------------------------------------------


def hl_error(
    status: int,
    message: str | list[str],
    *,
    trace_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if trace_id is not None:
        body["traceId"] = trace_id
    return httpx.Response(status, json=body, headers=headers)


def hs_error(
    status: int,
    message: str,
    *,
    category: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": "corr-err"}
    if category is not None:
        body["category"] = category
    body.update(extra)
    return httpx.Response(status, json=body, headers=headers)


# -- connections and credentials ------------------------------------------------------------


def hl_oauth(
    clock: Callable[[], float],
    *,
    expired: bool = False,
    store: TokenStore | None = None,
    access_token: str | None = ACCESS_TOKEN,
) -> HighLevelOAuth:
    now = clock()
    return HighLevelOAuth(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN if store is None else None,
        access_token=access_token if store is None else None,
        expires_at=(now - 10) if expired else (now + 3600),
        store=store,
        clock=clock,
    )


def hs_oauth(clock: Callable[[], float], *, expired: bool = False) -> HubSpotOAuth:
    now = clock()
    return HubSpotOAuth(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        access_token=ACCESS_TOKEN,
        expires_at=(now - 10) if expired else (now + 1800),
        clock=clock,
    )


def hl_connection(name: str = "hl", credentials: httpx.Auth | None = None, **kw: Any) -> Connection:
    from msgbridge import BearerToken

    return Connection(
        name, adapter="highlevel", credentials=credentials or BearerToken(ACCESS_TOKEN), **kw
    )


def hs_connection(name: str = "hs", credentials: httpx.Auth | None = None, **kw: Any) -> Connection:
    from msgbridge import BearerToken

    settings = kw.pop("settings", {"channel_id": HS_CHANNEL})
    return Connection(
        name,
        adapter="hubspot",
        credentials=credentials or BearerToken(ACCESS_TOKEN),
        settings=settings,
        **kw,
    )


# -- one harness for both bridges ---------------------------------------------------------


class Harness:
    """Runs the same scenario on ``Bridge`` (sync) or ``AsyncBridge`` (async).

    Use with ``async with``; methods are coroutines in both modes (the sync bridge is
    simply called inline), so one test body covers both bridges.
    """

    def __init__(
        self,
        mode: str,
        vendor: Callable[[httpx.Request], Any],
        connections: Iterable[Connection],
        *,
        clock: FakeClock | None = None,
        registry: AdapterRegistry | None = None,
        **bridge_kwargs: Any,
    ) -> None:
        self.mode = mode
        self.clock = clock or FakeClock()
        self.registry = registry if registry is not None else fresh_registry()
        transport = httpx.MockTransport(vendor)
        common = dict(
            registry=self.registry,
            clock=self.clock,
            rng=random.Random(0),
            **bridge_kwargs,
        )
        self.client: httpx.Client | httpx.AsyncClient
        self.bridge: Bridge | AsyncBridge
        if mode == "sync":
            self.client = httpx.Client(transport=transport)
            try:
                self.bridge = Bridge(
                    connections, http_client=self.client, sleep=self.clock.sleep, **common
                )
            except BaseException:
                self.client.close()
                raise
        else:
            self.client = httpx.AsyncClient(transport=transport)
            self.bridge = AsyncBridge(
                connections, http_client=self.client, sleep=self.clock.asleep, **common
            )

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps

    async def update_status(self, connection: str, status: MessageStatus) -> Receipt:
        if isinstance(self.bridge, Bridge):
            return self.bridge.update_status(connection, status)
        return await self.bridge.update_status(connection, status)

    async def update_conversation(self, connection: str, update: ConversationUpdate) -> Receipt:
        if isinstance(self.bridge, Bridge):
            return self.bridge.update_conversation(connection, update)
        return await self.bridge.update_conversation(connection, update)

    async def close(self) -> None:
        if isinstance(self.bridge, Bridge):
            self.bridge.close()
        else:
            await self.bridge.aclose()
        if isinstance(self.client, httpx.Client):
            self.client.close()
        else:
            await self.client.aclose()

    async def __aenter__(self) -> Harness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def fresh_registry() -> AdapterRegistry:
    """msgbridge's own adapters, loaded through their entry points.

    Only msgbridge's distribution is allowed, so third-party plugins installed in the
    same environment cannot change what the core suite tests.
    """
    return AdapterRegistry.from_entry_points(environ={ALLOW_ENV: "msgbridge"})
