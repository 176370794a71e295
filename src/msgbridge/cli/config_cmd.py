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
from msgbridge.errors import ConfigurationError
from msgbridge.registry import AdapterRegistry

__all__ = ["REFERENCE_TOML", "STARTER_TOML", "config_app", "config_command", "config_init"]

#: ``msgbridge config --format``: the whole format, as a TOML file that loads as is.
REFERENCE_TOML = """\
# msgbridge.toml: the named connections msgbridge sends through.
#
# Where msgbridge looks: --config PATH, else $MSGBRIDGE_CONFIG, else ./msgbridge.toml.
# Programs read the same file with msgbridge.config.load_config(path).
#
# Rules:
# * Secrets are only ever referenced, by the NAME of an environment variable
#   (token_env, oauth.*_env). A key that looks like an inline secret (token,
#   access_token, refresh_token, client_secret, api_key, password, or anything ending
#   in _token, _secret, _password, _api_key), anywhere in the file, settings
#   included, rejects the whole file; its value is never printed.
# * Every connection has exactly one of token_env or an [connections.NAME.oauth] table.
# * Unknown keys are errors naming them; settings are checked by the adapter itself.
# * Environment variables are read when a connection is first used, so a command that
#   uses one connection does not need the others' variables.

# Optional: how failed requests are retried (msgbridge.RetryPolicy fields:
# max_attempts, initial_backoff, max_backoff, multiplier, jitter, deadline,
# max_retry_after).
[retry]
max_attempts = 5
initial_backoff = 0.5
deadline = 60.0

# One connection; "acme" is the name used on the command line and in push files.
[connections.acme]
adapter = "highlevel"          # an installed adapter: see `msgbridge adapters`
token_env = "ACME_HL_TOKEN"    # a static token (sent as Authorization: Bearer)
strict = false                 # optional: states the vendor cannot express are errors
# Optional: the client-side pacing budget (default: the vendor's published one,
# HighLevel 100 requests per 10 s per location). msgbridge waits before sending
# instead of collecting 429s; raise it only if the vendor gave you more.
rate_limit = { requests = 100, per_seconds = 10.0 }

[connections.acme.settings]    # the adapter's own settings (never secrets)
location_id = "loc-1"
# base_url = "http://127.0.0.1:8787/highlevel"   # e.g. the emulator

# OAuth refresh-token flow (HighLevel family and HubSpot) instead of token_env.
[connections.hs]
adapter = "hubspot"

[connections.hs.oauth]
client_id_env = "HS_CLIENT_ID"
client_secret_env = "HS_CLIENT_SECRET"
refresh_token_env = "HS_REFRESH"   # bootstraps the token store below
# token_url = "https://..."        # optional: the vendor's default otherwise
# Refresh tokens may be single-use (HighLevel rotates them on every refresh): rotated
# tokens are saved in this JSON file (relative to this file, mode 0600) before use.
# Once it holds tokens it wins over refresh_token_env; delete it after re-authorising.
# Without a store a rotated token is lost when the command exits (a warning says so).
token_store = "tokens/hs.json"

[connections.hs.settings]
channel_id = 123
"""

#: ``msgbridge config init``: a small commented file to start from.
STARTER_TOML = """\
# msgbridge.toml, written by `msgbridge config init`.
#
# Check it with `msgbridge config`; the whole format is in `msgbridge config --format`.
# Secrets never go in this file: name the environment variable that holds them.
# To try msgbridge with no account at all, run `msgbridge emulate`: it prints a file
# like this one that points at the local emulator.

[connections.main]                      # "main": the name you give on the command line
adapter = "highlevel"                   # see `msgbridge adapters` for the installed ones
token_env = "MSGBRIDGE_HIGHLEVEL_TOKEN" # export MSGBRIDGE_HIGHLEVEL_TOKEN=... first

[connections.main.settings]
location_id = "REPLACE-WITH-YOUR-LOCATION-ID"

# A HubSpot custom channel, with OAuth (uncomment to use):
# [connections.hubspot]
# adapter = "hubspot"
# [connections.hubspot.oauth]
# client_id_env = "HUBSPOT_CLIENT_ID"
# client_secret_env = "HUBSPOT_CLIENT_SECRET"
# refresh_token_env = "HUBSPOT_REFRESH_TOKEN"
# token_store = "tokens/hubspot.json"
# [connections.hubspot.settings]
# channel_id = 123

# Optional retry policy (defaults shown):
# [retry]
# max_attempts = 5
# initial_backoff = 0.5
# deadline = 60.0
"""


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
        "next: put your location id in it, export MSGBRIDGE_HIGHLEVEL_TOKEN, then run "
        f"`msgbridge config --config {path}` to check it",
        markup=False,
    )
