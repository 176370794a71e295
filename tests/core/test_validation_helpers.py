"""msgbridge.validation: the one check for URLs, header values, numbers and patterns.

Every rule here exists because a value broke something at send time (issue 10): a
password in a base URL logged by httpx, a ``Version`` with a trailing newline retried
five times as ``VendorUnavailable``, ``per_seconds = inf`` hanging a connection.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

import msgbridge.wire as wire
from msgbridge.adapter import check_base_url
from msgbridge.errors import ConfigurationError
from msgbridge.validation import (
    ascii_pattern,
    check_header_value,
    check_number,
    check_pattern,
    check_token_url,
    check_url,
    redact_url,
)

PASSWORD = "hunter2-Pa55word"

# -- URLs ---------------------------------------------------------------------------------

GOOD_URLS = [
    "https://api.example.com",
    "https://api.example.com/",
    "https://api.example.com:8443/v1/base",
    "http://127.0.0.1:8765/highlevel",
    "http://localhost:8000",
    "http://[::1]:9000/x",
    "https://svc_internal.local",
    "https://xn--bcher-kva.example",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_good_urls_pass_unchanged(url: str) -> None:
    assert check_url(url, key="base_url") == url
    assert check_token_url(url) == url


BAD_URLS = [
    pytest.param("ftp://api.example.com", "absolute http(s) URL", id="scheme"),
    pytest.param("api.example.com", "absolute http(s) URL", id="no-scheme"),
    pytest.param("https://", "absolute http(s) URL", id="no-host"),
    pytest.param("http://api.example.com", "plain http on a non-loopback host", id="http"),
    pytest.param("http://10.0.0.1/", "plain http on a non-loopback host", id="http-private"),
    pytest.param("https://api.example.com?x=1", "query or fragment", id="query"),
    pytest.param("https://api.example.com/?", "query or fragment", id="empty-query"),
    pytest.param("https://api.example.com#top", "query or fragment", id="fragment"),
    pytest.param("https://api.example.com\n", "U+000A", id="trailing-newline"),
    pytest.param("https://api.example.com\t/x", "U+0009", id="tab"),
    pytest.param("https://api.exa mple.com", "U+0020", id="space"),
    pytest.param("https://api.example.com\x00", "U+0000", id="nul"),
    pytest.param("https://bücher.example", "U+00FC", id="non-ascii-host"),
    pytest.param("https://api.example.com:99999", "invalid port", id="port"),
    pytest.param("https://-bad-.example", "invalid host", id="host-label"),
    pytest.param("https://[not-ipv6]/", "invalid host", id="bracket"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_urls_are_configuration_errors_naming_the_key(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_url(url, key="base_url")
    assert info.value.key == "base_url"
    assert info.value.message.startswith("base_url ")
    assert message in info.value.message


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{PASSWORD}@api.example.com",
        f"https://:{PASSWORD}@api.example.com/v1",
        f"https://user:{PASSWORD}/x@api.example.com",  # '/' in the password: urlsplit is fooled
        f"http://user:{PASSWORD}@evil.example",  # refused for userinfo before plain http
        f"https://user:{PASSWORD}@api.example.com\n",  # refused for the newline first
        f"user:{PASSWORD}@api.example.com",
    ],
)
def test_userinfo_is_refused_and_the_password_never_echoed(url: str) -> None:
    for check in (
        lambda: check_url(url, key="base_url"),
        lambda: check_token_url(url),
        lambda: check_base_url(url),
    ):
        with pytest.raises(ConfigurationError) as info:
            check()
        for text in (str(info.value), repr(info.value), info.value.message):
            assert PASSWORD not in text
        assert "***" in info.value.message


def test_userinfo_error_shows_the_url_with_stars() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_url(f"https://bob:{PASSWORD}@api.example.com/v1", key="base_url")
    assert "'https://***@api.example.com/v1'" in info.value.message
    assert "user name or password" in info.value.message


def test_allow_path_false_wants_an_origin() -> None:
    assert check_url("https://api.example.com/", key="origin", allow_path=False)
    with pytest.raises(ConfigurationError, match="without a path"):
        check_url("https://api.example.com/v1", key="origin", allow_path=False)


@pytest.mark.parametrize("value", [None, 42, b"https://api.example.com", ["https://x"]])
def test_url_must_be_a_string(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be a string") as info:
        check_url(value, key="base_url")
    assert info.value.key == "base_url"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://auth.example.com/oauth/token", "plain http"),
        (f"https://id:{PASSWORD}@auth.example.com/oauth/token", "user name or password"),
        ("https://auth.example.com/oauth/token?grant_type=x", "query"),
        ("https://auth.example.com/oauth/token#x", "fragment"),
        ("not a url", "U+0020"),
        ("/oauth/token", "absolute http(s) URL"),
    ],
)
def test_token_url_rules(url: str, message: str) -> None:
    """The refresh POSTs the client secret and refresh token to this URL."""
    with pytest.raises(ConfigurationError) as info:
        check_token_url(url)
    assert info.value.key == "token_url"
    assert message in info.value.message
    assert PASSWORD not in str(info.value)


def test_token_url_allows_loopback_http_and_a_path() -> None:
    url = "http://127.0.0.1:8765/hubspot/oauth/v1/token"
    assert check_token_url(url) == url


def test_check_base_url_keeps_its_behaviour() -> None:
    assert check_base_url("https://api.example.com/base/") == "https://api.example.com/base"
    with pytest.raises(ConfigurationError) as info:
        check_base_url("http://api.example.com", key="settings.base_url")
    assert info.value.key == "settings.base_url"


def test_redact_url() -> None:
    assert redact_url("https://api.example.com/x") == "https://api.example.com/x"
    assert redact_url(f"https://u:{PASSWORD}@h.example/p") == "https://***@h.example/p"
    assert redact_url(f"u:{PASSWORD}@h.example") == "***@h.example"


# -- header values ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2021-07-28", "v3", "Bearer abc.DEF-123_~+/=", "a b"])
def test_printable_header_values_pass(value: str) -> None:
    assert check_header_value(value, key="version") == value


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2021-07-28\n", "U+000A"),
        ("2021-07-28\r\n", "U+000D"),
        ("2021\r\nX-Evil: 1", "U+000D"),
        ("ab\x00c", "U+0000"),
        ("ab\x1bc", "U+001B"),
        ("ab\x7fc", "U+007F"),
        ("ab\tc", "U+0009"),
        ("\uff12\uff10\uff12\uff16-03", "U+FF12"),
        ("caf\u00e9", "U+00E9"),
        ("a\u202eb", "U+202E"),
    ],
)
def test_non_printable_header_values_are_refused_naming_the_code_point(
    value: str, code: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_header_value(value, key="version")
    assert info.value.key == "version"
    assert code in info.value.message
    assert "character " in info.value.message


def test_trailing_newline_gets_a_hint() -> None:
    with pytest.raises(ConfigurationError, match="trailing line break"):
        check_header_value("2021-07-28\n", key="version")


@pytest.mark.parametrize("value", [" v3", "v3 ", ""])
def test_padding_and_empty_header_values_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_header_value(value, key="version")
    assert info.value.key == "version"


def test_secret_header_values_are_never_echoed() -> None:
    secret = "tok-SECRET-value-123"
    for value in (secret + "\n", secret + "\x7f", " " + secret, secret + "é", secret + "!"):
        with pytest.raises(ConfigurationError) as info:
            check_header_value(value, key="token", secret=True, alphabet=_TOKEN_ALPHABET)
        assert "SECRET" not in str(info.value)
        assert "tok-" not in str(info.value)
        assert info.value.key == "token"


_TOKEN_ALPHABET = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "!")


def test_alphabet_restricts_and_is_described() -> None:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
    assert check_header_value("2021-07-28", key="v", alphabet=alphabet) == "2021-07-28"
    with pytest.raises(ConfigurationError) as info:
        check_header_value("2021/07/28", key="v", alphabet=alphabet)
    assert "'-', 0-9, a-z" in info.value.message
    assert "character 4 is '/'" in info.value.message


def test_header_value_length_is_bounded() -> None:
    with pytest.raises(ConfigurationError, match="at most 32"):
        check_header_value("v" * 33, key="version", max_length=32)


@pytest.mark.parametrize("value", [None, 3, b"v3"])
def test_header_value_must_be_a_string(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        check_header_value(value, key="version")


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [math.inf, -math.inf, math.nan, True, False, "1", None, [1], 1e309, -1.0, 101, 100.5],
)
def test_bad_numbers_are_configuration_errors(value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_number(value, key="per_seconds", minimum=0.0, maximum=100.0)
    assert info.value.key == "per_seconds"
    assert "finite number from 0 to 100" in info.value.message


def test_numbers_in_range_pass_unchanged() -> None:
    assert check_number(0, key="k", minimum=0.0, maximum=1.0) == 0
    assert check_number(1.0, key="k", minimum=0.0, maximum=1.0) == 1.0
    assert check_number(7, key="k", minimum=1, maximum=10, integer=True) == 7


def test_exclusive_minimum_and_integers() -> None:
    with pytest.raises(ConfigurationError, match="more than 0 and at most 10"):
        check_number(0.0, key="k", minimum=0.0, maximum=10.0, exclusive_minimum=True)
    assert check_number(1e-9, key="k", minimum=0.0, maximum=10.0, exclusive_minimum=True)
    with pytest.raises(ConfigurationError, match="whole number from 1 to 1,000"):
        check_number(2.0, key="k", minimum=1, maximum=1000, integer=True)


# -- ASCII patterns -----------------------------------------------------------------------


def test_ascii_pattern_matches_the_whole_string_only() -> None:
    version = ascii_pattern(r"\d{4}-\d{2}")
    assert version.match("2026-03")
    assert not version.match("2026-03\n")  # '$' would have let this through
    assert not version.match("\uff12\uff10\uff12\uff16-03")  # '\d' without re.ASCII would have too
    assert not version.match("2026-031")
    assert version.flags & re.ASCII


def test_ascii_pattern_refuses_a_dollar_anchor() -> None:
    with pytest.raises(ValueError, match=r"\\Z"):
        ascii_pattern(r"[0-9]+$")


def test_check_pattern() -> None:
    digits = ascii_pattern(r"[0-9]+")
    assert check_pattern("42", digits, key="channel_id", expected="digits") == "42"
    with pytest.raises(ConfigurationError, match=r"channel_id must be digits, got '42\\n'"):
        check_pattern("42\n", digits, key="channel_id", expected="digits")
    with pytest.raises(ConfigurationError) as info:
        check_pattern("sk-123\n", digits, key="token", expected="digits", secret=True)
    assert "sk-123" not in str(info.value)


def test_helpers_are_public_in_wire_for_adapter_authors() -> None:
    for name in (
        "check_url",
        "check_token_url",
        "check_header_value",
        "check_number",
        "ascii_pattern",
        "check_pattern",
        "redact_url",
    ):
        assert name in wire.__all__
        assert callable(getattr(wire, name))
