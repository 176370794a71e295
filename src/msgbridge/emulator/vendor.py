"""The pluggable vendor interface: what the built-in vendors and third-party plugins share.

An :class:`EmulatedVendor` owns a path prefix (``/<name>``), its routes, its state
(tokens, OAuth clients, messages, conversations, rate windows) and its strictness
settings, and knows its own error-body shape so the emulator can inject faults "in the
vendor's voice". The emulator core does prefix dispatch, fault injection, recording and
locking; everything vendor-specific lives in the subclass. A plugin vendor subclasses
this, implements :meth:`routes` and :meth:`error_response`, and is passed as
``Emulator(vendors=[MyVendor()])``.

Everything the CLI needs per vendor (``msgbridge emulate``'s banner and config,
``msgbridge demo``'s accounts, connections and inbound loop) comes from what the vendor
declares here (``credential_scheme``, ``demo_*``, :meth:`EmulatedVendor.demo_loop`), so
built-in and plugin vendors are driven the same way.
"""

from __future__ import annotations

import abc
import dataclasses
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from msgbridge.emulator.clock import Clock, SystemClock
from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse
from msgbridge.emulator.ratelimit import RateLimit, RateLimiter, Verdict
from msgbridge.emulator.routing import Route, Router
from msgbridge.emulator.state import (
    ConversationState,
    ConversationStore,
    MessageState,
    MessageStore,
)
from msgbridge.emulator.tokens import AccessToken, OAuthRegistry, TokenStore, new_token

if TYPE_CHECKING:
    from msgbridge.emulator.loop import DemoLoop

__all__ = ["EmulatedVendor", "UnknownMode", "VendorSettings"]

UnknownMode = Literal["reject", "create"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class VendorSettings:
    """A vendor's strictness knobs; ``emu.configure(vendor, ...)`` changes them at runtime."""

    #: ``"reject"``: unknown message/conversation ids get the vendor's 404.
    #: ``"create"``: they are created on first update (demos, benchmarks).
    unknown_messages: UnknownMode = "reject"
    #: Default budget per account; ``None`` = unlimited.
    rate_limit: RateLimit | None = None
    #: ``False`` switches rate limiting off entirely (throughput benchmarks).
    rate_limits_enabled: bool = True
    #: Send ``Retry-After`` on 429 (off by default: neither vendor documents one).
    retry_after: bool = False
    #: Seconds after a message is created during which its status cannot be updated
    #: (a vendor's "not ready yet" race, see ``has_provider_race``); per-message values
    #: override.
    provider_race: float = 0.0
    #: Lifetime of access tokens minted by the OAuth endpoint.
    access_token_ttl: float = 3600.0
    #: Refresh tokens are single-use and every refresh returns a new one.
    rotate_refresh_tokens: bool = True
    #: Keep at most this many history entries per message/conversation (``None`` = all,
    #: ``0`` = none: only the current status).
    history_limit: int | None = None
    #: Largest request body accepted; a bigger one answers 413 before any handler runs
    #: (``None`` = no limit). 1 MiB unless the vendor declares its own.
    max_body_bytes: int | None = 1024 * 1024

    def __post_init__(self) -> None:
        if self.unknown_messages not in ("reject", "create"):
            raise ValueError(
                f"unknown_messages must be 'reject' or 'create', got {self.unknown_messages!r}"
            )
        if self.provider_race < 0 or self.access_token_ttl <= 0:
            raise ValueError("provider_race must be >= 0 and access_token_ttl > 0")
        if self.history_limit is not None and self.history_limit < 0:
            raise ValueError("history_limit must be >= 0 or None")
        if self.max_body_bytes is not None and self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0 or None")


class EmulatedVendor(abc.ABC):
    """Base class for an emulated vendor mounted at ``/{name}``.

    Handlers run synchronously under :attr:`lock`, so they may read and mutate state
    freely; the Python API methods take the same lock, so tests may call them from any
    thread while the server runs.
    """

    #: Statuses a message may be seeded with (``None``: any).
    seed_statuses: tuple[str, ...] | None = None
    #: ``True``: seeded messages need a ``channel_id``; ``False``: they refuse one;
    #: ``None``: either.
    needs_channel_id: bool | None = None
    #: Whether ``provider_ready_after`` (a vendor refusing updates for a moment after a
    #: message is created) applies; the emulator's ``provider_race`` setting reaches
    #: only the vendors that declare it.
    has_provider_race: bool = False

    #: Lower-case names of request headers that carry this vendor's secrets; the
    #: recorder masks them besides the usual ``Authorization`` and friends.
    secret_headers: frozenset[str] = frozenset()

    #: How a client presents this vendor's token, for banners and docs: the default is
    #: a bearer token; a vendor with its own header or a request signature says so.
    credential_scheme: str = "Authorization: Bearer <token>"

    def banner_note(self) -> str:
        """A short note on the vendor's banner line (e.g. the API versions it serves)."""
        return ""

    def mint_access_token(self, request: EmulatorRequest, account: str, client_id: str) -> str:
        """Issue an access token after the OAuth endpoint accepted a refresh."""
        request.account = account
        token = new_token("at")
        self.tokens.add(
            token,
            account,
            expires_in=self.settings.access_token_ttl,
            now=request.now,
            wall=request.wall,
            origin="oauth",
            client_id=client_id,
        )
        return token

    # -- how ``msgbridge demo`` drives this vendor (override what differs) -----------

    def demo_account(self, index: int) -> str:
        """The id of the demo's *index*-th account (0-based) at this vendor."""
        return f"{self.name}-account-{index + 1}"

    def demo_token_account(self) -> str:
        """The account ``demo-<vendor>-token`` belongs to when the emulator runs with
        demo tokens (``msgbridge emulate``); defaults to the first demo account."""
        return self.demo_account(0)

    def demo_notes(self) -> list[str]:
        """Extra banner lines a client of the demo tokens needs (e.g. a channel id)."""
        return []

    def demo_connection(
        self, base_url: str, account: str, token: str
    ) -> tuple[dict[str, Any], Any]:
        """Connection settings and credentials for a demo account whose *token* the
        emulator accepts. The default: ``base_url`` only, ``Authorization: Bearer``."""
        from msgbridge.auth import BearerToken

        return {"base_url": base_url}, BearerToken(token)

    def demo_message_fields(self, message_id: str) -> dict[str, str]:
        """Extra ``MessageStatus`` fields a demo message needs (e.g. its conversation);
        ``conversation_id`` is also used when the demo seeds the message."""
        return {}

    def demo_loop(self) -> DemoLoop | None:
        """How this vendor plays ``msgbridge demo``'s inbound loop (signed webhooks to the
        product's intake, statuses and replies back), or ``None`` if it does not."""
        return None

    def __init__(self, name: str, *, settings: VendorSettings | None = None) -> None:
        if not _NAME.match(name):
            raise ValueError(f"vendor name must be lower-case [a-z0-9_-], got {name!r}")
        self.name = name
        self.prefix = "/" + name
        self.lock = threading.RLock()
        self.clock: Clock = SystemClock()
        self._defaults = settings if settings is not None else VendorSettings()
        self.settings = dataclasses.replace(self._defaults)
        self.tokens = TokenStore()
        self.oauth = OAuthRegistry()
        self.messages = MessageStore(name)
        self.conversations = ConversationStore(name)
        self.limiter = RateLimiter(self.settings.rate_limit)
        self._router: Router | None = None

    # -- what a vendor must provide --------------------------------------------------------
    @abc.abstractmethod
    def routes(self) -> Sequence[Route]:
        """The vendor's endpoints, paths relative to :attr:`prefix`."""

    @abc.abstractmethod
    def error_response(
        self, request: EmulatorRequest, status: int, message: str | None = None
    ) -> EmulatorResponse:
        """An error in the vendor's body shape (injected faults, unknown routes, 429)."""

    # -- hooks with sensible defaults --------------------------------------------------------
    def route_not_found(self, request: EmulatorRequest, allowed: list[str]) -> EmulatorResponse:
        status = 405 if allowed else 404
        return self.error_response(request, status, f"Cannot {request.method} {request.path}")

    def decorate(self, request: EmulatorRequest, response: EmulatorResponse) -> None:
        """Add headers every response carries (a vendor's correlation id, for instance)."""
        return None

    def attach(self, clock: Clock) -> None:
        """Called by the emulator when the vendor is mounted."""
        self.clock = clock

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self.routes())
        return self._router

    # -- configuration -------------------------------------------------------------------
    def configure(self, **changes: Any) -> VendorSettings:
        """Change settings now; :meth:`reset` restores the ones given at construction."""
        with self.lock:
            self.settings = dataclasses.replace(self.settings, **changes)
            self._apply_settings()
            return self.settings

    def set_defaults(self, **changes: Any) -> None:
        """Change the settings :meth:`reset` restores (used for emulator-wide config)."""
        with self.lock:
            self._defaults = dataclasses.replace(self._defaults, **changes)
            self.settings = dataclasses.replace(self.settings, **changes)
            self._apply_settings()

    def _apply_settings(self) -> None:
        self.limiter.default = self.settings.rate_limit
        self.limiter.enabled = self.settings.rate_limits_enabled
        self.messages.history_limit = self.settings.history_limit
        self.conversations.history_limit = self.settings.history_limit

    def set_rate_limit(self, limit: RateLimit | None, *, account: str | None = None) -> None:
        with self.lock:
            if account is None:
                self.settings = dataclasses.replace(self.settings, rate_limit=limit)
            self.limiter.set_limit(limit, account)

    def set_account_active(self, account: str, active: bool) -> None:
        """An inactive account's refresh tokens are refused ("Location is not active")."""
        with self.lock:
            if active:
                self.oauth.inactive_accounts.discard(account)
            else:
                self.oauth.inactive_accounts.add(account)

    def reset(self) -> None:
        """Forget all state and restore the construction-time settings."""
        with self.lock:
            self.settings = dataclasses.replace(self._defaults)
            self.tokens.clear()
            self.oauth.clear()
            self.messages.clear()
            self.conversations.clear()
            self.limiter.reset(self.settings.rate_limit, enabled=self.settings.rate_limits_enabled)
            self._apply_settings()

    # -- Python API (thread-safe) --------------------------------------------------------
    def add_token(self, token: str, *, account: str, expires_in: float | None = None) -> None:
        """Accept ``Bearer <token>`` for *account*; ``expires_in=None`` never expires."""
        with self.lock:
            self.tokens.add(
                token,
                str(account),
                expires_in=expires_in,
                now=self.clock.monotonic(),
                wall=self.clock.time(),
            )

    def revoke_token(self, token: str) -> bool:
        with self.lock:
            return self.tokens.revoke(token)

    def add_oauth_client(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        account: str,
        **extra: str,
    ) -> None:
        """Register an OAuth client and one live refresh token for *account*."""
        with self.lock:
            self.oauth.add(client_id, client_secret, refresh_token, str(account), extra)

    def seed_message(
        self,
        message_id: str,
        *,
        account: str,
        conversation_id: str | None = None,
        channel_id: int | None = None,
        status: str | None = None,
        provider_ready_after: float | None = None,
        email_message_id: str | None = None,
        **attributes: Any,
    ) -> MessageState:
        """Create (or replace) a message the vendor knows about."""
        self.check_seed(
            channel_id=channel_id, status=status, provider_ready_after=provider_ready_after
        )
        with self.lock:
            message = self.messages.create(
                message_id,
                account=str(account),
                now=self.clock.monotonic(),
                wall=self.clock.time(),
                conversation_id=conversation_id,
                channel_id=channel_id,
                status=status,
                email_message_id=email_message_id,
                provider_ready_after=provider_ready_after,
                attributes=dict(attributes),
            )
            self.on_message_created(message.thread_id, message.account)
            return self.messages.snapshot(message)

    def check_seed(
        self,
        *,
        channel_id: int | None,
        status: str | None,
        provider_ready_after: float | None,
    ) -> None:
        """Refuse seed options this vendor cannot represent, as its class attributes
        declare (``seed_statuses``, ``needs_channel_id``, ``has_provider_race``);
        override to add vendor-specific rules."""
        if provider_ready_after is not None:
            if not self.has_provider_race:
                raise ValueError(f"{self.name} has no provider race; drop provider_ready_after")
            if provider_ready_after < 0:
                raise ValueError("provider_ready_after must be >= 0")
        if self.needs_channel_id:
            if not isinstance(channel_id, int) or isinstance(channel_id, bool):
                raise ValueError(f"{self.name} messages belong to a channel: pass channel_id=<int>")
        elif self.needs_channel_id is False and channel_id is not None:
            raise ValueError(f"{self.name} messages have no channel; drop channel_id")
        allowed = self.seed_statuses
        if status is not None and allowed is not None and status not in allowed:
            raise ValueError(f"status must be one of {', '.join(allowed)} or None")

    def on_message_created(self, conversation_id: str, account: str) -> None:
        """Hook: e.g. make sure the message's conversation exists."""
        return None

    def seed_conversation(
        self,
        conversation_id: str,
        *,
        account: str,
        contact_id: str | None = None,
        unread_count: float = 0,
        starred: bool = False,
    ) -> ConversationState:
        with self.lock:
            item = self.conversations.create(
                conversation_id,
                account=str(account),
                contact_id=contact_id,
                unread_count=unread_count,
                starred=starred,
            )
            return self.conversations.snapshot(item)

    def message(self, message_id: str) -> MessageState | None:
        with self.lock:
            item = self.messages.get(message_id)
            return None if item is None else self.messages.snapshot(item)

    def all_messages(self) -> list[MessageState]:
        with self.lock:
            return [self.messages.snapshot(m) for m in self.messages]

    def conversation(self, conversation_id: str) -> ConversationState | None:
        with self.lock:
            item = self.conversations.get(conversation_id)
            return None if item is None else self.conversations.snapshot(item)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state for the control endpoint; secrets appear only as fingerprints."""
        with self.lock:
            now = self.clock.monotonic()
            settings = dataclasses.asdict(self.settings)
            return {
                "name": self.name,
                "prefix": self.prefix,
                "settings": settings,
                "tokens": self.tokens.describe(now),
                "oauth_clients": self.oauth.describe(),
                "inactive_accounts": sorted(self.oauth.inactive_accounts),
                "messages": {m.id: self.messages.snapshot(m).to_dict() for m in self.messages},
                "conversations": {
                    c.id: self.conversations.snapshot(c).to_dict() for c in self.conversations
                },
            }

    # -- helpers for handlers ------------------------------------------------------------
    @staticmethod
    def bearer(request: EmulatorRequest) -> str | None:
        """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
        value = request.headers.get("authorization")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return token

    def lookup_token(self, request: EmulatorRequest) -> tuple[str | None, AccessToken | None]:
        token = self.bearer(request)
        return token, (None if token is None else self.tokens.get(token))

    def count_request(self, request: EmulatorRequest, account: str) -> Verdict | None:
        """Spend one unit of *account*'s budget; the vendor turns a refusal into its 429."""
        request.account = account
        return self.limiter.check(account, request.now, request.wall)

    def describe_routes(self) -> list[dict[str, str]]:
        return [
            {"method": r.method, "path": self.prefix + r.pattern, "name": r.name}
            for r in self.router.routes
        ]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.prefix}>"
