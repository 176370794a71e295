"""Compatibility: the config file moved to :mod:`msgbridge.config` (no CLI needed)."""

from __future__ import annotations

from msgbridge.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    Config,
    ConnectionConfig,
    OAuthConfig,
    build_credentials,
    load_config,
    looks_secret,
    parse_config,
    read_secret,
    shown_env_name,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "Config",
    "ConnectionConfig",
    "OAuthConfig",
    "build_credentials",
    "load_config",
    "looks_secret",
    "parse_config",
    "read_secret",
    "shown_env_name",
]
