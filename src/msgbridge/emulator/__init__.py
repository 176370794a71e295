"""A local, strict, stateful emulator of the vendors msgbridge reports to.

``with Emulator() as emu:`` serves every vendor msgbridge ships, each under ``/<adapter
id>``, on a free loopback port; seed tokens and messages, inject faults, then inspect
state, history and recorded requests. Each vendor's emulation lives in its own module
(``msgbridge.emulator.<vendor>``); plugins add vendors by subclassing
:class:`EmulatedVendor`, and the built-in ones are declared the same way. Serving needs
the ``emulator`` extra (uvicorn); the ASGI app itself (``emu.app``) needs nothing beyond
the standard library.
"""

from collections.abc import Callable, Iterable
from typing import Any

from msgbridge.emulator.clock import Clock, ManualClock, OffsetClock, SystemClock
from msgbridge.emulator.config import (
    DEMO_CLIENT_SECRET,
    EmulatorConfig,
    TokenSeed,
    demo_client_id,
    demo_refresh_token,
    demo_token,
)
from msgbridge.emulator.emulator import Emulator, builtin_vendors
from msgbridge.emulator.faults import FaultInjector, FaultPlan, FaultRule
from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, Reject
from msgbridge.emulator.loop import DemoLoop, WebhookKind
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
    "DEMO_CLIENT_SECRET",
    "Clock",
    "ConversationChange",
    "ConversationState",
    "DemoLoop",
    "EmulatedVendor",
    "Emulator",
    "EmulatorConfig",
    "EmulatorRequest",
    "EmulatorResponse",
    "FaultInjector",
    "FaultPlan",
    "FaultRule",
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
    "WebhookKind",
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
