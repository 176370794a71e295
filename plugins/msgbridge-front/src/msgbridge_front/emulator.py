"""An emulated Front for msgbridge's emulator: "Update message status", strictly.

Needs msgbridge's emulator (``pip install "msgbridge-front[emulator]"``); importing this
module without it raises ``ImportError``, which the plugin's hook treats as "no vendor".

``PUT /messages/{message_id}/status`` mounted at ``/front`` (a connection's ``base_url``
is ``<emulator url>/front``), ``Authorization: Bearer <token>``, ``204 No Content``.

From Front's reference and rate-limit guide:

* Only ``failed`` is accepted; marking a message failed reopens its conversation
  (see :meth:`FrontVendor.conversation_status`). Only outbound messages qualify.
* Limits are per company (a token's account), per minute (50 by default here, the
  Starter plan); every answer carries ``x-ratelimit-limit``, ``x-ratelimit-remaining``
  and ``x-ratelimit-reset`` (a UNIX timestamp), and a 429 carries ``retry-after`` in
  seconds (always: Front documents it, so the emulator-wide ``retry_after`` switch does
  not apply).

Where Front is silent, the emulator chooses (and says so):

* Error bodies are ``{"_error": {"status", "title", "message"}}``.
* The reason's key is ``reason`` (``FrontVendor(reason_field=...)`` changes it); other
  keys, a missing or non-``failed`` ``status``, a non-string reason, malformed JSON or a
  non-JSON body are 400s; an inbound message is a 400 too.
* Marking an already failed message failed again is a 204 (idempotent).
* Order of checks: token (401) → rate limit (429) → message lookup (404, or created) →
  body (400) → direction (400) → apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, InvalidBody, Reject
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.emulator.routing import Route
from msgbridge.emulator.state import MessageState
from msgbridge.emulator.tokens import AccessToken
from msgbridge.emulator.vendor import EmulatedVendor, VendorSettings
from msgbridge_front.adapter import DEFAULT_REASON_FIELD

__all__ = ["DIRECTIONS", "FRONT_RATE_LIMIT", "FrontVendor"]

#: Starter plan: 50 requests per minute per company.
FRONT_RATE_LIMIT = RateLimit(max_requests=50, interval=60.0)
DIRECTIONS = ("outbound", "inbound")

MSG_NO_TOKEN = "You must be authenticated to access this resource"  # noqa: S105 - a message
MSG_BAD_TOKEN = "The provided API token is invalid"  # noqa: S105 - a message


class FrontVendor(EmulatedVendor):
    """Front's ``PUT /messages/{message_id}/status`` for any number of companies.

    Tokens map to companies: ``vendor.add_token("tok", account="acme")``. Seed messages
    with ``conversation_id=`` and, optionally, ``direction="inbound"`` or
    ``conversation_status="archived"``.
    """

    seed_statuses = ("failed",)
    needs_channel_id = False

    def __init__(
        self,
        name: str = "front",
        *,
        settings: VendorSettings | None = None,
        reason_field: str = DEFAULT_REASON_FIELD,
    ) -> None:
        if settings is None:
            settings = VendorSettings(rate_limit=FRONT_RATE_LIMIT)
        super().__init__(name, settings=settings)
        if not reason_field or reason_field == "status":
            raise ValueError("reason_field must be a JSON key other than 'status'")
        self.reason_field = reason_field
        #: conversation id -> "open" | "archived" | ... (failed messages reopen theirs).
        self._conversation_status: dict[str, str] = {}

    def routes(self) -> Sequence[Route]:
        return (
            Route(
                "PUT", "/messages/{message_id}/status", self._update_status, "update_message_status"
            ),
        )

    # -- bodies ------------------------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str, title: str | None = None) -> EmulatorResponse:
        phrase = title or HTTPStatus(status).phrase
        return EmulatorResponse(
            status, {"_error": {"status": status, "title": phrase, "message": message}}
        )

    def error_response(
        self, request: EmulatorRequest, status: int, message: str | None = None
    ) -> EmulatorResponse:
        if status == 429:  # an injected 429: wait a whole window
            response = self.error_body(429, message or "Rate limit exceeded", "Too Many Requests")
            response.headers.append(("retry-after", "60"))
            return response
        return self.error_body(status, message or HTTPStatus(status).phrase)

    def route_not_found(self, request: EmulatorRequest, allowed: list[str]) -> EmulatorResponse:
        if allowed:
            return self.error_body(405, f"{request.method} is not allowed on {request.path}")
        return self.error_body(404, f"Unknown route {request.method} {request.path}")

    # -- checks ------------------------------------------------------------------------
    def _authenticate(self, request: EmulatorRequest) -> AccessToken:
        token, entry = self.lookup_token(request)
        if token is None:
            raise Reject(self.error_body(401, MSG_NO_TOKEN, "Unauthenticated"))
        if entry is None or entry.expired(request.now):
            raise Reject(self.error_body(401, MSG_BAD_TOKEN, "Unauthenticated"))
        return entry

    def _rate_limit(self, request: EmulatorRequest, company: str) -> None:
        verdict = self.count_request(request, company)
        if verdict is None:
            return
        limit = verdict.limit
        # The reset is when the oldest counted request leaves the window (an upper
        # bound while requests are allowed; exact when refused).
        wait = verdict.retry_in if not verdict.allowed else limit.interval
        headers = request.response_headers
        headers.append(("x-ratelimit-limit", str(limit.max_requests)))
        headers.append(("x-ratelimit-remaining", str(verdict.remaining)))
        headers.append(("x-ratelimit-reset", str(math.ceil(request.wall + wait))))
        if not verdict.allowed:
            headers.append(("retry-after", str(verdict.retry_after)))
            raise Reject(self.error_body(429, "Rate limit exceeded", "Too Many Requests"))

    def _bad_request(self, message: str) -> Reject:
        return Reject(self.error_body(400, message, "Bad request"))

    def _parse_body(self, request: EmulatorRequest) -> dict[str, Any]:
        media = request.media_type
        if media != "application/json":
            raise self._bad_request(
                f"Content type '{media or 'none'}' is not supported; use application/json"
            )
        try:
            body = request.json()
        except InvalidBody as exc:
            raise self._bad_request(str(exc)) from None
        if not isinstance(body, dict):
            raise self._bad_request("the request body must be a JSON object")
        allowed = {"status", self.reason_field}
        problems = [f"unknown field '{key}'" for key in body if key not in allowed]
        status = body.get("status")
        if status is None:
            problems.append("'status' is required")
        elif status != "failed":
            problems.append(f"'status' must be one of [failed], got {status!r}")
        reason = body.get(self.reason_field)
        if reason is not None and not isinstance(reason, str):
            problems.append(f"'{self.reason_field}' must be a string")
        if problems:
            raise self._bad_request("; ".join(problems))
        return body

    # -- PUT /messages/{message_id}/status ----------------------------------------------
    def _update_status(self, request: EmulatorRequest) -> EmulatorResponse:
        company = self._authenticate(request).account
        self._rate_limit(request, company)
        message_id = request.params["message_id"]
        message = self.messages.get(message_id)
        if message is None and self.settings.unknown_messages == "create":
            message = self.messages.create(
                message_id,
                account=company,
                now=request.now,
                wall=request.wall,
                origin="auto",
                attributes={"direction": "outbound"},
            )
        if message is None or message.account != company:
            raise Reject(self.error_body(404, f"Message {message_id} not found", "Not found"))
        body = self._parse_body(request)
        if message.attribute("direction", "outbound") != "outbound":
            raise self._bad_request("This endpoint is only available for outbound messages")
        reason = body.get(self.reason_field)
        self.messages.apply(
            message,
            "failed",
            error=reason,
            fields=body,
            wall=request.wall,
            request_id=request.request_id,
        )
        self._conversation_status[message.thread_id] = "open"
        return EmulatorResponse(204, None)

    # -- seeding and inspection -----------------------------------------------------------
    def seed_message(
        self,
        message_id: str,
        *,
        account: str,
        conversation_id: str | None = None,
        channel_id: int | None = None,
        status: str | None = None,
        provider_ready_after: float | None = None,
        email_message_id: str | None = None,
        direction: str = "outbound",
        conversation_status: str | None = None,
        **attributes: Any,
    ) -> MessageState:
        """A message of company *account*; ``direction`` is ``outbound`` or ``inbound``."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
        self.check_seed(
            channel_id=channel_id, status=status, provider_ready_after=provider_ready_after
        )
        with self.lock:
            state = super().seed_message(
                message_id,
                account=account,
                conversation_id=conversation_id,
                channel_id=channel_id,
                status=status,
                provider_ready_after=provider_ready_after,
                email_message_id=email_message_id,
                direction=direction,
                **attributes,
            )
            if conversation_status is not None:
                self._conversation_status[state.conversation_id] = conversation_status
            else:
                self._conversation_status.setdefault(state.conversation_id, "archived")
            return state

    def conversation_status(self, conversation_id: str) -> str | None:
        """``"open"`` once a message in it was marked failed; the seeded status before."""
        with self.lock:
            return self._conversation_status.get(conversation_id)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._conversation_status.clear()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            data = super().snapshot()
            data["conversation_status"] = dict(sorted(self._conversation_status.items()))
            return data
