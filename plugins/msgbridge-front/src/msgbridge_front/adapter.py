"""Front: mark an outbound message as failed ("Update message status").

``PUT /messages/{message_id}/status`` with ``{"status": "failed", "reason"?: str}``
and ``Authorization: Bearer <API token or JWT>`` (msgbridge's
:class:`~msgbridge.auth.BearerToken`). Front answers ``204 No Content``. Front's only
status value is ``failed``: marking a message failed reopens its conversation so the
team can act. Source: https://dev.frontapp.com/reference/update-message-status (and the
sibling "Update external message status"), https://dev.frontapp.com/docs/rate-limiting.

State mapping:

============  ==========  ==========
neutral       Front       fidelity
============  ==========  ==========
pending       —           none (skipped)
sent          —           none (skipped)
delivered     —           none (skipped)
read          —           none (skipped)
failed        failed      exact (the reason from ``StatusError.message``)
============  ==========  ==========

The reason's field name is not shown in Front's reference (it documents an "optional
reason for the status change"); it is sent as ``reason`` unless the connection setting
``reason_field`` names another key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from msgbridge.adapter import (
    Adapter,
    AdapterDefaults,
    Capabilities,
    Operation,
    RateBudget,
    RateFeedback,
    RequestSpec,
    ResponseView,
    StateMapping,
    VendorResult,
    dropped_fields,
    path_segment,
)
from msgbridge.errors import (
    ConfigurationError,
    MalformedResponse,
    MessagingError,
    UnsupportedStatus,
)
from msgbridge.model import DeliveryState, MessageStatus
from msgbridge.wire import (
    ascii_pattern,
    error_for_status,
    error_text,
    int_header,
    parse_retry_after,
    seconds_until_reset,
    text_value,
)

__all__ = [
    "BASE_URL",
    "DEFAULT_REASON_FIELD",
    "FRONT_RATE_BUDGET",
    "RATE_LIMIT_WINDOW",
    "STATES",
    "FrontAdapter",
    "FrontSettings",
]

BASE_URL = "https://api2.frontapp.com"
#: Assumed name of the optional reason (Front's reference does not show it).
DEFAULT_REASON_FIELD = "reason"

STATES: Mapping[DeliveryState, StateMapping] = {
    DeliveryState.PENDING: StateMapping.none(),
    DeliveryState.SENT: StateMapping.none(),
    DeliveryState.DELIVERED: StateMapping.none(),
    DeliveryState.READ: StateMapping.none(),
    DeliveryState.FAILED: StateMapping.exact("failed"),
}

#: Front's limits are per company, per minute: 50 (Starter), 100 and 200 on higher plans,
#: 120 for partner OAuth apps. 50 per 60 s is the lowest documented budget, so it is
#: safe on every plan; raise it per connection with ``Connection(rate_limit=(100, 60))``.
#: The limiter also lowers itself to Front's ``x-ratelimit-limit`` when that is smaller.
FRONT_RATE_BUDGET = RateBudget(requests=50, per_seconds=60.0)
#: Front's limits are "requests per minute"; the window its headers count in.
RATE_LIMIT_WINDOW = 60.0

#: A plain JSON key: ASCII, whole string (``\Z``: ``"reason\n"`` does not pass).
_FIELD = ascii_pattern(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _reason_field(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _FIELD.match(value) or value == "status":
        raise ConfigurationError(
            f"reason_field must be a JSON key such as 'reason' or 'error_message' (not "
            f"'status'), got {ascii(value)[:70]}",
            key="reason_field",
        )


@attrs.frozen
class FrontSettings:
    """Connection settings for Front (all optional)."""

    #: Override the API host (e.g. the emulator's ``http://127.0.0.1:PORT/front``);
    #: checked by the core when the connection is set up.
    base_url: str | None = None
    #: The body key carrying the failure reason (unconfirmed at Front; see the README).
    reason_field: str = attrs.field(default=DEFAULT_REASON_FIELD, validator=_reason_field)


class FrontAdapter(Adapter[FrontSettings]):
    """Front channel messages: mark an outbound message as failed."""

    id = "front"
    settings_type = FrontSettings
    description = "Front: mark outbound messages failed (Front accepts no other status)"

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPDATE_STATUS}), states=STATES
        )
        self.defaults = AdapterDefaults(base_url=BASE_URL, rate_budget=FRONT_RATE_BUDGET)

    def prepare_status(self, update: MessageStatus, settings: FrontSettings) -> RequestSpec:
        value = self.vendor_value(update.state)
        if value is None:
            raise UnsupportedStatus(
                f"Front accepts only 'failed'; it has no value for {update.state.value!r}",
                adapter=self.id,
                subject_id=update.message_id,
            )
        body: dict[str, Any] = {"status": value}
        if update.error is not None:
            body[settings.reason_field] = update.error.message
        message = path_segment("message_id", update.message_id)
        return RequestSpec(
            method="PUT",
            path=f"/messages/{message}/status",
            json=body,
            operation=Operation.UPDATE_STATUS,
            subject_id=update.message_id,
            # No place for email ids, recipients or error codes: say so in the receipt.
            dropped=dropped_fields(update, carried=()),
        )

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: FrontSettings
    ) -> VendorResult:
        if 200 <= response.status < 300:
            # Front documents 204 No Content; a JSON object is tolerated, anything else
            # in a 2xx is not Front talking (a proxy page, say).
            if response.body.strip() and response.json_object() is None:
                raise MalformedResponse(
                    f"Front answered HTTP {response.status} with an unexpected body "
                    f"{response.text(120)!r} (expected 204 No Content)",
                    http_status=response.status,
                )
            return VendorResult(http_status=response.status)
        raise self.error_for(response)

    def rate_limit_feedback(self, response: ResponseView) -> RateFeedback | None:
        """``x-ratelimit-remaining`` / ``x-ratelimit-limit`` (per minute)."""
        remaining = int_header(response, "x-ratelimit-remaining")
        if remaining is None:
            return None
        return RateFeedback(
            remaining=remaining,
            maximum=int_header(response, "x-ratelimit-limit"),
            window=RATE_LIMIT_WINDOW,
        )

    def error_for(self, response: ResponseView) -> MessagingError:
        """The typed error for a Front error answer."""
        text = _front_error(response) or error_text(response, keys=("message", "error", "errors"))
        context: dict[str, Any] = {"http_status": response.status, "vendor_message": text}
        if response.status == 429:
            tier = response.header("x-front-tier")
            where = f" (burst limit {tier})" if tier else ""
            # Front sends retry-after with every 429; failing that, wait for the reset.
            wait = parse_retry_after(response)
            if wait is None:
                wait = seconds_until_reset(response, "x-ratelimit-reset")
            return error_for_status(429, text + where, vendor="Front", retry_after=wait, **context)
        return error_for_status(response.status, text, vendor="Front", **context)


def _front_error(response: ResponseView) -> str | None:
    """Front's error body ``{"_error": {"status", "title", "message", "details"?}}``
    (unconfirmed for this endpoint) as one line, else ``None``."""
    body = response.json_object()
    inner = body.get("_error") if body is not None else None
    if not isinstance(inner, dict):
        return None
    message = text_value(inner.get("message"))
    title = text_value(inner.get("title"))
    details = text_value(inner.get("details"))
    parts = [p for p in (title, message, details) if p]
    if title and message and message.lower().startswith(title.lower()):
        parts.remove(title)
    if not parts:
        return None
    return ": ".join(parts[:2]) + (f" ({parts[2]})" if len(parts) > 2 else "")
