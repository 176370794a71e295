"""``check_path``: the rule every request path meets before the core joins it to a base URL."""

from __future__ import annotations

import time

import pytest

from msgbridge.adapter import RequestSpec, check_path
from msgbridge.errors import MessagingError, UnsafeRequest

SAFE = [
    "/",
    "/conversations/messages/m-1/status",
    "/conversations/messages/a%2Fb%3Fc/status",  # path_segment's output
    "/v1/status?message=m-1&x=%20",
    "/v1/search?q=a/b?c",  # '/' and '?' are query characters
    "/a/.hidden/..dots/...",  # dots inside a segment are not dot segments
    "/v1/things/",
    "/a//b",  # an empty segment stays on the same host
    "/alt:uid:42/@me;v=1",
]

UNSAFE = {
    "absolute-url": ("https://evil.example/x", "it has a scheme (an absolute URL)"),
    "other-scheme": ("mailto:x", "it has a scheme"),
    "scheme-relative": ("//evil.example/x", "it starts with '//' (a host, not a path)"),
    "three-slashes": ("///x", "it starts with '//'"),
    "relative": ("v1/x", "it does not start with '/'"),
    "empty": ("", "it does not start with '/'"),
    "dot-dot": ("/a/../oauth/token", "a '.' or '..' segment"),
    "dot-dot-at-end": ("/a/..", "a '.' or '..' segment"),
    "dot": ("/a/./b", "a '.' or '..' segment"),
    "dot-dot-before-query": ("/a/..?x=1", "a '.' or '..' segment"),
    "encoded-dot-dot": ("/a/%2e%2E/oauth", "a '.' or '..' segment"),
    "half-encoded-dot-dot": ("/a/.%2e/oauth", "a '.' or '..' segment"),
    "space": ("/a b", "character 2 (' ') is not printable ASCII"),
    "crlf": ("/a\r\nX-Evil: 1", "it contains a line break at character 2"),
    "lf-at-end": ("/a\n", "line break"),
    "non-ascii": ("/caf\u00e9", "character 4 ('\\xe9') is not printable ASCII"),
    "fragment": ("/a#b", "it contains a fragment"),
    "fragment-in-query": ("/a?b#c", "it contains a fragment"),
    "bad-escape": ("/a%zz", "'%' at character 2 does not start a %XX escape"),
    "short-escape": ("/a%2", "does not start a %XX escape"),
    "backslash": ("/a\\..\\b", "character 2 ('\\\\') must be percent-encoded"),
    "quote": ('/a"b', "must be percent-encoded"),
}


@pytest.mark.parametrize("path", SAFE)
def test_a_safe_path_is_returned_unchanged(path: str) -> None:
    assert check_path(path) is path


@pytest.mark.parametrize(("path", "says"), list(UNSAFE.values()), ids=list(UNSAFE))
def test_an_unsafe_path_is_refused_saying_why(path: str, says: str) -> None:
    with pytest.raises(UnsafeRequest) as caught:
        check_path(path)
    error = caught.value
    assert isinstance(error, MessagingError)
    assert error.retryable is False
    assert says in error.message
    assert "expected an encoded path relative to the base URL" in error.message
    assert "\r" not in str(error)  # the path is shown with ascii()
    assert "\n" not in str(error)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(UnsafeRequest, match="of type bytes is unsafe: it must be a string"):
        check_path(b"/x")  # type: ignore[arg-type]


def test_prepare_joins_by_concatenation_and_refuses_an_unsafe_path() -> None:
    spec = RequestSpec("PUT", "/v1/messages/m%2F1/status", json={"a": 1})
    prepared = spec.prepare("https://api.example.com/base")
    assert prepared.url == "https://api.example.com/base/v1/messages/m%2F1/status"
    assert prepared.body == b'{"a":1}'
    with pytest.raises(UnsafeRequest):
        RequestSpec("PUT", "https://evil.example/x").prepare("https://api.example.com")


def test_a_long_hostile_path_is_refused_in_linear_time() -> None:
    started = time.perf_counter()
    for path in ("/a" * 20_000 + " ", "/%41" * 10_000 + "%", "/" + "." * 50_000 + "#"):
        with pytest.raises(UnsafeRequest):
            check_path(path)
    assert time.perf_counter() - started < 5.0
