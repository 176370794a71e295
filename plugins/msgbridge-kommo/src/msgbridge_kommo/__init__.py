"""msgbridge-kommo: the Kommo (amoCRM) Chats API adapter for msgbridge, as a pluggy plugin.

Installed, it is discovered through the ``msgbridge`` entry-point group (this module is
the plugin): ``Connection("kommo", adapter="kommo", credentials=KommoSignature("…"),
settings={"scope_id": "<channel id>_<account id>"})``. Every request is signed with the
channel secret (:class:`KommoSignature`); from configuration, ``token_env`` names the
variable holding that secret.

The emulated Kommo vendor (:mod:`msgbridge_kommo.emulator`) is registered only when
msgbridge's emulator is importable, so the adapter works without the ``emulator`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from msgbridge.adapter import Adapter
from msgbridge.hookspecs import hookimpl
from msgbridge_kommo.adapter import (
    BASE_URL,
    ERROR_CODES,
    KOMMO_RATE_BUDGET,
    STATES,
    KommoAdapter,
    KommoSettings,
)
from msgbridge_kommo.auth import KommoSignature

__all__ = [
    "BASE_URL",
    "ERROR_CODES",
    "KOMMO_RATE_BUDGET",
    "STATES",
    "KommoAdapter",
    "KommoSettings",
    "KommoSignature",
    "register_adapters",
    "register_emulated_vendors",
]

__version__ = "0.1.0"

_log = logging.getLogger("msgbridge.plugins.kommo")


@hookimpl
def register_adapters(register: Callable[[Adapter[Any]], None]) -> None:
    register(KommoAdapter())


@hookimpl
def register_emulated_vendors(register: Callable[[Any], None]) -> None:
    # The emulator is an optional extra of msgbridge: without it there is nothing to
    # register, and the adapter still loads.
    try:
        from msgbridge_kommo.emulator import KommoVendor
    except ImportError as exc:
        _log.debug("msgbridge-kommo: emulator not available (%s); vendor not registered", exc)
        return
    register(KommoVendor())
