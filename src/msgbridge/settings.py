"""Parse a connection's ``settings`` mapping into an adapter's typed settings class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from msgbridge.errors import ConfigurationError
from msgbridge.strict import make_strict_converter, structure_strictly

__all__ = ["structure_settings"]

S = TypeVar("S")

_converter = make_strict_converter()


def structure_settings(raw: Mapping[str, Any], settings_type: type[S], *, adapter: str) -> S:
    """Typed settings, or a ``ConfigurationError`` naming the offending key."""

    def error(message: str, key: str | None) -> ConfigurationError:
        return ConfigurationError(
            f"invalid settings for adapter {adapter!r}: {message}", key=key, adapter=adapter
        )

    return structure_strictly(_converter, raw, settings_type, error)
