"""The kit's checks for what vendors will do, as plain functions: messages and the clock."""

from __future__ import annotations

import datetime
import logging
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from msgbridge.testing import (
    ConformanceCase,
    ConformanceError,
    ForbiddenClock,
    check_empty_success,
    check_no_clock,
    check_rate_limit_feedback,
    check_retry_after,
    check_success_fields_declared,
    check_trace_id,
    forbid_clock,
)

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def k() -> ModuleType:
    sys.path.insert(0, str(HERE))
    try:
        import kit_adapters
    finally:
        sys.path.remove(str(HERE))
    return kit_adapters


def case(k: ModuleType, adapter: str, **overrides: Any) -> ConformanceCase:
    declared: dict[str, Any] = {
        "settings": k.ACME_SETTINGS,
        "success_body": k.ACME_SUCCESS,
        "required_success_fields": ("id",),
        "retry_after_statuses": (429, 503),
        "trace_id_header": "X-Acme-Trace",
        "rate_limit_headers": k.ACME_RATE_HEADERS,
        "rate_limit_feedback": k.ACME_RATE_FEEDBACK,
    }
    declared.update(overrides)
    return ConformanceCase(adapter=getattr(k, adapter)(), **declared)


def test_the_correct_adapter_passes_every_new_check(k: ModuleType) -> None:
    good = case(k, "AcmeAdapter")
    for form in ("seconds", "http-date"):
        check_retry_after(good, form)
    check_trace_id(good)
    check_rate_limit_feedback(good)
    check_no_clock(good)
    check_success_fields_declared(good)
    check_empty_success(good)


def test_retry_after_messages_say_what_was_expected(k: ModuleType) -> None:
    with pytest.raises(ConformanceError) as info:
        check_retry_after(case(k, "SecondsOnlyRetryAfterAdapter"), "http-date")
    message = str(info.value)
    assert "HTTP 429 with Retry-After 'Wed, 21 Oct 2037 07:28:30 GMT'" in message
    assert "and Date 'Wed, 21 Oct 2037 07:28:00 GMT'" in message
    assert "RateLimited.retry_after is None, expected 30.0" in message
    assert "HTTP 503" in message  # every declared status is reported at once
    assert "msgbridge.wire.parse_retry_after" in message


def test_trace_id_message_names_the_header(k: ModuleType) -> None:
    with pytest.raises(ConformanceError, match=r"X-Acme-Trace: 'msgbridge-conformance-trace"):
        check_trace_id(case(k, "IgnoresTraceHeaderAdapter"))


def test_rate_limit_messages(k: ModuleType) -> None:
    with pytest.raises(ConformanceError, match=r"returned None, expected a RateFeedback"):
        check_rate_limit_feedback(case(k, "IgnoresRateLimitHeadersAdapter"))
    with pytest.raises(ConformanceError, match=r"overrides rate_limit_feedback but the case"):
        check_rate_limit_feedback(case(k, "AcmeAdapter", rate_limit_headers={}))
    wrong = case(k, "AcmeAdapter", rate_limit_feedback=k.ACME_RATE_FEEDBACK.__class__(1, 2))
    with pytest.raises(ConformanceError, match=r"expected RateFeedback\(remaining=1, maximum=2"):
        check_rate_limit_feedback(wrong)


def test_success_declarations(k: ModuleType) -> None:
    with pytest.raises(ConformanceError, match=r"declare success_body and required_success"):
        check_success_fields_declared(case(k, "AcmeAdapter", required_success_fields=()))
    with pytest.raises(ConformanceError, match=r"declare success_body"):
        check_success_fields_declared(case(k, "AcmeAdapter", success_body=None))
    with pytest.raises(
        ConformanceError, match=r"HTTP 200 with body \{\}: expected a VendorResult with a warning"
    ):
        check_empty_success(case(k, "EmptyObjectSuccessAdapter"))
    # a vendor whose success is empty declares it, and then {} must be accepted
    empty = case(k, "EmptyObjectSuccessAdapter", success_is_empty=True, required_success_fields=())
    check_success_fields_declared(empty)
    with pytest.raises(ConformanceError, match=r"HTTP 204 with no body gave"):
        check_empty_success(empty)
    with pytest.raises(ConformanceError, match=r"contradicts required_success_fields"):
        check_success_fields_declared(case(k, "AcmeAdapter", success_is_empty=True))


@pytest.mark.parametrize(
    ("adapter", "read"),
    [
        ("DatetimeInPrepareAdapter", "datetime.now()"),
        ("MonotonicInInterpretAdapter", "time.monotonic()"),
    ],
)
def test_no_clock_names_the_read(k: ModuleType, adapter: str, read: str) -> None:
    with pytest.raises(ConformanceError) as info:
        check_no_clock(case(k, adapter))
    assert f"read the clock: {read}" in str(info.value)


def test_forbid_clock_blocks_every_clock_and_restores() -> None:
    from datetime import date as imported_date
    from datetime import datetime as imported_datetime
    from time import monotonic as imported_monotonic

    originals = (time.time, time.monotonic, datetime.datetime, datetime.date)
    reads = [
        (lambda: time.time(), "time.time()"),
        (lambda: time.time_ns(), "time.time_ns()"),
        (lambda: time.perf_counter(), "time.perf_counter()"),
        (lambda: imported_monotonic_now(), "time.monotonic()"),
        (lambda: datetime.datetime.now(datetime.timezone.utc), "datetime.now()"),
        (lambda: module_datetime().utcnow(), "datetime.utcnow()"),
        (lambda: module_datetime().today(), "datetime.today()"),
        (lambda: module_date().today(), "date.today()"),
        (lambda: time.strftime("%Y"), "time.strftime()"),
        (lambda: time.gmtime(), "time.gmtime()"),
    ]
    with forbid_clock() as attempts:
        for read, _ in reads:
            with pytest.raises(ForbiddenClock):
                read()
        time.gmtime(0)  # converting a given time is not a clock read
        time.strftime("%Y", time.gmtime(0))
        assert isinstance(imported_datetime(2020, 1, 1), module_datetime())
        assert module_datetime()(2020, 1, 1) == imported_datetime(2020, 1, 1)
    assert attempts == [label for _, label in reads]
    assert (time.time, time.monotonic, datetime.datetime, datetime.date) == originals
    assert imported_date.today() == datetime.date.today()
    assert imported_monotonic() > 0


def imported_monotonic_now() -> float:
    """A name looked up in this module's globals at call time, as adapters do."""
    return monotonic()


def module_datetime() -> Any:
    return datetime.datetime


def module_date() -> Any:
    return datetime.date


from time import monotonic  # noqa: E402 - imported by name, as an adapter might


def test_forbid_clock_spares_other_threads_and_logging(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(datetime.datetime.now()))
    with forbid_clock() as attempts:
        worker.start()
        worker.join(5)
        logging.getLogger("msgbridge.test").warning("a log record stamps its own time")
    assert len(seen) == 1
    assert attempts == []
    assert "stamps its own time" in caplog.text


def test_forbid_clock_pauses_automatic_garbage_collection() -> None:
    """A gc callback (hypothesis times collections) runs inside the call, not as the adapter."""
    import gc

    assert gc.isenabled()
    with forbid_clock():
        assert not gc.isenabled()
    assert gc.isenabled()
