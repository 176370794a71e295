"""An emulated Kommo Chats API for msgbridge's emulator: signed delivery status updates.

Needs msgbridge's emulator (``pip install "msgbridge-kommo[emulator]"``); importing this
module without it raises ``ImportError``, which the plugin's hook treats as "no vendor".

``POST /v2/origin/custom/{scope_id}/{msgid}/delivery_status`` mounted at ``/kommo`` (a
connection's ``base_url`` is ``<emulator url>/kommo``). There are no tokens: channel
secrets are registered per scope id (``vendor.add_token(secret, account=scope_id)``,
which is what ``msgbridge emulate --token kommo:SECRET:SCOPE_ID`` and the demo do), and
every request must be signed with one of them.

The signature is verified over the raw request as it arrived: ``Content-MD5`` must be
the MD5 of the received bytes, ``X-Signature`` the HMAC-SHA1 of
``METHOD\\nContent-MD5\\nContent-Type\\nDate\\npath`` where ``path`` is the full request
path (``/kommo/v2/origin/...`` behind the emulator's prefix) without the query, and
``Date`` within 15 minutes of the emulator's clock, either way.

Where Kommo is silent, the emulator chooses (and says so):

* A missing, stale or wrong signature (or Content-MD5) is a 401 ``{"error": "..."}``
  naming which check failed. Kommo's real status and body for these are unconfirmed.
* The body must be a JSON object with ``msgid`` equal to the URL's message id,
  ``delivery_status`` one of 1, 2, -1, and, for -1, ``error_code`` 901 to 905 (905 needs a
  non-empty ``error``); ``error_code``/``error`` with 1 or 2, unknown keys, a non-JSON
  content type or malformed JSON are 400s. Kommo documents the fields, not its answers.
* Success is ``200`` with an empty body. Every status is applied as sent (Kommo does not
  say whether it refuses ``read`` → ``delivered``). A message's status is stored as the
  ``delivery_status`` sent, as text (``"1"``, ``"2"``, ``"-1"``), which is also the
  adapter's vendor value; messages start ``sent`` (Kommo's "Sent" has no number).
* Requests are limited per scope id to 7 per second (Kommo's general API limit); a 429
  has no ``Retry-After`` unless the emulator's ``retry_after`` switch is on.
* Order of checks: signature (401) → rate limit (429) → message lookup (404, or
  created) → body (400) → apply.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse, InvalidBody, Reject
from msgbridge.emulator.ratelimit import RateLimit
from msgbridge.emulator.routing import Route
from msgbridge.emulator.state import MessageState
from msgbridge.emulator.vendor import EmulatedVendor, VendorSettings
from msgbridge_kommo.adapter import ERROR_CODES, OTHER_ERROR
from msgbridge_kommo.auth import CONTENT_TYPE, content_md5, signature, signing_string

__all__ = ["DATE_TOLERANCE", "KOMMO_RATE_LIMIT", "STATUS_NAMES", "KommoVendor"]

#: How far ``Date`` may be from the server's clock (Kommo: valid for 15 minutes).
DATE_TOLERANCE = 15 * 60.0
#: Kommo's general API limit: 7 requests per second (per scope id here).
KOMMO_RATE_LIMIT = RateLimit(max_requests=7, interval=1.0)
#: ``delivery_status`` values and what each means; the emulator stores the number as text.
STATUS_NAMES = {1: "delivered", 2: "read", -1: "error"}
_BODY_KEYS = frozenset({"msgid", "delivery_status", "error_code", "error"})


class KommoVendor(EmulatedVendor):
    """Kommo's ``POST .../delivery_status`` for any number of connected channels.

    Secrets map to scope ids: ``vendor.add_token("channel-secret", account=scope_id)``.
    Seed messages with ``vendor.seed_message(msgid, account=scope_id)``.
    """

    seed_statuses = ("sent", "1", "2", "-1")
    needs_channel_id = False
    #: No token travels: every request is signed with the channel secret.
    credential_scheme = "signed: X-Signature HMAC-SHA1 keyed by <token>, the channel secret"

    # -- the recipe ``msgbridge demo`` uses -------------------------------------------

    def demo_account(self, index: int) -> str:
        """A scope id shaped like Kommo's (``<channel id>_<account id>``)."""
        return f"demo-channel_demo-account-{index + 1}"

    def demo_connection(
        self, base_url: str, account: str, token: str
    ) -> tuple[dict[str, Any], Any]:
        """The demo's token is the channel secret; requests are signed with it."""
        from msgbridge_kommo.auth import KommoSignature

        return {"base_url": base_url, "scope_id": account}, KommoSignature(token)

    def __init__(self, name: str = "kommo", *, settings: VendorSettings | None = None) -> None:
        if settings is None:
            settings = VendorSettings(rate_limit=KOMMO_RATE_LIMIT)
        super().__init__(name, settings=settings)
        #: scope id -> the channel secrets registered for it.
        self._secrets: dict[str, list[str]] = {}

    def routes(self) -> Sequence[Route]:
        return (
            Route(
                "POST",
                "/v2/origin/custom/{scope_id}/{msgid}/delivery_status",
                self._delivery_status,
                "update_message_status",
            ),
        )

    # -- secrets -----------------------------------------------------------------------
    def add_token(self, token: str, *, account: str, expires_in: float | None = None) -> None:
        """Accept requests to scope id *account* signed with the channel secret *token*."""
        with self.lock:
            super().add_token(token, account=account, expires_in=expires_in)
            secrets = self._secrets.setdefault(str(account), [])
            if token not in secrets:
                secrets.append(token)

    def revoke_token(self, token: str) -> bool:
        with self.lock:
            for secrets in self._secrets.values():
                if token in secrets:
                    secrets.remove(token)
            return super().revoke_token(token)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._secrets.clear()

    # -- bodies ------------------------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str) -> EmulatorResponse:
        return EmulatorResponse(status, {"error": message})

    def error_response(
        self, request: EmulatorRequest, status: int, message: str | None = None
    ) -> EmulatorResponse:
        return self.error_body(status, message or HTTPStatus(status).phrase)

    # -- checks ------------------------------------------------------------------------
    def _verify(self, request: EmulatorRequest, scope_id: str) -> None:
        """Refuse a request that is not signed by a secret of *scope_id*, as sent."""
        missing = [
            name
            for name in ("date", "content-type", "content-md5", "x-signature")
            if not request.headers.get(name)
        ]
        if missing:
            raise Reject(self.error_body(401, f"missing header(s): {', '.join(missing)}"))
        date = request.headers["date"]
        try:
            sent = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            sent = None
        if sent is None or sent.tzinfo is None:
            raise Reject(
                self.error_body(
                    401, "Date must be RFC 2822 with a zone, e.g. 'Thu, 01 Jan 2023 12:00:00 +0000'"
                )
            )
        skew = request.wall - sent.timestamp()
        if abs(skew) > DATE_TOLERANCE:
            raise Reject(
                self.error_body(
                    401,
                    f"Date is {abs(skew):.0f} seconds {'old' if skew > 0 else 'ahead'}; a "
                    "signature is valid for 15 minutes",
                )
            )
        md5 = request.headers["content-md5"]
        if not hmac.compare_digest(md5, content_md5(request.body)):
            raise Reject(self.error_body(401, "Content-MD5 is not the MD5 of the body"))
        text = signing_string(
            request.method,
            md5,
            request.headers["content-type"],
            date,
            self.prefix + request.path,
        )
        given = request.headers["x-signature"]
        for secret in self._secrets.get(scope_id, ()):
            entry = self.tokens.get(secret)
            if entry is None or entry.expired(request.now):
                continue
            if hmac.compare_digest(given, signature(secret, text)):
                request.account = scope_id
                return
        raise Reject(self.error_body(401, "invalid signature"))

    def _rate_limit(self, request: EmulatorRequest, scope_id: str) -> None:
        verdict = self.count_request(request, scope_id)
        if verdict is None or verdict.allowed:
            return
        if self.settings.retry_after:
            request.response_headers.append(("Retry-After", str(verdict.retry_after)))
        raise Reject(self.error_body(429, "Too Many Requests"))

    def _bad_request(self, message: str) -> Reject:
        return Reject(self.error_body(400, message))

    def _parse_body(self, request: EmulatorRequest, msgid: str) -> dict[str, Any]:
        if request.media_type != CONTENT_TYPE:
            media = request.media_type or "none"
            raise self._bad_request(f"Content-Type {media!r} is not supported; use {CONTENT_TYPE}")
        try:
            body = request.json()
        except InvalidBody as exc:
            raise self._bad_request(str(exc)) from None
        if not isinstance(body, dict):
            raise self._bad_request("the request body must be a JSON object")
        problems = [f"unknown field {key!r}" for key in body if key not in _BODY_KEYS]
        if body.get("msgid") != msgid:
            problems.append("msgid must match the message id in the URL")
        status = body.get("delivery_status")
        if isinstance(status, bool) or status not in STATUS_NAMES:
            problems.append("delivery_status must be 1 (delivered), 2 (read) or -1 (error)")
        elif status == -1:
            code = body.get("error_code")
            if isinstance(code, bool) or code not in ERROR_CODES:
                problems.append("error_code must be one of 901, 902, 903, 904, 905")
            error = body.get("error")
            if error is not None and not isinstance(error, str):
                problems.append("error must be a string")
            if code == OTHER_ERROR and not (isinstance(error, str) and error.strip()):
                problems.append("error_code 905 needs the error text in 'error'")
        elif "error_code" in body or "error" in body:
            problems.append("error_code and error are sent only with delivery_status -1")
        if problems:
            raise self._bad_request("; ".join(problems))
        return body

    # -- POST .../delivery_status --------------------------------------------------------
    def _delivery_status(self, request: EmulatorRequest) -> EmulatorResponse:
        scope_id = request.params["scope_id"]
        msgid = request.params["msgid"]
        self._verify(request, scope_id)
        self._rate_limit(request, scope_id)
        message = self.messages.get(msgid)
        if message is None and self.settings.unknown_messages == "create":
            message = self.messages.create(
                msgid,
                account=scope_id,
                now=request.now,
                wall=request.wall,
                status="sent",
                origin="auto",
            )
        if message is None or message.account != scope_id:
            raise Reject(self.error_body(404, "message not found"))
        body = self._parse_body(request, msgid)
        status = str(body["delivery_status"])
        error = None
        if status == "-1":
            error = {"code": body["error_code"], "text": body.get("error")}
        self.messages.apply(
            message,
            status,
            error=error,
            fields=body,
            wall=request.wall,
            request_id=request.request_id,
        )
        return EmulatorResponse(200)

    # -- seeding -----------------------------------------------------------------------
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
        **attributes: Any,
    ) -> MessageState:
        """A message sent from Kommo in scope id *account* (it starts ``sent``)."""
        return super().seed_message(
            message_id,
            account=account,
            conversation_id=conversation_id,
            channel_id=channel_id,
            status=status or "sent",
            provider_ready_after=provider_ready_after,
            email_message_id=email_message_id,
            **attributes,
        )

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            data = super().snapshot()
            data["scopes"] = sorted(self._secrets)
            return data
