"""``msgbridge adapters``: what is installed, where it came from, and how it maps states."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from msgbridge.adapter import Fidelity
from msgbridge.cli._common import cell, handle_errors, out_console, print_json
from msgbridge.model import DeliveryState
from msgbridge.registry import AdapterRegistry, PluginSource, RegisteredAdapter

__all__ = ["adapters", "registry_json"]


def _source_json(source: PluginSource) -> dict[str, Any]:
    return {
        "plugin": source.name,
        "entry_point": source.value or None,
        "distribution": source.distribution,
        "version": source.version,
    }


def _source_text(source: PluginSource) -> str:
    dist = (
        f"{source.distribution} {source.version or ''}".strip()
        if source.distribution
        else "no distribution"
    )
    return f"{dist} (plugin {source.name})"


def _adapter_json(entry: RegisteredAdapter) -> dict[str, Any]:
    adapter = entry.adapter
    budget = adapter.defaults.rate_budget
    return {
        "id": adapter.id,
        "variant_of": adapter.variant_of,
        "description": adapter.description or None,
        "source": _source_json(entry.source),
        "operations": sorted(op.value for op in adapter.capabilities.operations),
        "defaults": {
            "base_url": adapter.defaults.base_url,
            "version": adapter.defaults.version,
            "rate_budget": {
                "requests": budget.requests,
                "per_seconds": budget.per_seconds,
                "daily": budget.daily,
            },
        },
        "states": [
            {
                "state": state.value,
                "vendor_value": adapter.capabilities.mapping(state).vendor_value,
                "fidelity": adapter.capabilities.mapping(state).fidelity.value,
            }
            for state in DeliveryState
        ],
    }


def registry_json(registry: AdapterRegistry) -> dict[str, Any]:
    """Everything ``msgbridge adapters --json`` prints."""
    return {
        "adapters": [_adapter_json(entry) for entry in registry],
        "failures": [
            {**_source_json(failure.source), "reason": failure.reason, "message": failure.message}
            for failure in registry.failures
        ],
        "skipped": [_source_json(source) for source in registry.skipped],
        "conflicts": [
            {"adapter": adapter_id, "claimed_by": [_source_json(s) for s in sources]}
            for adapter_id, sources in sorted(registry.conflicts.items())
        ],
    }


_FIDELITY_STYLE = {Fidelity.EXACT: "green", Fidelity.COARSE: "yellow", Fidelity.NONE: "red"}


def _mapping_table(entry: RegisteredAdapter) -> Table:
    adapter = entry.adapter
    title = Text(adapter.id, style="bold")
    if adapter.variant_of:
        title.append(f" (variant of {adapter.variant_of})", style="")
    table = Table(
        title=title,
        title_justify="left",
        caption=adapter.description or None,
        caption_justify="left",
    )
    table.add_column("neutral state")
    table.add_column("vendor value")
    table.add_column("fidelity")
    for state in DeliveryState:
        mapping = adapter.capabilities.mapping(state)
        table.add_row(
            cell(state.value),
            cell(mapping.vendor_value),
            Text(mapping.fidelity.value, style=_FIDELITY_STYLE[mapping.fidelity]),
        )
    return table


def _print_human(registry: AdapterRegistry) -> None:
    console = out_console()
    overview = Table(title="Installed adapters", title_justify="left")
    overview.add_column("adapter", style="bold")
    overview.add_column("variant of")
    overview.add_column("from", overflow="fold")
    overview.add_column("operations", no_wrap=True)
    for entry in registry:
        adapter = entry.adapter
        overview.add_row(
            cell(adapter.id),
            cell(adapter.variant_of),
            cell(_source_text(entry.source)),
            cell("\n".join(sorted(op.value for op in adapter.capabilities.operations))),
        )
    if len(registry):
        console.print(overview)
    else:
        console.print("No adapters are installed.")
    for entry in registry:
        console.print()
        console.print(_mapping_table(entry))
    if registry.failures:
        console.print()
        failures = Table(title="Plugins that failed to load", title_justify="left")
        failures.add_column("plugin", style="bold red")
        failures.add_column("from", overflow="fold")
        failures.add_column("reason", overflow="fold")
        for failure in registry.failures:
            failures.add_row(
                cell(failure.source.name),
                cell(_source_text(failure.source)),
                cell(failure.reason),
            )
        console.print(failures)
    if registry.skipped:
        console.print()
        skipped = Table(
            title="Plugins skipped (MSGBRIDGE_PLUGINS_BLOCK / MSGBRIDGE_PLUGINS_ALLOW)",
            title_justify="left",
        )
        skipped.add_column("plugin", style="bold")
        skipped.add_column("from", overflow="fold")
        for source in registry.skipped:
            skipped.add_row(cell(source.name), cell(_source_text(source)))
        console.print(skipped)
    if registry.conflicts:
        console.print()
        conflicts = Table(
            title="Adapter ids claimed more than once (unusable until one is blocked)",
            title_justify="left",
        )
        conflicts.add_column("adapter", style="bold red")
        conflicts.add_column("claimed by", overflow="fold")
        for adapter_id, sources in sorted(registry.conflicts.items()):
            conflicts.add_row(cell(adapter_id), cell("; ".join(_source_text(s) for s in sources)))
        console.print(conflicts)


@handle_errors
def adapters(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List installed adapters, their variants, origin, operations and state mappings.

    Also lists plugins that failed to load (with the reason), plugins skipped by
    MSGBRIDGE_PLUGINS_BLOCK / MSGBRIDGE_PLUGINS_ALLOW, and adapter ids claimed by more
    than one plugin. Fidelity: exact (the vendor has this state), coarse (a truthful but
    less precise vendor value), none (the vendor cannot express it; the update is skipped,
    or refused on a strict connection).
    """
    registry = AdapterRegistry.from_entry_points()
    if as_json:
        print_json(registry_json(registry))
    else:
        _print_human(registry)
