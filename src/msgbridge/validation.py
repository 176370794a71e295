"""Checks for every value that can reach a URL, a header or a timer, run at construction.

A value that is wrong here would otherwise surface at send time as a confusing
retryable failure (a ``Version`` header with a trailing newline), travel in clear text
(an ``http://`` token URL), or leak (a password in a base URL, logged by httpx on every
request). So settings, credentials and policies call these in their constructors and
the caller gets a :class:`~msgbridge.errors.ConfigurationError` naming the key and what
would be right, before any I/O.

Errors never echo a value that may be secret: URLs are shown with their userinfo
replaced by ``***``, and a header value marked ``secret`` is described by position and
code point only. Public (re-exported from :mod:`msgbridge.wire`) so plugin adapters
check their settings the same way.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Literal, overload
from urllib.parse import urlsplit

from msgbridge.errors import ConfigurationError

__all__ = [
    "ascii_pattern",
    "check_header_value",
    "check_number",
    "check_pattern",
    "check_token_url",
    "check_url",
    "is_loopback",
    "redact_url",
]

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
#: DNS labels (underscores tolerated: container and service names use them).
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z", re.ASCII)
_SHOWN_LIMIT = 200


def redact_url(value: str) -> str:
    """*value* with any ``user:password@`` replaced by ``***@``, for messages and logs.

    Everything from ``//`` (or the start) to the last ``@`` goes: a pasted password
    may itself contain ``/`` or ``@``.
    """
    at = value.rfind("@")
    if at < 0:
        return value
    start = value.find("//")
    start = start + 2 if 0 <= start < at else 0
    return value[:start] + "***" + value[at:]


def _shown(value: str) -> str:
    text = redact_url(value)
    if len(text) > _SHOWN_LIMIT:
        text = text[:_SHOWN_LIMIT] + "..."
    return ascii(text)


def is_loopback(host: str) -> bool:
    """Whether *host* is this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def check_url(value: object, *, key: str, allow_path: bool = True) -> str:
    """Refuse a URL that could leak credentials or be misread; return it unchanged.

    Rules: a string of printable ASCII (no spaces or control characters: ``urlsplit``
    silently drops tabs and line breaks, so a pasted ``"https://host\\n"`` would
    otherwise pass); scheme ``https``, or ``http`` only on a loopback host (tokens
    would travel in clear text); a host name of ASCII letters, digits, ``-`` and ``.``
    (IDNA/punycode for international names) or an IP address; no ``user:password@``,
    indeed no ``@`` at all (httpx logs the URL, password included, on every request;
    errors show such a URL as ``https://***@host``); no query or fragment
    (a base URL gets paths appended); with ``allow_path=False``, no path either.
    """
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{key} must be a string such as 'https://api.example.com', got {type(value).__name__}",
            key=key,
        )
    shown = _shown(value)
    for position, char in enumerate(value):
        if not 0x21 <= ord(char) <= 0x7E:
            raise ConfigurationError(
                f"{key} must be printable ASCII without spaces; character {position} is "
                f"{_code_point(char)} in {shown} (percent-encode non-ASCII path characters "
                "and use the punycode form of international host names)",
                key=key,
            )
    if "@" in value:
        # Anywhere, not only in what urlsplit calls the netloc: parsers disagree on
        # "https://user:pa/ss@host", and no vendor URL needs an "@".
        raise ConfigurationError(
            f"{key} must not contain a user name or password ('@'; got {shown}); give "
            "credentials to the connection's credentials, never in a URL",
            key=key,
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # "[not-ipv6]": urlsplit checks bracketed hosts itself
        raise ConfigurationError(
            f"{key} has an invalid host in {shown}: expected a DNS name of ASCII letters, "
            "digits, '-' and '.', or an IP address",
            key=key,
        ) from None
    if parts.scheme not in {"http", "https"} or not host:
        raise ConfigurationError(
            f"{key} must be an absolute http(s) URL such as 'https://api.example.com', got {shown}",
            key=key,
        )
    if not _valid_host(host, bracketed=parts.netloc.startswith("[")):
        raise ConfigurationError(
            f"{key} has an invalid host {host!a}: expected a DNS name of ASCII letters, "
            "digits, '-' and '.', or an IP address",
            key=key,
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigurationError(
            f"{key} has an invalid port in {shown}: expected a number from 0 to 65535",
            key=key,
        ) from None
    if "?" in value or "#" in value:
        raise ConfigurationError(
            f"{key} must not have a query or fragment ('?' or '#'), got {shown}", key=key
        )
    if not allow_path and parts.path not in {"", "/"}:
        raise ConfigurationError(
            f"{key} must be an origin such as 'https://api.example.com' without a path, "
            f"got {shown}",
            key=key,
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigurationError(
            f"{key} uses plain http on a non-loopback host ({host}); tokens would "
            "travel unencrypted. Use https, or http only on localhost/127.0.0.1/::1",
            key=key,
        )
    return value


def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            return ipaddress.ip_address(host).version == 6
        except ValueError:
            return False
    return _HOST_NAME.match(host) is not None


def check_token_url(value: object, *, key: str = "token_url") -> str:
    """An OAuth token endpoint: the :func:`check_url` rules, path allowed.

    The refresh POSTs the client secret and the refresh token there, so plain http
    (outside loopback), userinfo, a query or a fragment are refused before any request.
    """
    return check_url(value, key=key, allow_path=True)


def check_header_value(
    value: object,
    *,
    key: str,
    alphabet: str | None = None,
    secret: bool = False,
    max_length: int = 8192,
) -> str:
    """Refuse a header value that would break or split the header; return it unchanged.

    Allowed: printable ASCII (0x20-0x7E), and only the characters of *alphabet* when
    given (the vendor's documented alphabet); no leading or trailing whitespace; never
    CR, LF, NUL, ESC, DEL or anything outside ASCII. With ``secret=True`` the error
    names the position and code point, never the value or its printable characters.
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a string, got {type(value).__name__}", key=key)
    if not value:
        raise ConfigurationError(f"{key} must not be empty", key=key)
    shown = "" if secret else f" in {_shown(value)}"
    if len(value) > max_length:
        raise ConfigurationError(
            f"{key} is {len(value)} characters long; at most {max_length} are allowed", key=key
        )
    for position, char in enumerate(value):
        if not 0x20 <= ord(char) <= 0x7E:
            hint = (
                " (a trailing line break from a file or environment variable?)"
                if char in "\r\n" and position >= len(value.rstrip("\r\n"))
                else ""
            )
            raise ConfigurationError(
                f"{key} must be printable ASCII; character {position} is "
                f"{_code_point(char)}{shown}{hint}",
                key=key,
            )
    if value != value.strip(" "):
        raise ConfigurationError(f"{key} must not start or end with a space{shown}", key=key)
    if alphabet is not None:
        allowed = set(alphabet)
        for position, char in enumerate(value):
            if char not in allowed:
                what = "a character" if secret else f"{char!r}"
                raise ConfigurationError(
                    f"{key} may only contain {describe_alphabet(alphabet)}; character "
                    f"{position} is {what} outside it{shown}",
                    key=key,
                )
    return value


def describe_alphabet(alphabet: str) -> str:
    """``"A-Z, a-z, 0-9, '-', '.'"`` for the characters of *alphabet* (for messages)."""
    codes = sorted({ord(c) for c in alphabet})
    parts: list[str] = []
    start = previous = None
    for code in [*codes, None]:
        if start is not None and (code is None or previous is None or code != previous + 1):
            assert previous is not None
            if previous - start >= 2:
                parts.append(f"{chr(start)}-{chr(previous)}")
            else:
                parts.extend(repr(chr(c)) for c in range(start, previous + 1))
            start = None
        if code is not None and start is None:
            start = code
        previous = code
    return ", ".join(parts)


@overload
def check_number(
    value: object,
    *,
    key: str,
    minimum: float,
    maximum: float,
    integer: Literal[True],
    exclusive_minimum: bool = ...,
) -> int: ...


@overload
def check_number(
    value: object,
    *,
    key: str,
    minimum: float,
    maximum: float,
    integer: Literal[False] = ...,
    exclusive_minimum: bool = ...,
) -> float: ...


def check_number(
    value: object,
    *,
    key: str,
    minimum: float,
    maximum: float,
    integer: bool = False,
    exclusive_minimum: bool = False,
) -> float:
    """A finite number in ``[minimum, maximum]`` (``(minimum, maximum]`` when
    *exclusive_minimum*); ``True``/``False`` are not numbers. Returns it unchanged.

    ``inf`` and ``nan`` are refused everywhere: an infinite window would hold a
    connection forever and ``nan`` compares false with everything (then raises from
    ``time.sleep``).
    """
    kind = "a whole number" if integer else "a finite number"
    if exclusive_minimum:
        expected = f"{kind} more than {_fmt(minimum)} and at most {_fmt(maximum)}"
    else:
        expected = f"{kind} from {_fmt(minimum)} to {_fmt(maximum)}"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not isinstance(value, int))
    ):
        got = type(value).__name__
        raise ConfigurationError(f"{key} must be {expected}, got {got} {_short(value)}", key=key)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"{key} must be {expected}, got {value!r}", key=key)
    too_low = value <= minimum if exclusive_minimum else value < minimum
    if too_low or value > maximum:
        raise ConfigurationError(f"{key} must be {expected}, got {value!r}", key=key)
    return value


def _fmt(number: float) -> str:
    if float(number).is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:g}"


def _short(value: object) -> str:
    text = ascii(value)
    return text if len(text) <= 40 else text[:40] + "..."


def ascii_pattern(regex: str) -> re.Pattern[str]:
    """Compile *regex* to match a whole string, ASCII only.

    ``re.ASCII`` makes ``\\d`` mean ``[0-9]`` (not the fullwidth digit U+FF12) and ``\\w`` mean
    ``[A-Za-z0-9_]``; the appended ``\\Z`` ends at the true end of the string (``$``
    also matches before a trailing newline, so ``"2026-03\\n"`` would pass). Use
    ``pattern.match(value)``.
    """
    if regex.endswith("$") and not regex.endswith("\\$"):
        raise ValueError("end the pattern without '$'; ascii_pattern appends \\Z")
    return re.compile(f"(?:{regex})\\Z", re.ASCII)


def check_pattern(
    value: object,
    pattern: re.Pattern[str],
    *,
    key: str,
    expected: str,
    secret: bool = False,
) -> str:
    """*value* if *pattern* (from :func:`ascii_pattern`) matches all of it, else a
    ``ConfigurationError`` saying what was *expected* (never the value if *secret*)."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be {expected}, got {type(value).__name__}", key=key)
    if pattern.match(value) is None:
        got = "" if secret else f", got {_shown(value)}"
        raise ConfigurationError(f"{key} must be {expected}{got}", key=key)
    return value
