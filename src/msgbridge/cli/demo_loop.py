"""``msgbridge demo --loop``: the whole provider loop on loopback, checked end to end.

1. Users send messages in the emulated CRMs (HighLevel and HubSpot): the emulator
   records each message and POSTs a **signed** webhook (Ed25519 with its published test
   key; HubSpot v3 HMAC) to the product's intake, a real :class:`~msgbridge.inbound.Intake`
   served over HTTP on a loopback port, storing to SQLite.
2. Some webhooks are delivered twice (duplicates); forged ones (another key or secret)
   and replayed ones (a captured request re-sent ten minutes later) are mixed in and must
   be refused with 401 without reaching the handler.
3. The product's handler is a fake carrier: it "sends" each message and reports its
   scripted fate (delivered, read or failed) back through :class:`~msgbridge.Bridge`;
   a third of the contacts reply, and the reply is published into the CRM
   (``POST /conversations/messages/inbound`` or HubSpot's ``…/messages``).
4. The loop passes only if every message ends in its scripted state in the emulator, each
   was handed to the handler exactly once, every forgery and replay was refused, and every
   reply was published once.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from msgbridge.auth import BearerToken
from msgbridge.bridge import Bridge
from msgbridge.connection import Connection
from msgbridge.inbound import InboundDelivery, InboundStore, IncomingMessage, Intake, Party
from msgbridge.model import DeliveryState, MessageStatus, StatusError
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy

if TYPE_CHECKING:
    from msgbridge.emulator import Emulator

__all__ = ["LoopReport", "run_demo_loop"]

LOCATION = "loop-location-1"
PORTAL = "4200001"
CHANNEL = 5001
CHANNEL_ACCOUNT = "loop-account-1"
PROVIDER_ID = "loop-provider-1"
#: Scripted fates, cycled: what the carrier reports for each message.
FATES = (
    (DeliveryState.SENT, DeliveryState.DELIVERED),
    (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ),
    (DeliveryState.SENT, DeliveryState.FAILED),
)
#: The vendor value each vendor ends with for each fate (HighLevel has no "sent" and
#: HubSpot no "delivered": see the adapters' state tables).
EXPECTED = {
    "highlevel": ("delivered", "read", "failed"),
    "hubspot": ("SENT", "READ", "FAILED"),
}


@attrs.define
class LoopReport:
    """What the loop did and whether it held."""

    messages: int = 0
    webhooks_sent: int = 0
    duplicates_sent: int = 0
    forged_refused: int = 0
    replays_refused: int = 0
    handled: Counter[str] = attrs.field(factory=Counter)
    finals: dict[str, tuple[str | None, str]] = attrs.field(factory=dict)
    replies_published: int = 0
    replies_expected: int = 0
    problems: list[str] = attrs.field(factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "messages": self.messages,
            "webhooks_sent": self.webhooks_sent,
            "duplicates_sent": self.duplicates_sent,
            "forged_refused": self.forged_refused,
            "replays_refused": self.replays_refused,
            "handled_once": sum(1 for n in self.handled.values() if n == 1),
            "replies_published": self.replies_published,
            "final_statuses": dict(Counter(actual for actual, _ in self.finals.values())),
            "problems": self.problems[:50],
            "seconds": round(self.seconds, 2),
        }


class _Carrier:
    """The product's handler: 'send' each message, report its scripted fate, relay replies."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.fates: dict[str, int] = {}
        self.replies: set[str] = set()
        self.handled: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, delivery: InboundDelivery) -> None:
        with self.lock:
            self.handled[delivery.key] += 1
        out = delivery.event.outbound
        if out is None:
            return
        vendor = delivery.event.adapter
        connection = f"loop-{vendor}"
        fate = FATES[self.fates[out.message_id]]
        for state in fate:
            error = (
                StatusError("carrier rejected", code="30007")
                if state is DeliveryState.FAILED
                else None
            )
            status = MessageStatus(
                out.message_id,
                state,
                error=error,
                channel_id=out.channel_id if vendor == "hubspot" else None,
            )
            receipt = self.bridge.update_status(connection, status)
            if not receipt.ok:
                self.errors.append(f"{out.message_id} {state.value}: {receipt.detail}")
        if out.message_id in self.replies:
            self._reply(vendor, out.message_id, out.contact_id)

    def _reply(self, vendor: str, message_id: str, contact_id: str | None) -> None:
        if vendor == "hubspot":
            message = IncomingMessage(
                f"reply-{message_id}", "custom", text="Thanks!",
                sender=Party("+15550100", kind="phone"),
            )  # fmt: skip
        else:
            message = IncomingMessage(
                f"reply-{message_id}", "sms", text="Thanks!", contact_id=contact_id or "contact"
            )
        receipt = self.bridge.publish_inbound(f"loop-{vendor}", message)
        if not receipt.ok:
            self.errors.append(f"reply to {message_id}: {receipt.detail}")


def _hl_payload(message_id: str, index: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "SMS",
        "messageId": message_id,
        "locationId": LOCATION,
        "contactId": f"contact-{index}",
        "phone": f"+1555000{index:04d}",
        "message": f"Hello #{index}",
        "userId": "user-1",
        **extra,
    }


def _hs_payload(message_id: str, index: int) -> dict[str, Any]:
    return {
        "type": "OUTGOING_CHANNEL_MESSAGE_CREATED",
        "portalId": int(PORTAL),
        "channelId": CHANNEL,
        "message": {
            "id": message_id,
            "channelAccountId": CHANNEL_ACCOUNT,
            "text": f"Hello #{index}",
            "conversationsThreadId": f"thread-{index}",
            "direction": "OUTGOING",
            "recipients": [
                {"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": f"+1555000{index:04d}"}}
            ],
        },
    }


def run_demo_loop(messages: int = 30, *, seed: int = 7, timeout: float = 60.0) -> LoopReport:
    """Run the loop on loopback and check it; see the module docstring."""
    from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
    from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier
    from msgbridge.emulator import Emulator
    from msgbridge.emulator.server import ServerThread
    from msgbridge.emulator.webhooks import EMULATOR_ED25519_PUBLIC_KEY, WebhookSender

    started = time.monotonic()
    report = LoopReport(messages=messages)
    registry = AdapterRegistry.from_entry_points()
    secret = secrets.token_urlsafe(24)
    with (
        tempfile.TemporaryDirectory(prefix="msgbridge-loop-") as tmp,
        Emulator() as emu,
        Bridge(
            registry=registry,
            retry=RetryPolicy(max_attempts=8, initial_backoff=0.02, max_backoff=0.4),
        ) as bridge,
    ):
        tokens = {"highlevel": secrets.token_urlsafe(18), "hubspot": secrets.token_urlsafe(18)}
        emu.add_token("highlevel", tokens["highlevel"], account=LOCATION)
        emu.add_token("hubspot", tokens["hubspot"], account=PORTAL)
        bridge.add_connection(
            Connection(
                "loop-highlevel",
                adapter="highlevel",
                credentials=BearerToken(tokens["highlevel"]),
                settings={
                    "base_url": emu.base_url("highlevel"),
                    "provider_retry_after": 0.05,
                    "conversation_provider_id": PROVIDER_ID,
                },
            )
        )
        bridge.add_connection(
            Connection(
                "loop-hubspot",
                adapter="hubspot",
                credentials=BearerToken(tokens["hubspot"]),
                settings={
                    "base_url": emu.base_url("hubspot"),
                    "channel_id": CHANNEL,
                    "channel_account_id": CHANNEL_ACCOUNT,
                },
            )
        )
        carrier = _Carrier(bridge)
        store = InboundStore(Path(tmp) / "inbound.db")
        intake = Intake(
            store,
            {
                "highlevel": HighLevelWebhookVerifier(public_key=EMULATOR_ED25519_PUBLIC_KEY),
                "hubspot": HubSpotWebhookVerifier(
                    client_secret=secret, public_url="https://pending.invalid/"
                ),
            },
            carrier,
        )
        server = ServerThread(intake.asgi())
        server.start()
        hubspot_url = f"{server.url}/hubspot"
        intake.sources["hubspot"] = HubSpotWebhookVerifier(
            client_secret=secret, public_url=hubspot_url
        )
        try:
            with WebhookSender() as sender:
                for index in range(messages):
                    vendor = "highlevel" if index % 2 == 0 else "hubspot"
                    message_id = f"loop-{vendor}-{seed}-{index}"
                    carrier.fates[message_id] = index % len(FATES)
                    if index % 3 == 0:
                        carrier.replies.add(message_id)
                        report.replies_expected += 1
                    duplicates = 1 if index % 4 == 0 else 0
                    report.duplicates_sent += duplicates
                    if vendor == "highlevel":
                        emu.seed_message(
                            vendor, message_id, account=LOCATION, conversation_id=f"conv-{index}"
                        )
                        payload = _hl_payload(message_id, index)
                        if index % 5 == 0:
                            forged = sender.highlevel(
                                f"{server.url}/highlevel", payload, forge=True
                            )
                            report.forged_refused += forged.final_status == 401
                        sent = sender.highlevel(
                            f"{server.url}/highlevel", payload, duplicates=duplicates
                        )
                        if index % 7 == 0:
                            stale = _hl_payload(
                                message_id,
                                index,
                                webhookId=f"wh-{index}",
                                timestamp="2020-01-01T00:00:00Z",
                            )
                            replay = sender.highlevel(f"{server.url}/highlevel", stale)
                            report.replays_refused += replay.final_status == 401
                    else:
                        emu.seed_message(vendor, message_id, account=PORTAL, channel_id=CHANNEL)
                        payload = _hs_payload(message_id, index)
                        if index % 5 == 1:
                            forged = sender.hubspot(hubspot_url, payload, secret=secret, forge=True)
                            report.forged_refused += forged.final_status == 401
                        sent = sender.hubspot(
                            hubspot_url, payload, secret=secret, duplicates=duplicates
                        )
                        if index % 7 == 1:
                            replay = sender.hubspot(
                                hubspot_url, payload, secret=secret, signed_ago=600
                            )
                            report.replays_refused += replay.final_status == 401
                    report.webhooks_sent += len(sent.statuses)
                    if any(s != 200 for s in sent.statuses):
                        report.problems.append(f"{message_id}: intake answered {sent.statuses}")
            deadline = time.monotonic() + timeout
            while store.counts().get("handled", 0) < messages and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            server.stop()
        _check(report, emu, carrier, messages, seed)
        store.close()
    report.seconds = time.monotonic() - started
    return report


def _check(report: LoopReport, emu: Emulator, carrier: _Carrier, messages: int, seed: int) -> None:
    report.handled = carrier.handled
    report.problems.extend(carrier.errors)
    forged_expected = sum(1 for i in range(messages) if i % 5 == (0 if i % 2 == 0 else 1))
    replays_expected = sum(1 for i in range(messages) if i % 7 == (0 if i % 2 == 0 else 1))
    if report.forged_refused != forged_expected:
        report.problems.append(
            f"{forged_expected - report.forged_refused} forged webhooks not refused"
        )
    if report.replays_refused != replays_expected:
        report.problems.append(f"{replays_expected - report.replays_refused} replays not refused")
    for index in range(messages):
        vendor = "highlevel" if index % 2 == 0 else "hubspot"
        message_id = f"loop-{vendor}-{seed}-{index}"
        key = f"{vendor}:message:{message_id}"
        if carrier.handled[key] != 1:
            report.problems.append(f"{key} handed to the handler {carrier.handled[key]} times")
        expected = EXPECTED[vendor][index % len(FATES)]
        actual = emu.message(vendor, message_id).status
        report.finals[message_id] = (actual, expected)
        if actual != expected:
            report.problems.append(f"{message_id}: emulator has {actual!r}, expected {expected!r}")
    published = [m for v in ("highlevel", "hubspot") for m in emu.inbound_messages(v)]
    report.replies_published = len(published)
    if len(published) != report.replies_expected:
        report.problems.append(
            f"{len(published)} replies published, expected {report.replies_expected}"
        )
    extra = set(carrier.handled) - {
        f"{'highlevel' if i % 2 == 0 else 'hubspot'}:message:loop-"
        f"{'highlevel' if i % 2 == 0 else 'hubspot'}-{seed}-{i}"
        for i in range(messages)
    }
    if extra:
        report.problems.append(f"unexpected events handled: {sorted(extra)[:5]}")


def loop_command(messages: int, seed: int, *, quiet: bool, as_json: bool) -> None:
    """What ``msgbridge demo --loop`` runs: the loop, a summary, exit 0 only if it held."""
    import typer

    from msgbridge.cli._common import ExitCode, out_console, print_json

    report = run_demo_loop(messages, seed=seed)
    if as_json:
        print_json(report.to_json())
    else:
        console = out_console()
        if not quiet:
            data = report.to_json()
            for key in (
                "webhooks_sent",
                "duplicates_sent",
                "forged_refused",
                "replays_refused",
                "handled_once",
                "replies_published",
                "final_statuses",
            ):
                console.print(f"{key}: {data[key]}", markup=False)
            for problem in report.problems[:10]:
                console.print(f"problem: {problem}", markup=False)
        verdict = (
            f"demo loop OK: {report.messages} messages received through signed webhooks, each "
            f"handled once and ended as scripted; {report.forged_refused} forged and "
            f"{report.replays_refused} replayed webhooks refused ({report.seconds:.1f}s)"
            if report.ok
            else f"demo loop FAILED: {len(report.problems)} problem(s)"
        )
        console.print(verdict, markup=False, style="bold green" if report.ok else "bold red")
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILED))
