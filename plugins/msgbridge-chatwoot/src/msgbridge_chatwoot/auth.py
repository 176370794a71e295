"""Chatwoot's credential: a static access token sent as the ``api_access_token`` header.

Chatwoot does not use ``Authorization: Bearer``; its controllers read the token from the
``api_access_token`` request header (a user's or an agent bot's access token, from the
profile settings page). Modelled on :class:`msgbridge.auth.BearerToken`: the secret
lives in a private attribute and never appears in a ``repr``, an exception or a log.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from msgbridge.errors import ConfigurationError

__all__ = ["HEADER", "ChatwootToken"]

#: The request header Chatwoot reads the access token from.
HEADER = "api_access_token"

_REDACTED = "<redacted>"


def _check_token(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("token must be a non-empty string", key="token")
    if not all(0x21 <= ord(ch) <= 0x7E for ch in value):
        # Chatwoot tokens are base58 strings; anything else is a copy-paste accident
        # (a trailing newline, a space, "Bearer …") that would break the header.
        raise ConfigurationError(
            "token must be visible ASCII characters only (no spaces, line breaks or "
            "control characters); paste the bare access token",
            key="token",
        )
    return value


class ChatwootToken(httpx.Auth):
    """A Chatwoot access token, sent as ``api_access_token: <token>`` on every request."""

    def __init__(self, token: str) -> None:
        self._token = _check_token(token)

    def headers(self) -> dict[str, str]:
        """The header this credential adds (for senders that skip httpx's auth flow)."""
        return {HEADER: self._token}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[HEADER] = self._token
        yield request

    def __repr__(self) -> str:
        return f"ChatwootToken({_REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatwootToken) and other._token == self._token

    def __hash__(self) -> int:
        return hash((ChatwootToken, self._token))
