"""``msgbridge emulate``: run the vendor emulator in the foreground until Ctrl-C."""

from __future__ import annotations

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

__all__ = ["emulate", "plugin_vendors", "require_emulator"]

EXTRA_HINT = "the emulator needs the 'emulator' extra: pip install 'msgbridge[emulator]'"


def require_emulator() -> None:
    """Fail with one clear line when the emulator's server dependency is missing."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise CliError(EXTRA_HINT, ExitCode.CONFIG) from None


def plugin_vendors(registry: AdapterRegistry) -> list[EmulatedVendor]:
    """Emulated vendors contributed by plugins (built-ins are the emulator's own)."""
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
            help="HighLevel 'No conversation provider' window after a message is created (s).",
        ),
    ] = 0.0,
    record_limit: Annotated[
        int, typer.Option(min=0, help="Requests kept for inspection (0: none).")
    ] = 10_000,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Run the vendor emulator in the foreground (Ctrl-C stops it).

    Serves every built-in vendor (HighLevel, Leadway, Hoop, HubSpot) and any vendor a
    plugin contributes, each under its own prefix (http://HOST:PORT/highlevel, ...), plus
    the control endpoint /_emulator (state, seeding, faults). Prints the base URLs and the
    accepted tokens. Point a connection at it with settings.base_url.
    """
    configure_logging(verbose)
    require_emulator()
    from msgbridge.emulator import EmulatorConfig
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

    def announce(line: Any) -> None:
        typer.echo(str(line))

    try:
        serve(host, port, config, vendors=vendors, announce=announce, access_log=access_log)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        typer.echo("emulator stopped", err=True)
    except (ValueError, KeyError) as exc:
        raise CliError(str(exc)) from None
