"""``msgbridge config``: check the config file, or print its documented format."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from msgbridge.cli import config as config_module
from msgbridge.cli._common import (
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
from msgbridge.cli.config import ConnectionConfig, load_config, shown_env_name
from msgbridge.errors import ConfigurationError
from msgbridge.registry import AdapterRegistry

__all__ = ["config_command"]


def _variables(connection: ConnectionConfig) -> list[str]:
    if connection.token_env is not None:
        return [connection.token_env]
    assert connection.oauth is not None
    oauth = connection.oauth
    names = [oauth.client_id_env, oauth.client_secret_env]
    return names + ([oauth.refresh_token_env] if oauth.refresh_token_env else [])


@handle_errors
def config_command(
    show_format: Annotated[
        bool, typer.Option("--format", help="Print the config file format and exit.")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Check the config file: every connection is built (adapter, settings, environment
    variables) and listed with its status. Secrets are never shown. Exit 3 if any
    connection is unusable.
    """
    configure_logging(verbose)
    if show_format:
        typer.echo((config_module.__doc__ or "").strip())
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
