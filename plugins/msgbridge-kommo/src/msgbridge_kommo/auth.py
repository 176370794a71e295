"""Kommo's Chats API credential: every request signed with the channel secret.

Kommo's Chats API (``amojo.kommo.com``) takes no access token. Each request carries:

* ``Date``: when it was made, RFC 2822 (``Thu, 01 Jan 2023 12:00:00 +0000``); Kommo
  honours a signature for 15 minutes from this date;
* ``Content-Type``: ``application/json`` (the only type Kommo accepts);
* ``Content-MD5``: lowercase hex MD5 of the exact body bytes (of ``b""`` when there is
  no body);
* ``X-Signature``: lowercase hex HMAC-SHA1, keyed with the channel secret, of
  ``METHOD\\nContent-MD5\\nContent-Type\\nDate\\npath`` (the method upper-case, the path
  as sent, without scheme, host or query).

The string and the header formats are Kommo's (developers.kommo.com, "Chats API
authorization"; kommo.com/developers "Chats API methods", whose PHP example implodes
exactly these five values with ``"\\n"``). Sans-I/O: the time comes from an injectable
``clock``, and :meth:`KommoSignature.headers` is called once per attempt, so a retry is
signed afresh over exactly the bytes it sends.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from msgbridge.adapter import PreparedRequest
from msgbridge.auth import Credential, check_secret

__all__ = [
    "CONTENT_TYPE",
    "KommoSignature",
    "content_md5",
    "rfc2822_date",
    "signature",
    "signing_string",
]

#: The only request content type the Chats API accepts.
CONTENT_TYPE = "application/json"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc2822_date(epoch: float) -> str:
    """``Thu, 01 Jan 2023 12:00:00 +0000`` for *epoch*, in UTC.

    Built by hand: ``strftime``'s ``%a``/``%b`` follow the process locale, and
    ``email.utils.formatdate`` writes ``-0000``, not the ``+0000`` Kommo shows.
    """
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def content_md5(body: bytes | None) -> str:
    """Lowercase hex MD5 of the body bytes (Kommo's ``Content-MD5``; not RFC 1864 base64)."""
    return hashlib.md5(body or b"", usedforsecurity=False).hexdigest()


def signing_string(method: str, md5: str, content_type: str, date: str, path: str) -> str:
    """What Kommo signs: the method and the three header values, then the path, by ``\\n``."""
    return "\n".join((method.upper(), md5, content_type, date, path))


def signature(secret: str, text: str) -> str:
    """Lowercase hex HMAC-SHA1 of *text* keyed with the channel *secret*."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()


class KommoSignature(Credential):
    """Signs every Chats API request with the channel secret (``X-Signature``).

    ``clock`` returns the current epoch seconds (``time.time`` by default); inject one in
    tests. The secret is the channel's ``secret_key`` from Kommo's channel registration;
    it never appears in a ``repr``, an exception or a log.
    """

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = check_secret("channel secret", secret)
        self._clock = clock

    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        content_type = _header(request.headers, "content-type") or CONTENT_TYPE
        md5 = content_md5(request.body)
        date = rfc2822_date(self._clock())
        path = urlsplit(request.url).path or "/"
        text = signing_string(request.method, md5, content_type, date, path)
        return {
            "Date": date,
            "Content-Type": content_type,
            "Content-MD5": md5,
            "X-Signature": signature(self._secret, text),
        }

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and hmac.compare_digest(other._secret, self._secret)
            and other._clock is self._clock
        )

    def __hash__(self) -> int:
        return hash((type(self), self._secret))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
