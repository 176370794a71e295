"""Access tokens (token → account) and OAuth clients with single-use refresh tokens.

Raw tokens live only in these in-memory maps, which are the emulator's "database"; they
are never recorded, logged or returned by inspection (see :mod:`recording`), only
fingerprinted.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field

__all__ = [
    "AccessToken",
    "OAuthClient",
    "OAuthRegistry",
    "RefreshOutcome",
    "RefreshResult",
    "TokenStore",
    "fingerprint",
    "new_token",
]


def fingerprint(secret: str) -> str:
    """A short, non-reversible label for a secret (for inspection output)."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def new_token(kind: str) -> str:
    return f"emu-{kind}-{secrets.token_urlsafe(24)}"


@dataclass(slots=True)
class AccessToken:
    account: str
    #: ``clock.monotonic()`` deadline; ``None`` never expires (static / PIT-like tokens).
    expires_at: float | None
    #: ``clock.time()`` of expiry, for messages such as "expired N seconds ago".
    expires_wall: float | None
    origin: str = "seeded"
    client_id: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class TokenStore:
    def __init__(self) -> None:
        self._tokens: dict[str, AccessToken] = {}

    def add(
        self,
        token: str,
        account: str,
        *,
        expires_in: float | None,
        now: float,
        wall: float,
        origin: str = "seeded",
        client_id: str | None = None,
    ) -> AccessToken:
        if not token:
            raise ValueError("a token cannot be empty")
        entry = AccessToken(
            account=account,
            expires_at=None if expires_in is None else now + expires_in,
            expires_wall=None if expires_in is None else wall + expires_in,
            origin=origin,
            client_id=client_id,
        )
        self._tokens[token] = entry
        return entry

    def get(self, token: str) -> AccessToken | None:
        return self._tokens.get(token)

    def revoke(self, token: str) -> bool:
        return self._tokens.pop(token, None) is not None

    def clear(self) -> None:
        self._tokens.clear()

    def __len__(self) -> int:
        return len(self._tokens)

    def describe(self, now: float) -> list[dict[str, object]]:
        """Token fingerprints with their account and expiry; never the raw token."""
        return [
            {
                "fingerprint": fingerprint(token),
                "account": entry.account,
                "origin": entry.origin,
                "expires_in": None if entry.expires_at is None else entry.expires_at - now,
            }
            for token, entry in self._tokens.items()
        ]


@dataclass(slots=True)
class OAuthClient:
    client_id: str
    client_secret: str
    #: Extra fields some vendors echo in token responses (e.g. ``companyId``, ``userId``).
    extra: dict[str, str] = field(default_factory=dict)


class RefreshOutcome(enum.Enum):
    OK = "ok"
    UNKNOWN_CLIENT = "unknown_client"
    BAD_SECRET = "bad_secret"  # noqa: S105
    BAD_REFRESH_TOKEN = "bad_refresh_token"  # noqa: S105
    ACCOUNT_INACTIVE = "account_inactive"


@dataclass(frozen=True, slots=True)
class RefreshResult:
    outcome: RefreshOutcome
    account: str | None = None
    #: The refresh token the client must use next time (a new one when rotating).
    refresh_token: str | None = None
    client: OAuthClient | None = None


class OAuthRegistry:
    """OAuth clients and their live refresh tokens (refresh token → client, account)."""

    def __init__(self) -> None:
        self._clients: dict[str, OAuthClient] = {}
        self._refresh: dict[str, tuple[str, str]] = {}
        self.inactive_accounts: set[str] = set()

    def add(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        account: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        client = self._clients.get(client_id)
        if client is None:
            client = self._clients[client_id] = OAuthClient(client_id, client_secret)
        elif client.client_secret != client_secret:
            raise ValueError(f"OAuth client {client_id!r} already has a different secret")
        if extra:
            client.extra.update(extra)
        if not refresh_token:
            raise ValueError("a refresh token cannot be empty")
        self._refresh[refresh_token] = (client_id, account)

    def redeem(
        self, client_id: str, client_secret: str, refresh_token: str, *, rotate: bool
    ) -> RefreshResult:
        """Spend *refresh_token*: with ``rotate`` it is single-use and a new one is issued."""
        client = self._clients.get(client_id)
        if client is None:
            return RefreshResult(RefreshOutcome.UNKNOWN_CLIENT)
        if not secrets.compare_digest(client.client_secret, client_secret):
            return RefreshResult(RefreshOutcome.BAD_SECRET)
        grant = self._refresh.get(refresh_token)
        if grant is None or grant[0] != client_id:
            return RefreshResult(RefreshOutcome.BAD_REFRESH_TOKEN)
        account = grant[1]
        if account in self.inactive_accounts:
            # An inactive account ("Location is not active"): the same refresh token
            # works again later.
            return RefreshResult(RefreshOutcome.ACCOUNT_INACTIVE, account=account)
        next_token = refresh_token
        if rotate:
            del self._refresh[refresh_token]
            next_token = new_token("rt")
            self._refresh[next_token] = (client_id, account)
        return RefreshResult(RefreshOutcome.OK, account, next_token, client)

    def clear(self) -> None:
        self._clients.clear()
        self._refresh.clear()
        self.inactive_accounts.clear()

    def describe(self) -> list[dict[str, object]]:
        per_client: dict[str, list[str]] = {cid: [] for cid in self._clients}
        for token, (cid, account) in self._refresh.items():
            per_client.setdefault(cid, []).append(f"{account} ({fingerprint(token)})")
        return [
            {"client_id": cid, "live_refresh_tokens": sorted(tokens)}
            for cid, tokens in per_client.items()
        ]
