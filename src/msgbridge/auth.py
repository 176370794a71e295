"""Credentials, sans-I/O: what a vendor needs added to each request, and how to renew it.

A credential never touches the network. Given the :class:`~msgbridge.adapter.PreparedRequest`
(method, URL, headers, body bytes) it returns the headers to add: a bearer token, a vendor
header token (:class:`HeaderToken`), or a signature over the whole request (subclass
:class:`Credential`). A :class:`RefreshingCredential` can also ask for a renewal: the
delivery loop then takes its :class:`RefreshLock`, asks :meth:`~RefreshingCredential.begin_refresh`
for the token-endpoint request, sends it like any other (rate limiter, retry policy, events)
and hands the answer to :meth:`~RefreshingCredential.finish_refresh`. So every sender (httpx
sync and async, aiohttp, a third party's) runs the same refresh, and a 503 from the token
endpoint is retried like a 503 from the API instead of being mistaken for a lost grant.

Single flight: one refresh at a time per credential across threads, tasks and — with a
:class:`SharedTokenStore` — processes; the store is re-read under the lock, so a pair
another process rotated is adopted instead of spending a dead single-use refresh token.
Rotated pairs are saved before they are used.

Secrets live in private attributes and never appear in a ``repr``, an exception or a log.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlencode

import attrs

from msgbridge.adapter import Operation, PreparedRequest, ResponseView
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponse,
    RateLimited,
    VendorUnavailable,
)
from msgbridge.validation import check_token_url

__all__ = [
    "BearerToken",
    "Credential",
    "Credentials",
    "HeaderToken",
    "MemoryTokenStore",
    "RefreshLock",
    "RefreshingCredential",
    "RefreshingOAuth",
    "SharedTokenStore",
    "TokenSet",
    "TokenStore",
]

log = logging.getLogger("msgbridge.auth")

_REDACTED = "<redacted>"


def check_secret(name: str, value: object) -> str:
    """A secret that can travel in an HTTP header: non-empty visible ASCII, nothing else.

    The error names the field and the offending position, never the value.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string", key=name)
    for position, char in enumerate(value):
        if not 0x21 <= ord(char) <= 0x7E:
            what = "a line break" if char in "\r\n" else f"U+{ord(char):04X}"
            raise ConfigurationError(
                f"{name} must be visible ASCII characters only; character {position + 1} is "
                f"{what} (a trailing newline or a space from a file or an environment variable?)",
                key=name,
            )
    return value


class Credential(abc.ABC):
    """What every credential is: sans-I/O, and never shows its secret.

    Subclass and implement :meth:`headers`; a request-signing vendor computes its
    signature there from the request's method, URL, headers and body bytes.
    """

    @abc.abstractmethod
    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        """The headers to add to *request* (called once per attempt)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_REDACTED})"

    __str__ = __repr__


#: Backwards-compatible name: every credential is a :class:`Credential`.
Credentials = Credential


class HeaderToken(Credential):
    """A static secret sent in one header of the vendor's choosing.

    ``HeaderToken("api_access_token", token)`` is Chatwoot's; ``HeaderToken(
    "Authorization", token, prefix="Bearer ")`` is what :class:`BearerToken` does.
    """

    def __init__(self, header: str, token: str, *, prefix: str = "") -> None:
        if (
            not header
            or not header.isascii()
            or not header.replace("-", "").replace("_", "").isalnum()
        ):
            raise ConfigurationError(
                f"header must be an HTTP header name (letters, digits, '-', '_'), got {header!r}",
                key="header",
            )
        self._header = header
        self._headers = {header: prefix + check_secret("token", token)}

    @property
    def header(self) -> str:
        return self._header

    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        return self._headers

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._headers == self._headers

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._headers.items())))


class BearerToken(HeaderToken):
    """A static token sent as ``Authorization: Bearer …`` (HighLevel PIT, Leadway token)."""

    def __init__(self, token: str) -> None:
        super().__init__("Authorization", token, prefix="Bearer ")

    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        return self._headers["Authorization"]


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


@runtime_checkable
class SharedTokenStore(TokenStore, Protocol):
    """A token store several processes share.

    ``locked()`` is an exclusive section across processes: inside it ``load()`` returns
    the latest committed pair and ``save()`` is committed when the block exits without an
    error. The block may be entered in one thread and exited in another.
    """

    def locked(self) -> contextlib.AbstractContextManager[None]: ...


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


class RefreshLock:
    """Single flight for one credential: threads, tasks (one asyncio lock per event loop)
    and, when the store is a :class:`SharedTokenStore`, processes."""

    def __init__(self, store: TokenStore) -> None:
        self._thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._store = store if isinstance(store, SharedTokenStore) else None
        self._section: contextlib.AbstractContextManager[None] | None = None

    def acquire(self) -> None:
        self._thread_lock.acquire()
        try:
            self._enter_store()
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        try:
            self._exit_store()
        finally:
            self._thread_lock.release()

    async def aacquire(self) -> None:
        loop_lock = self._loop_lock()
        await loop_lock.acquire()
        try:
            if self._store is None and self._thread_lock.acquire(blocking=False):
                return  # the common case: no thread hop
            taking = asyncio.ensure_future(asyncio.to_thread(self.acquire))
            try:
                await asyncio.shield(taking)
            except asyncio.CancelledError:
                # The thread may still get the lock: give it back when it does.
                taking.add_done_callback(
                    lambda done: None if done.cancelled() or done.exception() else self.release()
                )
                raise
        except BaseException:
            loop_lock.release()
            raise

    async def arelease(self) -> None:
        try:
            if self._store is None:
                self.release()
            else:
                await asyncio.to_thread(self.release)
        finally:
            self._loop_lock().release()

    def _enter_store(self) -> None:
        if self._store is not None:
            section = self._store.locked()
            section.__enter__()
            self._section = section

    def _exit_store(self) -> None:
        section, self._section = self._section, None
        if section is not None:
            section.__exit__(None, None, None)

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock


class RefreshingCredential(Credential):
    """A credential that sometimes needs a token-endpoint round trip first.

    The delivery loop drives it (so no I/O here): with :attr:`lock` held it calls
    :meth:`begin_refresh`; a request comes back unless the store already had a fresh
    token; the answer goes to :meth:`finish_refresh`, which raises the typed error it
    amounts to (retryable for 429/5xx, :class:`AuthenticationError` only when the grant
    is really gone).
    """

    lock: RefreshLock

    @property
    @abc.abstractmethod
    def generation(self) -> int:
        """Changes whenever the credential adopts new tokens (to spot others' refreshes)."""

    @abc.abstractmethod
    def needs_refresh(self) -> bool:
        """Whether the token is missing or about to expire (a cheap, lock-free check)."""

    def is_expired_response(self, response: ResponseView) -> bool:
        """Whether a vendor answer says the access token expired (refresh once, resend)."""
        return False

    @abc.abstractmethod
    def begin_refresh(self, seen_generation: int) -> PreparedRequest | None:
        """With the lock held: the token request, or ``None`` if no refresh is needed now
        (another thread or process already renewed what *seen_generation* used)."""

    @abc.abstractmethod
    def finish_refresh(self, response: ResponseView) -> None:
        """With the lock held: adopt the token endpoint's answer (saved first) or raise."""


_FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
    "User-Agent": "msgbridge",
}

#: OAuth error codes that mean the refresh token will never work again.
_GRANT_GONE = frozenset(
    {"invalid_grant", "bad_refresh_token", "invalid_client", "unauthorized_client"}
)


class RefreshingOAuth(RefreshingCredential):
    """OAuth access tokens renewed with a refresh token, before they expire.

    A 401 that :meth:`is_expired_response` recognises triggers one refresh and one
    resend; any other 401 or 403 is left to the adapter (HighLevel's "No conversation
    provider" 403 must never refresh). A token endpoint answering 5xx, 429 or not at
    all is retried like any vendor hiccup; only a 4xx answer is an
    :class:`AuthenticationError` (saying the account must be re-authorised when the
    vendor says the grant is gone).
    """

    #: Where refresh requests go; subclasses set the vendor's endpoint.
    default_token_url: ClassVar[str]

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
        self._client_id = check_secret("client_id", client_id)
        self._client_secret = check_secret("client_secret", client_secret)
        self.token_url = check_token_url(token_url or self.default_token_url)
        if not isinstance(refresh_margin, (int, float)) or not 0 <= refresh_margin < 86_400:
            raise ConfigurationError(
                "refresh_margin must be a number of seconds from 0 to 86400", key="refresh_margin"
            )
        self.refresh_margin = float(refresh_margin)
        self._clock = clock
        self._store: TokenStore = store if store is not None else MemoryTokenStore()
        if refresh_token is not None:
            initial = TokenSet(
                access_token=check_secret("access_token", access_token) if access_token else "",
                refresh_token=check_secret("refresh_token", refresh_token),
                expires_at=expires_at if access_token else 0.0,
            )
            if self._store.load() is None:
                self._store.save(initial)
        loaded = self._store.load()
        if loaded is None:
            raise ConfigurationError(
                "an OAuth credential needs a refresh_token or a store that holds one",
                key="refresh_token",
            )
        self._tokens: TokenSet = loaded
        self._generation = 0
        self._authorization = {"Authorization": f"Bearer {loaded.access_token}"}
        self.lock = RefreshLock(self._store)
        #: Number of refreshes this process performed (observable for tests and metrics).
        self.refresh_count = 0

    # -- vendor specifics ---------------------------------------------------------

    @abc.abstractmethod
    def refresh_form(self, refresh_token: str) -> dict[str, str]:
        """Form fields of the vendor's refresh request."""

    def grant_gone(self, response: ResponseView, data: dict[str, Any] | None) -> bool:
        """Whether a 4xx from the token endpoint means the refresh token is dead."""
        if data is None:
            return False
        code = str(data.get("error") or data.get("category") or data.get("status") or "")
        text = _vendor_text(data, response).lower()
        return code.lower() in _GRANT_GONE or "invalid grant" in text or "invalid_grant" in text

    def parse_token_response(self, response: ResponseView) -> TokenSet:
        """The new token pair, or the typed error the token endpoint's answer amounts to."""
        data = response.json_object()
        status = response.status
        if 200 <= status < 300:
            access = data.get("access_token") if data else None
            if not isinstance(access, str) or not access:
                raise MalformedResponse(
                    "the token endpoint answered without an access_token", http_status=status
                )
            refresh = data.get("refresh_token") if data else None
            if not isinstance(refresh, str) or not refresh:
                refresh = self._tokens.refresh_token
            expires_in = data.get("expires_in") if data else None
            expires_at = (
                self._clock() + float(expires_in)
                if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
                else None
            )
            keep = {
                k: v
                for k, v in (data or {}).items()
                if k not in {"access_token", "refresh_token", "id_token"}
                and isinstance(v, (str, int))
            }
            return TokenSet(access, refresh, expires_at, keep)
        message = _vendor_text(data, response)
        if status == 429:
            from msgbridge.wire import parse_retry_after

            raise RateLimited(
                f"the token endpoint is rate limiting (vendor said: {message})",
                http_status=status,
                vendor_message=message,
                retry_after=parse_retry_after(response),
            )
        if status >= 500 or status == 408:
            raise VendorUnavailable(
                f"the token endpoint is unavailable (vendor said: {message})",
                http_status=status,
                vendor_message=message,
            )
        if self.grant_gone(response, data):
            raise AuthenticationError(
                "token refresh was rejected; the account must be re-authorised "
                f"(vendor said: {message})",
                http_status=status,
                vendor_message=message,
            )
        raise AuthenticationError(
            f"the token endpoint refused the refresh (vendor said: {message}); check the "
            "client id, client secret and token_url",
            http_status=status,
            vendor_message=message,
        )

    # -- the credential contract --------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        return self._authorization

    def needs_refresh(self) -> bool:
        tokens = self._tokens
        return not tokens.access_token or tokens.expiring(self._clock(), self.refresh_margin)

    def begin_refresh(self, seen_generation: int) -> PreparedRequest | None:
        stored = self._store.load()  # another process may have rotated the pair
        if stored is not None and stored != self._tokens:
            self._adopt(stored)
        if self._generation != seen_generation and not self.needs_refresh():
            return None
        body = urlencode(self.refresh_form(self._tokens.refresh_token)).encode()
        return PreparedRequest(
            "POST", self.token_url, _FORM_HEADERS, body, operation=Operation.REFRESH_TOKEN
        )

    def finish_refresh(self, response: ResponseView) -> None:
        new = self.parse_token_response(response)
        self._store.save(new)  # persisted before use: a crash now loses nothing
        self._adopt(new)
        self.refresh_count += 1
        log.info("msgbridge: refreshed an OAuth access token for %s", type(self).__name__)

    def _adopt(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        self._authorization = {"Authorization": f"Bearer {tokens.access_token}"}
        self._generation += 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={_REDACTED}, token_url={self.token_url!r})"

    __str__ = __repr__


def _vendor_text(data: dict[str, Any] | None, response: ResponseView) -> str:
    if data is not None:
        message = data.get("message") or data.get("error_description") or data.get("error")
        if isinstance(message, list):
            return "; ".join(str(m) for m in message)
        if message:
            return str(message)[:300]
    return f"HTTP {response.status}"
