"""Shared pieces of the command line: exit codes, consoles, error handling, receipts.

Every command is wrapped by :func:`handle_errors`, so an error is one line on stderr
(``msgbridge: error: …``) and a documented exit code, never a traceback unless
``--verbose`` was given. Messages come from msgbridge's own errors, which never carry a
token, and from this package, which names environment variables but never reads them
out loud.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from msgbridge.errors import ConfigurationError, InvalidStatus, MessagingError
from msgbridge.guard import Guard
from msgbridge.model import Outcome, Receipt

__all__ = [
    "EXIT_CODES_HELP",
    "CliError",
    "ConfigOption",
    "ExitCode",
    "JsonOption",
    "NoGuardOption",
    "StateOption",
    "VerboseOption",
    "cell",
    "cli_guard",
    "configure_logging",
    "default_state_path",
    "err_console",
    "error_line",
    "handle_errors",
    "is_verbose",
    "out_console",
    "print_json",
    "receipt_from_error",
    "receipt_json",
    "receipt_table",
]

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(enum.IntEnum):
    """Exit codes of every command (also listed in ``msgbridge --help``)."""

    OK = 0
    #: An update failed, input lines were rejected, or the demo's final check failed.
    FAILED = 1
    #: Bad options or arguments, or an update that is invalid before any I/O.
    USAGE = 2
    #: The configuration is wrong: config file, environment variables, adapters.
    CONFIG = 3
    #: A file could not be read or written.
    IO = 4
    #: A bug in msgbridge (run again with --verbose and report the traceback).
    INTERNAL = 70
    INTERRUPTED = 130
    #: Stopped by SIGTERM (``push`` prints its partial summary first).
    TERMINATED = 143


EXIT_CODES_HELP = (
    "Exit codes: 0 success (applied or skipped); 1 an update failed, input lines were "
    "rejected or the demo's check failed; 2 bad arguments or an invalid update; "
    "3 configuration error (config file, environment variable, adapter); 4 a file could "
    "not be read or written; 70 internal error; 130 interrupted (Ctrl-C); 143 stopped by "
    "SIGTERM."
)


class CliError(Exception):
    """An error of the command line itself, with the exit code it ends with."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# -- consoles -------------------------------------------------------------------------


def out_console(*, soft_wrap: bool = True) -> Console:
    """Rich console on the current stdout (looked up now: tests swap sys.stdout).

    ``soft_wrap=False`` wraps text and fits tables to the width (80 columns when stdout
    is not a terminal and $COLUMNS is unset).
    """
    return Console(file=sys.stdout, highlight=False, soft_wrap=soft_wrap)


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def cell(value: object) -> Text:
    """A table cell that shows *value* literally (no rich markup, ``—`` for None)."""
    if value is None:
        return Text("—", style="dim")
    return Text(str(value))


def print_json(data: object) -> None:
    """Machine output: one JSON document on stdout, nothing else."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
    sys.stdout.flush()


# -- verbosity and logging --------------------------------------------------------------

_state: dict[str, bool] = {"verbose": False}


class _CliHandler(logging.Handler):
    """Marker subclass so the handler we installed can be found and replaced."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(logging.DEBUG if verbose else logging.CRITICAL + 1)
        self.setFormatter(logging.Formatter("msgbridge: %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - never let logging fail a command
            self.handleError(record)


def configure_logging(verbose: bool) -> None:
    """Quiet by default (the commands report failures themselves); debug with -v.

    Only msgbridge's and httpx's loggers are raised to DEBUG; httpcore stays quiet.
    Neither logs headers, so no token reaches the log.
    """
    if verbose:
        _state["verbose"] = True
    verbose = _state["verbose"]
    for name in ("msgbridge", "httpx"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, _CliHandler)]:
            logger.removeHandler(handler)
        logger.addHandler(_CliHandler(verbose))
        logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
        logger.propagate = False


def reset_verbosity() -> None:
    """Start every invocation quiet (the root callback calls this)."""
    _state["verbose"] = False


def is_verbose() -> bool:
    return _state["verbose"]


# -- errors -----------------------------------------------------------------------------


def error_line(message: str) -> None:
    """Print one plain error line on stderr (no markup interpretation)."""
    one_line = " ".join(message.split())
    typer.echo(f"msgbridge: error: {one_line}", err=True)


def _fail(message: str, code: ExitCode) -> typer.Exit:
    if is_verbose():
        traceback.print_exc(file=sys.stderr)
    error_line(message)
    return typer.Exit(int(code))


def _os_error_text(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


def _control_flow() -> tuple[type[BaseException], ...]:
    """Exceptions typer/click use to end a command; they must pass through untouched.

    typer 0.2x vendors click (``typer.TyperException``); older typer raises click's own.
    """
    kinds: list[type[BaseException]] = [typer.Exit, typer.Abort]
    vendored = getattr(typer, "TyperException", None)
    if isinstance(vendored, type) and issubclass(vendored, BaseException):
        kinds.append(vendored)
    try:
        import click
    except ImportError:  # pragma: no cover - typer without click
        pass
    else:
        kinds.extend([click.exceptions.Exit, click.ClickException, click.Abort])
    return tuple(kinds)


_CONTROL_FLOW = _control_flow()


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a command may raise into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _CONTROL_FLOW:
            raise
        except CliError as exc:
            raise _fail(exc.message, exc.code) from None
        except ConfigurationError as exc:
            raise _fail(f"configuration: {exc.message}", ExitCode.CONFIG) from None
        except InvalidStatus as exc:
            raise _fail(f"invalid update: {exc}", ExitCode.USAGE) from None
        except MessagingError as exc:
            raise _fail(f"{type(exc).__name__}: {exc}", ExitCode.FAILED) from None
        except OSError as exc:
            raise _fail(_os_error_text(exc), ExitCode.IO) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", ExitCode.INTERRUPTED) from None
        except Exception as exc:
            hint = "" if is_verbose() else " (run with --verbose for the traceback)"
            raise _fail(
                f"internal error: {type(exc).__name__}: {exc}{hint}", ExitCode.INTERNAL
            ) from None

    return wrapper


# -- receipts ---------------------------------------------------------------------------


def receipt_from_error(
    exc: MessagingError, *, connection: str, adapter: str, subject_id: str, state: Any = None
) -> Receipt:
    """The FAILED receipt a single-update command shows for a raised error."""
    return Receipt(
        Outcome.FAILED,
        connection=exc.connection or connection,
        adapter=exc.adapter or adapter,
        subject_id=exc.subject_id or subject_id,
        state=state,
        attempts=exc.attempts or 0,
        http_status=exc.http_status,
        trace_id=exc.trace_id,
        detail=f"{type(exc).__name__}: {exc.message}",
        error=exc,
    )


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """A receipt as plain JSON (the exception itself is shown by its class name)."""
    data: dict[str, Any] = {
        "outcome": receipt.outcome.value,
        "ok": receipt.ok,
        "connection": receipt.connection,
        "adapter": receipt.adapter,
        "subject_id": receipt.subject_id,
        "state": receipt.state.value if receipt.state is not None else None,
        "vendor_value": receipt.vendor_value,
        "attempts": receipt.attempts,
        "http_status": receipt.http_status,
        "vendor_ids": dict(receipt.vendor_ids),
        "trace_id": receipt.trace_id,
        "detail": receipt.detail,
        "dropped_fields": list(receipt.dropped_fields),
    }
    if receipt.error is not None:
        data["error"] = type(receipt.error).__name__
    return data


_OUTCOME_STYLE: Mapping[Outcome, str] = {
    Outcome.APPLIED: "bold green",
    Outcome.FAILED: "bold red",
}


def outcome_text(outcome: Outcome) -> Text:
    return Text(outcome.value, style=_OUTCOME_STYLE.get(outcome, "yellow"))


def receipt_table(receipt: Receipt) -> Table:
    """A small two-column table of one receipt."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    ids = ", ".join(f"{k}={v}" for k, v in receipt.vendor_ids.items()) or None
    rows: list[tuple[str, Text]] = [
        ("outcome", outcome_text(receipt.outcome)),
        ("connection", cell(receipt.connection)),
        ("adapter", cell(receipt.adapter)),
        ("id", cell(receipt.subject_id)),
        ("state", cell(receipt.state.value if receipt.state is not None else None)),
        ("vendor value", cell(receipt.vendor_value)),
        ("attempts", cell(receipt.attempts)),
        ("HTTP status", cell(receipt.http_status)),
        ("vendor ids", cell(ids)),
        ("trace id", cell(receipt.trace_id)),
    ]
    if receipt.detail:
        rows.append(("detail", cell(receipt.detail)))
    if receipt.dropped_fields:
        rows.append(("not carried", cell(", ".join(receipt.dropped_fields))))
    for name, value in rows:
        table.add_row(name, value)
    return table


# -- options shared by several commands ---------------------------------------------------

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="MSGBRIDGE_CONFIG",
        help="Config file (TOML). Default: ./msgbridge.toml. See `msgbridge config --format`.",
        dir_okay=False,
        show_default=False,
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Debug logging, and tracebacks on errors."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state",
        envvar="MSGBRIDGE_STATE",
        help="SQLite file remembering the state applied to each message, so no run "
        "regresses one. Default: $XDG_STATE_HOME/msgbridge/guard.sqlite3 "
        "(~/.local/state/msgbridge/guard.sqlite3).",
        dir_okay=False,
        show_default=False,
    ),
]
NoGuardOption = Annotated[
    bool,
    typer.Option(
        "--no-guard",
        help="Do not read or write the state file: only this run's own updates are "
        "checked for staleness (earlier runs may be regressed).",
    ),
]


# -- the persistent state guard ----------------------------------------------------------

STATE_ENV = "MSGBRIDGE_STATE"
GUARD_FILE = "guard.sqlite3"


def default_state_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the CLI remembers what it applied: ``$XDG_STATE_HOME/msgbridge/guard.sqlite3``.

    Falls back to ``~/.local/state/msgbridge/guard.sqlite3`` (the XDG default), and to
    ``%LOCALAPPDATA%\\msgbridge\\guard.sqlite3`` on Windows. Per user, not per
    directory, so every run of ``send``/``conversation``/``push`` by one user shares it.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME", "").strip()
    if base and Path(base).is_absolute():  # the spec says relative values are ignored
        return Path(base) / "msgbridge" / GUARD_FILE
    if sys.platform == "win32" and env.get("LOCALAPPDATA"):  # pragma: no cover - Windows
        return Path(env["LOCALAPPDATA"]) / "msgbridge" / GUARD_FILE
    return Path.home() / ".local" / "state" / "msgbridge" / GUARD_FILE


@contextmanager
def cli_guard(state: Path | None, no_guard: bool) -> Iterator[Guard | bool]:
    """The guard a command's bridge uses: persistent by default, so runs never regress.

    Separate CLI processes would each start with an empty in-memory guard, and a
    ``delivered`` sent by one run would be overwritten by a ``sent`` from the next. The
    outbox's :class:`~msgbridge.outbox.PersistentGuard` over a per-user SQLite file
    closes that hole. ``--no-guard`` keeps only the in-memory guard of this one run.
    """
    if no_guard:
        yield True
        return
    from msgbridge.outbox import PersistentGuard, SQLiteStore, StorageError

    path = (state or default_state_path()).expanduser()
    hint = f"pass --state PATH (or set {STATE_ENV}), or --no-guard to run without it"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(
            f"cannot create the state directory {str(path.parent)!r}: "
            f"{exc.strerror or exc}; {hint}",
            ExitCode.IO,
        ) from None
    try:
        store = SQLiteStore(path)
    except StorageError as exc:
        raise CliError(
            f"the guard's state file {str(path)!r} cannot be used: {exc.message}; {hint}",
            ExitCode.IO,
        ) from None
    try:
        yield PersistentGuard(store)
    finally:
        store.close()
