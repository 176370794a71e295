"""Emulator-wide options, from Python or from simple CLI flags.

Everything here is the *baseline*: ``emu.reset()`` returns to it (tokens from ``tokens``
and the demo set stay registered; runtime seeds, faults and history go).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from msgbridge.emulator.vendor import UnknownMode

__all__ = [
    "DEMO_CLIENT_SECRET",
    "EmulatorConfig",
    "TokenSeed",
    "demo_client_id",
    "demo_refresh_token",
    "demo_token",
]

DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - a published demo value


def demo_token(vendor: str) -> str:
    """The demo access token of *vendor*: ``demo-<vendor>-token`` (never expires)."""
    return f"demo-{vendor}-token"


def demo_client_id(vendor: str) -> str:
    return f"demo-{vendor}-client"


def demo_refresh_token(vendor: str) -> str:
    return f"demo-{vendor}-refresh"


@dataclass(frozen=True)
class TokenSeed:
    """A token the emulator accepts from the start: ``TokenSeed.parse("acme:tok:123")``.

    Without an account the token belongs to the account the vendor declares for its demo
    token (``EmulatedVendor.demo_token_account``), resolved when the emulator mounts it.
    """

    vendor: str
    token: str
    account: str | None = None
    expires_in: float | None = None

    @classmethod
    def parse(cls, spec: str) -> TokenSeed:
        """``VENDOR:TOKEN[:ACCOUNT]``; the account defaults to the vendor's demo account."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(
                f"token spec {spec!r} must look like VENDOR:TOKEN or VENDOR:TOKEN:ACCOUNT"
            )
        vendor, token = parts[0], parts[1]
        return cls(vendor, token, parts[2] if len(parts) == 3 else None)


@dataclass(frozen=True)
class EmulatorConfig:
    """Options for an :class:`~msgbridge.emulator.Emulator` (all optional)."""

    #: ``"reject"`` (strict: unknown ids get the vendor's 404) or ``"create"``.
    unknown_messages: UnknownMode = "reject"
    #: ``False`` turns every rate limit off (throughput benchmarks).
    rate_limits: bool = True
    #: Send ``Retry-After`` on 429 (neither vendor documents one).
    retry_after: bool = False
    #: Answer this fraction of all vendor requests with one of ``fault_statuses``.
    fault_rate: float = 0.0
    fault_statuses: tuple[int, ...] = (500, 502, 503, 504)
    #: Seed of the fault RNG (``None``: not reproducible).
    seed: int | None = 0
    #: Provider race (vendors that declare ``has_provider_race``), seconds after a
    #: message's creation.
    provider_race: float = 0.0
    #: Requests kept for inspection (ring buffer); ``0`` disables recording, ``None`` unbounded.
    record_limit: int | None = 10_000
    #: History entries kept per message/conversation (``None`` = all; ``0`` = only the
    #: current status, the leanest setting for million-message benchmarks).
    history_limit: int | None = None
    #: Register ``demo-<vendor>-token`` (and a demo OAuth client) for every mounted vendor,
    #: plugin vendors included, in the account each vendor declares.
    demo: bool = False
    tokens: tuple[TokenSeed, ...] = ()
    #: Serve the ``/_emulator`` control endpoint.
    control_endpoint: bool = True
    #: Per-vendor :class:`~msgbridge.emulator.vendor.VendorSettings` overrides,
    #: e.g. ``{"acme": {"rotate_refresh_tokens": False}}``.
    vendor_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.unknown_messages not in ("reject", "create"):
            raise ValueError("unknown_messages must be 'reject' or 'create'")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be within 0..1")
        if self.provider_race < 0:
            raise ValueError("provider_race must be >= 0")

    @classmethod
    def from_options(
        cls,
        *,
        unknown: str = "reject",
        rate_limits: bool = True,
        fault_rate: float = 0.0,
        seed: int | None = 0,
        provider_race: float = 0.0,
        tokens: Iterable[str] = (),
        demo: bool = True,
        record_limit: int | None = 10_000,
        retry_after: bool = False,
    ) -> EmulatorConfig:
        """Build a config from CLI-style values; ``tokens`` are ``VENDOR:TOKEN[:ACCOUNT]``."""
        if unknown not in ("reject", "create"):
            raise ValueError(f"unknown must be 'reject' or 'create', got {unknown!r}")
        return cls(
            unknown_messages="create" if unknown == "create" else "reject",
            rate_limits=rate_limits,
            fault_rate=fault_rate,
            seed=seed,
            provider_race=provider_race,
            tokens=tuple(TokenSeed.parse(spec) for spec in tokens),
            demo=demo,
            record_limit=record_limit,
            retry_after=retry_after,
        )
