"""``msgbridge push FILE``: send a JSON-lines file of updates through the batch API.

Input: one JSON object per line (UTF-8), ``-`` for stdin. Blank lines are ignored::

    {"connection": "acme", "status": {"message_id": "m1", "state": "delivered"}}
    {"connection": "acme", "status": {"message_id": "m2", "state": "failed",
        "error": {"message": "carrier rejected", "code": "30007", "kind": "carrier"}}}
    {"connection": "hs", "status": {"message_id": "42", "state": "read", "channel_id": "7"}}
    {"connection": "acme", "conversation": {"conversation_id": "c1", "unread_count": 0}}

(each object on one line). ``connection`` names a connection of the config file and
exactly one of ``status`` or ``conversation`` is given. ``status`` keys: ``message_id``,
``state`` (pending, sent, delivered, read, failed), and optionally ``error``
(``message``, ``code``, ``kind``; state ``failed`` only), ``occurred_at`` (ISO 8601
with a time zone), ``conversation_id``, ``channel_id``, ``email_message_id``,
``recipients`` (a list of strings). ``conversation`` keys: ``conversation_id``,
``account_id``, ``unread_count``, ``starred`` (at least one of the last two). Unknown
keys, wrong types and unknown values are errors; nothing is coerced.

The file is streamed line by line (memory stays bounded however large it is). Every line
that did not apply goes to the rejects file as one JSON object::

    {"line": 7, "kind": "malformed", "reason": "...", "text": "<the line as read>"}
    {"line": 9, "kind": "failed", "reason": "...", "connection": "acme",
     "outcome": "failed", "error": "VendorUnavailable", "text": "..."}

``kind`` is ``malformed`` (not JSON, unknown keys, bad values, unknown connection),
``failed`` (the update was sent and failed, or its connection is unusable, e.g. a
missing environment variable), or ``skipped`` (only with ``--rejects-include-skipped``).
Lines longer than 1 MiB are rejected with the first 1 KiB in ``text`` and
``"truncated": true``; lines that are not UTF-8 carry their exact bytes in
``raw_base64``. The rejects file is rewritten on every run (empty when nothing was
rejected), so it always describes the latest run; feed it back after fixing the cause.

Progress (on stderr, so ``--json`` output stays clean): on a terminal a bar of finished
lines (``M/N``: the file's lines are counted first; stdin has no total), the rate and the
ETA, with the outcome counts on a line of their own; otherwise a plain line every
``--progress-every`` seconds. Either says when the client is pacing a connection at its
vendor budget (e.g. 100 requests per 10 s per account), which is then what limits
the run: msgbridge waits before sending rather than collecting 429s.

Stopping: SIGINT (Ctrl-C) or SIGTERM stops reading, closes the rejects file with every
finished line in it, prints the partial summary and ``stopped after line N`` (every line
up to N is finished), and exits 130 (SIGINT) or 143 (SIGTERM). ``--skip N`` (or
``--resume-from N+1``) continues from there: the rejects file then keeps its records up
to line N and the new ones are appended. Lines after N that had already been sent are
sent again and skipped by the persistent guard as duplicates. A second signal exits at
once. ``--max-consecutive-failures`` (default 25) stops the same way, exit 1, when that
many updates in a row failed: the vendor is most likely down, and retrying every
remaining line would take hours.

The state guard is persistent (``--state``, see ``msgbridge send --help``), so no push
regresses a message that an earlier run, or ``msgbridge send``, moved further along.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any

import attrs
import typer
from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from msgbridge.bridge import AsyncBridge, Bridge
from msgbridge.cli._common import (
    CliError,
    ConfigOption,
    ExitCode,
    JsonOption,
    NoGuardOption,
    StateOption,
    VerboseOption,
    cell,
    cli_guard,
    configure_logging,
    err_console,
    handle_errors,
    out_console,
    print_json,
)
from msgbridge.config import Config, load_config
from msgbridge.errors import ConfigurationError, InvalidStatus
from msgbridge.guard import Guard
from msgbridge.model import ConversationUpdate, MessageStatus, Outcome, Receipt
from msgbridge.registry import AdapterRegistry
from msgbridge.serialization import conversation_from_json, status_from_json

__all__ = ["DEFAULT_MAX_CONSECUTIVE_FAILURES", "MAX_LINE_BYTES", "LineError", "parse_line", "push"]

#: Longest input line accepted (a status is a few hundred bytes).
MAX_LINE_BYTES = 1024 * 1024
#: How much of an over-long line the rejects file keeps.
TRUNCATED_TEXT_BYTES = 1024
_LINE_KEYS = ("connection", "status", "conversation")
#: Summary row for lines whose connection could not be read at all.
NO_CONNECTION = "(none)"
MALFORMED = "malformed"
#: Updates failing in a row that stop a push (the vendor is most likely down).
DEFAULT_MAX_CONSECUTIVE_FAILURES = 25
#: Seconds between plain progress lines when stderr is not a terminal.
DEFAULT_PROGRESS_EVERY = 5.0
#: Seconds between looks at the rate limiters (is pacing what limits the run?).
PACING_SAMPLE = 0.25


Update = MessageStatus | ConversationUpdate
#: What ``Bridge.update_many`` takes: a connection name and an update.
Item = tuple[str, Update]


class LineError(Exception):
    """Why one input line was refused; ``connection`` when the line named a known one."""

    def __init__(self, reason: str, connection: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connection = connection


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise LineError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise LineError(f"{name} is not allowed in JSON input")


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def parse_line(text: str, config: Config) -> Item:
    """One input line as ``(connection, update)``, or :class:`LineError` saying why not."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise LineError(f"expected a JSON object, got {_json_type(data)}")
    unknown = sorted(set(data) - set(_LINE_KEYS))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise LineError(f"unknown key(s) {names}; allowed: {', '.join(_LINE_KEYS)}")
    connection = data.get("connection")
    if not isinstance(connection, str):
        raise LineError(
            "connection is required (a connection name from the config file)"
            if connection is None
            else f"connection must be a string, got {_json_type(connection)}"
        )
    known = connection if connection in config.connections else None
    if ("status" in data) == ("conversation" in data):
        raise LineError("give exactly one of 'status' or 'conversation'", known)
    if known is None:
        raise LineError(config.unknown_connection(connection))
    update: Update
    try:
        if "status" in data:
            update = status_from_json(data["status"])
        else:
            update = conversation_from_json(data["conversation"])
    except InvalidStatus as exc:
        what = "status" if "status" in data else "conversation"
        raise LineError(f"{what}: {exc.message}", known) from None
    return connection, update


@attrs.frozen
class _Line:
    number: int
    text: str
    #: The exact bytes, base64, when they were not valid UTF-8.
    raw_base64: str | None = None
    truncated: bool = False


def count_lines(path: Path) -> int:
    """Lines in *path* (a last line without a newline counts), read in 1 MiB blocks."""
    count = 0
    last = b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _read_lines(stream: IO[bytes], skip: int = 0) -> Iterator[_Line]:
    """Physical lines, one at a time; over-long lines are cut, never held whole.

    The first *skip* lines are read past (``--skip``); numbers stay those of the file.
    """
    number = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        truncated = len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n")
        if truncated:
            while True:  # drain the rest of the line without keeping it
                more = stream.readline(64 * 1024)
                if not more or more.endswith(b"\n"):
                    break
            chunk = chunk[:TRUNCATED_TEXT_BYTES]
        if number <= skip:
            continue
        raw = chunk.rstrip(b"\n")
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            line = _Line(number, raw.decode("utf-8"), truncated=truncated)
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            # A cut line may just have split a character: its bytes are gone anyway.
            exact = None if truncated else base64.b64encode(raw).decode("ascii")
            line = _Line(number, text, raw_base64=exact, truncated=truncated)
        yield line


# -- stopping: signals and fail-fast ------------------------------------------------------


class _Stop(Exception):
    """The push stops early (a signal, or too many failures in a row)."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class _Stopper:
    """Turns SIGINT/SIGTERM into a :class:`_Stop`, never in the middle of our bookkeeping.

    The handler raises at once unless a :meth:`critical` section (recording a line) is
    running; then the section raises when it ends, so every finished line is in the
    rejects file and the counts. ``event`` is set too: the bridge's sleeps (retry backoff,
    pacing) end at once, so in-flight work does not hold the exit. A second signal exits
    immediately (the rejects file is line-buffered: nothing written is lost).
    """

    def __init__(self) -> None:
        self.stop: _Stop | None = None
        self.event = threading.Event()
        self._critical = 0
        self._previous: dict[int, Any] = {}

    def request(self, reason: str, code: int) -> _Stop:
        if self.stop is None:
            self.stop = _Stop(reason, code)
            self.event.set()
        return self.stop

    def signalled(self, signum: int) -> None:
        """A signal arrived: request the stop, or exit now if one was already requested."""
        if self.stop is not None:
            sys.stderr.write("msgbridge: push: second signal, exiting now\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.request(signal.Signals(signum).name, 128 + signum)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.signalled(signum)
        if not self._critical and self.stop is not None:
            raise self.stop

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        if not self._critical and self.stop is not None:
            raise self.stop

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT/SIGTERM for the duration (main thread only; else untouched)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)
        try:
            yield
        finally:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._previous.clear()

    def sleep(self, seconds: float) -> None:
        """The bridge's sleep: ends early, with :class:`_Stop`, when the push stops."""
        if self.event.wait(max(0.0, seconds)) and self.stop is not None:
            raise self.stop


class _Finished:
    """The highest line N such that every line up to N is finished (for ``--skip N``)."""

    def __init__(self, start: int) -> None:
        self.upto = start
        self._ahead: set[int] = set()

    def add(self, number: int) -> None:
        if number != self.upto + 1:
            self._ahead.add(number)
            return
        self.upto = number
        while self.upto + 1 in self._ahead:
            self._ahead.remove(self.upto + 1)
            self.upto += 1


# -- progress ------------------------------------------------------------------------------


class _Bar(Progress):
    """A rich progress bar with the outcome counts (and pacing) on lines of their own."""

    status: Text = Text()

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.status.plain:
            yield self.status


def _duration(seconds: float) -> str:
    seconds = math.ceil(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _counts(totals: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {totals[k]}" for k in _OUTCOME_COLUMNS if totals.get(k))


class _Reporter:
    """Progress of finished lines: a bar on a terminal, plain lines elsewhere, or nothing.

    A background thread refreshes it and samples the connections' rate limiters: a
    connection whose budget is used up most of the time is what limits the run, and
    the user is told so (the client waits; the vendor never has to answer 429).
    """

    def __init__(
        self,
        mode: str,
        total: int | None,
        every: float,
        console: Console,
        tally: _Tally,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.total = total
        self.every = every
        self.console = console
        self.tally = tally
        self.clock = clock
        self.done = 0
        self.bridge: Bridge | AsyncBridge | None = None
        self.started = clock()
        self._samples: deque[tuple[float, int]] = deque([(self.started, 0)])
        self._recent: deque[frozenset[str]] = deque(maxlen=20)
        self.paced_samples: Counter[str] = Counter()
        self.samples = 0
        self.budgets: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: _Bar | None = None
        self._task: Any = None

    # -- what the push tells it
    def line_done(self) -> None:
        self.done += 1

    # -- figures
    def rate(self) -> float:
        now = self.clock()
        while len(self._samples) > 1 and now - self._samples[0][0] > 10.0:
            self._samples.popleft()
        then, done_then = self._samples[0]
        elapsed = now - then
        return (self.done - done_then) / elapsed if elapsed > 0 else 0.0

    def eta(self, rate: float) -> str:
        if self.total is None or rate <= 0:
            return "?"
        return _duration(max(0, self.total - self.done) / rate)

    def count_text(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"

    def pacing(self) -> list[str]:
        """Connections held at their budget in at least half of the recent samples."""
        if not self._recent:
            return []
        seen: Counter[str] = Counter()
        for names in self._recent:
            seen.update(names)
        return sorted(n for n, k in seen.items() if k * 2 >= len(self._recent))

    def pacing_text(self) -> str:
        names = self.pacing()
        if not names:
            return ""
        shown = ", ".join(f"{n} ({self.budgets[n]})" for n in names[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return f"paced at the vendor budget: {shown}{more}"

    def _sample(self) -> None:
        bridge = self.bridge
        if bridge is None:
            return
        now = time.monotonic()  # the bridges' default clock, which the limiters use
        paced = set()
        for name, bound in bridge.connections.items():
            limiter = bound.limiter
            if limiter is None:
                continue
            self.budgets[name] = f"{limiter.requests} per {limiter.per_seconds:g} s"
            if limiter.available_at(now) > now:
                paced.add(name)
        self._recent.append(frozenset(paced))
        self.paced_samples.update(paced)
        self.samples += 1

    def plain_line(self) -> str:
        rate = self.rate()
        parts = [f"{self.count_text()} lines"]
        if self.total:
            parts[0] += f" ({100 * self.done // self.total}%)"
        parts.append(f"{rate:.1f} lines/s")
        if self.total is not None:
            parts.append(f"eta {self.eta(rate)}")
        parts.append(_counts(self.tally.totals) or "nothing finished yet")
        pacing = self.pacing_text()
        if pacing:
            parts.append(pacing)
        return "msgbridge: push: " + "; ".join(parts)

    # -- the refresher
    def _refresh_bar(self) -> None:
        assert self._bar is not None
        rate = self.rate()
        lines = [_counts(self.tally.totals)]
        pacing = self.pacing_text()
        if pacing:
            lines.append(pacing)
        self._bar.status = Text("\n".join(x for x in lines if x), overflow="fold")
        self._bar.update(
            self._task,
            completed=self.done,
            count=self.count_text(),
            rate=f"{rate:.1f}/s",
            eta=self.eta(rate),
        )

    def _loop(self) -> None:
        next_line = self.started + self.every
        while not self._stop.wait(PACING_SAMPLE):
            self._sample()
            self._samples.append((self.clock(), self.done))
            if self.mode == "bar":
                self._refresh_bar()
            elif self.mode == "lines" and self.clock() >= next_line:
                next_line = self.clock() + self.every
                self.console.print(self.plain_line(), markup=False, highlight=False)

    def __enter__(self) -> _Reporter:
        if self.mode == "bar":
            self._bar = _Bar(
                TextColumn("pushing"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[count]}"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("eta {task.fields[eta]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._bar.add_task(
                "pushing", total=self.total, count=self.count_text(), rate="", eta="?"
            )
            self._bar.start()
        self._thread = threading.Thread(target=self._loop, name="msgbridge-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.stop()

    def paced_share(self) -> dict[str, float]:
        """Per connection, the share of the run it spent held at its budget."""
        if not self.samples:
            return {}
        return {n: round(k / self.samples, 2) for n, k in sorted(self.paced_samples.items())}


class _Rejects:
    """The rejects file, written as lines come (line-buffered); thread-safe.

    With *keep_upto* (a resumed push) the records of lines up to it are kept from the
    previous run and the new ones appended; otherwise the file is rewritten.
    """

    def __init__(self, path: Path, include_skipped: bool, keep_upto: int = 0) -> None:
        self.path = path
        self.include_skipped = include_skipped
        self.count = 0
        self.kept = 0
        self._lock = threading.Lock()
        if keep_upto and path.exists():
            self.kept = self._keep(keep_upto)
            mode = "a"
        else:
            mode = "w"
        self._file = path.open(mode, encoding="utf-8", newline="\n", buffering=1)

    def _keep(self, upto: int) -> int:
        kept = 0
        partial = self.path.with_name(self.path.name + ".partial")
        with (
            self.path.open(encoding="utf-8") as old,
            partial.open("w", encoding="utf-8", newline="\n") as new,
        ):
            for text in old:
                try:
                    number = json.loads(text)["line"]
                except (ValueError, KeyError, TypeError):
                    continue
                if isinstance(number, int) and number <= upto:
                    new.write(text if text.endswith("\n") else text + "\n")
                    kept += 1
        os.replace(partial, self.path)
        return kept

    def write(self, line: _Line, kind: str, reason: str, **extra: Any) -> None:
        record: dict[str, Any] = {"line": line.number, "kind": kind, "reason": reason}
        record.update({k: v for k, v in extra.items() if v is not None})
        if line.truncated:
            record["truncated"] = True
        if line.raw_base64 is not None:
            record["raw_base64"] = line.raw_base64
        record["text"] = line.text
        text = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(text)
            self.count += 1

    def close(self) -> None:
        self._file.close()


class _Tally:
    """Counts by connection and outcome (bounded: connections by outcomes)."""

    def __init__(self) -> None:
        self.by_connection: dict[str, Counter[str]] = {}
        self.totals: Counter[str] = Counter()
        self.lines = 0
        self.blank = 0
        self._lock = threading.Lock()

    def add(self, connection: str, outcome: str) -> None:
        with self._lock:
            self.by_connection.setdefault(connection, Counter())[outcome] += 1
            self.totals[outcome] += 1

    @property
    def failed(self) -> int:
        return self.totals[Outcome.FAILED.value]

    @property
    def malformed(self) -> int:
        return self.totals[MALFORMED]


def _use_fast_sender(choice: str) -> bool:
    """Whether to push through ``AsyncBridge`` + ``AiohttpSender`` (several times faster)."""
    if choice not in ("auto", "aiohttp", "httpx"):
        raise CliError(f"--sender must be auto, aiohttp or httpx, not {choice!r}", ExitCode.USAGE)
    if choice == "httpx":
        return False
    try:
        import msgbridge.fast  # noqa: F401
    except ImportError:
        if choice == "aiohttp":
            raise CliError(
                "--sender aiohttp needs the 'fast' extra: pip install 'msgbridge[fast]'"
            ) from None
        return False
    return True


def _default_rejects(file: str) -> Path:
    return Path("rejects.jsonl") if file == "-" else Path(f"{file}.rejects.jsonl")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


@attrs.define
class _Context:
    """Everything one push shares: config, guard, output files, counters, stop control."""

    config: Config
    registry: AdapterRegistry
    guard: Guard | bool
    rejects: _Rejects
    tally: _Tally
    reporter: _Reporter
    stopper: _Stopper
    finished: _Finished
    skip: int
    max_in_flight: int
    per_connection: int
    max_failures: int


class _Run:
    """One push: reads lines, feeds the bridge, records receipts and rejects."""

    def __init__(self, ctx: _Context, bridge: Bridge | AsyncBridge) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.registry = ctx.registry
        self.bridge = bridge
        self.rejects = ctx.rejects
        self.tally = ctx.tally
        self.stopper = ctx.stopper
        #: Items handed to the bridge and not answered yet: bounded by its read-ahead
        #: (``max_pending`` of ``update_many``), however long the input is.
        self.in_flight: dict[int, _Line] = {}
        self.consecutive_failures = 0
        self._added: set[str] = set()
        self._unusable: dict[str, str] = {}
        self._lock = threading.Lock()
        ctx.reporter.bridge = bridge

    def _usable(self, name: str) -> str | None:
        """Add connection *name* on first use; the reason if it cannot be used."""
        if name in self._added:
            return None
        if name not in self._unusable:
            try:
                self.bridge.add_connection(self.config.connection(name).build(self.registry))
                self._added.add(name)
                return None
            except ConfigurationError as exc:
                self._unusable[name] = f"connection {name!r} is not usable: {exc.message}"
        return self._unusable[name]

    def _done(self, line: _Line) -> None:
        self.ctx.finished.add(line.number)
        self.ctx.reporter.line_done()

    def _item(self, line: _Line) -> Item | None:
        """The bridge input for *line*, or ``None`` once it is finished here."""
        self.tally.lines += 1
        if not line.text.strip() and not line.truncated and line.raw_base64 is None:
            self.tally.blank += 1
            self._done(line)
            return None
        try:
            if line.truncated:
                raise LineError(f"line is longer than {MAX_LINE_BYTES} bytes")
            if line.raw_base64 is not None:
                raise LineError("line is not valid UTF-8")
            connection, update = parse_line(line.text, self.config)
        except LineError as exc:
            self.rejects.write(line, MALFORMED, exc.reason, connection=exc.connection)
            self.tally.add(exc.connection or NO_CONNECTION, MALFORMED)
            self._done(line)
            return None
        unusable = self._usable(connection)
        if unusable is not None:
            self.rejects.write(
                line, "failed", unusable, connection=connection, outcome=Outcome.FAILED.value
            )
            self.tally.add(connection, Outcome.FAILED.value)
            self._done(line)
            return None
        return connection, update

    def items(self, lines: Iterator[_Line]) -> Iterator[Item]:
        index = 0
        for line in lines:
            with self.stopper.critical():
                item = self._item(line)
                if item is not None:
                    with self._lock:
                        self.in_flight[index] = line
            if item is None:
                continue
            yield item
            index += 1

    def record(self, receipt: Receipt) -> None:
        with self.stopper.critical():
            self._record(receipt)

    def _record(self, receipt: Receipt) -> None:
        if receipt.index is None:  # pragma: no cover - a bridge contract violation
            raise CliError("update_many returned a receipt without an index", ExitCode.INTERNAL)
        with self._lock:
            line = self.in_flight.pop(receipt.index)
        self.tally.add(receipt.connection, receipt.outcome.value)
        failed = receipt.outcome is Outcome.FAILED
        reason = receipt.detail or (
            f"{type(receipt.error).__name__}: {receipt.error}"
            if receipt.error is not None
            else receipt.outcome.value
        )
        if failed or (receipt.outcome.is_skipped and self.rejects.include_skipped):
            self.rejects.write(
                line,
                "failed" if failed else "skipped",
                reason,
                connection=receipt.connection,
                outcome=receipt.outcome.value,
                error=type(receipt.error).__name__ if receipt.error is not None else None,
                http_status=receipt.http_status,
                attempts=receipt.attempts or None,
            )
        self._done(line)
        self.consecutive_failures = self.consecutive_failures + 1 if failed else 0
        limit = self.ctx.max_failures
        if limit and self.consecutive_failures >= limit:
            self.stopper.request(
                f"{self.consecutive_failures} updates in a row failed (the last: {reason}); "
                "the vendor looks unreachable or is refusing every update",
                int(ExitCode.FAILED),
            )


def _push_sync(ctx: _Context, stream: IO[bytes]) -> None:
    with Bridge(
        registry=ctx.registry,
        retry=ctx.config.retry,
        guard=ctx.guard,
        sleep=ctx.stopper.sleep,
    ) as bridge:
        run = _Run(ctx, bridge)
        receipts = bridge.update_many(
            run.items(_read_lines(stream, ctx.skip)),
            max_in_flight=ctx.max_in_flight,
            per_connection=ctx.per_connection,
        )
        try:
            for receipt in receipts:
                run.record(receipt)
        finally:  # a stop: cancel what has not started
            getattr(receipts, "close", lambda: None)()


async def _push_async(ctx: _Context, stream: IO[bytes]) -> None:
    """The same push on the async bridge; the file is still read lazily, line by line."""
    from msgbridge.fast import AiohttpSender

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def on_signal(signum: int) -> None:
        ctx.stopper.signalled(signum)
        task.cancel()

    handled: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
                loop.add_signal_handler(sig, on_signal, int(sig))
                handled.append(sig)
    try:
        async with AsyncBridge(
            registry=ctx.registry, retry=ctx.config.retry, sender=AiohttpSender(), guard=ctx.guard
        ) as bridge:
            run = _Run(ctx, bridge)
            receipts = bridge.update_many(
                run.items(_read_lines(stream, ctx.skip)),
                max_in_flight=ctx.max_in_flight,
                per_connection=ctx.per_connection,
            )
            try:
                async for receipt in receipts:
                    run.record(receipt)
            finally:
                aclose = getattr(receipts, "aclose", None)
                if aclose is not None:
                    await aclose()
    except asyncio.CancelledError:
        if ctx.stopper.stop is None:
            raise
        raise ctx.stopper.stop from None
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


_OUTCOME_COLUMNS = [o.value for o in Outcome] + [MALFORMED]


@attrs.frozen
class _Stopped:
    reason: str
    code: int
    after_line: int


def _summary_json(
    tally: _Tally,
    rejects: _Rejects,
    file: str,
    stopped: _Stopped | None,
    paced: Mapping[str, float],
) -> dict[str, Any]:
    return {
        "input": file,
        "lines": tally.lines,
        "blank_lines": tally.blank,
        "totals": {k: tally.totals[k] for k in _OUTCOME_COLUMNS if tally.totals[k]},
        "by_connection": {
            name: {k: counts[k] for k in _OUTCOME_COLUMNS if counts[k]}
            for name, counts in sorted(tally.by_connection.items())
        },
        "rejects": {"path": str(rejects.path), "lines": rejects.count},
        "ok": not tally.failed and not tally.malformed and stopped is None,
        "stopped": None
        if stopped is None
        else {
            "reason": stopped.reason,
            "after_line": stopped.after_line,
            "resume": f"--skip {stopped.after_line}",
        },
        "paced": dict(paced),
    }


def summary_table(by_connection: Mapping[str, Mapping[str, int]], title: str) -> Table:
    """Counts by connection (rows) and outcome (columns present), with a total row."""
    present = [k for k in _OUTCOME_COLUMNS if any(c.get(k) for c in by_connection.values())]
    table = Table(title=title, title_justify="left")
    width = max((len(name) for name in by_connection), default=10)
    table.add_column("connection", style="bold", min_width=min(width, 40), overflow="fold")
    for name in present:
        header = name.replace("skipped_", "skipped\n")
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("total", justify="right")
    totals: Counter[str] = Counter()
    for name, counts in sorted(by_connection.items()):
        row = [cell(counts.get(k, 0)) for k in present]
        table.add_row(cell(name), *row, cell(sum(counts.get(k, 0) for k in present)))
        totals.update({k: counts.get(k, 0) for k in present})
    if len(by_connection) > 1:
        table.add_section()
        table.add_row(cell("all"), *[cell(totals[k]) for k in present], cell(sum(totals.values())))
    return table


def _print_summary(
    tally: _Tally,
    rejects: _Rejects,
    file: str,
    stopped: _Stopped | None,
    paced: Mapping[str, float],
    budgets: Mapping[str, str],
) -> None:
    console = out_console()
    if tally.by_connection:
        title = "push summary (partial)" if stopped is not None else "push summary"
        console.print(summary_table(tally.by_connection, title))
    counts = ", ".join(f"{tally.totals[k]} {k}" for k in _OUTCOME_COLUMNS if tally.totals[k])
    console.print(f"{tally.lines} line(s) read ({tally.blank} blank): {counts or 'nothing sent'}")
    if rejects.count or rejects.kept:
        kept = f" (plus {rejects.kept} kept from the run before)" if rejects.kept else ""
        console.print(
            f"{rejects.count} line(s) did not apply{kept}; see {rejects.path}", markup=False
        )
    held = {name: share for name, share in paced.items() if share >= 0.3}
    if held:
        names = ", ".join(
            f"{name} ({budgets.get(name, 'its budget')}, {share:.0%} of the time)"
            for name, share in held.items()
        )
        console.print(
            f"pacing: msgbridge held {names} at its rate budget (the vendor's published "
            "one unless the config sets rate_limit); it waits client-side instead of "
            "collecting 429s, so this, not the vendor, limited the run",
            markup=False,
        )
    if stopped is not None:
        source = "-" if file == "-" else file
        console.print(
            f"stopped after line {stopped.after_line} ({stopped.reason}); every line up to "
            f"it is finished. To continue: msgbridge push {source} --skip {stopped.after_line}",
            markup=False,
        )


@handle_errors
def push(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="JSON-lines file of updates; '-' for stdin.")
    ],
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Where lines that did not apply go. Default: FILE.rejects.jsonl "
            "(rejects.jsonl for stdin).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    rejects_include_skipped: Annotated[
        bool,
        typer.Option(
            "--rejects-include-skipped",
            help="Also write skipped updates (stale, duplicate, superseded, unsupported).",
        ),
    ] = False,
    max_in_flight: Annotated[
        int, typer.Option(min=1, max=1024, help="Updates sent concurrently at most.")
    ] = 32,
    per_connection: Annotated[
        int, typer.Option(min=1, max=1024, help="Updates sent concurrently per connection.")
    ] = 8,
    sender: Annotated[
        str,
        typer.Option(
            help="HTTP sender: 'aiohttp' (async, fast; the 'fast' extra), 'httpx' "
            "(threads), or 'auto' (aiohttp when installed).",
        ),
    ] = "auto",
    skip: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="N",
            help="Skip the first N lines (continue after 'stopped after line N'); the "
            "rejects file keeps its records up to line N and new ones are appended.",
        ),
    ] = 0,
    resume_from: Annotated[
        int | None,
        typer.Option(min=1, metavar="LINE", help="Start at line LINE (same as --skip LINE-1)."),
    ] = None,
    max_consecutive_failures: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="N",
            help="Stop when N updates in a row failed (a vendor that is down); 0: never.",
        ),
    ] = DEFAULT_MAX_CONSECUTIVE_FAILURES,
    progress_every: Annotated[
        float,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="Seconds between plain progress lines when stderr is not a terminal.",
        ),
    ] = DEFAULT_PROGRESS_EVERY,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Show no progress.")] = False,
    config: ConfigOption = None,
    state_file: StateOption = None,
    no_guard: NoGuardOption = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Send every update of a JSON-lines FILE ('-' for stdin) and summarise.

    Each line: {"connection": NAME, "status": {...}} or {"connection": NAME,
    "conversation": {...}}; status keys: message_id, state, error {message, code,
    kind}, occurred_at, conversation_id, channel_id, email_message_id, recipients;
    conversation keys: conversation_id, account_id, unread_count, starred. Malformed
    lines are reported with their line number and do not stop the others. Every line
    that did not apply is written to the rejects file with its line number, reason and
    text ({"line", "kind": malformed|failed|skipped, "reason", "connection", "outcome",
    "error", "text"}); the file is rewritten on every run. Updates go through the bridge's
    batch API, paced per connection at the adapter's rate budget (or the connection's
    rate_limit). Progress goes to stderr. Ctrl-C or SIGTERM stops with a partial summary
    and "stopped after line N"; --skip N continues. Exit 1 if any line was malformed or
    any update failed, 130/143 when stopped by SIGINT/SIGTERM.
    """
    configure_logging(verbose)
    if resume_from is not None and skip:
        raise CliError("give --skip N or --resume-from LINE, not both")
    first = resume_from - 1 if resume_from is not None else skip
    cfg = load_config(config)
    registry = AdapterRegistry.from_entry_points()
    rejects_path = rejects or _default_rejects(file)
    if file != "-" and _same_file(Path(file), rejects_path):
        raise CliError("--rejects must not be the input file")
    fast = _use_fast_sender(sender)
    stream: IO[bytes] = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    stopped: _Stopped | None = None
    try:
        total = None if file == "-" else max(0, count_lines(Path(file)) - first)
        errors = err_console()
        mode = "off" if no_progress else "bar" if errors.is_terminal else "lines"
        with cli_guard(state_file, no_guard) as guard:
            tally = _Tally()
            writer = _Rejects(rejects_path, rejects_include_skipped, keep_upto=first)
            reporter = _Reporter(mode, total, progress_every, errors, tally)
            ctx = _Context(
                config=cfg,
                registry=registry,
                guard=guard,
                rejects=writer,
                tally=tally,
                reporter=reporter,
                stopper=_Stopper(),
                finished=_Finished(first),
                skip=first,
                max_in_flight=max_in_flight,
                per_connection=per_connection,
                max_failures=max_consecutive_failures,
            )
            try:
                with ctx.stopper.installed(), reporter:
                    if fast:
                        asyncio.run(_push_async(ctx, stream))
                    else:
                        _push_sync(ctx, stream)
            except _Stop as stop:
                stopped = _Stopped(stop.reason, stop.code, ctx.finished.upto)
            finally:
                writer.close()
    finally:
        if file != "-":
            stream.close()
    paced = reporter.paced_share()
    if as_json:
        print_json(_summary_json(tally, writer, file, stopped, paced))
    else:
        _print_summary(tally, writer, file, stopped, paced, reporter.budgets)
    if stopped is not None:
        if stopped.code == ExitCode.FAILED:
            typer.echo(f"msgbridge: error: push stopped: {stopped.reason}", err=True)
        raise typer.Exit(stopped.code)
    if tally.failed or tally.malformed:
        raise typer.Exit(int(ExitCode.FAILED))
