"""``msgbridge config``: check the config file, print its format, or write a starter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

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
from msgbridge.config import DEFAULT_CONFIG, ConnectionConfig, load_config, shown_env_name
from msgbridge.config_examples import REFERENCE_TOML, STARTER_TOKEN_ENV, STARTER_TOML
from msgbridge.errors import ConfigurationError
from msgbridge.registry import AdapterRegistry

__all__ = ["REFERENCE_TOML", "STARTER_TOML", "config_app", "config_command", "config_init"]


def _variables(connection: ConnectionConfig) -> list[str]:
    if connection.token_env is not None:
        return [connection.token_env]
    assert connection.oauth is not None
    oauth = connection.oauth
    names = [oauth.client_id_env, oauth.client_secret_env]
    return names + ([oauth.refresh_token_env] if oauth.refresh_token_env else [])


config_app = typer.Typer(
    help="Check the config file, print its format, or write a starter file.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
)


@config_app.callback(invoke_without_command=True)
@handle_errors
def config_command(
    ctx: typer.Context,
    show_format: Annotated[
        bool,
        typer.Option(
            "--format", help="Print the config file format (a commented TOML file) and exit."
        ),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Check the config file: every connection is built (adapter, settings, environment
    variables) and listed with its status. Secrets are never shown. Exit 3 if any
    connection is unusable. `msgbridge config init` writes a starter file.
    """
    configure_logging(verbose)
    if ctx.invoked_subcommand is not None:
        return
    if show_format:
        typer.echo(REFERENCE_TOML, nl=False)
        return
    cfg = load_config(config)
    registry = AdapterRegistry.from_entry_points()
    rows: list[dict[str, Any]] = []
    for name, connection in sorted(cfg.connections.items()):
        try:
            connection.build(registry)
            problem = None
        except ConfigurationError as exc:
            problem = exc.message
        rows.append(
            {
                "connection": name,
                "adapter": connection.adapter,
                "auth": "token" if connection.token_env is not None else "oauth",
                "environment": {
                    shown_env_name(var): var in os.environ for var in _variables(connection)
                },
                "settings": sorted(connection.settings),
                "ok": problem is None,
                "problem": problem,
            }
        )
    if as_json:
        print_json({"path": str(cfg.path), "connections": rows})
    else:
        table = Table(title=f"connections in {cfg.path}", title_justify="left")
        for column in ("connection", "adapter", "auth", "environment variables", "status"):
            table.add_column(column, overflow="fold")
        for row in rows:
            env = ", ".join(
                f"{var} ({'set' if present else 'missing'})"
                for var, present in row["environment"].items()
            )
            table.add_row(
                cell(row["connection"]),
                cell(row["adapter"]),
                cell(row["auth"]),
                cell(env),
                cell("ok" if row["ok"] else row["problem"]),
            )
        out_console().print(table)
    if any(not row["ok"] for row in rows):
        raise typer.Exit(int(ExitCode.CONFIG))


@config_app.command("init")
@handle_errors
def config_init(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="[PATH]", help="Where to write it.", dir_okay=False, show_default=False
        ),
    ] = Path(DEFAULT_CONFIG),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Write a commented starter config file (default ./msgbridge.toml), then say what next."""
    configure_logging(verbose)
    try:
        with path.open("w" if force else "x", encoding="utf-8", newline="\n") as handle:
            handle.write(STARTER_TOML)
    except FileExistsError:
        raise CliError(
            f"{path} already exists; pass --force to overwrite it", ExitCode.USAGE
        ) from None
    console = out_console()
    console.print(f"wrote {path}", markup=False)
    console.print(
        f"next: replace the REPLACE-WITH placeholders in it, export {STARTER_TOKEN_ENV}, then run "
        f"`msgbridge config --config {path}` to check it",
        markup=False,
    )
