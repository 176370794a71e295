"""Chatwoot's credential: a static access token sent as the ``api_access_token`` header.

Chatwoot does not use ``Authorization: Bearer``; its controllers read the token from the
``api_access_token`` request header (a user's or an agent bot's access token, from the
profile settings page). A :class:`msgbridge.auth.HeaderToken`: sans-I/O, the secret lives
in a private attribute and never appears in a ``repr``, an exception or a log.
"""

from __future__ import annotations

from msgbridge.auth import HeaderToken

__all__ = ["HEADER", "ChatwootToken"]

#: The request header Chatwoot reads the access token from.
HEADER = "api_access_token"


class ChatwootToken(HeaderToken):
    """A Chatwoot access token, sent as ``api_access_token: <token>`` on every request.

    Chatwoot tokens are base58 strings; anything else (a trailing newline, a space,
    "Bearer …") is refused when the credential is built.
    """

    def __init__(self, token: str) -> None:
        super().__init__(HEADER, token)
