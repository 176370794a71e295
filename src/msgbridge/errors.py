"""One error family for every vendor.

Adapters raise these from ``interpret`` with what the vendor said; the bridge adds
where it happened (connection, adapter, message id) before the caller sees it. No
error ever carries a token or an ``Authorization`` header: errors are built only from
vendor response bodies, which the adapters never echo credentials into, and from ids.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectFailed",
    "InvalidStatus",
    "LeaseLost",
    "MalformedResponse",
    "MessagingError",
    "NotFound",
    "OutcomeUnknown",
    "PermissionDenied",
    "ProviderNotReady",
    "RateLimited",
    "RedirectRefused",
    "UnexpectedError",
    "UnsafeRequest",
    "UnsupportedOperation",
    "UnsupportedStatus",
    "VendorRejected",
    "VendorUnavailable",
]


class MessagingError(Exception):
    """Base of every msgbridge error.

    ``retryable`` says whether sending the same request again may succeed, and
    ``retry_after`` (seconds) how long to wait first when the vendor said so.
    """

    #: Default retryability of the class; instances may override it.
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        adapter: str | None = None,
        subject_id: str | None = None,
        http_status: int | None = None,
        vendor_message: str | None = None,
        trace_id: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.connection = connection
        self.adapter = adapter
        self.subject_id = subject_id
        self.http_status = http_status
        self.vendor_message = vendor_message
        self.trace_id = trace_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        #: How many HTTP attempts were made before this error was raised.
        self.attempts: int | None = None

    @property
    def message_id(self) -> str | None:
        """Alias of ``subject_id`` for status updates."""
        return self.subject_id

    def with_context(self, **context: Any) -> MessagingError:
        """Fill in where the error happened, keeping what is already known."""
        for key, value in context.items():
            if getattr(self, key, None) is None:
                setattr(self, key, value)
        return self

    def __str__(self) -> str:
        parts = [self.message]
        where = [
            f"{name}={value!r}"
            for name, value in (
                ("connection", self.connection),
                ("adapter", self.adapter),
                ("id", self.subject_id),
                ("http_status", self.http_status),
                ("trace_id", self.trace_id),
            )
            if value is not None
        ]
        if where:
            parts.append(f"({', '.join(where)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(MessagingError):
    """A connection, adapter, setting or plugin is wrong; raised before any I/O."""

    def __init__(self, message: str, *, key: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.key = key


class InvalidStatus(MessagingError):
    """An update is malformed (empty id, unknown state, ...); raised before any I/O."""

    def __init__(self, message: str, *, field: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.field = field


class UnsupportedStatus(MessagingError):
    """The adapter has no mapping for this state and the connection is strict."""


class UnsupportedOperation(MessagingError):
    """The adapter does not offer this operation (e.g. HubSpot conversation updates)."""


class AuthenticationError(MessagingError):
    """The vendor refused the credentials (401), or a refresh was rejected."""


class PermissionDenied(MessagingError):
    """Authenticated, but not allowed to do this (403)."""


class ProviderNotReady(PermissionDenied):
    """HighLevel's 403 "No conversation provider found for this message".

    The message has not been handed to the provider yet; the same request succeeds a
    few seconds later. Retryable after a delay, and never a reason to refresh a token.
    """

    default_retryable = True


class NotFound(MessagingError):
    """The vendor does not know the message, conversation or channel (404)."""


class RateLimited(MessagingError):
    """The vendor's budget for this account is spent (429); see ``retry_after``."""

    default_retryable = True


class VendorRejected(MessagingError):
    """The vendor refused the request as invalid (400, 409, 422, other 4xx)."""


class VendorUnavailable(MessagingError):
    """5xx or a transport failure (connect error, timeout, dropped connection)."""

    default_retryable = True


class ConnectFailed(VendorUnavailable):
    """The request certainly never reached the vendor: the connection could not be made
    (refused, connect timeout, DNS, TLS handshake, no free pooled connection).

    Always safe to retry, even for a request that must not be sent twice
    (``RequestSpec.retry_when_ambiguous=False``); senders report it only when they know
    no byte of the request went out.
    """


class OutcomeUnknown(MessagingError):
    """The request may or may not have been applied by the vendor, and msgbridge did not
    retry it, to avoid a duplicate.

    Raised for a request whose adapter said a repeat is unsafe
    (``retry_when_ambiguous=False``, e.g. HighLevel's inbound publish, which has no
    idempotency key) when the transport failed after the request may have been sent (the
    connection dropped, a read timeout, the deadline). Never retried: check the vendor
    (or accept at most once) instead; the outbox dead-letters it with this reason.
    """


class MalformedResponse(MessagingError):
    """The vendor answered success with a body we cannot read."""


class RedirectRefused(VendorRejected):
    """The vendor (or something in front of it) answered with a redirect.

    msgbridge never follows one: it would resend the credentials, and for a token
    refresh the client secret, to another origin. Check ``base_url``/``token_url``.
    """


class UnexpectedError(MessagingError):
    """An adapter, credential or sender raised something other than a msgbridge error.

    Contained to the one update it happened to (a ``FAILED`` receipt in ``update_many``,
    a dead letter in the outbox); never retried, since the same code would fail again.
    """


class UnsafeRequest(MessagingError):
    """An adapter prepared a request the core will not send: its path is not an encoded
    path relative to the connection's base URL (an absolute URL, ``//host``, a ``..``
    segment, a line break, a space or non-ASCII).

    Raised before any I/O and contained to its one update like any adapter failure (a
    ``FAILED`` receipt in ``update_many``); never retried, since the adapter would
    prepare the same request again.
    """


class LeaseLost(MessagingError):
    """This worker no longer holds the lease for the connection, so it must not send.

    Raised by a bridge's ``fence`` before an attempt; the update is left to the worker
    that holds the lease now (the outbox does not settle the row).
    """
