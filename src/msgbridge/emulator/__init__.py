"""A local, strict, stateful emulator of the vendors msgbridge reports to.

``with Emulator() as emu:`` serves HighLevel (``/highlevel``), Leadway (``/leadway``),
Hoop (``/hoop``) and HubSpot (``/hubspot``) on a free loopback port; seed tokens and
messages, inject faults, then inspect state, history and recorded requests. Plugins add
vendors by subclassing :class:`EmulatedVendor`. Serving needs the ``emulator`` extra
(uvicorn); the ASGI app itself (``emu.app``) needs nothing beyond the standard library.
"""

from collections.abc import Callable, Iterable
from typing import Any

from msgbridge.emulator.clock import Clock, ManualClock, OffsetClock, SystemClock
from msgbridge.emulator.config import (
    DEMO_ACCOUNTS,
    DEMO_CLIENT_SECRET,
    DEMO_HUBSPOT_CHANNEL_ID,
    EmulatorConfig,
    TokenSeed,
    demo_client_id,
    demo_refresh_token,
    demo_token,
)
from msgbridge.emulator.emulator import Emulator, builtin_vendors
from msgbridge.emulator.faults import FaultInjector, FaultPlan, FaultRule
from msgbridge.emulator.highlevel import HIGHLEVEL, HOOP, LEADWAY, HighLevelFamily, HighLevelVariant
from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, Reject
from msgbridge.emulator.hubspot import HubSpot
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.emulator.recording import RecordedRequest
from msgbridge.emulator.routing import Route
from msgbridge.emulator.state import (
    ConversationChange,
    ConversationState,
    MessageState,
    StatusChange,
)
from msgbridge.emulator.vendor import EmulatedVendor, UnknownMode, VendorSettings

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_CLIENT_SECRET",
    "DEMO_HUBSPOT_CHANNEL_ID",
    "HIGHLEVEL",
    "HOOP",
    "LEADWAY",
    "Clock",
    "ConversationChange",
    "ConversationState",
    "EmulatedVendor",
    "Emulator",
    "EmulatorConfig",
    "EmulatorRequest",
    "EmulatorResponse",
    "FaultInjector",
    "FaultPlan",
    "FaultRule",
    "HighLevelFamily",
    "HighLevelVariant",
    "HubSpot",
    "ManualClock",
    "MessageState",
    "OffsetClock",
    "RateLimit",
    "RecordedRequest",
    "Reject",
    "Route",
    "StatusChange",
    "SystemClock",
    "TokenSeed",
    "UnknownMode",
    "VendorSettings",
    "builtin_vendors",
    "demo_client_id",
    "demo_refresh_token",
    "demo_token",
    "serve",
]


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    config: EmulatorConfig | None = None,
    *,
    vendors: Iterable[EmulatedVendor] = (),
    clock: Clock | None = None,
    announce: Callable[[str], Any] | None = print,
    access_log: bool = False,
) -> None:
    """Serve until Ctrl-C (blocking, for ``msgbridge emulate``).

    See :func:`msgbridge.emulator.server.serve`; imported lazily so that importing this
    package does not import uvicorn.
    """
    from msgbridge.emulator.server import serve as _serve

    _serve(
        host,
        port,
        config,
        vendors=vendors,
        clock=clock,
        announce=announce,
        access_log=access_log,
    )
