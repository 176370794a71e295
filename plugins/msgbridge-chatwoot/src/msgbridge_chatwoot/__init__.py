"""msgbridge-chatwoot: the Chatwoot adapter for msgbridge, as a pluggy plugin.

Installed, it is discovered through the ``msgbridge`` entry-point group (this module is
the plugin): ``Connection("cw", adapter="chatwoot", credentials=ChatwootToken("…"),
settings={"base_url": "https://chat.example.com", "account_id": 1})``.

The emulated Chatwoot vendor (:mod:`msgbridge_chatwoot.emulator`) is registered only when
msgbridge's emulator is importable, so the adapter works without the ``emulator`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from msgbridge.adapter import Adapter
from msgbridge.hookspecs import hookimpl
from msgbridge_chatwoot.adapter import (
    CHATWOOT_RATE_BUDGET,
    NOT_AN_API_INBOX,
    STATES,
    ChatwootAdapter,
    ChatwootSettings,
)
from msgbridge_chatwoot.auth import ChatwootToken

__all__ = [
    "CHATWOOT_RATE_BUDGET",
    "NOT_AN_API_INBOX",
    "STATES",
    "ChatwootAdapter",
    "ChatwootSettings",
    "ChatwootToken",
    "register_adapters",
    "register_emulated_vendors",
]

__version__ = "0.1.0"

_log = logging.getLogger("msgbridge.plugins.chatwoot")


@hookimpl
def register_adapters(register: Callable[[Adapter[Any]], None]) -> None:
    register(ChatwootAdapter())


@hookimpl
def register_emulated_vendors(register: Callable[[Any], None]) -> None:
    # The emulator is an optional extra of msgbridge: without it there is nothing to
    # register, and the adapter must still load (a failing hook fails the whole plugin).
    try:
        from msgbridge_chatwoot.emulator import ChatwootVendor
    except ImportError as exc:
        _log.debug("msgbridge-chatwoot: emulator not available (%s); vendor not registered", exc)
        return
    register(ChatwootVendor())
