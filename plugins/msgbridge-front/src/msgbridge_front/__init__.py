"""msgbridge-front: the Front adapter for msgbridge, as a pluggy plugin.

Installed, it is discovered through the ``msgbridge`` entry-point group (this module is
the plugin): ``Connection("front", adapter="front", credentials=BearerToken("…"))``.
Front accepts only ``failed``; every other state is skipped (``SKIPPED_UNSUPPORTED``).

The emulated Front vendor (:mod:`msgbridge_front.emulator`) is registered only when
msgbridge's emulator is importable, so the adapter works without the ``emulator`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from msgbridge.adapter import Adapter
from msgbridge.hookspecs import hookimpl
from msgbridge_front.adapter import (
    BASE_URL,
    DEFAULT_REASON_FIELD,
    FRONT_RATE_BUDGET,
    STATES,
    FrontAdapter,
    FrontSettings,
)

__all__ = [
    "BASE_URL",
    "DEFAULT_REASON_FIELD",
    "FRONT_RATE_BUDGET",
    "STATES",
    "FrontAdapter",
    "FrontSettings",
    "register_adapters",
    "register_emulated_vendors",
]

__version__ = "0.1.0"

_log = logging.getLogger("msgbridge.plugins.front")


@hookimpl
def register_adapters(register: Callable[[Adapter[Any]], None]) -> None:
    register(FrontAdapter())


@hookimpl
def register_emulated_vendors(register: Callable[[Any], None]) -> None:
    # The emulator is an optional extra of msgbridge: without it there is nothing to
    # register, and the adapter must still load (a failing hook fails the whole plugin).
    try:
        from msgbridge_front.emulator import FrontVendor
    except ImportError as exc:
        _log.debug("msgbridge-front: emulator not available (%s); vendor not registered", exc)
        return
    register(FrontVendor())
