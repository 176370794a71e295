"""msgbridge.wire's answer-reading helpers that plugins share (no I/O, no clock)."""

from __future__ import annotations

import pytest

from msgbridge.adapter import ResponseView
from msgbridge.wire import error_text, seconds_until_reset, text_value


def answer(status: int, body: bytes = b"", **headers: str) -> ResponseView:
    return ResponseView(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("  spaced  ", "spaced"),
        ("", None),
        ("   ", None),
        (["a", " ", "b "], "a; b"),
        ([1, None], None),
        ([], None),
        (42, None),
        (None, None),
    ],
)
def test_text_value(value: object, text: str | None) -> None:
    assert text_value(value) == text


@pytest.mark.parametrize(
    ("body", "keys", "text"),
    [
        (b'{"error": "bad token"}', ("error", "message"), "bad token"),
        (b'{"error": "", "message": "second key"}', ("error", "message"), "second key"),
        (b'{"errors": ["one", "two"]}', ("errors",), "one; two"),
        (b'{"detail": "only detail"}', ("error",), '{"detail": "only detail"}'),
        (b"Retry later\n", ("error",), "Retry later"),
        (b"<html><h1>502</h1></html>", ("error",), "HTTP 502"),
        (b"", ("error",), "HTTP 502"),
        (b"\xff\xfe not utf-8", ("error",), "\ufffd\ufffd not utf-8"),
    ],
)
def test_error_text_is_never_empty(body: bytes, keys: tuple[str, ...], text: str) -> None:
    assert error_text(answer(502, body), keys=keys) == text


def test_error_text_default_keys() -> None:
    assert error_text(answer(400, b'{"message": "m", "error": "e"}')) == "e"


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"x_ratelimit_reset": "30"}, 30.0),
        ({"x_ratelimit_reset": "-4"}, 0.0),
        # 1791970110 is 2026-10-14T09:28:30Z: thirty seconds after the server's Date.
        ({"x_ratelimit_reset": "1791970110", "date": "Wed, 14 Oct 2026 09:28:00 GMT"}, 30.0),
        ({"x_ratelimit_reset": "1791970110", "date": "Wed, 14 Oct 2026 09:30:00 GMT"}, 0.0),
        ({"x_ratelimit_reset": "1791970110"}, None),  # a timestamp needs the server's Date
        ({"x_ratelimit_reset": "1791970110", "date": "soon"}, None),
        ({"x_ratelimit_reset": "1791970110", "date": "Wed, 14 Oct 2026 09:28:00"}, None),
        ({"x_ratelimit_reset": "inf"}, None),
        ({"x_ratelimit_reset": "nan"}, None),
        ({"x_ratelimit_reset": "later"}, None),
        ({}, None),
    ],
)
def test_seconds_until_reset(headers: dict[str, str], wait: float | None) -> None:
    assert seconds_until_reset(answer(429, **headers)) == wait


def test_seconds_until_reset_reads_the_named_header() -> None:
    assert seconds_until_reset(answer(429, ratelimit_reset="5"), "ratelimit-reset") == 5.0
