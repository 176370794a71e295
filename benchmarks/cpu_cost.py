"""Benchmark 6: CPU cost per update of msgbridge's pure path vs building it by hand.

The msgbridge path is everything but the network, exactly as a bridge runs it:
validation (``MessageStatus``), the mapping policy and the guard's look
(``Planner.plan_status``), ``adapter.prepare_status``, the delivery loop (prepared bytes,
the credential's headers, the ``Send`` effect, ``adapter.interpret`` of the vendor's
answer, the ``Receipt``) and recording the applied state (``MessagePolicy.settle``). The baseline
builds the same request by hand (dict, ``json.dumps``, ``quote``) and reads the same
answer with ``json.loads``. Both run in this process, so the ratio is what matters.

Run: ``python benchmarks/cpu_cost.py``
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx

from msgbridge import AdapterRegistry, BearerToken, Connection, DeliveryState, MessageStatus
from msgbridge._delivery import Delivery
from msgbridge._planner import Planner
from msgbridge.adapter import ResponseView
from msgbridge.model import Receipt

N = 20_000
ANSWERS = {
    "highlevel": json.dumps(
        {"conversationId": "c1", "messageId": "m1", "status": "delivered", "traceId": "t"}
    ).encode(),
    "hubspot": json.dumps(
        {
            "id": "m1",
            "channelId": "123",
            "conversationsThreadId": "th",
            "status": {"statusType": "SENT"},
        }
    ).encode(),
}


def _planner() -> Planner:
    # Built-ins only: an installed observer plugin (msgbridge-otel) would add its own cost.
    registry = AdapterRegistry.from_entry_points(environ={"MSGBRIDGE_PLUGINS_ALLOW": "msgbridge"})
    planner = Planner(
        [
            Connection("hl", adapter="highlevel", credentials=BearerToken("x")),
            Connection(
                "hs", adapter="hubspot", credentials=BearerToken("x"), settings={"channel_id": 123}
            ),
        ],
        registry=registry,
        retry=None,
        guard=True,
        clock=lambda: 0.0,
        rng=None,
        rate_limits=False,
    )
    return planner


def msgbridge_path(planner: Planner, connection: str, i: int) -> None:
    status = MessageStatus(f"msg-{i}", DeliveryState.DELIVERED)
    job = planner.plan_status(connection, status)
    assert isinstance(job, Delivery)
    steps = planner.steps(job)
    next(steps)  # Send(prepared request with the credential's headers)
    response = ResponseView(200, {"content-type": "application/json"}, ANSWERS[job.adapter.id])
    try:
        steps.send(response)
    except StopIteration as done:
        receipt: Receipt = done.value
    planner.policy.settle(job, receipt)


def by_hand_highlevel(i: int) -> None:
    message_id = f"msg-{i}"
    host = "https://services.leadconnectorhq.com"
    url = f"{host}/conversations/messages/{quote(message_id, safe='')}/status"
    headers = {"Version": "2021-04-15", "Content-Type": "application/json"}
    body = json.dumps({"status": "delivered"}).encode()
    answer = json.loads(ANSWERS["highlevel"])
    (url, headers, body, answer["conversationId"], answer["messageId"])


def by_hand_hubspot(i: int) -> None:
    message_id = f"msg-{i}"
    base = "https://api.hubapi.com/conversations/custom-channels/2026-03/123"
    url = f"{base}/messages/{quote(message_id, safe='')}"
    body = json.dumps({"statusType": "SENT"}).encode()
    answer = json.loads(ANSWERS["hubspot"])
    (url, body, answer["id"])


def main() -> None:
    planner = _planner()
    rows = []
    for connection, hand in (("hl", by_hand_highlevel), ("hs", by_hand_hubspot)):
        counter = iter(range(10**9))

        def ours_once(c: str = connection, n: Iterator[int] = counter) -> None:
            msgbridge_path(planner, c, next(n))

        def hand_once(h: Callable[[int], None] = hand, n: Iterator[int] = counter) -> None:
            h(next(n))

        ours = min(timeit.repeat(ours_once, number=N, repeat=3)) / N
        base = min(timeit.repeat(hand_once, number=N, repeat=3)) / N
        rows.append(
            (planner.connection(connection).adapter.id, ours * 1e6, base * 1e6, ours / base)
        )
    print(
        f"CPU cost per update (python {sys.version.split()[0]}, httpx {httpx.__version__}, N={N})"
    )
    print()
    print("| adapter | msgbridge µs/update | by hand µs/update | ratio |")
    print("|---|---|---|---|")
    for adapter, ours, base, ratio in rows:
        print(f"| {adapter} | {ours:.1f} | {base:.1f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
