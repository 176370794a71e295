"""A small correct adapter for a made-up vendor, and broken variants of it.

Each broken adapter breaks exactly one rule of the contract, so the conformance kit
must fail exactly the checks for that rule (see test_conformance_kit.py). Imported by
the pytester-generated test modules; not a test module itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Mapping
from datetime import datetime, timezone
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
    path_segment,
)
from msgbridge.errors import (
    AuthenticationError,
    MalformedResponse,
    MessagingError,
    NotFound,
    PermissionDenied,
    RateLimited,
    VendorRejected,
    VendorUnavailable,
)
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus
from msgbridge.wire import int_header, parse_retry_after

BASE_URL = "https://api.acme.test"
API_TOKEN = "acme-secret-token-9f8e7d"

STATES = {
    DeliveryState.PENDING: StateMapping.none(),
    DeliveryState.SENT: StateMapping.exact("SENT"),
    DeliveryState.DELIVERED: StateMapping.exact("DELIVERED"),
    DeliveryState.READ: StateMapping.exact("SEEN"),
    DeliveryState.FAILED: StateMapping.exact("ERROR"),
}


@attrs.frozen
class AcmeSettings:
    api_token: str = attrs.field(repr=False)
    base_url: str | None = None


class AcmeAdapter(Adapter[AcmeSettings]):
    """Correct: the kit must pass it without a single failure."""

    id = "acme"
    settings_type = AcmeSettings

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPDATE_STATUS, Operation.UPDATE_CONVERSATION}),
            states=STATES,
        )
        self.defaults = AdapterDefaults(
            base_url=BASE_URL, rate_budget=RateBudget(requests=10, per_seconds=1.0)
        )

    def status_path(self, update: MessageStatus, settings: AcmeSettings) -> str:
        segment = path_segment("message_id", update.message_id)
        return f"/v1/messages/{segment}/status"

    def headers(self, settings: AcmeSettings) -> dict[str, str]:
        return {"Acme-Version": "1"}

    def prepare_status(self, update: MessageStatus, settings: AcmeSettings) -> RequestSpec:
        body: dict[str, Any] = {"status": self.vendor_value(update.state)}
        if update.error is not None:
            body["reason"] = update.error.message
        return RequestSpec(
            method="POST",
            path=self.status_path(update, settings),
            headers=self.headers(settings),
            json=body,
            operation=Operation.UPDATE_STATUS,
            subject_id=update.message_id,
        )

    def prepare_conversation(
        self, update: ConversationUpdate, settings: AcmeSettings
    ) -> RequestSpec:
        segment = path_segment("conversation_id", update.conversation_id)
        return RequestSpec(
            method="PATCH",
            path=f"/v1/conversations/{segment}",
            json={"unread": update.unread_count, "starred": update.starred},
            operation=Operation.UPDATE_CONVERSATION,
            subject_id=update.conversation_id,
        )

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: AcmeSettings
    ) -> VendorResult:
        if 200 <= response.status < 300:
            body = response.json_object()
            if body is None or not isinstance(body.get("id"), str) or not body["id"]:
                raise MalformedResponse(
                    f"acme: expected an object with an id, got {response.text(80)!r}",
                    http_status=response.status,
                )
            return VendorResult(
                http_status=response.status,
                vendor_ids={"id": body["id"]},
                trace_id=self.trace_id(response),
            )
        raise self.error_for(request, response)

    def trace_id(self, response: ResponseView) -> str | None:
        return response.header("x-acme-trace")

    def retry_after(self, response: ResponseView) -> float | None:
        return parse_retry_after(response)

    def rate_limit_feedback(self, response: ResponseView) -> RateFeedback | None:
        remaining = int_header(response, "x-acme-remaining")
        if remaining is None:
            return None
        return RateFeedback(remaining=remaining, maximum=int_header(response, "x-acme-limit"))

    def error_for(self, request: RequestSpec, response: ResponseView) -> MessagingError:
        body = response.json_object() or {}
        text = body.get("detail") if isinstance(body.get("detail"), str) else None
        message = text or response.text(100) or "no detail"
        status = response.status
        context: dict[str, Any] = {
            "http_status": status,
            "vendor_message": message,
            "trace_id": self.trace_id(response),
        }
        if status == 401:
            return AuthenticationError(f"acme refused the token: {message}", **context)
        if status == 403:
            return PermissionDenied(f"acme denied it: {message}", **context)
        if status == 404:
            return NotFound(f"acme does not know it: {message}", **context)
        if status == 429:
            return RateLimited(
                f"acme rate limit: {message}", retry_after=self.retry_after(response), **context
            )
        if status >= 500:
            return VendorUnavailable(
                f"acme is down: {message}", retry_after=self.retry_after(response), **context
            )
        return VendorRejected(f"acme rejected it: {message}", **context)


ACME_SETTINGS: Mapping[str, Any] = {"api_token": API_TOKEN}
ACME_ERRORS: Mapping[int, bytes] = {
    400: b'{"detail":"bad status"}',
    401: b'{"detail":"token expired"}',
    429: b'{"detail":"slow down"}',
}
ACME_SUCCESS = b'{"id":"acme-1","thread":"t-1"}'
ACME_RATE_HEADERS: Mapping[str, str] = {"X-Acme-Remaining": "4", "X-Acme-Limit": "10"}
ACME_RATE_FEEDBACK = RateFeedback(remaining=4, maximum=10)


# -- broken variants: one rule each ----------------------------------------------------


class RawPathAdapter(AcmeAdapter):
    """Puts the message id into the URL without encoding it."""

    id = "acme-raw-path"

    def status_path(self, update: MessageStatus, settings: AcmeSettings) -> str:
        return f"/v1/messages/{update.message_id}/status"


class NonRetryable429Adapter(AcmeAdapter):
    """Maps 429 to a rate-limit error that says "do not retry"."""

    id = "acme-429"

    def error_for(self, request: RequestSpec, response: ResponseView) -> MessagingError:
        if response.status == 429:
            return RateLimited(
                "acme rate limit",
                http_status=429,
                retryable=False,
                retry_after=self.retry_after(response),
                trace_id=self.trace_id(response),
            )
        return super().error_for(request, response)


class SocketInPrepareAdapter(AcmeAdapter):
    """Creates a socket while preparing a request (it never connects it)."""

    id = "acme-socket"

    def prepare_status(self, update: MessageStatus, settings: AcmeSettings) -> RequestSpec:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM):
            pass
        return super().prepare_status(update, settings)


class SwallowedSleepAdapter(AcmeAdapter):
    """Sleeps in interpret and hides the failure if sleeping is refused."""

    id = "acme-sleep"

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: AcmeSettings
    ) -> VendorResult:
        with contextlib.suppress(Exception):  # hides the failure; the kit must still see it
            time.sleep(0)
        return super().interpret(request, response, settings)


class HtmlCrashAdapter(AcmeAdapter):
    """Parses error bodies with json.loads, so HTML and empty bodies crash it."""

    id = "acme-html"

    def error_for(self, request: RequestSpec, response: ResponseView) -> MessagingError:
        json.loads(response.body)
        return super().error_for(request, response)


class NotFoundAsRejectedAdapter(AcmeAdapter):
    """Reports 404 as an invalid request."""

    id = "acme-404"

    def error_for(self, request: RequestSpec, response: ResponseView) -> MessagingError:
        if response.status == 404:
            return VendorRejected("acme rejected it", http_status=404)
        return super().error_for(request, response)


class NoHttpStatusAdapter(AcmeAdapter):
    """Forgets http_status on 5xx errors."""

    id = "acme-no-status"

    def error_for(self, request: RequestSpec, response: ResponseView) -> MessagingError:
        if response.status >= 500:
            return VendorUnavailable("acme is down", trace_id=self.trace_id(response))
        return super().error_for(request, response)


class AuthHeaderAdapter(AcmeAdapter):
    """Puts the token into the RequestSpec (credentials are the bridge's job)."""

    id = "acme-auth-header"

    def headers(self, settings: AcmeSettings) -> dict[str, str]:
        return {"Authorization": f"Bearer {settings.api_token}"}


class EchoHeadersAdapter(AcmeAdapter):
    """Echoes the request's headers into error messages."""

    id = "acme-echo"

    def error_for(self, request: RequestSpec, response: ResponseView) -> MessagingError:
        error = super().error_for(request, response)
        error.message = f"{error.message} (request headers: {dict(request.headers)})"
        return error


@attrs.frozen
class LeakySettings:
    api_token: str
    base_url: str | None = None


class LeakyReprAdapter(AcmeAdapter):
    """Its settings class shows the token in its repr."""

    id = "acme-leaky-repr"
    settings_type = LeakySettings  # type: ignore[assignment]


class LenientSettingsAdapter(AcmeAdapter):
    """Ignores settings keys it does not know (a typo goes unnoticed)."""

    id = "acme-lenient"

    def parse_settings(self, raw: Mapping[str, Any]) -> AcmeSettings:
        known = {k: v for k, v in raw.items() if k in {"api_token", "base_url"}}
        return AcmeSettings(**known)


class AcceptAnythingAdapter(AcmeAdapter):
    """Calls every 2xx a success, whatever the body."""

    id = "acme-accept"

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: AcmeSettings
    ) -> VendorResult:
        if 200 <= response.status < 300:
            body = response.json_object() or {}
            return VendorResult(
                http_status=response.status,
                vendor_ids={"id": str(body.get("id"))},
                trace_id=self.trace_id(response),
            )
        raise self.error_for(request, response)


class InconsistentNoneAdapter(AcmeAdapter):
    """Declares PENDING unsendable but still gives it a vendor value."""

    id = "acme-none"

    def __init__(self) -> None:
        super().__init__()
        from msgbridge.adapter import Fidelity

        self.capabilities = Capabilities(
            operations=self.capabilities.operations,
            states={**STATES, DeliveryState.PENDING: StateMapping(Fidelity.NONE, "QUEUED")},
        )


class QueryIdAdapter(AcmeAdapter):
    """Says the id travels in the body, but sneaks it into the query string raw."""

    id = "acme-query"

    def status_path(self, update: MessageStatus, settings: AcmeSettings) -> str:
        return f"/v1/status?message={update.message_id}"


class IgnoresRetryAfterAdapter(AcmeAdapter):
    """Never reads ``Retry-After``: the bridge guesses a backoff the vendor did not ask for."""

    id = "acme-no-retry-after"

    def retry_after(self, response: ResponseView) -> float | None:
        return None


class SecondsOnlyRetryAfterAdapter(AcmeAdapter):
    """Reads ``Retry-After`` as seconds only; an HTTP date is dropped."""

    id = "acme-seconds-only"

    def retry_after(self, response: ResponseView) -> float | None:
        raw = response.header("retry-after") or ""
        return float(raw) if raw.strip().isdigit() else None


class IgnoresTraceHeaderAdapter(AcmeAdapter):
    """Drops the vendor's trace id header, so support tickets have nothing to quote."""

    id = "acme-no-trace"

    def trace_id(self, response: ResponseView) -> str | None:
        return None


class IgnoresRateLimitHeadersAdapter(AcmeAdapter):
    """Declares rate-limit feedback but reads the wrong header (always nothing)."""

    id = "acme-no-rate-headers"

    def rate_limit_feedback(self, response: ResponseView) -> RateFeedback | None:
        remaining = int_header(response, "x-ratelimit-remaining")  # not what acme sends
        return None if remaining is None else RateFeedback(remaining=remaining)


class DatetimeInPrepareAdapter(AcmeAdapter):
    """Stamps each request with the local clock (``datetime.now``)."""

    id = "acme-datetime"

    def headers(self, settings: AcmeSettings) -> dict[str, str]:
        return {"Acme-Version": "1", "Acme-Sent-At": datetime.now(timezone.utc).isoformat()}


class MonotonicInInterpretAdapter(AcmeAdapter):
    """Times its own parsing with ``time.monotonic`` and hides a refused read."""

    id = "acme-monotonic"

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: AcmeSettings
    ) -> VendorResult:
        with contextlib.suppress(Exception):  # hides the failure; the kit must still see it
            time.monotonic()
        return super().interpret(request, response, settings)


class EmptyObjectSuccessAdapter(AcmeAdapter):
    """Takes an empty JSON object for a success (only ``{}``; a missing id still fails)."""

    id = "acme-empty-ok"

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: AcmeSettings
    ) -> VendorResult:
        if response.status == 200 and response.json() == {}:
            return VendorResult(http_status=200)
        return super().interpret(request, response, settings)


class AbsoluteUrlAdapter(AcmeAdapter):
    """Builds absolute URLs, as adapters did before the core owned the base URL."""

    id = "acme-absolute"

    def status_path(self, update: MessageStatus, settings: AcmeSettings) -> str:
        return BASE_URL + super().status_path(update, settings)
