"""The other half of the loop: verified webhook intake and incoming-message publishing.

::

    from msgbridge.inbound import Intake, InboundStore
    from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier

    def handle(delivery):            # sync or async; idempotent on delivery.key
        send_sms(delivery.event.outbound)

    intake = Intake(InboundStore("inbound.db"), {"highlevel": HighLevelWebhookVerifier()}, handle)
    response = intake.handle(request_headers, raw_body)   # or mount intake.asgi()

Verification is sans-I/O and per adapter (:class:`WebhookVerifier`); crypto comes from the
``webhooks`` extra (``cryptography``), which this package does not import.
"""

from msgbridge.inbound.errors import (
    IntakeBusy,
    MalformedWebhook,
    PayloadTooLarge,
    SignatureInvalid,
    SignatureMissing,
    UnknownWebhookSource,
    WebhookExpired,
    WebhookRejected,
)
from msgbridge.inbound.intake import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONCURRENCY,
    Handler,
    InboundDelivery,
    Intake,
    IntakeResponse,
)
from msgbridge.inbound.model import (
    ChannelKind,
    EventKind,
    IncomingMessage,
    OutboundRequest,
    Party,
    WebhookEvent,
)
from msgbridge.inbound.store import InboundStore, StoreOutcome
from msgbridge.inbound.verify import Headers, WebhookVerifier, verifier_for

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_CONCURRENCY",
    "ChannelKind",
    "EventKind",
    "Handler",
    "Headers",
    "InboundDelivery",
    "InboundStore",
    "IncomingMessage",
    "Intake",
    "IntakeBusy",
    "IntakeResponse",
    "MalformedWebhook",
    "OutboundRequest",
    "Party",
    "PayloadTooLarge",
    "SignatureInvalid",
    "SignatureMissing",
    "StoreOutcome",
    "UnknownWebhookSource",
    "WebhookEvent",
    "WebhookExpired",
    "WebhookRejected",
    "WebhookVerifier",
    "verifier_for",
]
