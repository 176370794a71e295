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
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Annotated, Any

import attrs
import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from msgbridge.bridge import AsyncBridge, Bridge
from msgbridge.cli._common import (
    CliError,
    ConfigOption,
    ExitCode,
    JsonOption,
    VerboseOption,
    cell,
    configure_logging,
    handle_errors,
    out_console,
    print_json,
)
from msgbridge.cli.config import Config, load_config
from msgbridge.errors import ConfigurationError, InvalidStatus
from msgbridge.model import ConversationUpdate, MessageStatus, Outcome, Receipt
from msgbridge.registry import AdapterRegistry
from msgbridge.serialization import conversation_from_json, status_from_json

__all__ = ["MAX_LINE_BYTES", "LineError", "parse_line", "push"]

#: Longest input line accepted (a status is a few hundred bytes).
MAX_LINE_BYTES = 1024 * 1024
#: How much of an over-long line the rejects file keeps.
TRUNCATED_TEXT_BYTES = 1024
_LINE_KEYS = ("connection", "status", "conversation")
#: Summary row for lines whose connection could not be read at all.
NO_CONNECTION = "(none)"
MALFORMED = "malformed"


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


def _read_lines(stream: IO[bytes], progress: _Progress) -> Iterator[_Line]:
    """Physical lines, one at a time; over-long lines are cut, never held whole."""
    number = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        progress.read(len(chunk))
        truncated = len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n")
        if truncated:
            while True:  # drain the rest of the line without keeping it
                more = stream.readline(64 * 1024)
                progress.read(len(more))
                if not more or more.endswith(b"\n"):
                    break
            chunk = chunk[:TRUNCATED_TEXT_BYTES]
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


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool, total_bytes: int | None) -> None:
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._bytes = 0
        self._events = 0
        if enabled:
            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=out_console(),
                transient=True,
            )
            self._task = self._bar.add_task("pushing", total=total_bytes)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def read(self, count: int) -> None:
        self._bytes += count

    def tick(self, totals: Mapping[str, int]) -> None:
        self._events += 1
        if self._bar is None or self._task is None or self._events % 32:
            return
        description = " · ".join(f"{name} {count}" for name, count in sorted(totals.items()))
        self._bar.update(self._task, completed=self._bytes, description=description)


class _Rejects:
    """The rejects file, written as lines come; thread-safe."""

    def __init__(self, path: Path, include_skipped: bool) -> None:
        self.path = path
        self.include_skipped = include_skipped
        self.count = 0
        self._lock = threading.Lock()
        self._file = path.open("w", encoding="utf-8", newline="\n")

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


async def _push_async(
    cfg: Config,
    registry: AdapterRegistry,
    stream: IO[bytes],
    writer: _Rejects,
    tally: _Tally,
    progress: _Progress,
    max_in_flight: int,
    per_connection: int,
) -> None:
    """The same push on the async bridge; the file is still read lazily, line by line."""
    from msgbridge.fast import AiohttpSender

    async with AsyncBridge(registry=registry, retry=cfg.retry, sender=AiohttpSender()) as bridge:
        run = _Run(cfg, registry, bridge, writer, tally, progress)
        items = run.items(_read_lines(stream, progress))
        async for receipt in bridge.update_many(
            items, max_in_flight=max_in_flight, per_connection=per_connection
        ):
            run.record(receipt)


def _default_rejects(file: str) -> Path:
    return Path("rejects.jsonl") if file == "-" else Path(f"{file}.rejects.jsonl")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


class _Run:
    """One push: reads lines, feeds the bridge, records receipts and rejects."""

    def __init__(
        self,
        config: Config,
        registry: AdapterRegistry,
        bridge: Bridge | AsyncBridge,
        rejects: _Rejects,
        tally: _Tally,
        progress: _Progress,
    ) -> None:
        self.config = config
        self.registry = registry
        self.bridge = bridge
        self.rejects = rejects
        self.tally = tally
        self.progress = progress
        #: Items handed to the bridge and not answered yet: bounded by its read-ahead
        #: (``max_pending`` of ``update_many``), however long the input is.
        self.in_flight: dict[int, _Line] = {}
        self._added: set[str] = set()
        self._unusable: dict[str, str] = {}
        self._lock = threading.Lock()

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

    def items(self, lines: Iterator[_Line]) -> Iterator[Item]:
        index = 0
        for line in lines:
            self.tally.lines += 1
            if not line.text.strip() and not line.truncated and line.raw_base64 is None:
                self.tally.blank += 1
                continue
            try:
                if line.truncated:
                    raise LineError(f"line is longer than {MAX_LINE_BYTES} bytes")
                if line.raw_base64 is not None:
                    raise LineError("line is not valid UTF-8")
                connection, update = parse_line(line.text, self.config)
            except LineError as exc:
                self.rejects.write(line, MALFORMED, exc.reason, connection=exc.connection)
                self.tally.add(exc.connection or NO_CONNECTION, MALFORMED)
                self.progress.tick(self.tally.totals)
                continue
            unusable = self._usable(connection)
            if unusable is not None:
                self.rejects.write(
                    line, "failed", unusable, connection=connection, outcome=Outcome.FAILED.value
                )
                self.tally.add(connection, Outcome.FAILED.value)
                self.progress.tick(self.tally.totals)
                continue
            with self._lock:
                self.in_flight[index] = line
            yield connection, update
            index += 1

    def record(self, receipt: Receipt) -> None:
        if receipt.index is None:  # pragma: no cover - a bridge contract violation
            raise CliError("update_many returned a receipt without an index", ExitCode.INTERNAL)
        with self._lock:
            line = self.in_flight.pop(receipt.index)
        self.tally.add(receipt.connection, receipt.outcome.value)
        failed = receipt.outcome is Outcome.FAILED
        if failed or (receipt.outcome.is_skipped and self.rejects.include_skipped):
            reason = receipt.detail or (
                f"{type(receipt.error).__name__}: {receipt.error}"
                if receipt.error is not None
                else receipt.outcome.value
            )
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
        self.progress.tick(self.tally.totals)


_OUTCOME_COLUMNS = [o.value for o in Outcome] + [MALFORMED]


def _summary_json(tally: _Tally, rejects: _Rejects, file: str) -> dict[str, Any]:
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
        "ok": not tally.failed and not tally.malformed,
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


def _print_summary(tally: _Tally, rejects: _Rejects) -> None:
    console = out_console()
    if tally.by_connection:
        console.print(summary_table(tally.by_connection, "push summary"))
    counts = ", ".join(f"{tally.totals[k]} {k}" for k in _OUTCOME_COLUMNS if tally.totals[k])
    console.print(f"{tally.lines} line(s) read ({tally.blank} blank): {counts or 'nothing sent'}")
    if rejects.count:
        console.print(f"{rejects.count} line(s) did not apply; see {rejects.path}", markup=False)


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
    config: ConfigOption = None,
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
    rate_limit). Exit 1 if any line was malformed or any update failed.
    """
    configure_logging(verbose)
    cfg = load_config(config)
    registry = AdapterRegistry.from_entry_points()
    rejects_path = rejects or _default_rejects(file)
    if file != "-" and _same_file(Path(file), rejects_path):
        raise CliError("--rejects must not be the input file")
    stream: IO[bytes] = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    try:
        total = None if file == "-" else Path(file).stat().st_size
        show_progress = out_console().is_terminal and not as_json
        writer = _Rejects(rejects_path, rejects_include_skipped)
        tally = _Tally()
        try:
            with _Progress(show_progress, total) as progress:
                if _use_fast_sender(sender):
                    asyncio.run(
                        _push_async(
                            cfg,
                            registry,
                            stream,
                            writer,
                            tally,
                            progress,
                            max_in_flight,
                            per_connection,
                        )
                    )
                else:
                    with Bridge(registry=registry, retry=cfg.retry) as bridge:
                        run = _Run(cfg, registry, bridge, writer, tally, progress)
                        items = run.items(_read_lines(stream, progress))
                        receipts = bridge.update_many(
                            items, max_in_flight=max_in_flight, per_connection=per_connection
                        )
                        for receipt in receipts:
                            run.record(receipt)
        finally:
            writer.close()
    finally:
        if file != "-":
            stream.close()
    if as_json:
        print_json(_summary_json(tally, writer, file))
    else:
        _print_summary(tally, writer)
    if tally.failed or tally.malformed:
        raise typer.Exit(int(ExitCode.FAILED))
