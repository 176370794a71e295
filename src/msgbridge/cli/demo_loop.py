"""The inbound loop of ``msgbridge demo``: the whole provider loop on loopback, checked.

Every emulated vendor that declares how it plays the loop
(:meth:`~msgbridge.emulator.EmulatedVendor.demo_loop`, built-in and plugin vendors alike)
takes part; messages are spread over them in turn.

1. Users send messages in the emulated CRMs: the emulator records each message and POSTs
   a webhook **signed the vendor's way** to the product's intake, a real
   :class:`~msgbridge.inbound.Intake` served over HTTP on a loopback port, storing to
   SQLite.
2. Some webhooks are delivered twice (duplicates); forged ones (another key or secret)
   and replayed ones (a correctly signed request captured long ago) are mixed in and must
   be refused with 401 without reaching the handler.
3. The product's handler is a fake carrier: it "sends" each message and reports its
   scripted fate (delivered, read or failed) back through :class:`~msgbridge.Bridge`;
   a third of the contacts reply, and the reply is published into the CRM where the
   vendor's adapter publishes incoming messages.
4. The loop passes only if every message ends in the vendor value its adapter maps the
   scripted fate to, each was handed to the handler exactly once, every forgery and
   replay was refused, and every reply was published once.
"""

from __future__ import annotations

import functools
import secrets
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from msgbridge.adapter import Operation
from msgbridge.bridge import Bridge
from msgbridge.connection import Connection
from msgbridge.inbound import InboundDelivery, InboundStore, Intake
from msgbridge.model import DeliveryState, MessageStatus, StatusError
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy

if TYPE_CHECKING:
    from msgbridge.emulator import DemoLoop, EmulatedVendor, Emulator, WebhookKind
    from msgbridge.emulator.webhooks import SentWebhook, WebhookSender

__all__ = ["LoopReport", "loop_vendors", "run_demo_loop"]

#: Scripted fates, cycled: what the carrier reports for each message.
FATES = (
    (DeliveryState.SENT, DeliveryState.DELIVERED),
    (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ),
    (DeliveryState.SENT, DeliveryState.FAILED),
)
#: Every FORGED_EVERY-th message of a vendor is preceded by a forged webhook, every
#: REPLAY_EVERY-th followed by a replay; every DUPLICATE_EVERY-th is delivered twice and
#: every REPLY_EVERY-th contact replies.
FORGED_EVERY, REPLAY_EVERY, DUPLICATE_EVERY, REPLY_EVERY = 5, 7, 4, 3


@attrs.define
class LoopReport:
    """What the loop did and whether it held."""

    messages: int = 0
    vendors: list[str] = attrs.field(factory=list)
    webhooks_sent: int = 0
    duplicates_sent: int = 0
    forged_sent: int = 0
    forged_refused: int = 0
    replays_sent: int = 0
    replays_refused: int = 0
    handled: Counter[str] = attrs.field(factory=Counter)
    finals: dict[str, tuple[str | None, str | None]] = attrs.field(factory=dict)
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
            "vendors": self.vendors,
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


@attrs.define
class _Player:
    """One vendor in the loop: its recipe, connection and expectations."""

    name: str
    vendor: EmulatedVendor
    recipe: DemoLoop
    publishes: bool
    #: The vendor value each fate ends with (from the adapter's mapping).
    expected: tuple[str | None, ...]


class _Carrier:
    """The product's handler: 'send' each message, report its scripted fate, relay replies."""

    def __init__(self, bridge: Bridge, players: dict[str, _Player]) -> None:
        self.bridge = bridge
        self.players = players
        self.fates: dict[str, int] = {}
        self.replies: set[str] = set()
        self.handled: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, delivery: InboundDelivery) -> None:
        out = delivery.event.outbound
        with self.lock:
            # Counted per vendor and message (each vendor keys its events its own way).
            handled = delivery.key if out is None else f"{delivery.source}:{out.message_id}"
            self.handled[handled] += 1
        if out is None:
            return
        player = self.players[delivery.event.adapter]
        connection = f"loop-{player.name}"
        fields = player.recipe.status_fields(out)
        for state in FATES[self.fates[out.message_id]]:
            error = (
                StatusError("carrier rejected", code="30007")
                if state is DeliveryState.FAILED
                else None
            )
            status = MessageStatus(out.message_id, state, error=error, **fields)
            receipt = self.bridge.update_status(connection, status)
            if not receipt.ok:
                self.errors.append(f"{out.message_id} {state.value}: {receipt.detail}")
        if out.message_id in self.replies:
            reply = player.recipe.reply(out)
            if reply is None:
                self.errors.append(f"{player.name} declared publishing but made no reply")
                return
            receipt = self.bridge.publish_inbound(connection, reply)
            if not receipt.ok:
                self.errors.append(f"reply to {out.message_id}: {receipt.detail}")


def loop_vendors(emu: Emulator, registry: AdapterRegistry) -> list[str]:
    """The mounted vendors that declare a loop recipe and whose adapter is installed."""
    return [
        name
        for name in emu.vendor_names
        if name in registry and emu.vendor(name).demo_loop() is not None
    ]


def _players(emu: Emulator, registry: AdapterRegistry) -> dict[str, _Player]:
    from msgbridge.cli.demo_cmd import expected_vendor_state

    players: dict[str, _Player] = {}
    for name in loop_vendors(emu, registry):
        vendor = emu.vendor(name)
        recipe = vendor.demo_loop()
        assert recipe is not None  # loop_vendors checked
        adapter = registry.get(name)
        players[name] = _Player(
            name,
            vendor,
            recipe,
            publishes=Operation.PUBLISH_INBOUND in adapter.capabilities.operations,
            expected=tuple(expected_vendor_state(adapter, list(fate)) for fate in FATES),
        )
    return players


def run_demo_loop(
    messages: int = 30,
    *,
    seed: int = 7,
    timeout: float = 60.0,
    registry: AdapterRegistry | None = None,
    emulator: Emulator | None = None,
) -> LoopReport:
    """Run the loop on loopback and check it; see the module docstring.

    *emulator* (running) is used when given, else an in-process one with every installed
    vendor is started for the run.
    """
    from msgbridge.emulator import Emulator
    from msgbridge.emulator.server import ServerThread
    from msgbridge.emulator.webhooks import WebhookSender

    started = time.monotonic()
    report = LoopReport(messages=messages)
    registry = registry if registry is not None else AdapterRegistry.from_entry_points()
    with tempfile.TemporaryDirectory(prefix="msgbridge-loop-") as tmp:
        own = emulator is None
        emu = emulator if emulator is not None else Emulator(plugins=True).start()
        try:
            players = _players(emu, registry)
            report.vendors = list(players)
            if not players:
                report.problems.append("no installed vendor declares the inbound loop")
                return report
            retry = RetryPolicy(max_attempts=8, initial_backoff=0.02, max_backoff=0.4)
            with Bridge(registry=registry, retry=retry) as bridge:
                _run(report, emu, bridge, players, messages, seed, Path(tmp), timeout,
                     ServerThread, WebhookSender)  # fmt: skip
        finally:
            if own:
                emu.stop()
    report.seconds = time.monotonic() - started
    return report


def _run(
    report: LoopReport,
    emu: Emulator,
    bridge: Bridge,
    players: dict[str, _Player],
    messages: int,
    seed: int,
    tmp: Path,
    timeout: float,
    server_type: Any,
    sender_type: Any,
) -> None:
    for player in players.values():
        token = secrets.token_urlsafe(18)  # never printed
        emu.add_token(player.name, token, account=player.recipe.account)
        settings, credentials = player.vendor.demo_connection(
            emu.base_url(player.name), player.recipe.account, token
        )
        bridge.add_connection(
            Connection(
                f"loop-{player.name}",
                adapter=player.name,
                credentials=credentials,
                settings={**settings, **player.recipe.connection_settings()},
            )
        )
    carrier = _Carrier(bridge, players)
    store = InboundStore(tmp / "inbound.db")
    # Verifiers that sign over the URL need the real one: start, then set them.
    placeholder = {n: p.recipe.verifier("https://pending.invalid/") for n, p in players.items()}
    intake = Intake(store, placeholder, carrier)
    server = server_type(intake.asgi())
    server.start()
    urls = {name: f"{server.url}/{name}" for name in players}
    for name, player in players.items():
        intake.sources[name] = player.recipe.verifier(urls[name])
    names = list(players)
    expected_keys: set[str] = set()
    try:
        with sender_type() as sender:
            for index in range(messages):
                name = names[index % len(names)]
                player, turn = players[name], index // len(names)
                message_id = f"loop-{name}-{seed}-{index}"
                expected_keys.add(f"{name}:{message_id}")
                carrier.fates[message_id] = index % len(FATES)
                if player.publishes and turn % REPLY_EVERY == 0:
                    carrier.replies.add(message_id)
                    report.replies_expected += 1
                player.recipe.seed(player.vendor, message_id, index)

                post = functools.partial(_post, sender, player, urls[name], message_id, index)
                if turn % FORGED_EVERY == 0:
                    report.forged_sent += 1
                    report.forged_refused += post("forged", 0).final_status == 401
                duplicates = 1 if turn % DUPLICATE_EVERY == 0 else 0
                report.duplicates_sent += duplicates
                sent = post("genuine", duplicates)
                if turn % REPLAY_EVERY == 0:
                    report.replays_sent += 1
                    report.replays_refused += post("replayed", 0).final_status == 401
                report.webhooks_sent += len(sent.statuses)
                if any(s != 200 for s in sent.statuses):
                    report.problems.append(f"{message_id}: intake answered {sent.statuses}")
        deadline = time.monotonic() + timeout
        while store.counts().get("handled", 0) < messages and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.stop()
    _check(report, emu, carrier, players, messages, seed, expected_keys)
    store.close()


def _post(
    sender: WebhookSender,
    player: _Player,
    url: str,
    message_id: str,
    index: int,
    kind: WebhookKind,
    duplicates: int,
) -> SentWebhook:
    """Sign the webhook of *message_id* the vendor's way (as *kind*) and post it."""
    body, headers = player.recipe.webhook(url, message_id, index, at=time.time(), kind=kind)
    return sender.post(url, body, headers, duplicates=duplicates)


def _check(
    report: LoopReport,
    emu: Emulator,
    carrier: _Carrier,
    players: dict[str, _Player],
    messages: int,
    seed: int,
    expected_keys: set[str],
) -> None:
    report.handled = carrier.handled
    report.problems.extend(carrier.errors)
    if report.forged_refused != report.forged_sent:
        report.problems.append(
            f"{report.forged_sent - report.forged_refused} forged webhooks not refused"
        )
    if report.replays_refused != report.replays_sent:
        report.problems.append(
            f"{report.replays_sent - report.replays_refused} replays not refused"
        )
    names = list(players)
    for index in range(messages):
        name = names[index % len(names)]
        message_id = f"loop-{name}-{seed}-{index}"
        key = f"{name}:{message_id}"
        if carrier.handled[key] != 1:
            report.problems.append(f"{key} handed to the handler {carrier.handled[key]} times")
        expected = players[name].expected[index % len(FATES)]
        actual = emu.message(name, message_id).status
        report.finals[message_id] = (actual, expected)
        if actual != expected:
            report.problems.append(f"{message_id}: emulator has {actual!r}, expected {expected!r}")
    published = [m for name in players for m in emu.inbound_messages(name)]
    report.replies_published = len(published)
    if len(published) != report.replies_expected:
        report.problems.append(
            f"{len(published)} replies published, expected {report.replies_expected}"
        )
    extra = set(carrier.handled) - expected_keys
    if extra:
        report.problems.append(f"unexpected events handled: {sorted(extra)[:5]}")


def loop_lines(report: LoopReport) -> list[str]:
    """The loop's summary lines (before the verdict)."""
    data = report.to_json()
    lines = [f"inbound loop on {', '.join(report.vendors) or 'no vendor'}:"]
    for key in (
        "webhooks_sent",
        "duplicates_sent",
        "forged_refused",
        "replays_refused",
        "handled_once",
        "replies_published",
        "final_statuses",
    ):
        lines.append(f"  {key}: {data[key]}")
    lines.extend(f"problem: {problem}" for problem in report.problems[:10])
    return lines


def loop_verdict(report: LoopReport) -> str:
    if report.ok:
        return (
            f"demo loop OK: {report.messages} messages received through signed webhooks, each "
            f"handled once and ended as scripted; {report.forged_refused} forged and "
            f"{report.replays_refused} replayed webhooks refused ({report.seconds:.1f}s)"
        )
    return f"demo loop FAILED: {len(report.problems)} problem(s)"
