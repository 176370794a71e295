"""Publishing across worker *processes* (SQLite and PostgreSQL): two workers draining one
outbox publish each message once, and a worker killed (SIGKILL) or paused (SIGSTOP) past
its lease while its publishes are on the wire leaves HubSpot's to be sent again (its
idempotency id makes that harmless) and HighLevel's dead-lettered as ``OutcomeUnknown``,
never sent twice."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections import Counter
from typing import Any

import pytest

from msgbridge import BearerToken, Connection
from msgbridge.emulator import Emulator
from msgbridge.inbound import IncomingMessage, Party
from msgbridge.outbox import Outbox, OutboxWorker
from msgbridge.retry import RetryPolicy

from .conftest import LOCATION
from .test_many_workers import Proc, procs, wait_for

__all__ = ["procs"]  # the fixture, imported for pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL/SIGSTOP")


def specs(emu: Emulator) -> list[dict[str, Any]]:
    highlevel = {"base_url": emu.base_url("highlevel"), "version": "2021-04-15",
                 "location_id": LOCATION, "conversation_provider_id": "prov-1"}  # fmt: skip
    return [
        {"name": "hl", "adapter": "highlevel", "token": "demo-highlevel-token",
         "settings": highlevel},
        {"name": "hl2", "adapter": "highlevel", "token": "demo-highlevel-token",
         "settings": highlevel},
        {"name": "hs", "adapter": "hubspot", "token": "hs-token",
         "settings": {"base_url": emu.base_url("hubspot"), "channel_id": 3001,
                      "channel_account_id": "55"}},
    ]  # fmt: skip


def spec(emu: Emulator, target: str, **options: Any) -> str:
    return json.dumps({"target": target, "connections": specs(emu), **options})


@pytest.fixture
def emu_hs(emu: Emulator) -> Emulator:
    emu.add_token("hubspot", "hs-token", account="900")
    return emu


def message(connection: str, n: int) -> IncomingMessage:
    if connection == "hs":
        return IncomingMessage(f"hs-{n}", "custom", text=f"hs {n}", sender=Party("+1555"))
    return IncomingMessage(f"{connection}-{n}", "sms", contact_id="c-1", text=f"{n}")


@pytest.mark.parametrize("affinity", [True, False], ids=["connection-leases", "row-leases"])
def test_two_worker_processes_publish_each_message_once(
    emu_hs: Emulator, target: str, procs: list[Proc], affinity: bool
) -> None:
    with Outbox(target) as outbox:
        outbox.enqueue_many([(c, message(c, n)) for n in range(15) for c in ("hl", "hl2", "hs")])
    procs.extend(Proc(spec(emu_hs, target, affinity=affinity, batch_size=5)) for _ in range(2))
    reports = [proc.finish(timeout=120) for proc in procs]
    assert sum(r["applied"] for r in reports) == 45
    assert sum(r["dead"] for r in reports) == 0
    highlevel = Counter(m["body"]["altId"] for m in emu_hs.inbound_messages("highlevel"))
    assert sorted(highlevel) == sorted(f"{c}-{n}" for n in range(15) for c in ("hl", "hl2"))
    assert set(highlevel.values()) == {1}
    hubspot = Counter(m["body"]["text"] for m in emu_hs.inbound_messages("hubspot"))
    assert (len(hubspot), set(hubspot.values())) == (15, {1})
    with Outbox(target) as outbox:
        assert outbox.pending() == []


def test_a_worker_killed_mid_publish_never_duplicates_a_highlevel_message(
    emu_hs: Emulator, target: str, procs: list[Proc]
) -> None:
    # Both vendors apply the publish and then hold the answer: the worker dies meanwhile.
    for vendor, route in (("highlevel", "add_inbound_message"), ("hubspot", "publish")):
        emu_hs.faults.latency(30.0, vendor=vendor, route=route, after=True, count=1)
    with Outbox(target) as outbox:
        outbox.publish("hl", message("hl", 1))
        outbox.publish("hs", message("hs", 1))
    proc = Proc(spec(emu_hs, target, lease_seconds=1.0, mode="forever"))
    procs.append(proc)
    wait_for(
        lambda: bool(emu_hs.inbound_messages("highlevel") and emu_hs.inbound_messages("hubspot")),
        timeout=60,
    )
    proc.signal(signal.SIGKILL)
    proc.popen.communicate(timeout=30)  # reaps it and closes its pipes
    time.sleep(1.5)  # its row and connection leases expire

    connections = [
        Connection(s["name"], adapter=s["adapter"], credentials=BearerToken(s["token"]),
                   settings=s["settings"])
        for s in specs(emu_hs)
    ]  # fmt: skip
    with Outbox(target) as outbox:
        worker = OutboxWorker.create(
            outbox,
            connections,
            rate_limits=False,
            bridge_retry=RetryPolicy.none(),
            retry=RetryPolicy(max_attempts=5, initial_backoff=0.05, max_backoff=0.1),
            lease_seconds=5.0,
            idle_interval=0.05,
        )
        with worker:
            report = worker.drain(timeout=30)
        (letter,) = outbox.dead_letters()
        assert outbox.pending() == []
    assert (report.applied, report.dead) == (1, 1)
    assert (letter.connection, letter.kind, letter.error_type) == (
        "hl",
        "inbound",
        "OutcomeUnknown",
    )
    assert "interrupted" in letter.reason
    assert len(emu_hs.inbound_messages("highlevel")) == 1  # never published twice
    assert len(emu_hs.inbound_messages("hubspot")) == 1  # sent again, de-duplicated by HubSpot


def test_a_worker_paused_mid_publish_past_its_lease_never_duplicates(
    emu_hs: Emulator, target: str, procs: list[Proc]
) -> None:
    """Worker A is SIGSTOPped while both vendors hold its publishes' answers, past its
    lease; worker B drains meanwhile (HighLevel's dead-lettered as OutcomeUnknown,
    HubSpot's sent again); A resumes, gets its answers and settles nothing. One message
    per vendor, whatever the order."""
    for vendor, route in (("highlevel", "add_inbound_message"), ("hubspot", "publish")):
        emu_hs.faults.latency(4.0, vendor=vendor, route=route, after=True, count=1)
    with Outbox(target) as outbox:
        outbox.publish("hl", message("hl", 1))
        outbox.publish("hs", message("hs", 1))
    a = Proc(spec(emu_hs, target, lease_seconds=1.0, mode="forever"))
    procs.append(a)
    wait_for(
        lambda: bool(emu_hs.inbound_messages("highlevel") and emu_hs.inbound_messages("hubspot")),
        timeout=60,
    )
    a.signal(signal.SIGSTOP)
    time.sleep(1.5)  # A's row and connection leases expire
    b = Proc(spec(emu_hs, target, lease_seconds=5.0))
    procs.append(b)
    b_report = b.finish(timeout=60)
    assert (b_report["applied"], b_report["dead"]) == (1, 1)
    a.signal(signal.SIGCONT)
    time.sleep(4.0)  # A's held answers arrive; its settles meet lost leases
    a.signal(signal.SIGTERM)
    a_report = a.finish(timeout=60)
    assert a_report["applied"] == 0
    assert len(emu_hs.inbound_messages("highlevel")) == 1  # never published twice
    assert len(emu_hs.inbound_messages("hubspot")) == 1  # sent again, de-duplicated
    with Outbox(target) as outbox:
        assert outbox.pending() == []
        (letter,) = outbox.dead_letters()
    assert (letter.connection, letter.kind) == ("hl", "inbound")
    assert letter.error_type == "OutcomeUnknown"
