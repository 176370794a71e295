"""Benchmark 2: the official SDKs vs msgbridge, same emulator, same updates, same concurrency.

HighLevel (``PUT /conversations/messages/{id}/status`` with ``{"status": "delivered"}``):

* ``gohighlevel-api-client`` 3.0.0, async: ``HighLevel(private_integration_token=...)``
  and ``await ghl.conversations.update_message_status(message_id=..., request_body={...})``,
  its httpx client pointed at the emulator (``ghl.get_http_client().base_url = ...``).
  The SDK forces ``Version: v3`` (so the emulator runs with ``accept_v3``), and a static
  (private-integration) token is the competent choice: for this endpoint the SDK's OAuth
  path looks the token up by a ``locationId`` the request does not carry, so it finds none.
  The request body is passed as a dict: the SDK hands ``request_body`` straight to
  ``httpx``'s ``json=`` (and to its token lookup's ``body.get``), so its own pydantic
  ``UpdateMessageStatusDto`` cannot be sent. Its pool is the SDK's own (httpx defaults:
  100 connections, 20 kept alive); the SDK offers no public way to change it.

HubSpot (``PATCH /conversations/custom-channels/2026-03/1000/messages/{id}`` with
``{"statusType": "SENT"}``):

* ``hubspot-sdk`` 0.1.0a9 (Stainless), async: ``AsyncHubSpot(access_token=...,
  base_url=...)`` and ``await client.conversations.custom_channels.messages.update(...)``;
  as shipped (httpx, 100 connections / 20 kept alive, 2 retries), and with its documented
  aiohttp transport (``http_client=DefaultAioHttpClient()``, the ``[aiohttp]`` extra).
* ``hubspot-api-client`` 12.0.0: it has no custom-channels module, so its generic
  ``client.api_request({...})`` path. It is synchronous (``requests``), so concurrency is
  a thread pool of that many workers, the usual way to run a blocking client
  concurrently. Each call goes through ``requests.patch``, i.e. a new session and a new
  TCP connection per request (the SDK's choice, not ours).

msgbridge runs ``AsyncBridge.update_many`` on both senders, ``rate_limits=False``.
Each repetition runs every client once per concurrency, in alternating order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from _harness import (
    HL_TOKEN,
    HS_CHANNEL,
    HS_TOKEN,
    Bridged,
    Client,
    EmulatorProcess,
    Ids,
    Sample,
    alternating,
    fmt_rate,
    fmt_ratio,
    md_table,
    median,
    pump,
    timed,
)

CONCURRENCY = (1, 16, 64)


class GoHighLevel(Client):
    name = "gohighlevel-api-client 3.0.0 (async, httpx)"

    async def open(self, base: str) -> None:
        from highlevel import HighLevel

        self.ghl = HighLevel(private_integration_token=HL_TOKEN)
        self.ghl.get_http_client().base_url = base

    async def run(self, ids: list[str], concurrency: int) -> int:
        conversations = self.ghl.conversations

        async def one(message_id: str) -> bool:
            answer = await conversations.update_message_status(
                message_id=message_id,
                request_body={"status": "delivered"},  # type: ignore[arg-type]
            )
            return answer.get("messageId") == message_id

        return await pump(ids, concurrency, one)

    async def close(self) -> None:
        await self.ghl.close()


class HubSpotSdk(Client):
    def __init__(self, aiohttp: bool = False) -> None:
        self.aiohttp = aiohttp
        transport = "aiohttp transport" if aiohttp else "httpx, as shipped"
        self.name = f"hubspot-sdk 0.1.0a9 (async, {transport})"

    async def open(self, base: str) -> None:
        from hubspot_sdk import AsyncHubSpot, DefaultAioHttpClient

        http_client = DefaultAioHttpClient() if self.aiohttp else None
        self.client = AsyncHubSpot(access_token=HS_TOKEN, base_url=base, http_client=http_client)

    async def run(self, ids: list[str], concurrency: int) -> int:
        messages = self.client.conversations.custom_channels.messages

        async def one(message_id: str) -> bool:
            answer = await messages.update(message_id, channel_id=HS_CHANNEL, status_type="SENT")
            return answer.id == message_id

        return await pump(ids, concurrency, one)

    async def close(self) -> None:
        await self.client.close()


class HubSpotApiClient(Client):
    name = "hubspot-api-client 12.0.0 (generic api_request, sync, thread pool)"

    async def open(self, base: str) -> None:
        from hubspot import Client as HubSpot

        self.client = HubSpot.create(access_token=HS_TOKEN, base_url=base)

    async def run(self, ids: list[str], concurrency: int) -> int:
        client = self.client

        def one(message_id: str) -> bool:
            response = client.api_request(
                {
                    "method": "PATCH",
                    "path": f"/conversations/custom-channels/2026-03/{HS_CHANNEL}"
                    f"/messages/{message_id}",
                    "body": {"statusType": "SENT"},
                }
            )
            return bool(response.status_code == 200)

        def run_all() -> int:
            with ThreadPoolExecutor(concurrency, "hubspot-api-client") as pool:
                return sum(pool.map(one, ids))

        return await asyncio.to_thread(run_all)


@dataclass
class Group:
    vendor: str
    clients: dict[str, Callable[[], Client]]
    #: samples[client][concurrency] -> one Sample per repetition
    samples: dict[str, dict[int, list[Sample]]] = field(default_factory=dict)


MB_DEFAULT = "msgbridge (default httpx sender)"
MB_FAST = "msgbridge (fast aiohttp sender)"


def groups() -> list[Group]:
    return [
        Group(
            "highlevel",
            {
                MB_DEFAULT: lambda: Bridged("highlevel", fast=False),
                MB_FAST: lambda: Bridged("highlevel", fast=True),
                GoHighLevel.name: GoHighLevel,
            },
        ),
        Group(
            "hubspot",
            {
                MB_DEFAULT: lambda: Bridged("hubspot", fast=False),
                MB_FAST: lambda: Bridged("hubspot", fast=True),
                HubSpotSdk().name: HubSpotSdk,
                HubSpotSdk(aiohttp=True).name: lambda: HubSpotSdk(aiohttp=True),
                HubSpotApiClient.name: HubSpotApiClient,
            },
        ),
    ]


async def run(emulator: EmulatorProcess, n: int, repeats: int) -> list[Group]:
    ids = Ids("peer")
    result = groups()
    for group in result:
        base = emulator.base_url(group.vendor)
        group.samples = {name: {c: [] for c in CONCURRENCY} for name in group.clients}
        for concurrency in CONCURRENCY:
            for rep in range(repeats):
                for name in alternating(list(group.clients), rep):
                    sample = await timed(emulator, group.clients[name], base, ids, n, concurrency)
                    group.samples[name][concurrency].append(sample)
            line = ", ".join(
                f"{name.split(' (')[0]} {fmt_rate(median(s.rate for s in by_c[concurrency]))}/s"
                for name, by_c in group.samples.items()
            )
            print(f"  {group.vendor} c={concurrency}: {line}", flush=True)
    return result


def _paired(ours: list[Sample], theirs: list[Sample]) -> float:
    """Median of the per-repetition ratios ours ÷ theirs."""
    return median(a.rate / b.rate for a, b in zip(ours, theirs, strict=True))


def table(result: list[Group]) -> str:
    parts = []
    for group in result:
        rate_rows = []
        for name, by_c in group.samples.items():
            cells = []
            for c in CONCURRENCY:
                samples = by_c[c]
                cells.append(
                    f"{fmt_rate(median(s.rate for s in samples))} "
                    f"({median(s.client_us for s in samples):.0f} µs; "
                    f"{median(s.emulator_util for s in samples):.0%}, "
                    f"{median(s.other_util for s in samples):.0%})"
                )
            rate_rows.append([name, *cells])
        parts.append(
            f"**{group.vendor}**: updates/s (client CPU µs per update; emulator CPU, other "
            "processes' CPU, as shares of one core)"
        )
        parts.append("")
        parts.append(md_table(["client", *(f"{c} in flight" for c in CONCURRENCY)], rate_rows))
        parts.append("")
        ratio_rows = []
        for name, by_c in group.samples.items():
            if name in (MB_DEFAULT, MB_FAST):
                continue
            cells = []
            for c in CONCURRENCY:
                default = _paired(group.samples[MB_DEFAULT][c], by_c[c])
                fast = _paired(group.samples[MB_FAST][c], by_c[c])
                cells.append(f"{fmt_ratio(default)} / {fmt_ratio(fast)}")
            ratio_rows.append([name, *cells])
        parts.append(
            f"**{group.vendor}**: msgbridge ÷ peer (default sender / fast sender); "
            "above 1 means msgbridge is ahead"
        )
        parts.append("")
        parts.append(md_table(["peer", *(f"{c} in flight" for c in CONCURRENCY)], ratio_rows))
        parts.append("")
    return "\n".join(parts)
