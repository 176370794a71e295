"""``msgbridge outbox``: inspect and drain a durable outbox (``status | drain | dead | requeue``).

The outbox is a SQLite file (``--db PATH`` or ``$MSGBRIDGE_OUTBOX_DB``) or a PostgreSQL
database (``--dsn DSN`` or ``$MSGBRIDGE_OUTBOX_DSN``; prefer the variable, a DSN may hold a
password, and it is never printed). ``drain`` sends through the connections of the config
file (``--config``, as for every command); the others only read or move rows.

Exit codes as for every command; a database that cannot be used (damaged, foreign,
newer schema, locked, full) is 4, and ``drain`` ends with 1 when updates became dead
letters.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
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
    help="Inspect and drain a durable outbox: status, drain, dead letters, requeue.",
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
    table.add_column("state")
    for name in ("ready", "scheduled", "leased", "retrying", "dead"):
        table.add_column(name, justify="right")
    for row in stats.rows:
        table.add_row(
            cell(row.connection),
            cell(row.state),
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
    }


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
    if report.dead:
        raise typer.Exit(int(ExitCode.FAILED))


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
    for name in ("id", "connection", "subject", "state", "attempts", "error", "HTTP", "trace id"):
        table.add_column(name)
    table.add_column("reason", overflow="fold", max_width=60)
    for letter in letters:
        table.add_row(
            cell(letter.id),
            cell(letter.connection),
            cell(letter.subject_id),
            cell(letter.state.value if letter.state is not None else letter.kind),
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
