"""Credentials: static bearer tokens and refreshing OAuth tokens, as ``httpx.Auth`` flows.

The refresh logic is written once, as a plan that yields "take the lock", "release the
lock" and requests; thin sync and async drivers run it with a ``threading.Lock`` or an
``asyncio.Lock``. That gives single-flight refreshes per credential (concurrent requests
wait for one refresh, which matters for HighLevel's single-use refresh tokens), and the
rotated token pair is handed to the token store *before* it is used.

Secrets live in private attributes and never appear in a ``repr``, an exception or a log.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Protocol, runtime_checkable

import attrs
import httpx

from msgbridge.errors import AuthenticationError, ConfigurationError

__all__ = [
    "BearerToken",
    "Credentials",
    "MemoryTokenStore",
    "RefreshingOAuth",
    "TokenSet",
    "TokenStore",
]

log = logging.getLogger("msgbridge.auth")

#: What every credential is: an ``httpx.Auth`` that never shows its secret.
Credentials = httpx.Auth

_REDACTED = "<redacted>"


def _check_secret(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string", key=name)
    if any(ch in value for ch in "\r\n"):
        raise ConfigurationError(f"{name} must not contain line breaks", key=name)
    return value


class BearerToken(httpx.Auth):
    """A static token sent as ``Authorization: Bearer …`` (HighLevel PIT, Leadway token)."""

    def __init__(self, token: str) -> None:
        self._token = _check_secret("token", token)

    def authorization(self) -> str:
        """The ``Authorization`` header value (for senders that skip httpx's flow)."""
        return f"Bearer {self._token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.authorization()
        yield request

    def __repr__(self) -> str:
        return f"BearerToken({_REDACTED})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BearerToken) and other._token == self._token

    def __hash__(self) -> int:
        return hash((BearerToken, self._token))


@attrs.frozen(repr=False)
class TokenSet:
    """An access token, the refresh token that renews it, and when it expires (epoch s)."""

    access_token: str
    refresh_token: str
    expires_at: float | None = None
    #: Extra fields of the vendor's token response worth keeping (never secrets).
    extra: dict[str, Any] = attrs.field(factory=dict)

    def expiring(self, now: float, margin: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at - margin

    def __repr__(self) -> str:
        hidden = f"access_token={_REDACTED}, refresh_token={_REDACTED}"
        return f"TokenSet({hidden}, expires_at={self.expires_at!r})"


@runtime_checkable
class TokenStore(Protocol):
    """Where rotated tokens are persisted; ``save`` must be durable before it returns."""

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


class MemoryTokenStore:
    """Keeps tokens in memory: fine for tests, loses rotations on restart."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._tokens = tokens

    def load(self) -> TokenSet | None:
        return self._tokens

    def save(self, tokens: TokenSet) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "MemoryTokenStore()"


class _Lock:
    """Markers a refresh plan yields to its driver."""


_ACQUIRE = _Lock()
_RELEASE = _Lock()

_Step = Any  # httpx.Request | _Lock
_Plan = Generator[_Step, "httpx.Response | None", None]


class RefreshingOAuth(httpx.Auth, abc.ABC):
    """OAuth access tokens renewed with a refresh token, before they expire.

    A 401 that :meth:`is_expired_response` recognises triggers one refresh and one
    retry; any other 401 or 403 is left to the adapter (HighLevel's "No conversation
    provider" 403 must never refresh). A refresh the vendor rejects raises
    :class:`AuthenticationError` saying the account must be re-authorised.
    """

    requires_response_body = True
    #: Where refresh requests go; subclasses set the vendor's endpoint.
    default_token_url: str

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str | None = None,
        access_token: str | None = None,
        expires_at: float | None = None,
        store: TokenStore | None = None,
        token_url: str | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_id = _check_secret("client_id", client_id)
        self._client_secret = _check_secret("client_secret", client_secret)
        self.token_url = token_url or self.default_token_url
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._store: TokenStore = store or MemoryTokenStore()
        if refresh_token is not None:
            initial = TokenSet(
                access_token=access_token or "",
                refresh_token=_check_secret("refresh_token", refresh_token),
                expires_at=expires_at if access_token else 0.0,
            )
            if self._store.load() is None:
                self._store.save(initial)
        if self._store.load() is None:
            raise ConfigurationError(
                "an OAuth credential needs a refresh_token or a store that holds one",
                key="refresh_token",
            )
        self._tokens: TokenSet | None = self._store.load()
        self._thread_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        #: Number of refreshes performed (observable for tests and metrics).
        self.refresh_count = 0

    # -- vendor specifics ---------------------------------------------------------

    @abc.abstractmethod
    def refresh_form(self, refresh_token: str) -> dict[str, str]:
        """Form fields of the vendor's refresh request."""

    @abc.abstractmethod
    def is_expired_response(self, response: httpx.Response) -> bool:
        """Whether a response says the access token expired (so refresh once)."""

    def parse_token_response(self, response: httpx.Response) -> TokenSet:
        data = _json_object(response)
        if response.status_code != 200 or data is None:
            message = _vendor_text(data, response)
            raise AuthenticationError(
                "token refresh was rejected; the account must be re-authorised "
                f"(vendor said: {message})",
                http_status=response.status_code,
                vendor_message=message,
            )
        access = data.get("access_token")
        refresh = data.get("refresh_token")
        if not isinstance(access, str) or not access:
            raise AuthenticationError(
                "token refresh answered without an access_token", http_status=200
            )
        if not isinstance(refresh, str) or not refresh:
            refresh = self._tokens.refresh_token if self._tokens else ""
        expires_in = data.get("expires_in")
        expires_at = (
            self._clock() + float(expires_in)
            if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
            else None
        )
        keep = {
            k: v
            for k, v in data.items()
            if k not in {"access_token", "refresh_token", "id_token"} and isinstance(v, (str, int))
        }
        return TokenSet(access, refresh, expires_at, keep)

    # -- the plan, written once ---------------------------------------------------

    def _current(self) -> TokenSet:
        assert self._tokens is not None
        return self._tokens

    def _needs_refresh(self, tokens: TokenSet) -> bool:
        return not tokens.access_token or tokens.expiring(self._clock(), self.refresh_margin)

    def _refresh(self) -> Generator[_Step, httpx.Response | None, None]:
        old = self._current()
        refresh_request = httpx.Request(
            "POST",
            self.token_url,
            data=self.refresh_form(old.refresh_token),
            headers={"Accept": "application/json"},
        )
        response = yield refresh_request
        assert response is not None
        new = self.parse_token_response(response)
        self._store.save(new)  # persisted before use: a crash now loses nothing
        self._tokens = new
        self.refresh_count += 1
        log.info("msgbridge: refreshed an OAuth access token for %s", type(self).__name__)

    def _plan(self, request: httpx.Request) -> _Plan:
        tokens = self._current()
        if self._needs_refresh(tokens):
            yield _ACQUIRE
            if self._needs_refresh(self._current()):  # another request may have done it
                yield from self._refresh()
            yield _RELEASE
        used = self._current().access_token
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        assert response is not None
        if self.is_expired_response(response):
            yield _ACQUIRE
            if self._current().access_token == used:
                yield from self._refresh()
            yield _RELEASE
            request.headers["Authorization"] = f"Bearer {self._current().access_token}"
            yield request

    # -- drivers ------------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        plan = self._plan(request)
        held = False
        try:
            step = next(plan)
            while True:
                if step is _ACQUIRE:
                    self._thread_lock.acquire()
                    held = True
                    step = next(plan)
                elif step is _RELEASE:
                    self._thread_lock.release()
                    held = False
                    step = next(plan)
                else:
                    response = yield step
                    response.read()  # we drive the flow, so we honour requires_response_body
                    step = plan.send(response)
        except StopIteration:
            return
        finally:
            if held:
                self._thread_lock.release()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        lock = self._async_lock()
        plan = self._plan(request)
        held = False
        try:
            step = next(plan)
            while True:
                if step is _ACQUIRE:
                    await lock.acquire()
                    held = True
                    step = next(plan)
                elif step is _RELEASE:
                    lock.release()
                    held = False
                    step = next(plan)
                else:
                    response = yield step
                    await response.aread()
                    step = plan.send(response)
        except StopIteration:
            return
        finally:
            if held:
                lock.release()

    def _async_lock(self) -> asyncio.Lock:
        """One lock per event loop: an asyncio.Lock must not cross loops."""
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={_REDACTED}, token_url={self.token_url!r})"


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _vendor_text(data: dict[str, Any] | None, response: httpx.Response) -> str:
    if data is not None:
        message = data.get("message") or data.get("error_description") or data.get("error")
        if isinstance(message, list):
            return "; ".join(str(m) for m in message)
        if message:
            return str(message)
    return f"HTTP {response.status_code}"
