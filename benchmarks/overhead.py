"""Benchmark 1: msgbridge's overhead over the raw client each sender wraps.

``AsyncBridge.update_many`` on the default httpx sender vs a raw ``httpx.AsyncClient``,
and on the fast aiohttp sender vs a raw ``aiohttp.ClientSession``, sending the identical
HighLevel request (``PUT /conversations/messages/{id}/status``, same headers, same body
bytes) at the same concurrency, against the unthrottled emulator.

Fairness rules:

* the raw clients get the pool settings and timeouts the senders use (httpx: 64
  connections, 64 kept alive; aiohttp: limit 256, 128 per host);
* the raw clients check every answer's status code (what any caller must do) but do not
  parse the body; msgbridge validates the update, runs the state guard, builds the
  request, parses and interprets the answer, and yields a receipt;
* msgbridge runs with ``rate_limits=False`` (the emulator is unthrottled; HighLevel's
  default budget would throttle to 10/s) and otherwise its defaults (guard on, retries
  on); an extra column shows the fast path with the limiter on and a huge budget;
* every run uses fresh message ids, opens its own client, warms it up with untimed
  requests (connections established), then times N updates;
* each point is repeated, alternating which client runs first; the ratio is the median
  of the per-repetition ratios.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import httpx
from _harness import (
    HL_TOKEN,
    HL_VERSION,
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

from msgbridge.senders import DEFAULT_LIMITS, DEFAULT_TIMEOUT

CONCURRENCY = (1, 16, 64)
#: Targets (issue 9): msgbridge ÷ the raw client it wraps — the default httpx sender
#: ≥ 0.95x raw httpx, the fast sender ≥ 0.9x raw aiohttp at 1, 16 and 64 in flight — and
#: the fast sender's client CPU per update ≤ 1.3x raw aiohttp's.
HTTPX_TARGET = 0.95
FAST_TARGET = 0.9
FAST_CPU_TARGET = 1.3


def body() -> bytes:
    """Exactly what msgbridge's ``RequestSpec.body_bytes()`` produces for this update."""
    return json.dumps({"status": "delivered"}, separators=(",", ":")).encode()


def hl_headers() -> dict[str, str]:
    """The headers msgbridge's senders send (httpx adds its usual defaults to both)."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "msgbridge",
        "Version": HL_VERSION,
        "Authorization": f"Bearer {HL_TOKEN}",
    }


class RawHttpx(Client):
    name = "raw httpx.AsyncClient"

    async def open(self, base: str) -> None:
        self.prefix = f"{base}/conversations/messages/"
        self.headers = hl_headers()
        self.client = httpx.AsyncClient(
            timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS, follow_redirects=False
        )

    async def run(self, ids: list[str], concurrency: int) -> int:
        client, prefix, headers = self.client, self.prefix, self.headers

        async def one(message_id: str) -> bool:
            response = await client.put(
                f"{prefix}{message_id}/status", headers=headers, content=body()
            )
            return response.status_code == 200

        return await pump(ids, concurrency, one)

    async def close(self) -> None:
        await self.client.aclose()


class RawAiohttp(Client):
    name = "raw aiohttp.ClientSession"

    async def open(self, base: str) -> None:
        self.prefix = f"{base}/conversations/messages/"
        self.headers = hl_headers()
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=128, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=15.0)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def run(self, ids: list[str], concurrency: int) -> int:
        session, prefix, headers = self.session, self.prefix, self.headers

        async def one(message_id: str) -> bool:
            async with session.put(
                f"{prefix}{message_id}/status", headers=headers, data=body()
            ) as response:
                await response.read()
                return response.status == 200

        return await pump(ids, concurrency, one)

    async def close(self) -> None:
        await self.session.close()


@dataclass
class Point:
    sender: str
    concurrency: int
    raw: list[Sample] = field(default_factory=list)
    bridged: list[Sample] = field(default_factory=list)
    limiter: list[Sample] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [b.rate / r.rate for b, r in zip(self.bridged, self.raw, strict=True)]

    @property
    def fast(self) -> bool:
        return self.sender.startswith("aiohttp")


async def run(emulator: EmulatorProcess, n: int, repeats: int) -> list[Point]:
    base = emulator.base_url("highlevel")
    ids = Ids("ovh")
    points: list[Point] = []
    pairs: list[tuple[str, Callable[[], Client], Callable[[], Client]]] = [
        ("httpx (default)", RawHttpx, lambda: Bridged(fast=False)),
        ("aiohttp (fast)", RawAiohttp, lambda: Bridged(fast=True)),
    ]
    for sender, make_raw, make_bridged in pairs:
        for concurrency in CONCURRENCY:
            point = Point(sender, concurrency)
            for rep in range(repeats):
                for which in alternating(["raw", "bridged"], rep):
                    make = make_raw if which == "raw" else make_bridged
                    sample = await timed(emulator, make, base, ids, n, concurrency)
                    (point.raw if which == "raw" else point.bridged).append(sample)
                if sender.startswith("aiohttp"):
                    point.limiter.append(
                        await timed(
                            emulator,
                            lambda: Bridged(fast=True, limiter=True),
                            base,
                            ids,
                            n,
                            concurrency,
                        )
                    )
            points.append(point)
            raw_rate = median(s.rate for s in point.raw)
            ours = median(s.rate for s in point.bridged)
            print(
                f"  {sender} c={concurrency}: raw {fmt_rate(raw_rate)}/s, msgbridge "
                f"{fmt_rate(ours)}/s, ratio {fmt_ratio(median(point.ratios))}",
                flush=True,
            )
    return points


def _cpu(samples: list[Sample]) -> str:
    return (
        f"{median(s.client_util for s in samples):.0%} / "
        f"{median(s.emulator_util for s in samples):.0%} / "
        f"{median(s.other_util for s in samples):.0%}"
    )


def _met(value: float, target: float) -> str:
    return f"{'met' if value >= target else '**missed**'} (≥ {target})"


def _met_at_most(value: float, target: float) -> str:
    return f"{'met' if value <= target else '**missed**'} (≤ {target})"


def table(points: list[Point]) -> str:
    raw_aiohttp = {p.concurrency: median(s.rate for s in p.raw) for p in points if p.fast}
    rows = []
    for p in points:
        ratio = median(p.ratios)
        raw_rate = median(s.rate for s in p.raw)
        ours = median(s.rate for s in p.bridged)
        limiter = "—"
        if p.limiter:
            limited = median(s.rate for s in p.limiter)
            limiter = f"{fmt_rate(limited)} ({fmt_ratio(limited / raw_rate)})"
        limit = ours / raw_aiohttp[p.concurrency] if p.concurrency in raw_aiohttp else None
        limit_cell = "—" if limit is None else fmt_ratio(limit)
        raw_cpu = median(s.client_us for s in p.raw)
        our_cpu = median(s.client_us for s in p.bridged)
        cpu_cell = f"{raw_cpu:.0f} → {our_cpu:.0f}"
        if p.fast and raw_cpu > 0:
            cpu_cell += f", {our_cpu / raw_cpu:.2f}x " + _met_at_most(
                our_cpu / raw_cpu, FAST_CPU_TARGET
            )
        rows.append(
            [
                p.sender,
                p.concurrency,
                fmt_rate(raw_rate),
                fmt_rate(ours),
                f"**{fmt_ratio(ratio)}** ({fmt_ratio(min(p.ratios))}-{fmt_ratio(max(p.ratios))})",
                _met(ratio, FAST_TARGET if p.fast else HTTPX_TARGET),
                limit_cell,
                cpu_cell,
                f"{_cpu(p.raw)} → {_cpu(p.bridged)}",
                limiter,
            ]
        )
    return md_table(
        [
            "sender",
            "in flight",
            "raw client it wraps, updates/s",
            "msgbridge, updates/s",
            "msgbridge ÷ raw it wraps (min-max)",
            "overhead target",
            "msgbridge ÷ raw aiohttp (the limit)",
            "client CPU µs/update, raw → msgbridge (fast: ratio, target)",
            "CPU client / emulator / other processes (share of one core), raw → msgbridge",
            "msgbridge, limiter on, updates/s (÷ raw)",
        ],
        rows,
    )
