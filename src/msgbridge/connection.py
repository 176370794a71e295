"""A connection: one account at one vendor, with its adapter, credentials and settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from msgbridge.auth import Credential
from msgbridge.errors import ConfigurationError, InvalidStatus
from msgbridge.model import check_identifier
from msgbridge.ratelimit import MAX_REQUESTS, MAX_WINDOW
from msgbridge.validation import check_number

__all__ = ["Connection"]


def _name(_: object, __: attrs.Attribute[str], value: object) -> None:
    try:
        check_identifier("connection name", value)
    except InvalidStatus as exc:
        raise ConfigurationError(exc.message, key="name") from None


def _credentials(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Credential):
        raise ConfigurationError(
            "credentials must be a msgbridge credential (msgbridge.auth.Credential) such as "
            f"BearerToken('…'), HeaderToken(…) or an OAuth credential, got {type(value).__name__}",
            key="credentials",
        )


def _rate_limit(_: object, __: attrs.Attribute[Any], value: object) -> None:
    """``(requests, per_seconds)``: a whole number from 1 and a finite window (see
    :class:`~msgbridge.ratelimit.SlidingWindowLimiter` for the ranges)."""
    if value is None:
        return
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigurationError(
            f"rate_limit must be a (requests, per_seconds) pair such as (100, 10.0), got "
            f"{type(value).__name__}",
            key="rate_limit",
        )
    try:
        check_number(value[0], key="requests", minimum=1, maximum=MAX_REQUESTS, integer=True)
        check_number(
            value[1], key="per_seconds", minimum=0.0, maximum=MAX_WINDOW, exclusive_minimum=True
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"rate_limit {exc.message}", key="rate_limit") from None


def _settings(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"settings must be a mapping, got {type(value).__name__}", key="settings"
        )
    return dict(value)


@attrs.frozen(repr=False)
class Connection:
    """Where to send updates for one account.

    ``settings`` are the adapter's (see each adapter's settings class); a connection in
    ``strict`` mode raises :class:`~msgbridge.errors.UnsupportedStatus` for states the
    adapter cannot express instead of skipping them. ``rate_limit`` overrides the
    adapter's default budget as ``(requests, per_seconds)``.
    """

    name: str = attrs.field(validator=_name)
    adapter: str = attrs.field(kw_only=True)
    credentials: Credential = attrs.field(kw_only=True, validator=_credentials)
    settings: Mapping[str, Any] = attrs.field(kw_only=True, factory=dict, converter=_settings)
    strict: bool = attrs.field(kw_only=True, default=False)
    rate_limit: tuple[int, float] | None = attrs.field(
        kw_only=True, default=None, validator=_rate_limit
    )

    def __repr__(self) -> str:
        # Settings may hold anything a plugin author chose; show only their keys.
        return (
            f"Connection({self.name!r}, adapter={self.adapter!r}, "
            f"credentials={self.credentials!r}, settings_keys={sorted(self.settings)!r}, "
            f"strict={self.strict!r})"
        )
