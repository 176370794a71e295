"""KommoSignature: the exact headers Kommo's Chats API checks, computed sans-I/O.

The known answer uses the inputs of Kommo's own PHP example ("Chats API methods":
secret, date, path and body of the ``connect`` request). Kommo does not publish the
resulting signature, so the expected values were computed outside Python (``printf ... |
md5sum`` and ``openssl dgst -sha1 -hmac <secret>`` over the five lines) and are checked
again here by an RFC 2104 HMAC written from ``hashlib.sha1`` alone (not :mod:`hmac`).
"""

from __future__ import annotations

import calendar
import hashlib

import pytest
from msgbridge_kommo import KommoAdapter, KommoSignature
from msgbridge_kommo.auth import rfc2822_date

from msgbridge import MessageStatus
from msgbridge.adapter import PreparedRequest, RequestSpec, resolve_base_url
from msgbridge.errors import ConfigurationError

# Kommo's documented example (kommo.com/developers/content/chats/chats-api-methods).
DOC_SECRET = "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"
DOC_DATE = "Thu, 29 Oct 2020 11:59:55 +0000"
DOC_PATH = "/v2/origin/custom/f90ba33d-c9d9-44da-b76c-c349b0ecbe41/connect"
DOC_BODY = (
    b'{"account_id":"af9945ff-1490-4cad-807d-945c15d88bec","title":"ScopeTitle",'
    b'"hook_api_version":"v2"}'
)
DOC_EPOCH = calendar.timegm((2020, 10, 29, 11, 59, 55, 0, 0, 0))
# Computed with coreutils md5sum and openssl dgst -sha1 -hmac (see the module docstring).
DOC_MD5 = "a5e8ae04332a6d0aac15f01ad05d40e3"
DOC_SIGNATURE = "e0dcc1936d766a7d5f53fe19887fafa50bef92e0"


def rfc2104_hmac_sha1(key: bytes, message: bytes) -> str:
    """HMAC-SHA1 from its definition, independent of the stdlib ``hmac`` module."""
    block = 64
    if len(key) > block:
        key = hashlib.sha1(key, usedforsecurity=False).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha1(bytes(k ^ 0x36 for k in key) + message, usedforsecurity=False).digest()
    return hashlib.sha1(bytes(k ^ 0x5C for k in key) + inner, usedforsecurity=False).hexdigest()


def test_rfc2104_reference_matches_rfc_2202() -> None:
    # RFC 2202 test case 2, so the reference above is itself checked.
    expected = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    assert rfc2104_hmac_sha1(b"Jefe", b"what do ya want for nothing?") == expected


def doc_request() -> PreparedRequest:
    return PreparedRequest(
        "post",
        "https://amojo.kommo.com" + DOC_PATH + "?ignored=1",
        {"Accept": "application/json", "Content-Type": "application/json"},
        DOC_BODY,
    )


def test_known_answer_from_kommos_example() -> None:
    headers = KommoSignature(DOC_SECRET, clock=lambda: DOC_EPOCH).headers(doc_request())
    assert dict(headers) == {
        "Date": DOC_DATE,
        "Content-Type": "application/json",
        "Content-MD5": DOC_MD5,
        "X-Signature": DOC_SIGNATURE,
    }
    signed = "\n".join(("POST", DOC_MD5, "application/json", DOC_DATE, DOC_PATH))
    assert rfc2104_hmac_sha1(DOC_SECRET.encode(), signed.encode()) == DOC_SIGNATURE
    assert hashlib.md5(DOC_BODY, usedforsecurity=False).hexdigest() == DOC_MD5


def test_signature_covers_the_exact_bytes_the_adapter_prepares() -> None:
    adapter = KommoAdapter()
    settings = adapter.parse_settings({"scope_id": "chan_acct"})
    base = resolve_base_url(adapter, settings)
    prepared = adapter.prepare_status(MessageStatus("m/1", "read"), settings).prepare(base)
    credential = adapter.credentials_from_token("s3cret")
    assert isinstance(credential, KommoSignature)
    headers = KommoSignature("s3cret", clock=lambda: 0.0).headers(prepared)
    path = "/v2/origin/custom/chan_acct/m%2F1/delivery_status"
    signed = "\n".join(
        (
            "POST",
            headers["Content-MD5"],
            "application/json",
            "Thu, 01 Jan 1970 00:00:00 +0000",
            path,
        )
    )
    assert headers["X-Signature"] == rfc2104_hmac_sha1(b"s3cret", signed.encode())
    assert (
        headers["Content-MD5"]
        == hashlib.md5(prepared.body or b"", usedforsecurity=False).hexdigest()
    )


def test_each_attempt_is_signed_with_the_time_it_is_sent() -> None:
    now = [DOC_EPOCH]
    credential = KommoSignature(DOC_SECRET, clock=lambda: now[0])
    first = credential.headers(doc_request())
    now[0] += 61
    second = credential.headers(doc_request())
    assert first["Date"] == DOC_DATE
    assert second["Date"] == "Thu, 29 Oct 2020 12:00:56 +0000"
    assert first["X-Signature"] != second["X-Signature"]


def test_no_body_signs_the_md5_of_nothing_and_the_default_content_type() -> None:
    request = PreparedRequest("GET", "https://amojo.kommo.com/v2/origin/custom/x", {}, None)
    headers = KommoSignature(DOC_SECRET, clock=lambda: DOC_EPOCH).headers(request)
    assert headers["Content-MD5"] == "d41d8cd98f00b204e9800998ecf8427e"  # md5("")
    assert headers["Content-Type"] == "application/json"
    signed = "\n".join(
        (
            "GET",
            "d41d8cd98f00b204e9800998ecf8427e",
            "application/json",
            DOC_DATE,
            "/v2/origin/custom/x",
        )
    )
    assert headers["X-Signature"] == rfc2104_hmac_sha1(DOC_SECRET.encode(), signed.encode())


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0.0, "Thu, 01 Jan 1970 00:00:00 +0000"),
        (DOC_EPOCH + 0.9, DOC_DATE),
        (calendar.timegm((2024, 2, 29, 23, 5, 9, 0, 0, 0)), "Thu, 29 Feb 2024 23:05:09 +0000"),
    ],
)
def test_rfc2822_dates_are_english_utc_whatever_the_locale(epoch: float, text: str) -> None:
    assert rfc2822_date(epoch) == text


def test_the_secret_never_shows() -> None:
    credential = KommoSignature(DOC_SECRET)
    assert DOC_SECRET not in repr(credential)
    assert DOC_SECRET not in str(credential)
    with pytest.raises(ConfigurationError) as caught:
        KommoSignature(DOC_SECRET + "\n")
    assert DOC_SECRET not in str(caught.value)
    assert "line break" in str(caught.value)
    with pytest.raises(ConfigurationError):
        KommoSignature("")


def test_request_spec_stays_credential_free() -> None:
    adapter = KommoAdapter()
    settings = adapter.parse_settings({"scope_id": "chan_acct"})
    spec: RequestSpec = adapter.prepare_status(MessageStatus("m1", "delivered"), settings)
    assert "X-Signature" not in spec.prepare("https://amojo.kommo.com").headers
