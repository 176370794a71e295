"""``msgbridge emulate``: run the vendor emulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from msgbridge.cli._common import (
    CliError,
    ExitCode,
    VerboseOption,
    configure_logging,
    handle_errors,
)
from msgbridge.registry import AdapterRegistry

if TYPE_CHECKING:
    from msgbridge.emulator import EmulatedVendor

__all__ = ["emulate", "emulator_config_toml", "plugin_vendors", "require_emulator"]

EXTRA_HINT = "the emulator needs the 'emulator' extra: pip install 'msgbridge[emulator]'"


def require_emulator() -> None:
    """Fail with one clear line when the emulator's server dependency is missing."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise CliError(EXTRA_HINT, ExitCode.CONFIG) from None


def _env_name(vendor: str) -> str:
    return f"EMULATOR_{vendor.upper().replace('-', '_')}_TOKEN"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string is a JSON string


def emulator_config_toml(
    base: str,
    tokens: Mapping[str, tuple[str, str]],
    vendors: Mapping[str, EmulatedVendor],
) -> str:
    """A ``msgbridge.toml`` for an emulator at *base*: one connection per vendor in *tokens*.

    *tokens* maps a vendor to the (token, account) it accepts; each connection's settings
    are what the vendor declares (``EmulatedVendor.demo_connection``), and the adapter
    builds its own credential from ``token_env`` (a bearer token, a header of its own or a
    signing secret). Tokens go in environment variables, as in any config (the
    ``export`` lines are in the file's comments).
    """
    names = [name for name in vendors if name in tokens]
    lines = [
        f"# msgbridge.toml for the emulator on {base}",
        "# Save it (or use `msgbridge emulate --write-config PATH`), then set the tokens:",
    ]
    lines += [f"#   export {_env_name(v)}={tokens[v][0]}" for v in names]
    if names:
        lines.append(f"# and try: msgbridge send --config PATH {names[0]} msg-1 delivered")
    lines += [
        "# msgbridge paces its requests at each vendor's budget itself, so the emulator's",
        "# rate limits never need to say 429.",
        "",
        "[retry]",
        "max_attempts = 3",
        "initial_backoff = 0.2",
    ]
    for name in names:
        token, account = tokens[name]
        settings, _ = vendors[name].demo_connection(f"{base}{vendors[name].prefix}", account, token)
        lines += [
            "",
            f"[connections.{name}]",
            f'adapter = "{name}"',
            f'token_env = "{_env_name(name)}"',
            f"[connections.{name}.settings]",
        ]
        lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def _sigterm_stops(stopped: list[str]) -> Iterator[None]:
    """SIGTERM is a normal stop (the server shuts down and the command exits 0).

    uvicorn handles SIGTERM while serving, then re-raises it with the handler it found
    before: this one, which only notes it, where the default would kill the process.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: FrameType | None) -> None:
        stopped.append(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def plugin_vendors(registry: AdapterRegistry) -> list[EmulatedVendor]:
    """Emulated vendors the installed plugins offer (msgbridge's own included, declared
    through the same hook), fresh instances."""
    from msgbridge.emulator import EmulatedVendor

    return [v for v in registry.emulated_vendors if isinstance(v, EmulatedVendor)]


@handle_errors
def emulate(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 = a free one).")] = 8787,
    host: Annotated[
        str, typer.Option(help="Interface to listen on (keep it loopback).")
    ] = "127.0.0.1",
    token: Annotated[
        list[str] | None,
        typer.Option(
            "--token",
            metavar="VENDOR:TOKEN[:ACCOUNT]",
            help="Accept this bearer token (repeatable); the account defaults to the "
            "vendor's demo account.",
        ),
    ] = None,
    demo_tokens: Annotated[
        bool,
        typer.Option(
            "--demo-tokens/--no-demo-tokens",
            help="Accept demo-<vendor>-token and a demo OAuth client for every vendor.",
        ),
    ] = True,
    unknown: Annotated[
        str,
        typer.Option(
            help="Unknown message ids: 'reject' (the vendor's 404) or 'create' them.",
        ),
    ] = "create",
    rate_limits: Annotated[
        bool, typer.Option("--rate-limits/--no-rate-limits", help="Enforce vendor budgets.")
    ] = True,
    retry_after: Annotated[
        bool, typer.Option(help="Send Retry-After on 429 (the vendors do not).")
    ] = False,
    fault_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Fraction of requests answered with a 5xx.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault generator.")] = 0,
    provider_race: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds after a message is created during which vendors with a provider "
            "race refuse its updates.",
        ),
    ] = 0.0,
    record_limit: Annotated[
        int, typer.Option(min=0, help="Requests kept for inspection (0: none).")
    ] = 10_000,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    write_config: Annotated[
        Path | None,
        typer.Option(
            "--write-config",
            metavar="PATH",
            help="Also write the matching msgbridge.toml to PATH (overwritten).",
            dir_okay=False,
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Run the vendor emulator in the foreground (Ctrl-C or SIGTERM stops it, exit 0).

    Serves every installed vendor (msgbridge's own and any a plugin contributes), each
    under its own prefix (http://HOST:PORT/<adapter id>), plus the control endpoint
    /_emulator (state, seeding, faults). Prints the base URLs, the accepted tokens with
    how each vendor expects them (bearer, its own header, a request signature) and a
    msgbridge.toml with one connection per vendor (--write-config saves it).
    """
    configure_logging(verbose)
    require_emulator()
    from msgbridge.emulator import EmulatorConfig, builtin_vendors
    from msgbridge.emulator.config import demo_token
    from msgbridge.emulator.server import serve

    if host not in {"127.0.0.1", "localhost", "::1"}:
        typer.echo(
            f"msgbridge: warning: listening on {host}: the emulator accepts demo tokens "
            "and has no authentication on /_emulator",
            err=True,
        )
    try:
        config = EmulatorConfig.from_options(
            unknown=unknown,
            rate_limits=rate_limits,
            fault_rate=fault_rate,
            seed=seed,
            provider_race=provider_race,
            tokens=token or (),
            demo=demo_tokens,
            record_limit=record_limit,
            retry_after=retry_after,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    vendors = plugin_vendors(AdapterRegistry.from_entry_points())
    # What each mounted vendor declares (demo account, connection settings); only read.
    declared = {v.name: v for v in [*builtin_vendors(), *vendors]}
    for given in config.tokens:
        if given.vendor not in declared:
            raise CliError(
                f"--token {given.vendor}:...: no emulated vendor {given.vendor!r} "
                f"(installed: {', '.join(declared)})"
            )
    if port == 0:  # the config names the port, so pick it now
        port = _free_port(host)
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{port}"
    tokens: dict[str, tuple[str, str]] = {}
    if config.demo:
        for name, vendor in declared.items():
            tokens[name] = (demo_token(name), vendor.demo_token_account())
    for given in config.tokens:
        account = given.account or declared[given.vendor].demo_token_account()
        tokens.setdefault(given.vendor, (given.token, account))
    toml = emulator_config_toml(base, tokens, declared)
    if write_config is not None:
        write_config.write_text(toml, encoding="utf-8")
    printed: list[bool] = []

    def announce(line: Any) -> None:
        typer.echo(str(line))
        if not printed and str(line).startswith("unknown message ids:"):
            printed.append(True)
            typer.echo("")
            typer.echo(toml, nl=False)
            if write_config is not None:
                typer.echo(f"# (written to {write_config})")
            typer.echo("")
            typer.echo("Ctrl-C or SIGTERM stops the emulator.")

    stopped: list[str] = []
    try:
        with _sigterm_stops(stopped):
            serve(host, port, config, vendors=vendors, announce=announce, access_log=access_log)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        stopped.append("SIGINT")
    except (ValueError, KeyError) as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"emulator stopped ({stopped[0] if stopped else 'SIGINT'})", err=True)
