"""``msgbridge demo``: the status part — a realistic batch through every emulated vendor.

No credentials and no network: the emulator runs in-process on a loopback port. Every
installed adapter the emulator serves is driven by what its emulated vendor declares
(``EmulatedVendor.demo_account``/``demo_connection``/``demo_message_fields``,
``has_provider_race``, ``needs_channel_id``) and what its adapter offers
(``Capabilities.operations``), built-in and plugin vendors alike. For each the demo creates
several accounts, each a connection with its own token, and pushes a mixed batch through
``Bridge.update_many``:

* carrier callbacks per message along a realistic path (pending → sent → delivered → read,
  or → failed), some skipped, some duplicated, and jittered in time so that many arrive
  out of order;
* conversation updates (unread count, starred) where the adapter offers them;
* one account with a small emulator budget (429s; the bridge learns and paces);
* injected 5xx answers and dropped connections, both before and after the vendor applied
  the update;
* the provider race where the vendor declares one: some messages are created just
  before their first callback and are refused "not ready yet" (403) for a moment.

The expected final state of every message is computed from the generated sequence with
the monotonic rule the bridge enforces (pending < sent < delivered < read; failed is
terminal and only follows pending or sent; an update whose vendor value equals the last
applied one is a duplicate) and each adapter's state mapping (a vendor without a value
for a state skips it; a coarse value such as SENT for delivered is a duplicate of the
one before). The demo exits 0 only if every message and conversation ended in its
expected state in the emulator. The inbound loop (``demo_loop``) runs after this part.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import attrs
import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from msgbridge.adapter import Adapter, Fidelity, Operation
from msgbridge.bridge import Bridge
from msgbridge.cli._common import (
    ExitCode,
    JsonOption,
    VerboseOption,
    cell,
    configure_logging,
    handle_errors,
    out_console,
    print_json,
)
from msgbridge.cli.demo_email import run_email_step
from msgbridge.cli.emulate_cmd import plugin_vendors, require_emulator
from msgbridge.connection import Connection
from msgbridge.errors import MessagingError
from msgbridge.model import (
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    Outcome,
    StatusError,
)
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy

if TYPE_CHECKING:
    from msgbridge.emulator import Emulator

__all__ = ["demo", "expected_vendor_state"]

P, S, D, R, F = (
    DeliveryState.PENDING,
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.READ,
    DeliveryState.FAILED,
)
#: What really happened to a message, with how often.
PATHS: tuple[tuple[float, tuple[DeliveryState, ...]], ...] = (
    (0.42, (P, S, D, R)),
    (0.18, (P, S, D)),
    (0.10, (P, S)),
    (0.10, (P, S, F)),
    (0.05, (P, F)),
    (0.10, (S, D, R)),
    (0.05, (D, R)),
)
ACCOUNTS_PER_VENDOR = 3
#: Share of a vendor's messages per account; the last account is the small one.
ACCOUNT_WEIGHTS = (0.45, 0.45, 0.10)
#: The account (0-based) of the first vendor that gets the small budget.
RATE_LIMITED_INDEX = 2
#: Emulator budgets (small windows keep the demo quick) and the client's belief.
BUDGET = (400, 1.0)
SMALL_BUDGET = (20, 1.0)
SKIP_CALLBACK = 0.10
DUPLICATE = 0.10
JITTER = 0.5
PROVIDER_RACE_SHARE = 0.15
PROVIDER_RACE_SECONDS = 0.3
FAULT_5XX = 0.03
FAULT_DROP = 0.01
FAULT_ROUTES = ("update_message_status", "update_conversation")
DEMO_RETRY = RetryPolicy(
    max_attempts=12,
    initial_backoff=0.02,
    max_backoff=0.4,
    deadline=25.0,
    max_retry_after=5.0,
)
SPAN = 100.0  # scenario time units over which messages start
#: Messages of the inbound loop by default: a few per vendor, well inside every vendor's
#: burst budget, so the loop takes seconds.
LOOP_MESSAGES = 24
#: Read-ahead of the batch: small, so callbacks reach the bridge roughly as they would
#: arrive (a large one collapses each message's queued burst to its final state).
MAX_PENDING = 32


# -- the scenario (pure) ---------------------------------------------------------------


@attrs.frozen
class Account:
    vendor: str
    index: int
    account: str
    connection: str
    channel_id: int | None = None
    #: Extra MessageStatus fields the vendor needs per message (e.g. its conversation).
    message_fields: Callable[[str], Mapping[str, str]] | None = attrs.field(default=None, eq=False)
    #: The account with the small emulator budget.
    rate_limited: bool = False
    #: The vendor refuses updates for a moment after a message is created.
    provider_race: bool = False
    #: The adapter offers conversation updates.
    conversations: bool = False


@attrs.frozen
class Event:
    at: float
    account: Account
    #: Message id, or conversation id for conversation updates.
    subject: str
    update: MessageStatus | ConversationUpdate
    #: Seconds of provider race to seed the message with (vendors that declare one).
    race: float | None = None


def expected_vendor_state(
    adapter: Adapter[Any], states: list[DeliveryState], initial: str | None = None
) -> str | None:
    """The vendor value a message ends with after *states* arrive in this order.

    Written independently of the bridge's guard: the rule is pending < sent < delivered
    < read, failed only after pending or sent and nothing after failed; states the vendor
    cannot express are skipped, and one whose vendor value equals the last applied
    value is a duplicate (nothing changes).
    """
    rank = {P: 0, S: 1, D: 2, R: 3}
    last: DeliveryState | None = None
    value = initial
    last_value: str | None = None
    for state in states:
        mapping = adapter.capabilities.mapping(state)
        if mapping.fidelity is Fidelity.NONE or mapping.vendor_value is None:
            continue
        if last is not None:
            if last is F:
                continue  # terminal (a repeated failed is a duplicate)
            if state is F:
                if last not in (P, S):
                    continue
            elif rank[state] < rank[last]:
                continue
            if mapping.vendor_value == last_value:
                continue
        last, last_value, value = state, mapping.vendor_value, mapping.vendor_value
    return value


def _path(rng: random.Random) -> tuple[DeliveryState, ...]:
    roll = rng.random()
    for share, path in PATHS:
        if roll < share:
            return path
        roll -= share
    return PATHS[0][1]


def _callbacks(rng: random.Random, path: tuple[DeliveryState, ...]) -> list[DeliveryState]:
    kept = [
        state
        for i, state in enumerate(path)
        if i in (0, len(path) - 1) or rng.random() >= SKIP_CALLBACK
    ]
    return kept


def _status(state: DeliveryState, message_id: str, account: Account | None = None) -> MessageStatus:
    error = (
        StatusError("carrier rejected the message", code="30007", kind="carrier")
        if state is F
        else None
    )
    extra = account.message_fields(message_id) if account and account.message_fields else {}
    return MessageStatus(
        message_id,
        state,
        error=error,
        conversation_id=extra.get("conversation_id"),
        channel_id=extra.get("channel_id"),
        email_message_id=extra.get("email_message_id"),
    )


def build_scenario(
    vendors: list[str], accounts: Mapping[str, list[Account]], messages: int, seed: int
) -> list[Event]:
    """Every update of the demo in arrival order (deterministic for a seed)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible scenario, not cryptography
    events: list[Event] = []
    for number in range(messages):
        vendor = vendors[number % len(vendors)]
        account = rng.choices(accounts[vendor], weights=ACCOUNT_WEIGHTS)[0]
        message_id = f"{vendor[:2]}{account.index}-msg-{number:06d}"
        start = rng.uniform(0.0, SPAN)
        race = (
            PROVIDER_RACE_SECONDS
            if account.provider_race and rng.random() < PROVIDER_RACE_SHARE
            else None
        )
        for step, state in enumerate(_callbacks(rng, _path(rng))):
            at = start + step + rng.gauss(0.0, JITTER)
            update = _status(state, message_id, account)
            events.append(Event(at, account, message_id, update, race))
            if rng.random() < DUPLICATE:
                events.append(Event(at + rng.uniform(0.0, 3.0), account, message_id, update, race))
    for vendor in vendors:
        for account in accounts[vendor]:
            if not account.conversations:
                continue
            per_account = max(1, messages // (len(vendors) * 12))
            for number in range(per_account):
                conversation_id = f"{vendor[:2]}{account.index}-conv-{number:05d}"
                for _ in range(rng.randint(1, 3)):
                    kind = rng.random()
                    change = ConversationUpdate(
                        conversation_id,
                        account_id=account.account,
                        unread_count=rng.randint(0, 5) if kind < 0.7 else None,
                        starred=rng.random() < 0.5 if kind >= 0.4 else None,
                    )
                    events.append(Event(rng.uniform(0.0, SPAN), account, conversation_id, change))
    events.sort(key=lambda e: e.at)
    return events


# -- running it ------------------------------------------------------------------------


@attrs.define
class Target:
    """One vendor the demo drives: its adapter and accounts."""

    vendor: str
    adapter: Adapter[Any]
    accounts: list[Account]


def _accounts(emu: Emulator, vendor: str, adapter: Adapter[Any], first: bool) -> list[Account]:
    """The demo accounts *vendor* declares, with what the demo needs to know of each."""
    emulated = emu.vendor(vendor)
    conversations = Operation.UPDATE_CONVERSATION in adapter.capabilities.operations
    result = []
    for index in range(ACCOUNTS_PER_VENDOR):
        account = emulated.demo_account(index)
        settings, _ = emulated.demo_connection(emu.base_url(vendor), account, "-")
        channel = settings.get("channel_id") if emulated.needs_channel_id else None
        result.append(
            Account(
                vendor,
                index,
                account,
                f"{vendor}-{index + 1}",
                channel,
                emulated.demo_message_fields,
                rate_limited=first and index == RATE_LIMITED_INDEX,
                provider_race=emulated.has_provider_race,
                conversations=conversations,
            )
        )
    return result


def _connect(emu: Emulator, target: Target, account: Account) -> Connection:
    token = secrets.token_urlsafe(18)  # never printed
    emu.add_token(target.vendor, token, account=account.account)
    base_url = emu.base_url(target.vendor)
    settings, credentials = emu.vendor(target.vendor).demo_connection(
        base_url, account.account, token
    )
    return Connection(
        account.connection,
        adapter=target.vendor,
        credentials=credentials,
        settings=settings,
        rate_limit=BUDGET,
    )


def _probe(emu: Emulator, registry: AdapterRegistry, name: str, first: bool) -> Target | str:
    """A vendor its own demo recipe (``EmulatedVendor.demo_*``) drives, or why not."""
    if name not in registry:
        return "its adapter is not installed (or blocked)"
    adapter = registry.get(name)
    target = Target(name, adapter, _accounts(emu, name, adapter, first))
    account = target.accounts[0]
    state = next((s for s in (S, D, R, F) if adapter.capabilities.mapping(s).sendable), None)
    if state is None:
        return "its adapter maps no delivery state"
    try:
        probe = _status(state, "demo-probe", account)
        emu.seed_message(
            name,
            "demo-probe",
            account=account.account,
            channel_id=account.channel_id,
            conversation_id=probe.conversation_id,
        )
        with Bridge(registry=registry, retry=RetryPolicy.none()) as bridge:
            bridge.add_connection(_connect(emu, target, account))
            bridge.update_status(account.connection, probe)
        stored = emu.message(name, "demo-probe").status
    except (MessagingError, ValueError, KeyError, TypeError) as exc:
        return f"its demo recipe does not work ({type(exc).__name__}: {exc})"
    if stored != adapter.capabilities.mapping(state).vendor_value:
        return f"its emulator stored {stored!r} for {state.value!r}"
    return target


def _targets(emu: Emulator, registry: AdapterRegistry) -> tuple[list[Target], dict[str, str]]:
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    for name in emu.vendor_names:
        probed = _probe(emu, registry, name, first=not targets)
        if isinstance(probed, str):
            skipped[name] = probed
        else:
            targets.append(probed)
    return targets, skipped


def _configure_emulator(emu: Emulator, targets: list[Target]) -> None:
    from msgbridge.emulator import RateLimit

    for target in targets:
        emu.set_rate_limit(target.vendor, RateLimit(max_requests=BUDGET[0], interval=BUDGET[1]))
        for account in target.accounts:
            if account.rate_limited:
                emu.set_rate_limit(
                    target.vendor,
                    RateLimit(max_requests=SMALL_BUDGET[0], interval=SMALL_BUDGET[1]),
                    account=account.account,
                )
    for route in FAULT_ROUTES:
        emu.faults.error_rate(FAULT_5XX, route=route)
        emu.faults.drop(rate=FAULT_DROP, route=route)
        emu.faults.drop(rate=FAULT_DROP, after=True, route=route)


def _feed(
    emu: Emulator, events: list[Event], seeded: dict[tuple[str, str], str | None]
) -> Iterator[tuple[str, MessageStatus | ConversationUpdate]]:
    """The batch, creating each message at the vendor just before its first callback.

    *seeded* receives each message's status right after creation (plugin vendors may
    start messages in a state of their own, e.g. ``sent``).
    """
    for event in events:
        vendor = event.account.vendor
        key = (vendor, event.subject)
        if key not in seeded:
            if isinstance(event.update, ConversationUpdate):
                emu.seed_conversation(vendor, event.subject, account=event.account.account)
                seeded[key] = None
            else:
                seeded[key] = emu.seed_message(
                    vendor,
                    event.subject,
                    account=event.account.account,
                    channel_id=event.account.channel_id,
                    conversation_id=event.update.conversation_id,
                    provider_ready_after=event.race,
                ).status
        yield event.account.connection, event.update


@attrs.frozen
class Mismatch:
    vendor: str
    subject: str
    expected: Any
    actual: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "id": self.subject,
            "expected": self.expected,
            "actual": self.actual,
        }


def _verify(
    emu: Emulator,
    targets: list[Target],
    events: list[Event],
    initial: Mapping[tuple[str, str], str | None],
) -> tuple[list[Mismatch], dict[str, dict[str, Any]]]:
    """Compare every message and conversation in the emulator with its expected state."""
    adapters = {t.vendor: t.adapter for t in targets}
    sequences: dict[tuple[str, str], list[DeliveryState]] = {}
    conversations: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        key = (event.account.vendor, event.subject)
        if isinstance(event.update, MessageStatus):
            sequences.setdefault(key, []).append(event.update.state)
        else:
            final = conversations.setdefault(key, {"unread_count": 0, "starred": False})
            if event.update.unread_count is not None:
                final["unread_count"] = event.update.unread_count
            if event.update.starred is not None:
                final["starred"] = event.update.starred
    mismatches: list[Mismatch] = []
    per_vendor: dict[str, dict[str, Any]] = {
        t.vendor: {"finals": Counter(), "messages": 0, "conversations": 0, "mismatches": 0}
        for t in targets
    }
    for (vendor, message_id), states in sequences.items():
        expected = expected_vendor_state(
            adapters[vendor], states, initial.get((vendor, message_id))
        )
        actual = emu.message(vendor, message_id).status
        info = per_vendor[vendor]
        info["messages"] += 1
        info["finals"][actual if actual is not None else "(none)"] += 1
        if actual != expected:
            info["mismatches"] += 1
            mismatches.append(Mismatch(vendor, message_id, expected, actual))
    for (vendor, conversation_id), final in conversations.items():
        state = emu.conversation(vendor, conversation_id)
        actual_conv = {"unread_count": state.unread_count, "starred": state.starred}
        info = per_vendor[vendor]
        info["conversations"] += 1
        if actual_conv != final:
            info["mismatches"] += 1
            mismatches.append(Mismatch(vendor, conversation_id, final, actual_conv))
    return mismatches, per_vendor


def _traffic(emu: Emulator, vendor: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for record in emu.find_requests(vendor=vendor):
        if record.route not in FAULT_ROUTES:
            continue
        counts["requests"] += 1
        fault = record.fault or ""
        if "drop" in fault:
            counts["dropped"] += 1
        elif record.status is not None and record.status >= 500:
            counts["5xx"] += 1
        elif record.status == 429:
            counts["429"] += 1
        elif record.status == 403:
            counts["403"] += 1
        elif record.status is not None and record.status < 300:
            counts["ok"] += 1
        else:
            counts["other"] += 1
    return dict(counts)


def _vendor_table(per_vendor: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(
        title="emulator: final state per vendor", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("vendor", style="bold")
    table.add_column("msgs", justify="right")
    table.add_column("final statuses", overflow="fold")
    table.add_column("convs", justify="right")
    table.add_column("as expected", justify="right")
    for vendor, info in per_vendor.items():
        finals = ", ".join(f"{k} {v}" for k, v in sorted(info["finals"].items()))
        checked = info["messages"] + info["conversations"]
        table.add_row(
            cell(vendor),
            cell(info["messages"]),
            cell(finals or None),
            cell(info["conversations"]),
            cell(f"{checked - info['mismatches']}/{checked}"),
        )
    return table


_TRAFFIC_COLUMNS = (
    ("requests", "requests"),
    ("ok", "2xx"),
    ("403", "403 (race)"),
    ("429", "429"),
    ("5xx", "5xx"),
    ("dropped", "dropped"),
)


def _traffic_table(traffic: Mapping[str, Mapping[str, int]]) -> Table:
    table = Table(
        title="emulator: update requests per vendor", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("vendor", style="bold")
    for _, header in _TRAFFIC_COLUMNS:
        table.add_column(header, justify="right")
    for vendor, counts in traffic.items():
        table.add_row(cell(vendor), *[cell(counts.get(key, 0)) for key, _ in _TRAFFIC_COLUMNS])
    return table


#: Receipt outcomes as the demo's columns: (outcome, header), then what they mean.
_RECEIPT_COLUMNS = (
    ("applied", "applied"),
    ("skipped_unsupported", "unsup."),
    ("skipped_stale", "stale"),
    ("skipped_duplicate", "dup."),
    ("skipped_superseded", "supers."),
    ("failed", "failed"),
)
LEGEND = (
    "Skipped updates are never sent and spend no vendor budget. unsup.: the vendor has "
    "no value for that state (see `msgbridge adapters`). stale: older than the state the "
    "message already reached (an out-of-order callback). dup.: the vendor would get the "
    "same value again. supers.: a later update for the same message replaced it while it "
    "waited. retries: extra attempts after a 5xx, a dropped connection, a 429 or a "
    "vendor's provider race."
)
TRY_NEXT = (
    "what to try next:",
    "  msgbridge emulate            a local emulator, and a config that points at it",
    "  msgbridge config init        a commented msgbridge.toml for your own account",
    "  msgbridge send CONN ID read  one status (a later 'sent' is skipped as stale)",
    "  msgbridge push FILE.jsonl    a file of updates: progress, rejects file, resume",
)


def _receipts_table(
    by_connection: Mapping[str, Mapping[str, int]], retries: Mapping[str, int]
) -> Table:
    """Receipts per connection, narrow enough for 80 columns (see the legend)."""
    table = Table(
        title="bridge receipts by connection",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("connection", style="bold", no_wrap=True)
    for _, header in _RECEIPT_COLUMNS:
        table.add_column(header, justify="right")
    table.add_column("retries", justify="right")
    table.add_column("total", justify="right")
    totals: Counter[str] = Counter()
    for name, counts in sorted(by_connection.items()):
        values = [counts.get(key, 0) for key, _ in _RECEIPT_COLUMNS]
        totals.update({key: counts.get(key, 0) for key, _ in _RECEIPT_COLUMNS})
        totals["retries"] += retries.get(name, 0)
        table.add_row(
            cell(name),
            *[cell(v) for v in values],
            cell(retries.get(name, 0)),
            cell(sum(counts.values())),
        )
    table.add_section()
    table.add_row(
        cell("all"),
        *[cell(totals[key]) for key, _ in _RECEIPT_COLUMNS],
        cell(totals["retries"]),
        cell(sum(sum(c.values()) for c in by_connection.values())),
    )
    return table


def _pacing_note(traffic: Mapping[str, Mapping[str, int]], small: str) -> str:
    """Why a rate-limited account saw no (or few) 429s: the client paces itself."""
    budget = f"{SMALL_BUDGET[0]} requests per {SMALL_BUDGET[1]:g} s"
    seen = sum(counts.get("429", 0) for counts in traffic.values())
    paced = (
        f"account {small} is limited to {budget}, yet the emulator answered "
        f"{seen} request(s) with 429: "
    )
    return paced + (
        "msgbridge paces every connection at its budget client-side (the vendor's "
        "published one, or the connection's rate_limit) and waits for a free slot "
        "instead of sending into a 429."
    )


@attrs.define
class StatusPart:
    """What the status part did: enough to print it and to judge it."""

    ok: bool
    json: dict[str, Any]
    checked: int
    updates: int
    failed: int
    mismatches: list[Mismatch]
    batch_seconds: float
    seconds: float


def run_status_part(
    messages: int, seed: int, *, console: Any, show: bool, quiet: bool
) -> StatusPart:
    """The status part: the batch through every vendor, verified in the emulator."""
    from msgbridge.emulator import Emulator, EmulatorConfig

    started = time.monotonic()
    registry = AdapterRegistry.from_entry_points()
    config = EmulatorConfig(seed=seed, record_limit=max(10_000, 40 * messages))
    with Emulator(config, vendors=plugin_vendors(registry)) as emu:
        targets, skipped = _targets(emu, registry)
        if not targets:
            typer.echo("msgbridge: error: no emulated vendor has an installed adapter", err=True)
            raise typer.Exit(int(ExitCode.CONFIG))
        emu.clear_requests()
        _configure_emulator(emu, targets)
        accounts = {t.vendor: t.accounts for t in targets}
        events = build_scenario([t.vendor for t in targets], accounts, messages, seed)
        small = next(a.connection for t in targets for a in t.accounts if a.rate_limited)
        raced = [t.vendor for t in targets if t.accounts[0].provider_race]
        if show:
            names = ", ".join(t.vendor for t in targets)
            console.print(
                f"msgbridge demo: emulator at {emu.url}; {messages} messages, {len(events)} "
                f"updates, {len(targets)} vendors ({names}), "
                f"{sum(len(t.accounts) for t in targets)} accounts",
                markup=False,
            )
            race = (
                f"provider race on {PROVIDER_RACE_SHARE:.0%} of {', '.join(raced)} messages; "
                if raced
                else ""
            )
            console.print(
                f"faults: {FAULT_5XX:.0%} 5xx, {FAULT_DROP:.0%} dropped before and "
                f"{FAULT_DROP:.0%} after applying; {race}account {small} "
                f"limited to {SMALL_BUDGET[0]} requests/{SMALL_BUDGET[1]:g}s",
                markup=False,
            )
            for name, reason in skipped.items():
                console.print(f"skipped vendor {name}: {reason}", markup=False)
        by_connection: dict[str, Counter[str]] = {}
        retries: Counter[str] = Counter()
        failures: list[str] = []
        seeded: dict[tuple[str, str], str | None] = {}
        batch_started = time.monotonic()
        progress = (
            Progress(
                TextColumn("demo"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            if show and console.is_terminal
            else None
        )
        with Bridge(registry=registry, retry=DEMO_RETRY) as bridge:
            for target in targets:
                for account in target.accounts:
                    bridge.add_connection(_connect(emu, target, account))
            task = progress.add_task("demo", total=len(events)) if progress else None
            if progress is not None:
                progress.start()
            try:
                for done, receipt in enumerate(
                    bridge.update_many(
                        _feed(emu, events, seeded), max_in_flight=32, max_pending=MAX_PENDING
                    ),
                    1,
                ):
                    counts = by_connection.setdefault(receipt.connection, Counter())
                    counts[receipt.outcome.value] += 1
                    retries[receipt.connection] += max(0, (receipt.attempts or 0) - 1)
                    if receipt.outcome is Outcome.FAILED and len(failures) < 10:
                        failures.append(
                            f"{receipt.connection} {receipt.subject_id}: {receipt.detail}"
                        )
                    if progress is not None and task is not None and done % 50 == 0:
                        progress.update(task, completed=done)
            finally:
                if progress is not None:
                    progress.stop()
        batch_seconds = time.monotonic() - batch_started
        mismatches, per_vendor = _verify(emu, targets, events, seeded)
        emails = run_email_step(emu, registry, [t.vendor for t in targets])
        traffic = {t.vendor: _traffic(emu, t.vendor) for t in targets}
    total_seconds = time.monotonic() - started
    checked = sum(v["messages"] + v["conversations"] for v in per_vendor.values())
    failed = sum(c[Outcome.FAILED.value] for c in by_connection.values())
    ok = not mismatches and emails.ok
    data = {
        "ok": ok,
        "messages": sum(v["messages"] for v in per_vendor.values()),
        "conversations": sum(v["conversations"] for v in per_vendor.values()),
        "updates": len(events),
        "failed_updates": failed,
        "seconds": round(total_seconds, 2),
        "batch_seconds": round(batch_seconds, 2),
        "by_connection": {k: dict(v) for k, v in sorted(by_connection.items())},
        "retries": dict(sorted(retries.items())),
        "vendors": {
            name: {
                "messages": info["messages"],
                "conversations": info["conversations"],
                "final_statuses": dict(info["finals"]),
                "mismatches": info["mismatches"],
                "http": traffic.get(name, {}),
            }
            for name, info in per_vendor.items()
        },
        "skipped_vendors": skipped,
        "mismatches": [m.to_json() for m in mismatches[:50]],
        "email_status": emails.to_json(),
    }
    if show:
        console.print(_receipts_table(by_connection, retries))
        console.print(LEGEND, markup=False)
        console.print()
        console.print(_vendor_table(per_vendor))
        console.print(_traffic_table(traffic))
        console.print(_pacing_note(traffic, small), markup=False)
        for line in failures:
            console.print(f"failed: {line}", markup=False)
        console.print(emails.summary(), markup=False)
        for line in emails.problems[:10]:
            console.print(f"email: {line}", markup=False)
        for mismatch in mismatches[:10]:
            console.print(
                f"mismatch: {mismatch.vendor} {mismatch.subject}: expected "
                f"{mismatch.expected!r}, emulator has {mismatch.actual!r}",
                markup=False,
            )
    return StatusPart(
        ok, data, checked, len(events), failed, mismatches, batch_seconds, total_seconds
    )


def _status_verdict(part: StatusPart) -> str:
    if part.ok:
        return (
            f"demo OK: all {part.checked} messages and conversations ended in their expected "
            f"state ({part.updates} updates in {part.batch_seconds:.1f}s, "
            f"{part.seconds:.1f}s total)"
        )
    return (
        f"demo FAILED: {len(part.mismatches)} of {part.checked} messages and conversations "
        f"did not end in their expected state ({part.failed} updates failed)"
    )


@handle_errors
def demo(
    messages: Annotated[
        int,
        typer.Option(min=1, max=100_000, help="Messages of the status part (all vendors)."),
    ] = 1000,
    loop_messages: Annotated[
        int,
        typer.Option(
            min=1,
            max=10_000,
            help="Messages users send in the emulated CRMs in the inbound loop.",
        ),
    ] = LOOP_MESSAGES,
    seed: Annotated[int, typer.Option(help="Seed of the generated scenario and faults.")] = 7,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the verdict.")] = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    status_only: Annotated[
        bool,
        typer.Option(
            "--status-only",
            help="Run only the status part (no webhooks, no intake): the quickest check "
            "that every vendor's status updates apply.",
        ),
    ] = False,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Run only the inbound loop (signed webhooks -> intake -> fake carrier -> "
            "statuses back); --messages then counts its messages.",
        ),
    ] = False,
) -> None:
    """Run the whole provider loop and a status batch in-process, and check every result.

    Needs no credentials and no network; every installed vendor takes part the way its
    emulated vendor declares. First the status part: several accounts per vendor,
    out-of-order and duplicate callbacks, conversation updates where offered, a
    rate-limited account, injected 5xx and dropped connections and provider races
    through Bridge.update_many, each message's final state compared with the one
    expected. Then the inbound loop: users send messages in the emulated CRMs, signed
    webhooks reach a real intake (forged and replayed ones mixed in and refused), a fake
    carrier reports each message's scripted fate back and replies are published. Exit 0
    only if both held.
    """
    configure_logging(verbose)
    require_emulator()
    if loop and status_only:
        typer.echo("msgbridge: error: --loop and --status-only exclude each other", err=True)
        raise typer.Exit(int(ExitCode.USAGE))
    from msgbridge.cli.demo_loop import loop_lines, loop_verdict, run_demo_loop

    console = out_console(soft_wrap=False)
    show = not quiet and not as_json
    if loop:
        report = run_demo_loop(messages, seed=seed)
        if as_json:
            print_json(report.to_json())
        else:
            if not quiet:
                for line in loop_lines(report):
                    console.print(line, markup=False)
            style = "bold green" if report.ok else "bold red"
            console.print(loop_verdict(report), markup=False, style=style)
        if not report.ok:
            raise typer.Exit(int(ExitCode.FAILED))
        return
    part = run_status_part(messages, seed, console=console, show=show, quiet=quiet)
    if not as_json:
        style = "bold green" if part.ok else "bold red"
        console.print(_status_verdict(part), markup=False, style=style)
    ok = part.ok
    data = part.json
    if not status_only:
        report = run_demo_loop(loop_messages, seed=seed)
        ok = ok and report.ok
        data = {**data, "ok": ok, "status_ok": part.ok, "loop": report.to_json()}
        if not as_json:
            if not quiet:
                console.print()
                for line in loop_lines(report):
                    console.print(line, markup=False)
            style = "bold green" if report.ok else "bold red"
            console.print(loop_verdict(report), markup=False, style=style)
    if as_json:
        print_json(data)
    elif not quiet:
        console.print()
        console.print("\n".join(TRY_NEXT), markup=False)
    if not ok:
        raise typer.Exit(int(ExitCode.FAILED))
