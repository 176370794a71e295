"""No duplicate after an ambiguous failure, on every built-in sender, over real loopback.

HighLevel's inbound publish has no idempotency key: a failure after the request may have
reached the emulator ends in ``OutcomeUnknown`` after one attempt (never a second
message); a failure that surely sent nothing (connection refused) is retried. HubSpot's
derived ``integrationIdempotencyId`` makes the same retry safe: one message either way.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from msgbridge import AsyncBridge, BearerToken, Bridge, Connection
from msgbridge.emulator import Emulator
from msgbridge.errors import ConnectFailed, OutcomeUnknown
from msgbridge.fast import AiohttpSender
from msgbridge.inbound import IncomingMessage, Party
from msgbridge.model import Outcome, Receipt
from msgbridge.retry import RetryPolicy

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
SENDERS = ("httpx-sync", "httpx-async", "aiohttp")

Publish = Callable[[list[Connection], str, IncomingMessage], Awaitable[Receipt]]


@pytest.fixture(scope="module")
def _server() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emu(_server: Emulator) -> Emulator:
    _server.reset()
    _server.add_token("highlevel", "hl-token", account="loc-1")
    _server.add_token("hubspot", "hs-token", account="900")
    return _server


@pytest.fixture(params=SENDERS)
def publish(request: pytest.FixtureRequest) -> Publish:
    """Publish once through a fresh bridge on the sender under test."""
    kind: str = request.param

    async def run(connections: list[Connection], name: str, message: IncomingMessage) -> Receipt:
        if kind == "httpx-sync":
            with Bridge(connections, retry=FAST) as bridge:
                return bridge.publish_inbound(name, message)
        sender: Any = AiohttpSender() if kind == "aiohttp" else None
        async with AsyncBridge(connections, retry=FAST, sender=sender) as abridge:
            return await abridge.publish_inbound(name, message)

    return run


def highlevel(base_url: str) -> Connection:
    return Connection(
        "hl",
        adapter="highlevel",
        credentials=BearerToken("hl-token"),
        settings={"base_url": base_url, "conversation_provider_id": "prov-1"},
    )


def hubspot(emu: Emulator) -> Connection:
    return Connection(
        "hs",
        adapter="hubspot",
        credentials=BearerToken("hs-token"),
        settings={"base_url": emu.base_url("hubspot"), "channel_id": 3001,
                  "channel_account_id": "55"},
    )  # fmt: skip


def reply(message_id: str = "carrier-1") -> IncomingMessage:
    return IncomingMessage(message_id, "sms", contact_id="c-1", text="Thanks")


async def test_highlevel_drop_after_apply_is_outcome_unknown_not_a_duplicate(
    emu: Emulator, publish: Publish
) -> None:
    emu.faults.drop(vendor="highlevel", route="add_inbound_message", count=1, after=True)
    with pytest.raises(OutcomeUnknown, match="did not retry it to avoid a duplicate") as info:
        await publish([highlevel(emu.base_url("highlevel"))], "hl", reply())
    assert info.value.attempts == 1
    assert not info.value.retryable
    assert info.value.connection == "hl"
    assert info.value.subject_id == "carrier-1"
    assert [m["body"]["altId"] for m in emu.inbound_messages("highlevel")] == ["carrier-1"]


async def test_highlevel_drop_before_apply_is_not_retried_either(
    emu: Emulator, publish: Publish
) -> None:
    # The client cannot tell this from a drop after apply: the request went out.
    emu.faults.drop(vendor="highlevel", route="add_inbound_message", count=1)
    with pytest.raises(OutcomeUnknown) as info:
        await publish([highlevel(emu.base_url("highlevel"))], "hl", reply())
    assert info.value.attempts == 1
    assert emu.inbound_messages("highlevel") == []
    assert len(emu.find_requests(vendor="highlevel")) == 1


async def test_highlevel_connection_refused_is_retried(emu: Emulator, publish: Publish) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed) as info:
        await publish([highlevel(f"http://127.0.0.1:{port}")], "hl", reply())
    assert info.value.attempts == FAST.max_attempts  # nothing was sent: safe to retry


async def test_highlevel_5xx_answer_is_retried_as_the_adapter_says(
    emu: Emulator, publish: Publish
) -> None:
    # An answer is not ambiguous: HighLevel's 503 means it did not take the message.
    emu.faults.script([503], vendor="highlevel", route="add_inbound_message")
    receipt = await publish([highlevel(emu.base_url("highlevel"))], "hl", reply())
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 2
    assert len(emu.inbound_messages("highlevel")) == 1


async def test_hubspot_drop_after_apply_is_retried_and_stays_one_message(
    emu: Emulator, publish: Publish
) -> None:
    emu.faults.drop(vendor="hubspot", route="publish", count=1, after=True)
    message = IncomingMessage("carrier-2", "custom", text="Hi", sender=Party("+1555", kind="phone"))
    receipt = await publish([hubspot(emu)], "hs", message)
    assert receipt.outcome is Outcome.APPLIED
    assert receipt.attempts == 2
    assert len(emu.inbound_messages("hubspot")) == 1
