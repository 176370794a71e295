"""Kommo (amoCRM) Chats API: update the delivery status of a message in a custom channel.

``POST /v2/origin/custom/{scope_id}/{msgid}/delivery_status`` with
``{"msgid": ..., "delivery_status": 1|2|-1, "error_code"?: 901..905, "error"?: str}``,
signed by :class:`msgbridge_kommo.auth.KommoSignature`. Sources:
kommo.com/developers/content/chats/update-message-delivery-status and
developers.kommo.com/reference/update-delivery-status.

State mapping:

============  ==========  ==========
neutral       Kommo       fidelity
============  ==========  ==========
pending       —           none (skipped)
sent          —           none (Kommo lists "Sent" with no value: a message is sent
                          when Kommo hands it to the integration; skipped)
delivered     1           exact
read          2           exact
failed        -1          exact (``error_code`` and ``error`` from ``StatusError``)
============  ==========  ==========

``error_code`` is ``StatusError.code`` when that is one of Kommo's codes (901 user
deleted the message, 902 integration disabled, 903 internal error, 904 cannot create a
conversation, 905 other); any other code (or none) is sent as 905, which Kommo requires
to carry the error text. A ``failed`` with no ``StatusError`` sends 905 with
"Message was not delivered" (an assumption: Kommo shows the text to the user).

Kommo documents no response body for this method: any 2xx is applied; a body that is
neither empty nor a JSON object adds a ``warning`` to the result. ``error.kind``,
``email_message_id``, ``recipients`` and a non-Kommo ``error.code`` have no place in the
request and are listed in ``RequestSpec.dropped`` (so in the receipt). Its error bodies
are undocumented; ``error``, ``message``, ``detail`` and ``title`` are read, else the raw
text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from msgbridge.adapter import (
    Adapter,
    AdapterDefaults,
    Capabilities,
    Operation,
    RateBudget,
    RequestSpec,
    ResponseView,
    StateMapping,
    VendorResult,
    dropped_fields,
    path_segment,
)
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    MessagingError,
    UnsupportedStatus,
)
from msgbridge.model import DeliveryState, MessageStatus
from msgbridge.wire import error_for_status, error_text, parse_retry_after
from msgbridge_kommo.auth import KommoSignature

__all__ = [
    "BASE_URL",
    "ERROR_CODES",
    "KOMMO_RATE_BUDGET",
    "OTHER_ERROR",
    "STATES",
    "KommoAdapter",
    "KommoSettings",
]

#: Kommo's Chats API host (accounts on amoCRM's Russian cloud use amojo.amocrm.ru).
BASE_URL = "https://amojo.kommo.com"

STATES: Mapping[DeliveryState, StateMapping] = {
    DeliveryState.PENDING: StateMapping.none(),
    DeliveryState.SENT: StateMapping.none(),
    DeliveryState.DELIVERED: StateMapping.exact("1"),
    DeliveryState.READ: StateMapping.exact("2"),
    DeliveryState.FAILED: StateMapping.exact("-1"),
}

#: Kommo's delivery error codes and when to send them.
ERROR_CODES: Mapping[int, str] = {
    901: "the user has deleted the message",
    902: "integration disabled on the channel side",
    903: "internal server error",
    904: "unable to create a conversation",
    905: "any other error (the error text is required)",
}
OTHER_ERROR = 905
_DEFAULT_ERROR_TEXT = "Message was not delivered"

#: Kommo limits API integrations to 7 requests per second per account (its general API
#: limit; the Chats API publishes none of its own). 5 per second leaves room for the
#: integration's other calls.
KOMMO_RATE_BUDGET = RateBudget(requests=5, per_seconds=1.0)

#: Kommo's scope ids are ``<channel id>_<account amojo id>`` (UUIDs); accept the id
#: characters Kommo uses and nothing that would change the URL's shape.
_SCOPE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}\Z", re.ASCII)


def _api_host(_: object, __: attrs.Attribute[str | None], value: object) -> None:
    """Kommo's own rule (the core checks the URL itself): the host, not the API path,
    which the adapter's paths already carry."""
    if isinstance(value, str) and value.rstrip("/").endswith(("/v2/origin/custom", "/v2")):
        raise ConfigurationError(
            f"base_url must be the Chats API host (e.g. {BASE_URL!r}), without the API "
            f"path; got {ascii(value)[:120]}",
            key="base_url",
        )


def _scope_id(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not _SCOPE_ID.match(value):
        raise ConfigurationError(
            "scope_id must be the scope id Kommo returned when the channel was connected to "
            "the account (letters, digits, '-' and '_', e.g. "
            f"'f90ba33d-c9d9-44da-b76c-c349b0ecbe41_af9945ff-1490-4cad-807d-945c15d88bec'), "
            f"got {value!r}",
            key="scope_id",
        )


@attrs.frozen
class KommoSettings:
    """Connection settings for Kommo's Chats API."""

    #: The channel's scope id in this account (from "connect channel").
    scope_id: str = attrs.field(validator=_scope_id)
    #: Override the Chats API host (or the emulator's ``http://127.0.0.1:PORT/kommo``);
    #: checked by the core when the connection is set up.
    base_url: str | None = attrs.field(default=None, validator=_api_host)


def _kommo_code(update: MessageStatus) -> int | None:
    """``StatusError.code`` when it is one of Kommo's error codes, else ``None``."""
    code = update.error.code if update.error is not None else None
    if code is not None and code.isascii() and code.isdigit() and int(code) in ERROR_CODES:
        return int(code)
    return None


def _error_code(update: MessageStatus) -> tuple[int, str]:
    if update.error is None:
        return OTHER_ERROR, _DEFAULT_ERROR_TEXT
    return _kommo_code(update) or OTHER_ERROR, update.error.message


class KommoAdapter(Adapter[KommoSettings]):
    """Kommo Chats API custom channels: message delivery status."""

    id = "kommo"
    settings_type = KommoSettings
    description = "Kommo (amoCRM) Chats API: message delivery status (delivered, read, failed)"

    def __init__(self) -> None:
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPDATE_STATUS}), states=STATES
        )
        self.defaults = AdapterDefaults(
            base_url=BASE_URL, rate_budget=KOMMO_RATE_BUDGET, version="v2"
        )

    def credentials_from_token(self, token: str) -> KommoSignature:
        """The configured "token" is the channel secret: every request is signed with it."""
        return KommoSignature(token)

    # -- prepare ----------------------------------------------------------------------

    def prepare_status(self, update: MessageStatus, settings: KommoSettings) -> RequestSpec:
        value = self.vendor_value(update.state)
        if value is None:
            raise UnsupportedStatus(
                f"Kommo has no delivery status for state {update.state.value!r} "
                "(it takes delivered, read and failed)",
                adapter=self.id,
                subject_id=update.message_id,
            )
        body: dict[str, Any] = {"msgid": update.message_id, "delivery_status": int(value)}
        if update.state is DeliveryState.FAILED:
            body["error_code"], body["error"] = _error_code(update)
        # Kommo carries an error code only when it is one of its own (901-905).
        carried = ("error.code",) if _kommo_code(update) is not None else ()
        message = path_segment("message_id", update.message_id)
        return RequestSpec(
            method="POST",
            path=f"/v2/origin/custom/{settings.scope_id}/{message}/delivery_status",
            json=body,
            operation=Operation.UPDATE_STATUS,
            subject_id=update.message_id,
            dropped=dropped_fields(update, carried=carried),
        )

    # -- interpret --------------------------------------------------------------------

    def interpret(
        self, request: RequestSpec, response: ResponseView, settings: KommoSettings
    ) -> VendorResult:
        if 200 <= response.status < 300:
            if response.body.strip() and response.json_object() is None:
                # Kommo applied it (2xx); its answer is just not what we expect.
                return VendorResult(
                    http_status=response.status,
                    warning=f"Kommo answered HTTP {response.status} with an unexpected body "
                    f"{response.text(120)!r} (expected an empty body or a JSON object)",
                )
            return VendorResult(http_status=response.status)
        raise self.error_for(response)

    def error_for(self, response: ResponseView) -> MessagingError:
        """The typed error for a Kommo error answer."""
        text = error_text(response, keys=("error", "message", "detail", "title"))
        context: dict[str, Any] = {"http_status": response.status, "vendor_message": text}
        if response.status == 401:
            return AuthenticationError(
                "Kommo refused the request signature (a wrong channel secret, or a clock "
                f"more than 15 minutes off): {text}",
                **context,
            )
        retry_after = parse_retry_after(response) if response.status == 429 else None
        return error_for_status(
            response.status, text, vendor="Kommo", retry_after=retry_after, **context
        )
