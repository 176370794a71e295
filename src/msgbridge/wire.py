"""Pure helpers for adapter authors: reading vendor answers, mapping errors, and
checking settings (the :mod:`msgbridge.validation` helpers, re-exported here).

Public so third-party adapters reuse what the built-ins use instead of rewriting it.
Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import BaseValidationError
from cattrs.gen import make_dict_structure_fn

from msgbridge.adapter import ResponseView
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
from msgbridge.strict import exact_scalar_hooks
from msgbridge.validation import (
    ascii_pattern,
    check_header_value,
    check_number,
    check_pattern,
    check_token_url,
    check_url,
    redact_url,
)

__all__ = [
    "ascii_pattern",
    "check_header_value",
    "check_number",
    "check_pattern",
    "check_token_url",
    "check_url",
    "error_for_status",
    "int_header",
    "joined_message",
    "lenient_converter",
    "parse_retry_after",
    "read_model",
    "redact_url",
]

T = TypeVar("T")


def lenient_converter() -> cattrs.Converter:
    """Vendor responses: unknown fields ignored, only what we need is required.

    Lenient about *which* fields come, strict about the types of those we read: a
    ``null`` id must not become the string ``"None"``, nor ``"no"`` become ``True``.
    """
    converter = cattrs.Converter(forbid_extra_keys=False)
    exact_scalar_hooks(converter)

    def mapping_only(cls: type[Any]) -> Callable[[Any, type[Any]], Any]:
        structure = make_dict_structure_fn(cls, converter)

        def hook(value: Any, kind: type[Any]) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a JSON object, got {type(value).__name__}")
            return structure(value, kind)

        return hook

    converter.register_structure_hook_factory(attrs.has, mapping_only)
    return converter


def read_model(
    converter: cattrs.Converter, response: ResponseView, cls: type[T], *, what: str
) -> T:
    """Structure a JSON object body as *cls*, or raise ``MalformedResponse`` saying why."""
    body = response.json_object()
    if body is None:
        raise MalformedResponse(
            f"{what}: expected a JSON object, got {response.text(120)!r}",
            http_status=response.status,
        )
    try:
        return converter.structure(body, cls)
    except (BaseValidationError, TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, BaseValidationError):
            problems = "; ".join(cattrs.transform_error(exc))
        else:
            problems = f"{type(exc).__name__}: {exc}"
        raise MalformedResponse(f"{what}: {problems}", http_status=response.status) from None


def parse_retry_after(response: ResponseView) -> float | None:
    """Seconds from ``Retry-After``: delta-seconds, or an HTTP date measured against the
    response's own ``Date`` header (server clock against server clock; no local clock,
    so adapters stay pure). Anything else is ``None`` (then the bridge backs off)."""
    value = (response.header("retry-after") or "").strip()
    if not value:
        return None
    if value.isascii() and value.replace(".", "", 1).isdigit():
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    sent = response.header("date")
    if sent is None:
        return None
    try:
        when, now = parsedate_to_datetime(value), parsedate_to_datetime(sent)
    except (TypeError, ValueError):
        return None
    if (when.tzinfo is None) != (now.tzinfo is None):
        return None
    return max(0.0, (when - now).total_seconds())


def int_header(response: ResponseView, name: str) -> int | None:
    raw = response.header(name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def joined_message(value: Any) -> str | None:
    """A vendor ``message`` that may be a string or a list of strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [str(v) for v in value if v is not None]
        return "; ".join(parts) if parts else None
    return None


def error_for_status(
    status: int,
    text: str,
    *,
    vendor: str,
    retry_after: float | None = None,
    **context: Any,
) -> MessagingError:
    """The usual HTTP status → error mapping, in the vendor's words.

    401 ``AuthenticationError``, 403 ``PermissionDenied``, 404 ``NotFound``, 429
    ``RateLimited`` (retryable, with *retry_after*), 5xx ``VendorUnavailable``
    (retryable), anything else ``VendorRejected``. Adapters special-case what their
    vendor does differently (HighLevel's provider race) before calling this.
    """
    context.setdefault("http_status", status)
    context.setdefault("vendor_message", text)
    if status == 401:
        return AuthenticationError(f"{vendor} refused the token: {text}", **context)
    if status == 403:
        return PermissionDenied(f"{vendor} denied the request: {text}", **context)
    if status == 404:
        return NotFound(f"{vendor} does not know this id: {text}", **context)
    if status == 429:
        return RateLimited(
            f"{vendor} rate limit reached: {text}", retry_after=retry_after, **context
        )
    if status >= 500:
        return VendorUnavailable(f"{vendor} is unavailable (HTTP {status}): {text}", **context)
    return VendorRejected(f"{vendor} rejected the request: {text}", **context)
