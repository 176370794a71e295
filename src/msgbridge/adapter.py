"""The sans-I/O adapter contract shared by built-in and third-party adapters.

An adapter turns a neutral update into a :class:`RequestSpec` and a vendor's answer
(:class:`ResponseView`) into a :class:`VendorResult` or a typed
:class:`~msgbridge.errors.MessagingError`. It never touches the network, a clock or a
file, so one adapter serves the sync and the async bridge and is tested with no I/O.
No httpx type appears here: the core may change HTTP library without breaking a plugin.
"""

from __future__ import annotations

import abc
import enum
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from urllib.parse import quote

import attrs

from msgbridge.email_status import EmailStatusUpdate
from msgbridge.errors import (
    ConfigurationError,
    InvalidStatus,
    MessagingError,
    UnsafeRequest,
    UnsupportedOperation,
    UnsupportedStatus,
)
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus
from msgbridge.validation import check_url

if TYPE_CHECKING:
    from msgbridge.auth import Credential, TokenStore
    from msgbridge.inbound.model import IncomingMessage
    from msgbridge.inbound.verify import WebhookVerifier

__all__ = [
    "OPTIONAL_STATUS_FIELDS",
    "Adapter",
    "AdapterDefaults",
    "Capabilities",
    "Fidelity",
    "Operation",
    "PreparedRequest",
    "RateBudget",
    "RateFeedback",
    "RequestSpec",
    "ResponseView",
    "StateMapping",
    "VendorResult",
    "check_base_url",
    "check_path",
    "dropped_fields",
    "path_segment",
    "resolve_base_url",
]


class Operation(str, enum.Enum):
    UPDATE_STATUS = "update_status"
    UPDATE_CONVERSATION = "update_conversation"
    #: An email's delivery events and per-recipient statuses (HighLevel v3).
    UPDATE_EMAIL_STATUS = "update_email_status"
    #: A credential renewing its access token (not an adapter operation; seen in events).
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - an operation name, not a secret
    #: Publish a contact's message into the CRM (``prepare_inbound``).
    PUBLISH_INBOUND = "publish_inbound"


class Fidelity(str, enum.Enum):
    """How truthfully a vendor value represents a neutral state."""

    EXACT = "exact"
    #: A truthful but coarser vendor value (HubSpot has no DELIVERED; SENT is true of it).
    COARSE = "coarse"
    NONE = "none"


@attrs.frozen
class StateMapping:
    fidelity: Fidelity
    vendor_value: str | None = None

    @classmethod
    def exact(cls, value: str) -> StateMapping:
        return cls(Fidelity.EXACT, value)

    @classmethod
    def coarse(cls, value: str) -> StateMapping:
        return cls(Fidelity.COARSE, value)

    @classmethod
    def none(cls) -> StateMapping:
        return cls(Fidelity.NONE, None)

    @property
    def sendable(self) -> bool:
        return self.fidelity is not Fidelity.NONE


@attrs.frozen
class Capabilities:
    """What an adapter can do; the bridge consults it before calling ``prepare_*``."""

    operations: frozenset[Operation]
    states: Mapping[DeliveryState, StateMapping]

    def __attrs_post_init__(self) -> None:
        missing = [s.value for s in DeliveryState if s not in self.states]
        if missing:
            raise ConfigurationError(
                f"capabilities must map every state; missing: {', '.join(missing)} "
                "(use StateMapping.none() for states the vendor cannot take)"
            )

    def mapping(self, state: DeliveryState) -> StateMapping:
        return self.states[state]


@attrs.frozen
class RateBudget:
    """``requests`` per ``per_seconds`` for one connection (the vendor's burst limit)."""

    requests: int
    per_seconds: float
    #: The vendor's daily cap, for information (the limiter paces the burst window only).
    daily: int | None = None


@attrs.frozen
class RateFeedback:
    """What a vendor's rate-limit headers said (every field optional)."""

    remaining: int | None = None
    maximum: int | None = None
    #: Length of the vendor's window, in seconds.
    window: float | None = None
    #: Requests left today (HighLevel ``X-RateLimit-Daily-Remaining``, HubSpot
    #: ``X-HubSpot-RateLimit-Daily-Remaining``), when the vendor says.
    daily_remaining: int | None = None
    #: The vendor's daily cap, when it says.
    daily_maximum: int | None = None


@attrs.frozen
class AdapterDefaults:
    #: The vendor's API root; a connection's ``base_url`` setting overrides it (see
    #: :meth:`Adapter.base_url`). Request paths are joined to it by the core.
    base_url: str
    rate_budget: RateBudget
    version: str | None = None


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class RequestSpec:
    """A vendor request, described, not sent. Never holds credentials.

    ``path`` (and query) is relative to the connection's base URL, which the core owns:
    it starts with ``/``, is already percent-encoded (:func:`path_segment` per id) and
    is checked by :func:`check_path` before anything is sent.
    """

    method: str
    path: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    json: Any = None
    #: Which operation and id this request is about, for logs and errors.
    operation: Operation = Operation.UPDATE_STATUS
    subject_id: str = ""
    #: Adapter-private facts carried from ``prepare`` to ``interpret``; never sent.
    context: Mapping[str, Any] = attrs.field(factory=dict)
    #: Neutral fields the caller gave that this vendor cannot carry (e.g.
    #: ``"email_message_id"``, ``"error.code"``); copied into the receipt so nothing is
    #: lost silently.
    dropped: tuple[str, ...] = attrs.field(default=(), converter=_names)
    #: Whether sending this request again after an ambiguous transport failure (it may
    #: have reached the vendor: dropped connection, read timeout) is safe. ``False`` for
    #: a request without an idempotency key that would duplicate something (HighLevel's
    #: inbound publish): such a failure then ends in
    #: :class:`~msgbridge.errors.OutcomeUnknown` instead of a retry. A failure that
    #: surely sent nothing (:class:`~msgbridge.errors.ConnectFailed`) is always retried.
    retry_when_ambiguous: bool = True

    def body_bytes(self) -> bytes | None:
        if self.json is None:
            return None
        return _encode_json(self.json).encode()

    def prepare(self, base_url: str) -> PreparedRequest:
        """The bytes and headers that go on the wire (before the credential's headers).

        *base_url* is the connection's checked base URL without its trailing ``/`` (see
        :func:`resolve_base_url`); the path is checked (:func:`check_path`, raising
        :class:`~msgbridge.errors.UnsafeRequest`) and appended to it, nothing parsed.
        """
        url = base_url + check_path(self.path)
        body = self.body_bytes()
        headers = dict(_JSON_HEADERS if body is not None else _ACCEPT_HEADERS)
        headers.update(self.headers)
        return PreparedRequest(
            self.method,
            url,
            headers,
            body,
            operation=self.operation,
            subject_id=self.subject_id,
            retry_when_ambiguous=self.retry_when_ambiguous,
        )


#: Compact UTF-8 JSON; one encoder for every request (``json.dumps`` with options builds
#: a new one per call).
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: Headers msgbridge sends on every request unless the adapter sets its own.
_ACCEPT_HEADERS = {"Accept": "application/json", "User-Agent": "msgbridge"}
_JSON_HEADERS = {**_ACCEPT_HEADERS, "Content-Type": "application/json"}


@attrs.frozen
class PreparedRequest:
    """A request exactly as it goes on the wire: what credentials sign and senders send.

    ``url`` is already encoded (senders must not re-encode it) and ``body`` is the exact
    bytes; ``headers`` holds every header msgbridge sets, credentials' included once
    :meth:`with_headers` has added them. Never logged: it may hold secrets.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    operation: Operation = Operation.UPDATE_STATUS
    subject_id: str = ""
    #: ``RequestSpec.retry_when_ambiguous``: a sender must never resend this request on
    #: its own (e.g. on a stale keep-alive connection) when it is ``False``.
    retry_when_ambiguous: bool = True

    def with_headers(self, extra: Mapping[str, str]) -> PreparedRequest:
        if not extra:
            return self
        return PreparedRequest(
            self.method,
            self.url,
            {**self.headers, **extra},
            self.body,
            self.operation,
            self.subject_id,
            self.retry_when_ambiguous,
        )

    def __repr__(self) -> str:
        return f"PreparedRequest({self.method} {self.url.split('?', 1)[0]!r}, <headers hidden>)"


_NOT_PARSED = object()
_decode_json = json.JSONDecoder().decode


def _parse_json(body: bytes) -> Any:
    """JSON from *body*, or ``None``. UTF-8 (what the vendors send) is decoded
    directly; anything else (a BOM, UTF-16) gets ``json.loads``' detection."""
    try:
        return _decode_json(body.decode())
    except ValueError:  # UnicodeDecodeError included
        try:
            return json.loads(body)
        except ValueError:
            return None


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@attrs.define
class ResponseView:
    """A vendor's answer as adapters see it: status, lower-cased headers, raw body."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_lower_keys)
    body: bytes = b""
    _parsed: Any = attrs.field(default=_NOT_PARSED, init=False, repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is empty or not JSON."""
        parsed = self._parsed
        if parsed is _NOT_PARSED:
            parsed = _parse_json(self.body) if self.body else None
            object.__setattr__(self, "_parsed", parsed)  # no attrs setattr hooks: hot path
        return parsed

    def json_object(self) -> dict[str, Any] | None:
        """The body when it is a JSON object, else ``None``."""
        parsed = self.json()
        return parsed if isinstance(parsed, dict) else None

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode("utf-8", "replace")


@attrs.frozen
class VendorResult:
    """What a successful vendor answer told us."""

    http_status: int
    vendor_ids: Mapping[str, str] = attrs.field(factory=dict)
    trace_id: str | None = None
    #: The status the vendor reports after the update, when it says.
    vendor_status: str | None = None
    #: Set when the vendor applied the update but its answer was not what its docs say
    #: (e.g. a 2xx body that cannot be read): the update is still applied, never failed.
    warning: str | None = None


def path_segment(field: str, value: str) -> str:
    """Encode *value* as exactly one URL path segment (``/ ? # %`` included)."""
    if _UNRESERVED(value) is not None and value not in {".", ".."}:
        return value  # nothing to encode (the usual id): skip quote()
    if not value or value in {".", ".."}:
        raise InvalidStatus(f"{field} {value!r} cannot be a URL path segment", field=field)
    return quote(value, safe="")


#: RFC 3986 unreserved characters: a segment made only of these is already encoded.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+").fullmatch

#: RFC 3986 ``pchar`` without ``%`` (percent-escapes are matched on their own).
_PCHAR = r"\-A-Za-z0-9._~!$&'()*+,;=:@"
_ESCAPED = r"%[0-9A-Fa-f]{2}"
#: A dot segment, plain or percent-encoded (servers may decode ``%2e`` before resolving).
_DOTS = r"(?:\.|%2[eE]){1,2}(?=[/?]|\Z)"
#: A relative reference the core may append to a base URL: ``/`` then encoded segments
#: (no dot segment, no leading ``//``), then an optional encoded query; no fragment.
#: Written as "unrolled loops" (no nested ambiguous repeats), so it runs in linear time.
_SAFE_PATH = re.compile(
    rf"(?!//)(?:/(?!{_DOTS})[{_PCHAR}]*(?:{_ESCAPED}[{_PCHAR}]*)*)+"
    rf"(?:\?[{_PCHAR}/?]*(?:{_ESCAPED}[{_PCHAR}/?]*)*)?\Z"
).match

#: Segments of ``pchar`` only: with no ``//`` and no ``/.`` it is a safe path (fast path).
_PLAIN_PATH = re.compile(rf"/[{_PCHAR}/]*").fullmatch


def check_path(path: str) -> str:
    """*path* unchanged if it is a safe request path relative to the base URL.

    The rules: a string starting with one ``/`` (no scheme, no ``//host``), every
    character an RFC 3986 path or query character or a well-formed ``%XX`` escape (no
    space, CR/LF, ``\\``, ``#`` or non-ASCII), and no ``.``/``..`` segment, encoded or
    not. Anything else is :class:`~msgbridge.errors.UnsafeRequest`: a request that could
    reach another host or path than the adapter meant is never sent.
    """
    if type(path) is str and (
        # The usual path (plain segments, no escape, query or dot) takes one cheap match.
        (_PLAIN_PATH(path) is not None and "//" not in path and "/." not in path)
        or _SAFE_PATH(path) is not None
    ):
        return path
    raise UnsafeRequest(
        f"the adapter's request path {_shown_path(path)} is unsafe: {_path_problem(path)}; "
        "expected an encoded path relative to the base URL, such as '/v1/messages/"
        "<path_segment(id)>/status' (the core joins it to the connection's base_url)"
    )


def _shown_path(path: object) -> str:
    return ascii(path)[:200] if isinstance(path, str) else f"of type {type(path).__name__}"


def _path_problem(path: object) -> str:
    """What is wrong with a path :func:`check_path` refused (the slow path only)."""
    if not isinstance(path, str):
        return "it must be a string"
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", path):
        return "it has a scheme (an absolute URL); return only the path"
    if path.startswith("//"):
        return "it starts with '//' (a host, not a path)"
    if not path.startswith("/"):
        return "it does not start with '/'"
    for position, char in enumerate(path):
        if char in "\r\n":
            return f"it contains a line break at character {position}"
        if not 0x21 <= ord(char) <= 0x7E:
            return f"character {position} ({char!a}) is not printable ASCII; percent-encode it"
        if char == "#":
            return f"it contains a fragment ('#' at character {position})"
        if char == "%" and re.match(_ESCAPED, path[position:]) is None:
            return f"'%' at character {position} does not start a %XX escape"
        if char not in "/?%" and re.match(f"[{_PCHAR}]", char) is None:
            return f"character {position} ({char!a}) must be percent-encoded"
    return "it has a '.' or '..' segment (a traversal)"


#: The optional content of a :class:`~msgbridge.model.MessageStatus` that a vendor may
#: have no place for (addressing and ordering fields are not content).
OPTIONAL_STATUS_FIELDS = ("email_message_id", "recipients", "error.code", "error.kind")


def dropped_fields(update: MessageStatus, *, carried: Iterable[str]) -> tuple[str, ...]:
    """Which of :data:`OPTIONAL_STATUS_FIELDS` *update* gives and the vendor does not
    carry; put them in ``RequestSpec.dropped`` so the receipt says so."""
    keep = set(carried) if carried else set()
    unknown = keep.difference(OPTIONAL_STATUS_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; known: {OPTIONAL_STATUS_FIELDS}")
    error = update.error
    if error is None and update.email_message_id is None and not update.recipients:
        return ()  # the usual update gives none of them
    given = {
        "email_message_id": update.email_message_id is not None,
        "recipients": bool(update.recipients),
        "error.code": error is not None and error.code is not None,
        "error.kind": error is not None and error.kind is not None,
    }
    return tuple(name for name in OPTIONAL_STATUS_FIELDS if given[name] and name not in keep)


def check_base_url(value: str, *, key: str = "base_url") -> str:
    """A base URL without its trailing ``/``, refused if it would leak tokens.

    The :func:`msgbridge.validation.check_url` rules: https (plain http only on
    loopback), no ``user:password@``, no query or fragment, printable ASCII.
    """
    return check_url(value, key=key).rstrip("/")


def resolve_base_url(adapter: Adapter[Any], settings: Any, *, connection: str | None = None) -> str:
    """The connection's base URL, checked once: :meth:`Adapter.base_url` through
    :func:`check_base_url`, so request paths are joined to it by concatenation alone.

    A bad URL is a :class:`~msgbridge.errors.ConfigurationError` (key ``base_url``)
    naming the connection and where the URL came from; it never shows a password.
    """
    where = f"connection {connection!r}" if connection is not None else f"adapter {adapter.id!r}"
    try:
        raw = adapter.base_url(settings)
    except MessagingError as exc:
        raise exc.with_context(connection=connection, adapter=adapter.id) from None
    except Exception as exc:  # a plugin bug is still a typed error naming the connection
        raise ConfigurationError(
            f"{where}: adapter {adapter.id!r} failed to give its base URL: "
            f"{type(exc).__name__}: {exc}",
            key="base_url",
            connection=connection,
            adapter=adapter.id,
        ) from exc
    if raw is not None and raw == getattr(settings, "base_url", None):
        source = "setting base_url"
    elif raw == adapter.defaults.base_url:
        source = f"adapter {adapter.id!r}'s default base_url"
    else:
        source = f"adapter {adapter.id!r}'s base_url"
    try:
        return check_base_url(raw)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{where}: {source}: {exc.message}",
            key="base_url",
            connection=connection,
            adapter=adapter.id,
        ) from None


S = TypeVar("S")


class Adapter(abc.ABC, Generic[S]):
    """Translate neutral updates for one vendor. Subclass, then register it.

    Instances describe an adapter (id, defaults, capabilities); per-connection
    settings are parsed once by :meth:`parse_settings` and passed to every call.
    ``prepare_*`` return paths relative to the connection's base URL
    (:meth:`base_url`); the core joins them, so no adapter builds an absolute URL.
    """

    #: Registered id, e.g. ``"highlevel"``. Lower-case, no spaces.
    id: str
    #: An attrs class; its fields are the connection's ``settings`` keys.
    settings_type: type[S]
    capabilities: Capabilities
    defaults: AdapterDefaults
    #: The adapter this one is a variant of (``"highlevel"`` for Leadway), if any.
    variant_of: str | None = None
    description: ClassVar[str] = ""
    #: The vendor answers JSON. Then a 2xx whose body is not JSON at all (an HTML
    #: maintenance page, a proxy's or a web site's catch-all answer to a wrong
    #: ``base_url``) is not taken as the vendor's word that the update was applied: the
    #: core reports a retryable :class:`~msgbridge.errors.MalformedResponse` before
    #: :meth:`interpret` sees it. Set ``False`` for a vendor whose answers are not JSON.
    answers_json: ClassVar[bool] = True

    def parse_settings(self, raw: Mapping[str, Any]) -> S:
        """Build typed settings; unknown or invalid keys raise ``ConfigurationError``."""
        from msgbridge.settings import structure_settings

        return structure_settings(raw, self.settings_type, adapter=self.id)

    def base_url(self, settings: S) -> str:
        """The URL request paths are relative to: the settings' ``base_url`` when the
        settings class has one and it is set, else ``defaults.base_url``.

        Called once per connection; the core checks the result (https unless loopback,
        no userinfo, query or fragment) and strips its trailing ``/``. Override it only
        for a vendor whose host depends on other settings (a region, an account).
        """
        value = getattr(settings, "base_url", None)
        return self.defaults.base_url if value is None else value

    @abc.abstractmethod
    def prepare_status(self, update: MessageStatus, settings: S) -> RequestSpec:
        """Describe the request that sets *update* (its state is mapped, not NONE)."""

    def prepare_conversation(self, update: ConversationUpdate, settings: S) -> RequestSpec:
        raise UnsupportedOperation(
            f"adapter {self.id!r} cannot update conversations", adapter=self.id
        )

    def prepare_email_status(self, update: EmailStatusUpdate, settings: S) -> RequestSpec:
        """Describe the request that reports an email's status (``UPDATE_EMAIL_STATUS``)."""
        raise UnsupportedOperation(
            f"adapter {self.id!r} cannot update email statuses", adapter=self.id
        )

    def prepare_inbound(self, message: IncomingMessage, settings: S) -> RequestSpec:
        """Describe the request that publishes a contact's *message* (optional)."""
        raise UnsupportedOperation(
            f"adapter {self.id!r} cannot publish incoming messages", adapter=self.id
        )

    def webhook_verifier(self, options: Mapping[str, Any]) -> WebhookVerifier:
        """A verifier for this vendor's webhooks, configured by *options* (optional)."""
        raise UnsupportedOperation(f"adapter {self.id!r} does not verify webhooks", adapter=self.id)

    @abc.abstractmethod
    def interpret(self, request: RequestSpec, response: ResponseView, settings: S) -> VendorResult:
        """Read the vendor's answer, or raise the typed error it amounts to.

        *settings* are the connection's parsed settings (the same object ``prepare_*``
        got), for what the vendor's answer means per connection (e.g. a retry delay).
        """

    def credentials_from_token(self, token: str) -> Credential:
        """The credential for a static access token from configuration (``token_env``).

        Bearer by default; a vendor with another scheme returns its own
        :class:`~msgbridge.auth.Credential` (Chatwoot's ``api_access_token`` header).
        """
        from msgbridge.auth import BearerToken

        return BearerToken(token)

    def credentials_from_oauth(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str | None,
        store: TokenStore | None,
        token_url: str | None,
    ) -> Credential:
        """The refreshing credential for an OAuth app from configuration, if the vendor
        has one (HighLevel, HubSpot); others refuse with a clear error."""
        raise ConfigurationError(
            f"adapter {self.id!r} has no OAuth flow; configure token_env with an access "
            "token instead",
            key="oauth",
        )

    def rate_limit_feedback(self, response: ResponseView) -> RateFeedback | None:
        """Read the vendor's rate-limit headers so the limiter can adapt (optional)."""
        return None

    def vendor_value(self, state: DeliveryState) -> str | None:
        return self.capabilities.mapping(state).vendor_value

    def sendable_value(self, state: DeliveryState) -> str:
        """The vendor value for *state*, or ``UnsupportedStatus`` if it has none."""
        value = self.capabilities.mapping(state).vendor_value
        if value is None:
            raise UnsupportedStatus(
                f"adapter {self.id!r} has no value for state {state.value!r}", adapter=self.id
            )
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r}>"
