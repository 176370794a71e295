"""The plugin contract (pluggy). Hooks register and observe; they never send.

pluggy hooks are synchronous: an ``async def`` hookimpl would return an un-awaited
coroutine, and a hookimpl parameter with a default is never passed. Keep hookimpls
plain functions taking exactly the documented argument names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from msgbridge.adapter import Adapter
    from msgbridge.events import DeliveryAttempt

__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name and the entry-point group plugins declare.
PROJECT = "msgbridge"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate your plugin's hook functions with this.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_adapters(register: Callable[[Adapter[Any]], None]) -> None:
    """Call ``register(adapter)`` for every adapter (and variant) this plugin offers."""


@hookspec
def register_emulated_vendors(register: Callable[[Any], None]) -> None:
    """Call ``register(vendor)`` with emulator vendor objects (``msgbridge.emulator``)."""


@hookspec
def delivery_attempted(event: DeliveryAttempt) -> None:
    """Observe one HTTP attempt. Runs inline: no I/O, and an exception is only logged."""
