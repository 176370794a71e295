"""The :class:`Emulator`: vendors + state + faults + recording, and its Python API.

One object serves every vendor under its own prefix. Use it as a context manager to run
it on a free loopback port in a background thread, or mount :attr:`Emulator.app` (a plain
ASGI callable) in anything that speaks ASGI, e.g. ``httpx.ASGITransport``.
Every method is thread-safe: tests call them from their own thread while the server's
event loop runs in another.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from msgbridge.emulator.app import EmulatorApp
from msgbridge.emulator.clock import Clock, SystemClock
from msgbridge.emulator.config import (
    DEMO_CLIENT_SECRET,
    EmulatorConfig,
    TokenSeed,
    demo_client_id,
    demo_refresh_token,
    demo_token,
)
from msgbridge.emulator.control import ControlPlane
from msgbridge.emulator.faults import FaultInjector
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.emulator.recording import RecordedRequest, Recorder
from msgbridge.emulator.state import ConversationState, MessageState
from msgbridge.emulator.vendor import EmulatedVendor, VendorSettings

if TYPE_CHECKING:
    from msgbridge.emulator.server import ServerThread

__all__ = ["Emulator", "builtin_vendors"]


@functools.cache
def _builtin_plugins() -> tuple[object, ...]:
    """msgbridge's own plugin modules (its entry points), loaded once."""
    from importlib.metadata import entry_points

    from msgbridge.hookspecs import PROJECT

    own = [
        ep
        for ep in entry_points(group=PROJECT)
        if ep.dist is not None and ep.dist.name.lower() == PROJECT
    ]
    return tuple(ep.load() for ep in sorted(own, key=lambda ep: ep.name))


def builtin_vendors() -> list[EmulatedVendor]:
    """Fresh instances of the vendors msgbridge ships, found the way plugin vendors are:
    through the ``register_emulated_vendors`` hook of msgbridge's own plugin modules."""
    from msgbridge.registry import AdapterRegistry

    registry = AdapterRegistry()
    for plugin in _builtin_plugins():
        registry.add_plugin(plugin)
    return [v for v in registry.emulated_vendors if isinstance(v, EmulatedVendor)]


class Emulator:
    """A strict, stateful emulator of the vendors' status endpoints.

    ``vendors`` adds emulated vendors (e.g. from an adapter plugin) to the built-in ones;
    one with a built-in's name replaces it. ``builtins=False`` serves only ``vendors``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        vendors: Iterable[EmulatedVendor] = (),
        builtins: bool = True,
        plugins: bool = False,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """``plugins=True`` also mounts the vendors installed adapter plugins offer
        through the ``register_emulated_vendors`` hook."""
        self.config = config if config is not None else EmulatorConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.host = host
        self.port = port
        mounted: dict[str, EmulatedVendor] = {}
        if builtins:
            mounted = {v.name: v for v in builtin_vendors()}
        extra_names: set[str] = set()
        if plugins:
            from msgbridge.registry import AdapterRegistry

            offered = AdapterRegistry.from_entry_points().emulated_vendors
            vendors = [*vendors, *(v for v in offered if isinstance(v, EmulatedVendor))]
        for vendor in vendors:
            if vendor.name in extra_names:
                raise ValueError(f"two extra vendors are both named {vendor.name!r}")
            extra_names.add(vendor.name)
            mounted[vendor.name] = vendor
        if not mounted:
            raise ValueError("an emulator needs at least one vendor")
        self._vendors = mounted
        for vendor in mounted.values():
            vendor.attach(self.clock)
        self._check_config_names()
        self.faults = FaultInjector(self.config.seed)
        self._recorder = Recorder(self.config.record_limit)
        self._apply_config_defaults()
        self._seed_baseline()
        control = ControlPlane(self) if self.config.control_endpoint else None
        self.app = EmulatorApp(
            mounted.values(),
            clock=self.clock,
            recorder=self._recorder,
            faults=self.faults,
            control=control,
        )
        self._server: ServerThread | None = None

    # -- configuration baseline --------------------------------------------------------------
    def _check_config_names(self) -> None:
        for seed in self.config.tokens:
            self.vendor(seed.vendor)
        for name in self.config.vendor_settings:
            self.vendor(name)

    def _apply_config_defaults(self) -> None:
        config = self.config
        for vendor in self._vendors.values():
            changes: dict[str, Any] = {
                "unknown_messages": config.unknown_messages,
                "rate_limits_enabled": config.rate_limits,
                "retry_after": config.retry_after,
                "history_limit": config.history_limit,
            }
            if vendor.has_provider_race:
                changes["provider_race"] = config.provider_race
            changes.update(config.vendor_settings.get(vendor.name, {}))
            vendor.set_defaults(**changes)

    def _seed_baseline(self) -> None:
        if self.config.demo:
            for name, vendor in self._vendors.items():
                account = vendor.demo_token_account()
                vendor.add_token(demo_token(name), account=account)
                vendor.add_oauth_client(
                    demo_client_id(name),
                    DEMO_CLIENT_SECRET,
                    demo_refresh_token(name),
                    account=account,
                )
        for seed in self._token_seeds():
            self.vendor(seed.vendor).add_token(
                seed.token, account=seed.account or "", expires_in=seed.expires_in
            )
        if self.config.fault_rate:
            self.faults.error_rate(self.config.fault_rate, self.config.fault_statuses)

    def accepted_tokens(self) -> list[TokenSeed]:
        """The baseline tokens (demo + configured), for a CLI banner.

        Tokens added at runtime are not listed.
        """
        seeds: list[TokenSeed] = []
        if self.config.demo:
            seeds.extend(
                TokenSeed(name, demo_token(name), vendor.demo_token_account())
                for name, vendor in self._vendors.items()
            )
        seeds.extend(self._token_seeds())
        return seeds

    def _token_seeds(self) -> list[TokenSeed]:
        """The configured tokens, each with its account (the vendor's demo token account
        when the seed names none)."""
        return [
            seed
            if seed.account is not None
            else dataclasses.replace(seed, account=self.vendor(seed.vendor).demo_token_account())
            for seed in self.config.tokens
        ]

    def reset(self) -> None:
        """Back to the configured baseline: state, settings, faults and records are cleared."""
        from msgbridge.emulator.webhooks import inbound_publishes

        for vendor in self._vendors.values():
            vendor.reset()
            inbound_publishes(vendor).clear()
        self.faults.reset()
        self._recorder.clear()
        self._seed_baseline()

    # -- vendors -------------------------------------------------------------------------------
    @property
    def vendor_names(self) -> list[str]:
        return list(self._vendors)

    def vendor(self, name: str) -> EmulatedVendor:
        try:
            return self._vendors[name]
        except KeyError:
            known = ", ".join(self._vendors)
            raise KeyError(f"no emulated vendor {name!r} (known: {known})") from None

    def configure(self, vendor: str, **settings: Any) -> VendorSettings:
        """Change a vendor's :class:`VendorSettings` until the next :meth:`reset`."""
        return self.vendor(vendor).configure(**settings)

    def set_rate_limit(
        self, vendor: str, limit: RateLimit | None, *, account: str | None = None
    ) -> None:
        """Budget for the vendor (every account) or one *account*; ``None`` = unlimited."""
        self.vendor(vendor).set_rate_limit(limit, account=account)

    def set_provider_race(self, seconds: float, *, vendor: str | None = None) -> None:
        """The provider race (of the vendors that declare ``has_provider_race``) for
        messages without their own ``provider_ready_after``."""
        targets = [self.vendor(vendor)] if vendor else list(self._vendors.values())
        for item in targets:
            if item.has_provider_race:
                item.configure(provider_race=seconds)
            elif vendor:
                raise ValueError(f"vendor {vendor!r} has no provider race")

    def set_account_active(self, vendor: str, account: str, active: bool) -> None:
        self.vendor(vendor).set_account_active(account, active)

    # -- seeding -------------------------------------------------------------------------------
    def add_token(
        self, vendor: str, token: str, *, account: str, expires_in: float | None = None
    ) -> None:
        """Accept ``Authorization: Bearer <token>`` for *account* (``None``: never expires)."""
        self.vendor(vendor).add_token(token, account=account, expires_in=expires_in)

    def revoke_token(self, vendor: str, token: str) -> bool:
        return self.vendor(vendor).revoke_token(token)

    def add_oauth_client(
        self,
        vendor: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        account: str,
        **extra: str,
    ) -> None:
        """Register an OAuth client with one live (single-use) refresh token for *account*."""
        self.vendor(vendor).add_oauth_client(
            client_id, client_secret, refresh_token, account=account, **extra
        )

    def seed_message(
        self,
        vendor: str,
        message_id: str,
        *,
        account: str,
        channel_id: int | None = None,
        conversation_id: str | None = None,
        status: str | None = None,
        provider_ready_after: float | None = None,
        email_message_id: str | None = None,
        **attributes: Any,
    ) -> MessageState:
        """Make *message_id* known to *vendor*, owned by *account*.

        A vendor that declares ``needs_channel_id`` needs ``channel_id``; one that declares
        ``has_provider_race`` takes ``provider_ready_after`` (seconds during which its
        updates are refused as "not ready yet").
        """
        return self.vendor(vendor).seed_message(
            message_id,
            account=account,
            conversation_id=conversation_id,
            channel_id=channel_id,
            status=status,
            provider_ready_after=provider_ready_after,
            email_message_id=email_message_id,
            **attributes,
        )

    def seed_conversation(
        self,
        vendor: str,
        conversation_id: str,
        *,
        account: str,
        contact_id: str | None = None,
        unread_count: float = 0,
        starred: bool = False,
    ) -> ConversationState:
        return self.vendor(vendor).seed_conversation(
            conversation_id,
            account=account,
            contact_id=contact_id,
            unread_count=unread_count,
            starred=starred,
        )

    # -- inspection ----------------------------------------------------------------------------
    def message(self, vendor: str, message_id: str) -> MessageState:
        """Current status and full history; ``KeyError`` when the vendor has no such message."""
        state = self.vendor(vendor).message(message_id)
        if state is None:
            raise KeyError(f"{vendor} has no message {message_id!r}")
        return state

    def messages(self, vendor: str) -> list[MessageState]:
        return self.vendor(vendor).all_messages()

    def conversation(self, vendor: str, conversation_id: str) -> ConversationState:
        state = self.vendor(vendor).conversation(conversation_id)
        if state is None:
            raise KeyError(f"{vendor} has no conversation {conversation_id!r}")
        return state

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Recorded requests, oldest first (the last ``record_limit``), secrets masked."""
        return self._recorder.snapshot()

    @property
    def request_count(self) -> int:
        """Vendor requests recorded since the last reset (including any the ring dropped)."""
        return self._recorder.total

    def find_requests(
        self,
        *,
        vendor: str | None = None,
        route: str | None = None,
        method: str | None = None,
        status: int | None = None,
        account: str | None = None,
        path_contains: str | None = None,
    ) -> list[RecordedRequest]:
        return Recorder.select(
            self._recorder.snapshot(),
            vendor=vendor,
            route=route,
            method=method,
            status=status,
            account=account,
            path_contains=path_contains,
        )

    def clear_requests(self) -> None:
        self._recorder.clear()

    def snapshot(self) -> dict[str, Any]:
        """JSON-able view of everything (what ``GET /_emulator/state`` returns)."""
        return {
            "url": self.url if self.running else None,
            "clock": repr(self.clock),
            "vendors": {name: vendor.snapshot() for name, vendor in self._vendors.items()},
            "routes": {name: vendor.describe_routes() for name, vendor in self._vendors.items()},
            "faults": self.faults.describe(),
            "requests_recorded": len(self._recorder.snapshot()),
            "requests_total": self._recorder.total,
            "inbound": {n: self.inbound_messages(n) for n in self._vendors},
        }

    def inbound_messages(self, vendor: str) -> list[dict[str, Any]]:
        """Contacts' messages published into *vendor* (``POST …/messages/inbound``, …)."""
        from msgbridge.emulator.webhooks import inbound_publishes

        emulated = self.vendor(vendor)
        with emulated.lock:
            return [item.to_dict() for item in inbound_publishes(emulated)]

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; use `with Emulator() as emu:`")
        return self._server.url

    def base_url(self, vendor: str) -> str:
        """The ``base_url`` a msgbridge connection to *vendor* should use."""
        return self.url + self.vendor(vendor).prefix

    def start(self, *, timeout: float = 10.0) -> Emulator:
        """Serve on ``host:port`` (port 0 = a free one) in a background thread."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        from msgbridge.emulator.server import ServerThread

        server = ServerThread(self.app, self.host, self.port)
        server.start(timeout=timeout)
        self._server = server
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(timeout=timeout)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def describe(self) -> list[str]:
        """Human-readable lines about endpoints and accepted tokens (for a CLI banner)."""
        base = self.url if self.running else f"http://{self.host}:{self.port}"
        lines = [f"msgbridge emulator on {base}"]
        for name, vendor in self._vendors.items():
            note = vendor.banner_note()
            lines.append(f"  {name:<10} {base}{vendor.prefix}{'  ' + note if note else ''}")
        if self.config.control_endpoint:
            lines.append(f"  {'control':<10} {base}/_emulator/state")
        tokens = self.accepted_tokens()
        if tokens:
            lines.append("accepted tokens (each presented as its vendor expects):")
            lines.extend(
                f"  {seed.vendor:<10} {seed.token}  (account {seed.account}; "
                f"{self._vendors[seed.vendor].credential_scheme})"
                for seed in tokens
            )
        else:
            lines.append("no tokens yet: seed some via POST /_emulator/seed or --token")
        if self.config.demo:
            lines.append(
                "demo OAuth: client_id demo-<vendor>-client, client_secret "
                f"{DEMO_CLIENT_SECRET}, refresh_token demo-<vendor>-refresh (single-use)"
            )
            for vendor in self._vendors.values():
                lines.extend(vendor.demo_notes())
        lines.append(
            f"unknown message ids: {self.config.unknown_messages}; "
            f"rate limits: {'on' if self.config.rate_limits else 'off'}; "
            f"fault rate: {self.config.fault_rate:g}; "
            f"provider race: {self.config.provider_race:g} s"
        )
        return lines

    def __repr__(self) -> str:
        where = self.url if self.running else "not running"
        return f"<Emulator {where} vendors={self.vendor_names}>"
