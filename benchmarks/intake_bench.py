"""Webhook intake benchmark: what verification and durable storage cost per webhook.

Rows (each a rate, and its ratio to the cheapest path, HMAC verification alone):

* verify only: HubSpot v3 (HMAC-SHA256) and HighLevel (Ed25519), no storage;
* ``Intake.handle`` with SQLite (WAL, ``synchronous=FULL``: one durable commit per new
  event, plus the claim and the "handled" commits), new events and duplicates;
* the ASGI app over real HTTP (uvicorn on loopback, httpx client, 1 connection).

Run: ``python benchmarks/intake_bench.py`` (``--n 2000``). Numbers depend on the disk
(fsync) and the machine; read the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier
from msgbridge.emulator.highlevel import sign_highlevel
from msgbridge.emulator.hubspot import sign_hubspot
from msgbridge.emulator.server import ServerThread
from msgbridge.emulator.webhooks import EMULATOR_ED25519_PUBLIC_KEY
from msgbridge.inbound import InboundDelivery, InboundStore, Intake

URL = "https://hooks.example.com/hubspot"


def _rate(n: int, run: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(n):
        run(i)
    return n / (time.perf_counter() - started)


def _hl(i: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "SMS", "messageId": f"bench-{i}", "message": "x" * 160}).encode()
    return body, sign_highlevel(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    n = parser.parse_args().n
    now = dt.datetime.now(dt.timezone.utc)
    hl_requests = [_hl(i) for i in range(n)]
    hs_body = json.dumps({"type": "CHANNEL_ACCOUNT_CREATED", "id": 1}).encode()
    hs_headers = sign_hubspot("secret", URL, hs_body, time.time())
    hs = HubSpotWebhookVerifier(client_secret="secret", public_url=URL)
    hl = HighLevelWebhookVerifier(public_key=EMULATOR_ED25519_PUBLIC_KEY)
    rows: list[tuple[str, float]] = []
    rows.append(
        ("verify HubSpot v3 (HMAC)", _rate(n, lambda i: hs.verify(hs_headers, hs_body, now)))
    )
    rows.append(
        (
            "verify HighLevel (Ed25519)",
            _rate(n, lambda i: hl.verify(hl_requests[i][1], hl_requests[i][0], now)),
        )
    )

    def noop(_: InboundDelivery) -> None:
        return None

    with tempfile.TemporaryDirectory() as tmp:
        intake = Intake(InboundStore(Path(tmp) / "a.db"), {"highlevel": hl}, noop)
        rows.append(
            (
                "handle, new (SQLite, 3 commits)",
                _rate(n, lambda i: intake.handle(hl_requests[i][1], hl_requests[i][0])),
            )
        )
        rows.append(
            (
                "handle, duplicate (SQLite)",
                _rate(n, lambda i: intake.handle(hl_requests[i][1], hl_requests[i][0])),
            )
        )
        intake.store.close()
        intake = Intake(InboundStore(Path(tmp) / "b.db"), {"highlevel": hl}, noop)
        server = ServerThread(intake.asgi())
        server.start()
        try:
            with httpx.Client(base_url=server.url) as client:
                rows.append(
                    (
                        "ASGI over HTTP, new",
                        _rate(
                            n,
                            lambda i: client.post(
                                "/highlevel", content=hl_requests[i][0], headers=hl_requests[i][1]
                            ),
                        ),
                    )
                )
        finally:
            server.stop()
            intake.store.close()
    base = rows[0][1]
    print(f"{'path':36} {'per second':>12} {'vs HMAC verify':>15}")
    for name, rate in rows:
        print(f"{name:36} {rate:12.0f} {rate / base:15.3f}")


if __name__ == "__main__":
    main()
