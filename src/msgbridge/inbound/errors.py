"""Why a webhook was refused, as typed errors (all under :class:`~msgbridge.errors.MessagingError`).

Verification fails closed: a missing or malformed signature header, an unknown algorithm,
a stale timestamp and a wrong signature are each an error, never a skip. Every error says
which HTTP status the intake answers with (``response_status``) and never carries the
secret, the key or the signature itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgbridge.errors import MessagingError

__all__ = [
    "IntakeBusy",
    "MalformedWebhook",
    "PayloadTooLarge",
    "SignatureInvalid",
    "SignatureMissing",
    "UnknownWebhookSource",
    "WebhookExpired",
    "WebhookRejected",
]


class WebhookRejected(MessagingError):
    """A webhook request was refused; nothing from it was stored."""

    #: The status the intake answers with.
    response_status: ClassVar[int] = 400

    def __init__(self, message: str, *, header: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        #: The header at fault, when one is (``X-GHL-Signature``, ...).
        self.header = header


class SignatureMissing(WebhookRejected):
    """The signature (or its timestamp) header is absent: refused, never skipped."""

    response_status = 401


class SignatureInvalid(WebhookRejected):
    """The signature is malformed, uses an unknown algorithm, or does not match the raw body."""

    response_status = 401


class WebhookExpired(WebhookRejected):
    """The signed timestamp is outside the allowed window (a replay or a badly late retry)."""

    response_status = 401


class MalformedWebhook(WebhookRejected):
    """Correctly signed, but the payload is not what the vendor documents."""

    response_status = 400


class PayloadTooLarge(WebhookRejected):
    """The body is larger than the intake's limit."""

    response_status = 413


class UnknownWebhookSource(WebhookRejected):
    """The request names no configured webhook source (a wrong URL)."""

    response_status = 404


class IntakeBusy(WebhookRejected):
    """More requests in flight than the intake's concurrency bound; the vendor should retry.

    Answered with 429 because HighLevel retries its webhooks on 429 only.
    """

    response_status = 429
    default_retryable = True
