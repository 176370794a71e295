"""The plugin contract (pluggy). Hooks register and observe; they never send.

pluggy hooks are synchronous: an ``async def`` hookimpl would return an un-awaited
coroutine, and a hookimpl parameter with a default is never passed. Keep hookimpls
plain functions taking exactly the documented argument names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


@hookspec
def delivery_headers(
    connection: str, adapter: str, operation: str, subject_id: str, attempt: int
) -> Mapping[str, str] | None:
    """Headers to add to one HTTP attempt (e.g. W3C ``traceparent``), or ``None``.

    Called right before each attempt, before the credential signs the request. Runs
    inline: no I/O; a value that cannot be a header, or an exception, is logged and
    dropped, never fails a send.
    """
