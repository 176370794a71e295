"""What observers see of each delivery attempt."""

from __future__ import annotations

import attrs

from msgbridge.adapter import Operation

__all__ = ["DeliveryAttempt"]


@attrs.frozen
class DeliveryAttempt:
    """One HTTP attempt: what was tried, how it ended, and whether it will be retried."""

    connection: str
    adapter: str
    operation: Operation
    subject_id: str
    attempt: int
    #: HTTP status, or ``None`` for transport failures.
    http_status: int | None
    #: Seconds the attempt took (by the bridge's clock).
    elapsed: float
    #: Name of the error class, or ``None`` when the attempt succeeded.
    error: str | None = None
    will_retry: bool = False
    #: Seconds the bridge will wait before the next attempt.
    delay: float | None = None
    trace_id: str | None = None
    #: Seconds this attempt waited for the connection's rate limiter before it was sent.
    limiter_wait: float = 0.0
