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


# -- ResponseView.json and path_segment: the hot path's shortcuts keep their meaning --


def test_response_json_reads_utf8_and_what_json_loads_detects() -> None:
    from msgbridge.adapter import ResponseView

    assert ResponseView(200, {}, '{"a":"é"}'.encode()).json() == {"a": "é"}
    assert ResponseView(200, {}, b'\xef\xbb\xbf{"a":1}').json() == {"a": 1}  # UTF-8 BOM
    assert ResponseView(200, {}, '{"a":"é"}'.encode("utf-16")).json() == {"a": "é"}
    assert ResponseView(200, {}, b"\xff\xfe\xfa").json() is None  # not JSON at all
    assert ResponseView(200, {}, b"").json() is None


def test_path_segment_passes_unreserved_ids_and_encodes_the_rest() -> None:
    import pytest

    from msgbridge.adapter import path_segment
    from msgbridge.errors import InvalidStatus

    assert path_segment("id", "Ab0-._~") == "Ab0-._~"
    assert path_segment("id", "a/b?c#d%e f") == "a%2Fb%3Fc%23d%25e%20f"
    assert path_segment("id", "é") == "%C3%A9"
    for bad in ("", ".", ".."):
        with pytest.raises(InvalidStatus):
            path_segment("id", bad)
