"""Conformance kit for msgbridge adapters, built-in or third-party (opt-in, test-time).

Adapters are sans-I/O and data-described, so one data-driven suite can hold any of
them to the contract of :mod:`msgbridge.adapter`::

    from msgbridge.testing import AdapterConformance

    class TestMyAdapter(AdapterConformance):
        adapter = MyAdapter()
        settings = {"base_url": "https://api.example.com", "api_token": "t0ken"}
        secret_settings = ("api_token",)

The check functions and :class:`ConformanceCase` work without pytest;
:class:`AdapterConformance` needs it and is imported only when first used, so
``import msgbridge`` (and even ``import msgbridge.testing``) never imports pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from msgbridge.testing.checks import (
    BEARER_TOKEN,
    ERROR_EXPECTATIONS,
    GENERIC_ERROR_BODY_KINDS,
    HOSTILE_IDS,
    MALFORMED_SUCCESS_BODIES,
    ODD_ERROR_BODIES,
    RETRY_AFTER_FORMS,
    TRACE_ID,
    ConformanceCase,
    ConformanceError,
    ErrorExpectation,
    check_adapter_identity,
    check_capabilities,
    check_conversation_operation,
    check_empty_success,
    check_error_body,
    check_generic_error,
    check_malformed_success,
    check_no_clock,
    check_no_io,
    check_no_secret_leaks,
    check_path_segment,
    check_rate_limit_feedback,
    check_relative_paths,
    check_request_spec,
    check_retry_after,
    check_state,
    check_success_accepts_unknown_fields,
    check_success_fields_declared,
    check_success_required_fields,
    check_success_required_fields_not_null,
    check_trace_id,
    check_unknown_setting_rejected,
    check_vendor_error_bodies,
    expectation_for,
)
from msgbridge.testing.noio import (
    ClockAttempts,
    ForbiddenClock,
    ForbiddenIO,
    IOAttempts,
    forbid_clock,
    forbid_io,
)

if TYPE_CHECKING:
    from msgbridge.testing.conformance import AdapterConformance

__all__ = [
    "BEARER_TOKEN",
    "ERROR_EXPECTATIONS",
    "GENERIC_ERROR_BODY_KINDS",
    "HOSTILE_IDS",
    "MALFORMED_SUCCESS_BODIES",
    "ODD_ERROR_BODIES",
    "RETRY_AFTER_FORMS",
    "TRACE_ID",
    "AdapterConformance",
    "ClockAttempts",
    "ConformanceCase",
    "ConformanceError",
    "ErrorExpectation",
    "ForbiddenClock",
    "ForbiddenIO",
    "IOAttempts",
    "check_adapter_identity",
    "check_capabilities",
    "check_conversation_operation",
    "check_empty_success",
    "check_error_body",
    "check_generic_error",
    "check_malformed_success",
    "check_no_clock",
    "check_no_io",
    "check_no_secret_leaks",
    "check_path_segment",
    "check_rate_limit_feedback",
    "check_relative_paths",
    "check_request_spec",
    "check_retry_after",
    "check_state",
    "check_success_accepts_unknown_fields",
    "check_success_fields_declared",
    "check_success_required_fields",
    "check_success_required_fields_not_null",
    "check_trace_id",
    "check_unknown_setting_rejected",
    "check_vendor_error_bodies",
    "expectation_for",
    "forbid_clock",
    "forbid_io",
]


def __getattr__(name: str) -> Any:
    """Import the pytest-based :class:`AdapterConformance` only when asked for."""
    if name == "AdapterConformance":
        from msgbridge.testing.conformance import AdapterConformance

        return AdapterConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
