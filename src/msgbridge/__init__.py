"""msgbridge: report message delivery status to many CRMs through one neutral model."""

from __future__ import annotations

from msgbridge.adapter import (
    Adapter,
    AdapterDefaults,
    Capabilities,
    Fidelity,
    Operation,
    RateBudget,
    RequestSpec,
    ResponseView,
    StateMapping,
    VendorResult,
)
from msgbridge.auth import (
    BearerToken,
    Credential,
    HeaderToken,
    MemoryTokenStore,
    RefreshingCredential,
    RefreshingOAuth,
    SharedTokenStore,
    TokenSet,
    TokenStore,
)
from msgbridge.bridge import AsyncBridge, Bridge, Unsettled
from msgbridge.connection import Connection
from msgbridge.email_status import EmailEvents, EmailRecipientStatus, EmailState, EmailStatusUpdate
from msgbridge.events import DeliveryAttempt
from msgbridge.guard import StateGuard
from msgbridge.hookspecs import hookimpl
from msgbridge.model import (
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    Outcome,
    Receipt,
    StatusError,
)
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy

__all__ = [
    "Adapter",
    "AdapterDefaults",
    "AdapterRegistry",
    "AsyncBridge",
    "BearerToken",
    "Bridge",
    "Capabilities",
    "Connection",
    "ConversationUpdate",
    "Credential",
    "DeliveryAttempt",
    "DeliveryState",
    "EmailEvents",
    "EmailRecipientStatus",
    "EmailState",
    "EmailStatusUpdate",
    "Fidelity",
    "HeaderToken",
    "MemoryTokenStore",
    "MessageStatus",
    "Operation",
    "Outcome",
    "RateBudget",
    "Receipt",
    "RefreshingCredential",
    "RefreshingOAuth",
    "RequestSpec",
    "ResponseView",
    "RetryPolicy",
    "SharedTokenStore",
    "StateGuard",
    "StateMapping",
    "StatusError",
    "TokenSet",
    "TokenStore",
    "Unsettled",
    "VendorResult",
    "hookimpl",
]

__version__ = "0.1.0"
