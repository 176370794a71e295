"""``msgbridge outbox``: inspect and drain a durable outbox
(``status | drain | work | dead | requeue``).

The outbox is a SQLite file (``--db PATH`` or ``$MSGBRIDGE_OUTBOX_DB``) or a PostgreSQL
database (``--dsn DSN`` or ``$MSGBRIDGE_OUTBOX_DSN``; prefer the variable, a DSN may hold a
password, and it is never printed). ``drain`` (one pass) and ``work`` (until SIGTERM)
send through the connections of the config file (``--config``, as for every command);
the others only read or move rows.

Exit codes as for every command; a database that cannot be used (damaged, foreign,
newer schema, locked, full) is 4, and ``drain`` ends with 1 when updates became dead
letters or when rows of connections the config does not define were left behind.
"""

from __future__ import annotations

import datetime as dt
import functools
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.table import Table

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
from msgbridge.cli.config import load_config
from msgbridge.connection import Connection
from msgbridge.errors import ConfigurationError
from msgbridge.outbox import (
    BatchReport,
    DeadLetter,
    EnqueueResult,
    Outbox,
    OutboxStats,
    OutboxWorker,
    StorageError,
)
from msgbridge.registry import AdapterRegistry

__all__ = ["outbox_app"]

P = ParamSpec("P")
R = TypeVar("R")

outbox_app = typer.Typer(
    name="outbox",
    help="Inspect and drain a durable outbox: status, drain, work, dead letters, requeue.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="MSGBRIDGE_OUTBOX_DB",
        help="The outbox's SQLite file.",
        dir_okay=False,
        show_default=False,
    ),
]
DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="MSGBRIDGE_OUTBOX_DSN",
        help="The outbox's PostgreSQL DSN (prefer the environment variable).",
        show_default=False,
        show_envvar=True,
    ),
]


def storage_errors(func: Callable[P, R]) -> Callable[P, R]:
    """A database that cannot be used is exit code 4, with the typed reason."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StorageError as exc:
            raise CliError(f"{type(exc).__name__}: {exc}", ExitCode.IO) from None

    return wrapper


@contextmanager
def open_outbox(db: Path | None, dsn: str | None) -> Iterator[Outbox]:
    if (db is None) == (dsn is None):
        raise CliError(
            "give the outbox as exactly one of --db PATH (SQLite) or --dsn DSN (PostgreSQL)"
        )
    if db is not None:
        from msgbridge.outbox import SQLiteStore

        store: Any = SQLiteStore(db, create=False)
    else:
        from msgbridge.outbox.postgres import PostgresStore

        assert dsn is not None
        store = PostgresStore(dsn)
    try:
        with Outbox(store) as outbox:
            yield outbox
    finally:
        store.close()


def _when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# -- status -----------------------------------------------------------------------------------


def stats_json(stats: OutboxStats) -> dict[str, Any]:
    return {
        "pending": stats.pending,
        "dead": stats.dead,
        "oldest_pending_age": stats.oldest_pending_age,
        "rows": [
            {
                "connection": r.connection,
                "kind": r.kind,
                "state": r.state,
                "ready": r.ready,
                "scheduled": r.scheduled,
                "leased": r.leased,
                "retrying": r.retrying,
                "pending": r.pending,
                "dead": r.dead,
            }
            for r in stats.rows
        ],
        "by_connection": stats.by_connection(),
    }


def stats_table(stats: OutboxStats, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("connection")
    table.add_column("kind")
    table.add_column("state")
    for name in ("ready", "scheduled", "leased", "retrying", "dead"):
        table.add_column(name, justify="right")
    for row in stats.rows:
        table.add_row(
            cell(row.connection),
            cell(row.kind),
            cell(row.state if row.kind == "status" else None),
            cell(row.ready),
            cell(row.scheduled),
            cell(row.leased),
            cell(row.retrying),
            cell(row.dead),
        )
    table.add_section()
    table.add_row(
        cell("total"),
        cell(""),
        cell(""),
        cell(sum(r.ready for r in stats.rows)),
        cell(sum(r.scheduled for r in stats.rows)),
        cell(sum(r.leased for r in stats.rows)),
        cell(sum(r.retrying for r in stats.rows)),
        cell(stats.dead),
    )
    return table


@outbox_app.command("status")
@handle_errors
@storage_errors
def status(
    db: DbOption = None,
    dsn: DsnOption = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Counts by connection and state: ready, scheduled (waiting to retry), leased, dead."""
    configure_logging(verbose)
    with open_outbox(db, dsn) as outbox:
        stats = outbox.stats()
        location = outbox.store.location
    if json_output:
        print_json({"outbox": location, **stats_json(stats)})
        return
    console = out_console()
    if not stats.rows:
        console.print(f"outbox {location}: empty")
        return
    console.print(stats_table(stats, f"outbox {location}"))
    if stats.oldest_pending_age is not None:
        console.print(f"oldest pending update: {stats.oldest_pending_age:.1f} s old")


# -- drain ------------------------------------------------------------------------------------


def _connections(
    config_path: Path | None, names: list[str] | None, registry: AdapterRegistry
) -> list[Connection]:
    config = load_config(config_path)
    if names:
        return [config.connection(name).build(registry) for name in names]
    usable: list[Connection] = []
    for name, item in sorted(config.connections.items()):
        try:
            usable.append(item.build(registry))
        except ConfigurationError as exc:
            sys.stderr.write(f"msgbridge: warning: skipping connection {name!r}: {exc.message}\n")
    if not usable:
        raise ConfigurationError(f"{config.path} defines no usable connection")
    return usable


def report_json(report: BatchReport) -> dict[str, int]:
    return {
        "batches": report.batches,
        "leased": report.leased,
        "applied": report.applied,
        "skipped": report.skipped,
        "retried": report.retried,
        "dead": report.dead,
        "released": report.released,
        "lost": report.lost,
        "fenced": report.fenced,
    }


def unserved(stats: OutboxStats, served: set[str]) -> dict[str, int]:
    """Pending rows per connection that no worker of this configuration can send."""
    return {
        name: counts["pending"]
        for name, counts in sorted(stats.by_connection().items())
        if name not in served and counts["pending"]
    }


def warn_unserved(rows: dict[str, int], what: str) -> None:
    if rows:
        listed = ", ".join(f"{name} ({count})" for name, count in rows.items())
        sys.stderr.write(
            f"msgbridge: warning: {sum(rows.values())} pending row(s) belong to connections "
            f"{what}: {listed}; add them to the config or run a worker that has them\n"
        )


@outbox_app.command("drain")
@handle_errors
@storage_errors
def drain(
    db: DbOption = None,
    dsn: DsnOption = None,
    config: ConfigOption = None,
    connection: Annotated[
        list[str] | None,
        typer.Option(
            "--connection",
            help="Drain only this connection (repeatable). Default: every usable one.",
        ),
    ] = None,
    until_empty: Annotated[
        bool,
        typer.Option(
            "--until-empty/--ready-only",
            help="Wait for scheduled retries until nothing is left, or stop when nothing "
            "is ready now.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.0, help="Stop after this many seconds (with --until-empty)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows leased per batch.")] = 200,
    lease_seconds: Annotated[
        float, typer.Option(min=1.0, help="How long a batch's lease lasts.")
    ] = 60.0,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Send pending updates through the config file's connections, then show the counts."""
    configure_logging(verbose)
    registry = AdapterRegistry.from_entry_points()
    connections = _connections(config, connection, registry)
    with open_outbox(db, dsn) as outbox:
        with OutboxWorker.create(
            outbox,
            connections,
            registry=registry,
            batch_size=batch_size,
            lease_seconds=lease_seconds,
        ) as worker:
            report = worker.drain(until_empty=until_empty, timeout=timeout)
        stats = outbox.stats()
        location = outbox.store.location
    served = {c.name for c in connections}
    left_unserved = unserved(stats, served)
    if not connection:  # every usable connection was asked for: leftovers are a problem
        warn_unserved(left_unserved, "this config does not define (or could not use)")
    if json_output:
        print_json({"outbox": location, "drain": report_json(report), **stats_json(stats)})
    else:
        console = out_console()
        table = Table(title=f"drained {location}", title_justify="left")
        for name in report_json(report):
            table.add_column(name, justify="right")
        table.add_row(*(cell(v) for v in report_json(report).values()))
        console.print(table)
        if stats.rows:
            console.print(stats_table(stats, "left in the outbox"))
        else:
            console.print("the outbox is empty")
    if report.dead or (left_unserved and not connection):
        raise typer.Exit(int(ExitCode.FAILED))


# -- work -------------------------------------------------------------------------------------


def _status_line(worker: OutboxWorker, outbox: Outbox, served: set[str]) -> str:
    totals = worker.totals
    stats = outbox.stats()
    mine = sum(c["pending"] for n, c in stats.by_connection().items() if n in served)
    held = len(worker.leases.held) if worker.leases is not None else 0
    oldest = (
        f", oldest {stats.oldest_pending_age:.0f} s" if stats.oldest_pending_age is not None else ""
    )
    line = (
        f"msgbridge outbox work: applied {totals.applied}, skipped {totals.skipped}, "
        f"retried {totals.retried}, dead {totals.dead}, fenced {totals.fenced}; "
        f"holding {held} connection(s); {mine} pending for this config{oldest}"
    )
    warn_unserved(unserved(stats, served), "this worker does not serve")
    return line


@outbox_app.command("work")
@handle_errors
@storage_errors
def work(
    db: DbOption = None,
    dsn: DsnOption = None,
    config: ConfigOption = None,
    connection: Annotated[
        list[str] | None,
        typer.Option(
            "--connection",
            help="Serve only this connection (repeatable). Default: every usable one.",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Requests in flight at once (all connections).")
    ] = 32,
    per_connection: Annotated[
        int, typer.Option(min=1, help="Requests in flight at once per connection.")
    ] = 8,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows leased per batch.")] = 200,
    lease_seconds: Annotated[
        float,
        typer.Option(min=1.0, help="How long a connection's lease lasts without renewal."),
    ] = 60.0,
    shutdown_deadline: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="On SIGTERM/SIGINT: seconds to finish the batch in flight before the rest "
            "is given back unsent.",
        ),
    ] = 30.0,
    status_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between status lines (on stderr).")
    ] = 30.0,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run a worker until SIGTERM/SIGINT: lease connections, send, settle, repeat.

    Several workers (processes or machines) may share one outbox: each sends only for
    the connections it holds a lease on, so each account is sent for by one worker at
    a time. On SIGTERM or SIGINT the worker stops leasing, finishes the batch in flight
    within --shutdown-deadline (then gives back what was not sent), releases its leases
    and prints what it did. A second signal stops at once.
    """
    configure_logging(verbose)
    registry = AdapterRegistry.from_entry_points()
    connections = _connections(config, connection, registry)
    served = {c.name for c in connections}
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)
        if len(signals) > 1:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with open_outbox(db, dsn) as outbox:
            report, location, stopped_in = _work(
                outbox,
                connections,
                registry,
                served,
                stop,
                concurrency=concurrency,
                per_connection=per_connection,
                batch_size=batch_size,
                lease_seconds=lease_seconds,
                shutdown_deadline=shutdown_deadline,
                status_interval=status_interval,
            )
            stats = outbox.stats()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reason = signal.Signals(signals[0]).name if signals else "stopped"
    if json_output:
        print_json(
            {
                "outbox": location,
                "stopped_by": reason,
                "shutdown_seconds": stopped_in,
                "work": report_json(report),
                **stats_json(stats),
            }
        )
        return
    console = out_console()
    table = Table(title=f"worked on {location} (stopped by {reason})", title_justify="left")
    for name in report_json(report):
        table.add_column(name, justify="right")
    table.add_row(*(cell(v) for v in report_json(report).values()))
    console.print(table)
    console.print(f"shut down in {stopped_in:.1f} s; {stats.pending} row(s) left pending")


def _work(
    outbox: Outbox,
    connections: list[Connection],
    registry: AdapterRegistry,
    served: set[str],
    stop: threading.Event,
    *,
    concurrency: int,
    per_connection: int,
    batch_size: int,
    lease_seconds: float,
    shutdown_deadline: float,
    status_interval: float,
) -> tuple[BatchReport, str, float]:
    worker = OutboxWorker.create(
        outbox,
        connections,
        registry=registry,
        batch_size=batch_size,
        lease_seconds=lease_seconds,
        max_in_flight=concurrency,
        per_connection=per_connection,
    )
    location = outbox.store.location
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run_forever(worker.stopping)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
            stop.set()

    sys.stderr.write(
        f"msgbridge outbox work: {worker.owner} serving {len(served)} connection(s) on {location}\n"
    )
    warn_unserved(unserved(outbox.stats(), served), "this worker does not serve")
    thread = threading.Thread(target=run, name="msgbridge-outbox-work", daemon=True)
    thread.start()
    stopped_in = 0.0
    try:
        next_status = time.monotonic() + status_interval
        while not stop.wait(max(0.0, min(1.0, next_status - time.monotonic()))):
            if time.monotonic() >= next_status:
                sys.stderr.write(_status_line(worker, outbox, served) + "\n")
                next_status = time.monotonic() + status_interval
        began = time.monotonic()
        sys.stderr.write(
            "msgbridge outbox work: stopping: no new leases; finishing the batch in flight "
            f"(at most {shutdown_deadline:g} s)\n"
        )
        worker.stopping.set()
        thread.join(shutdown_deadline)
        if thread.is_alive():
            sys.stderr.write(
                "msgbridge outbox work: deadline reached: giving back what was not sent\n"
            )
            worker.abandon()
            thread.join(5.0)  # requests already on the wire end within their timeout
        stopped_in = time.monotonic() - began
    finally:
        worker.abandon()
        released = worker.release_leases()
        if released:
            sys.stderr.write(
                f"msgbridge outbox work: released {len(released)} connection lease(s)\n"
            )
        worker.close()
    if failure:
        raise failure[0]
    return worker.totals, location, stopped_in


# -- dead letters -------------------------------------------------------------------------------


def dead_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "connection": letter.connection,
        "kind": letter.kind,
        "subject_id": letter.subject_id,
        "state": letter.state.value if letter.state is not None else None,
        "attempts": letter.attempts,
        "reason": letter.reason,
        "error_type": letter.error_type,
        "http_status": letter.http_status,
        "trace_id": letter.trace_id,
        "created_at": _when(letter.created_at),
        "failed_at": _when(letter.failed_at),
        "payload": dict(letter.payload),
    }


@outbox_app.command("dead")
@handle_errors
@storage_errors
def dead(
    db: DbOption = None,
    dsn: DsnOption = None,
    connection: Annotated[
        str | None, typer.Option("--connection", help="Only this connection.")
    ] = None,
    dead_id: Annotated[
        int | None, typer.Option("--id", help="Show one dead letter in full.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """List dead letters (or inspect one with --id): why they failed, with the trace id."""
    configure_logging(verbose)
    with open_outbox(db, dsn) as outbox:
        if dead_id is not None:
            try:
                letters = [outbox.dead_letter(dead_id)]
            except KeyError as exc:
                raise CliError(str(exc.args[0]), ExitCode.USAGE) from None
        else:
            letters = outbox.dead_letters(connection, limit=limit)
    if json_output:
        print_json({"dead_letters": [dead_json(letter) for letter in letters]})
        return
    console = out_console()
    if not letters:
        console.print("no dead letters")
        return
    if dead_id is not None:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in dead_json(letters[0]).items():
            table.add_row(key, cell(value))
        console.print(table)
        return
    table = Table(title="dead letters", title_justify="left")
    columns = ("id", "connection", "kind", "subject", "state", "attempts", "error", "HTTP")
    for name in (*columns, "trace id"):
        table.add_column(name)
    table.add_column("reason", overflow="fold", max_width=60)
    for letter in letters:
        table.add_row(
            cell(letter.id),
            cell(letter.connection),
            cell(letter.kind),
            cell(letter.subject_id),
            cell(letter.state.value if letter.state is not None else None),
            cell(letter.attempts),
            cell(letter.error_type),
            cell(letter.http_status),
            cell(letter.trace_id),
            cell(letter.reason),
        )
    console.print(table)


@outbox_app.command("requeue")
@handle_errors
@storage_errors
def requeue(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids.")] = None,
    requeue_all: Annotated[
        bool, typer.Option("--all", help="Requeue every dead letter (of --connection).")
    ] = False,
    connection: Annotated[
        str | None, typer.Option("--connection", help="With --all: only this connection.")
    ] = None,
    db: DbOption = None,
    dsn: DsnOption = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Put dead letters back in the outbox (updates overtaken meanwhile are not resent)."""
    configure_logging(verbose)
    if bool(ids) == requeue_all:
        raise CliError("give dead letter ids or --all (not both)")
    if connection is not None and not requeue_all:
        raise CliError("--connection goes with --all")
    with open_outbox(db, dsn) as outbox:
        try:
            results = outbox.requeue(ids or None, all=requeue_all, connection=connection)
        except KeyError as exc:
            raise CliError(str(exc.args[0]), ExitCode.USAGE) from None
    if json_output:
        print_json({"requeued": [_result_json(i, r) for i, r in results.items()]})
        return
    console = out_console()
    if not results:
        console.print("nothing to requeue")
        return
    table = Table(title="requeued", title_justify="left")
    for name in ("dead letter", "connection", "subject", "outcome", "detail"):
        table.add_column(name)
    for dead_letter_id, result in results.items():
        table.add_row(
            cell(dead_letter_id),
            cell(result.connection),
            cell(result.subject_id),
            cell(result.outcome.value),
            cell(result.detail),
        )
    console.print(table)


def _result_json(dead_letter_id: int, result: EnqueueResult) -> dict[str, Any]:
    return {
        "dead_letter": dead_letter_id,
        "connection": result.connection,
        "kind": result.kind,
        "subject_id": result.subject_id,
        "outcome": result.outcome.value,
        "accepted": result.accepted,
        "detail": result.detail,
    }
