"""The public import surface and the error family."""

from __future__ import annotations

import importlib

import pytest

import msgbridge
from msgbridge import errors


def test_documented_names_import_from_the_package() -> None:
    from msgbridge import (
        AsyncBridge,
        BearerToken,
        Bridge,
        Connection,
        ConversationUpdate,
        DeliveryState,
        MessageStatus,
        Outcome,
        Receipt,
        StatusError,
        hookimpl,
    )

    assert Bridge.__module__ == "msgbridge.bridge"
    assert AsyncBridge.__module__ == "msgbridge.bridge"
    assert Connection.__module__ == "msgbridge.connection"
    assert BearerToken.__module__ == "msgbridge.auth"
    for cls in (MessageStatus, DeliveryState, StatusError, ConversationUpdate, Receipt, Outcome):
        assert cls.__module__ == "msgbridge.model"
    assert hookimpl.project_name == "msgbridge"
    assert {s.value for s in DeliveryState} == {"pending", "sent", "delivered", "read", "failed"}


def test_all_lists_only_importable_names() -> None:
    module = importlib.import_module("msgbridge")
    missing = [name for name in msgbridge.__all__ if not hasattr(module, name)]
    assert missing == []


ERROR_NAMES = [
    "ConfigurationError",
    "InvalidStatus",
    "UnsupportedStatus",
    "UnsupportedOperation",
    "AuthenticationError",
    "PermissionDenied",
    "NotFound",
    "RateLimited",
    "VendorRejected",
    "VendorUnavailable",
    "MalformedResponse",
]


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_every_error_is_a_messaging_error(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.MessagingError)
    assert issubclass(cls, Exception)
    assert name in errors.__all__


@pytest.mark.parametrize(
    ("name", "retryable"),
    [
        ("RateLimited", True),
        ("VendorUnavailable", True),
        ("VendorRejected", False),
        ("AuthenticationError", False),
        ("PermissionDenied", False),
        ("NotFound", False),
        ("MalformedResponse", False),
    ],
)
def test_default_retryability(name: str, retryable: bool) -> None:
    assert getattr(errors, name)("x").retryable is retryable


def test_rate_limited_carries_retry_after_and_context() -> None:
    error = errors.RateLimited(
        "slow down",
        retry_after=3.5,
        connection="c1",
        adapter="highlevel",
        subject_id="m1",
        http_status=429,
        trace_id="t-1",
    )
    assert error.retry_after == 3.5
    assert error.message_id == "m1"
    assert str(error) == (
        "slow down (connection='c1', adapter='highlevel', id='m1', http_status=429, trace_id='t-1')"
    )
    assert repr(error) == f"RateLimited({str(error)!r})"


def test_with_context_keeps_what_is_known() -> None:
    error = errors.NotFound("gone", connection="first")
    assert error.with_context(connection="second", adapter="hubspot") is error
    assert error.connection == "first"
    assert error.adapter == "hubspot"


def test_provider_not_ready_is_a_retryable_permission_denied() -> None:
    assert issubclass(errors.ProviderNotReady, errors.PermissionDenied)
    assert errors.ProviderNotReady("x").retryable is True
    assert errors.PermissionDenied("x").retryable is False
