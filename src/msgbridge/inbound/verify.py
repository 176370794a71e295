"""The webhook-verifier contract that built-in adapters and third-party plugins implement.

A verifier is sans-I/O: it gets the request headers, the **raw** body bytes exactly as they
arrived and the current time, and returns a :class:`~msgbridge.inbound.model.WebhookEvent`
or raises a :class:`~msgbridge.inbound.errors.WebhookRejected`. It never parses JSON before
the signature over the raw bytes has been checked, and it never skips verification: a
missing header is an error.

An adapter offers a verifier through :meth:`msgbridge.adapter.Adapter.webhook_verifier`;
:func:`verifier_for` finds it in a registry by adapter id.
"""

from __future__ import annotations

import abc
import base64
import binascii
import datetime as dt
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from msgbridge.inbound.errors import (
    MalformedWebhook,
    SignatureInvalid,
    SignatureMissing,
    WebhookExpired,
)
from msgbridge.inbound.model import WebhookEvent

if TYPE_CHECKING:
    from msgbridge.registry import AdapterRegistry

__all__ = [
    "DEFAULT_TOLERANCE",
    "Headers",
    "WebhookVerifier",
    "check_window",
    "constant_time_equal",
    "decode_base64",
    "parse_json_object",
    "verifier_for",
]

#: Five minutes: HighLevel's and HubSpot's documented replay window (Chatwoot's too).
DEFAULT_TOLERANCE = dt.timedelta(minutes=5)


class Headers:
    """Case-insensitive, read-only request headers (one value per name).

    A header sent twice with different values is refused by :meth:`one`: an attacker must
    not be able to choose which of two signatures is checked.
    """

    def __init__(
        self, headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
    ) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        self._values: dict[str, list[str]] = {}
        for name, value in items:
            key = (name.decode("latin-1") if isinstance(name, bytes) else str(name)).lower()
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            self._values.setdefault(key, []).append(text)

    def get(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return values[0] if values else None

    def one(self, name: str) -> str | None:
        """The header's single value; ``None`` if absent; an error if sent twice differently."""
        values = self._values.get(name.lower())
        if not values:
            return None
        if len(set(values)) > 1:
            raise SignatureInvalid(f"header {name} was sent more than once", header=name)
        return values[0]

    def require(self, name: str) -> str:
        """The header's value, or :class:`SignatureMissing` (fail closed, never skip)."""
        value = self.one(name)
        if value is None or not value.strip():
            raise SignatureMissing(
                f"header {name} is missing; unsigned requests are refused", header=name
            )
        return value.strip()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def as_dict(self) -> dict[str, str]:
        return {k: v[0] for k, v in self._values.items()}


def as_headers(headers: Headers | Mapping[str, str] | Iterable[tuple[Any, Any]]) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


def constant_time_equal(a: bytes | str, b: bytes | str) -> bool:
    """Compare two signatures in constant time (``hmac.compare_digest``)."""
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def decode_base64(value: str, *, header: str) -> bytes:
    """Strict base64 (standard alphabet, padding checked); malformed is a signature error."""
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"header {header} is not valid base64", header=header) from None


def check_window(
    signed_at: dt.datetime,
    now: dt.datetime,
    *,
    tolerance: dt.timedelta = DEFAULT_TOLERANCE,
    what: str = "the signed timestamp",
    header: str | None = None,
) -> None:
    """Refuse a timestamp more than *tolerance* before (or after) *now*."""
    skew = now - signed_at
    if skew > tolerance:
        raise WebhookExpired(
            f"{what} is {int(skew.total_seconds())} s old; at most "
            f"{int(tolerance.total_seconds())} s are accepted (a replay or a stale retry)",
            header=header,
        )
    if -skew > tolerance:
        raise WebhookExpired(
            f"{what} is {int(-skew.total_seconds())} s in the future; at most "
            f"{int(tolerance.total_seconds())} s of clock skew are accepted",
            header=header,
        )


def parse_json_object(body: bytes, *, vendor: str) -> dict[str, Any]:
    """The verified body as a JSON object, or :class:`MalformedWebhook` saying why."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedWebhook(f"{vendor} webhook body is not UTF-8") from None
    except ValueError as exc:
        raise MalformedWebhook(f"{vendor} webhook body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedWebhook(
            f"{vendor} webhook body must be a JSON object, got {type(data).__name__}"
        )
    return data


def aware_now(now: dt.datetime) -> dt.datetime:
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (datetime.now(timezone.utc))")
    return now


class WebhookVerifier(abc.ABC):
    """Verify and parse one vendor's webhooks. Implement this in an adapter plugin.

    ``verify`` must check the signature over the raw *body* before reading it, refuse
    (never skip) a request without its signature headers, compare secrets in constant time,
    and turn a correctly signed but unexpected payload into :class:`MalformedWebhook`.
    """

    #: The adapter id whose webhooks this verifies.
    adapter_id: str
    #: Header names that carry signatures (shown by ``msgbridge webhook verify``).
    signature_headers: tuple[str, ...] = ()

    @abc.abstractmethod
    def verify(
        self,
        headers: Headers | Mapping[str, str],
        body: bytes,
        now: dt.datetime,
        *,
        method: str = "POST",
    ) -> WebhookEvent:
        """The verified event, or a :class:`~msgbridge.inbound.errors.WebhookRejected`.

        *method* is the request's HTTP method, for schemes that sign it (HubSpot v3).
        """

    def __repr__(self) -> str:
        # Subclasses hold secrets and keys: never show them.
        return f"<{type(self).__name__} adapter={getattr(self, 'adapter_id', '?')!r}>"


def verifier_for(
    registry: AdapterRegistry, adapter_id: str, options: Mapping[str, Any]
) -> WebhookVerifier:
    """The webhook verifier the adapter *adapter_id* offers, configured with *options*."""
    return registry.get(adapter_id).webhook_verifier(options)
