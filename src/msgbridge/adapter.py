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
    "dropped_fields",
    "path_segment",
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
    base_url: str
    rate_budget: RateBudget
    version: str | None = None


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class RequestSpec:
    """A vendor request, described, not sent. Never holds credentials."""

    method: str
    url: str
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

    def prepare(self) -> PreparedRequest:
        """The bytes and headers that go on the wire (before the credential's headers)."""
        body = self.body_bytes()
        headers = dict(_JSON_HEADERS if body is not None else _ACCEPT_HEADERS)
        headers.update(self.headers)
        return PreparedRequest(
            self.method,
            self.url,
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


S = TypeVar("S")


class Adapter(abc.ABC, Generic[S]):
    """Translate neutral updates for one vendor. Subclass, then register it.

    Instances describe an adapter (id, defaults, capabilities); per-connection
    settings are parsed once by :meth:`parse_settings` and passed to every call.
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

    def parse_settings(self, raw: Mapping[str, Any]) -> S:
        """Build typed settings; unknown or invalid keys raise ``ConfigurationError``."""
        from msgbridge.settings import structure_settings

        return structure_settings(raw, self.settings_type, adapter=self.id)

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
    def interpret(self, request: RequestSpec, response: ResponseView) -> VendorResult:
        """Read the vendor's answer, or raise the typed error it amounts to."""

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
