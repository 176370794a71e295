"""Type-checked, never run (like stamina's tests/typing): the public API as a product and a
plugin author use it. ``mypy`` (strict, see pyproject) checks this file in CI, so a change
that breaks a public signature or type fails the build."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    ConversationUpdate,
    Credential,
    DeliveryAttempt,
    DeliveryState,
    HeaderToken,
    MemoryTokenStore,
    MessageStatus,
    Outcome,
    Receipt,
    RetryPolicy,
    SharedTokenStore,
    StatusError,
    TokenSet,
    TokenStore,
    Unsettled,
)
from msgbridge.adapter import (
    Operation,
    PreparedRequest,
    RequestSpec,
    ResponseView,
    check_path,
)
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.errors import LeaseLost, MessagingError, RateLimited, RedirectRefused
from msgbridge.senders import AsyncSender, HttpxSender, SyncSender
from msgbridge.testing.senders import SenderCheckServer, check_sender
from msgbridge.wire import parse_retry_after


class Signed(Credential):
    """A plugin credential that signs the exact bytes."""

    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        digest = str(len(request.body or b""))
        return {"X-Signature": f"{request.method} {request.url} {digest}"}


class MyAsyncSender:
    async def send(self, request: PreparedRequest) -> ResponseView | MessagingError:
        return ResponseView(200, {"content-type": "application/json"}, b"{}")

    async def aclose(self) -> None:
        return None


def sync_product(registry: AdapterRegistry) -> list[Receipt]:
    store: TokenStore = MemoryTokenStore(TokenSet("a", "r", None))
    oauth = HighLevelOAuth(client_id="c", client_secret="s", store=store)
    connections = [
        Connection("pit", adapter="highlevel", credentials=BearerToken("pit-1")),
        Connection("oauth", adapter="highlevel", credentials=oauth),
        Connection("signed", adapter="highlevel", credentials=Signed()),
        Connection("header", adapter="highlevel", credentials=HeaderToken("X-Token", "t")),
    ]
    events: list[DeliveryAttempt] = []
    registry.add_observer(events.append)
    sender: SyncSender = HttpxSender(deadline=10.0)

    def fence(connection: str) -> None:
        if connection == "lost":
            raise LeaseLost("lease lost")

    unsettled: list[Unsettled] = []
    with Bridge(
        connections, registry=registry, sender=sender, retry=RetryPolicy(), fence=fence
    ) as bridge:
        one: Receipt = bridge.update_status(
            "pit", MessageStatus("m1", DeliveryState.FAILED, error=StatusError("no", code="1"))
        )
        two: Receipt = bridge.update_conversation("pit", ConversationUpdate("c1", starred=True))
        many = list(
            bridge.update_many(
                [("pit", MessageStatus("m2", "read"))],
                max_in_flight=4,
                on_unsettled=unsettled.extend,
            )
        )
    failed = [r for r in many if r.outcome is Outcome.FAILED and isinstance(r.error, RateLimited)]
    redirect = [r for r in many if isinstance(r.error, RedirectRefused)]
    return [one, two, *many, *failed, *redirect]


async def async_product(registry: AdapterRegistry) -> int:
    sender: AsyncSender = MyAsyncSender()
    async with AsyncBridge(
        [Connection("pit", adapter="highlevel", credentials=BearerToken("pit-1"))],
        registry=registry,
        sender=sender,
    ) as bridge:
        receipt = await bridge.update_status("pit", MessageStatus("m1", "read"))
        count = 0
        async for _ in bridge.update_many([("pit", MessageStatus("m2", "read"))]):
            count += 1
        return count + int(receipt.ok)


def plugin_author(spec: RequestSpec, answer: ResponseView) -> float | None:
    path: str = check_path(spec.path)
    prepared: PreparedRequest = spec.prepare("https://api.example.com")
    assert prepared.url.endswith(path)
    assert prepared.operation in (Operation.UPDATE_STATUS, Operation.REFRESH_TOKEN)
    shared: bool = isinstance(MemoryTokenStore(), SharedTokenStore)
    assert not shared
    with SenderCheckServer() as server:
        check_sender(lambda deadline: HttpxSender(deadline=deadline), server)
    return parse_retry_after(answer)


if __name__ == "__main__":  # pragma: no cover - type-checked only
    asyncio.run(async_product(AdapterRegistry()))
