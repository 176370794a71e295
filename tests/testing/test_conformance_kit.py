"""The conformance kit must pass a correct adapter and fail each broken one precisely.

Every broken adapter in kit_adapters.py breaks one rule; the kit, run by pytester in a
fresh pytest session exactly as an adapter author would run it, must fail exactly the
tests for that rule and nothing else.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

import msgbridge.testing
from msgbridge.errors import NotFound, VendorRejected, VendorUnavailable
from msgbridge.testing import (
    ERROR_EXPECTATIONS,
    HOSTILE_IDS,
    MALFORMED_SUCCESS_BODIES,
    ODD_ERROR_BODIES,
    RETRY_AFTER_FORMS,
    ConformanceCase,
    ConformanceError,
    ForbiddenIO,
    check_no_io,
    check_relative_paths,
    expectation_for,
    forbid_io,
)

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent

_STATUSES = list(ERROR_EXPECTATIONS)
_5XX = [s for s in _STATUSES if s >= 500]


def _param(test: str, ids: Iterable[object]) -> set[str]:
    return {f"{test}[{i}]" for i in ids}


def _errors(statuses: Iterable[int], kinds: Iterable[str]) -> set[str]:
    return {f"test_error_status_mapping[{s}-{k}]" for s in statuses for k in kinds}


ALL_KINDS = ("json", "html", "empty")

#: class name -> (adapter class in kit_adapters, extra class body, exact failing tests)
BROKEN: dict[str, tuple[str, str, set[str]]] = {
    "TestRawPath": (
        "RawPathAdapter",
        "",
        _param("test_message_id_is_one_path_segment", HOSTILE_IDS),
    ),
    "TestNonRetryable429": (
        "NonRetryable429Adapter",
        "",
        _errors([429], ALL_KINDS)
        | {"test_vendor_error_bodies"}
        | _param("test_odd_error_body", ODD_ERROR_BODIES)
        | _param("test_retry_after", RETRY_AFTER_FORMS),
    ),
    "TestSocketInPrepare": ("SocketInPrepareAdapter", "", {"test_no_io"}),
    "TestSwallowedSleep": ("SwallowedSleepAdapter", "", {"test_no_io"}),
    "TestHtmlCrash": (
        "HtmlCrashAdapter",
        "",
        _errors(_STATUSES, ["html", "empty"])
        | {"test_odd_error_body[invalid-utf8]", "test_no_secret_leaks"},
    ),
    "TestNotFoundAsRejected": (
        "NotFoundAsRejectedAdapter",
        "",
        _errors([404], ALL_KINDS)
        | _param("test_odd_error_body", ODD_ERROR_BODIES)
        | {"test_trace_id"},  # the 404 error it raises is the wrong type there too
    ),
    "TestNoHttpStatus": (
        "NoHttpStatusAdapter",
        "",
        _errors(_5XX, ALL_KINDS)
        | _param("test_odd_error_body", ODD_ERROR_BODIES)
        | _param("test_retry_after", RETRY_AFTER_FORMS)  # 503 is a Retry-After status here
        | {"test_trace_id"},
    ),
    "TestAuthHeader": (
        "AuthHeaderAdapter",
        "",
        _param("test_state_mapping", ["sent", "delivered", "read", "failed"])
        | _param("test_message_id_is_one_path_segment", HOSTILE_IDS)
        | {"test_no_secret_leaks"},
    ),
    "TestEchoHeaders": ("EchoHeadersAdapter", "", {"test_no_secret_leaks"}),
    "TestLeakyRepr": ("LeakyReprAdapter", "", {"test_no_secret_leaks"}),
    "TestLenientSettings": ("LenientSettingsAdapter", "", {"test_unknown_setting_rejected"}),
    "TestAcceptAnything": (
        "AcceptAnythingAdapter",
        "",
        _param("test_malformed_success", MALFORMED_SUCCESS_BODIES)
        | {
            "test_success_required_fields",
            "test_success_required_fields_not_null",
            "test_empty_success",
        },
    ),
    "TestInconsistentNone": ("InconsistentNoneAdapter", "", {"test_state_mapping[pending]"}),
    "TestQueryId": (
        "QueryIdAdapter",
        "message_id_in_path = False",
        _param("test_message_id_is_one_path_segment", HOSTILE_IDS),
    ),
    # -- the checks for what vendors will do: each broken adapter fails exactly one
    "TestIgnoresRetryAfter": (
        "IgnoresRetryAfterAdapter",
        "",
        _param("test_retry_after", RETRY_AFTER_FORMS),
    ),
    "TestSecondsOnlyRetryAfter": (
        "SecondsOnlyRetryAfterAdapter",
        "",
        {"test_retry_after[http-date]"},
    ),
    "TestIgnoresTraceHeader": ("IgnoresTraceHeaderAdapter", "", {"test_trace_id"}),
    "TestIgnoresRateLimitHeaders": (
        "IgnoresRateLimitHeadersAdapter",
        "",
        {"test_rate_limit_feedback"},
    ),
    "TestUndeclaredRateLimitHeaders": (
        "AcmeAdapter",
        "rate_limit_headers = {}",
        {"test_rate_limit_feedback"},
    ),
    "TestDatetimeInPrepare": ("DatetimeInPrepareAdapter", "", {"test_no_clock"}),
    "TestMonotonicInInterpret": ("MonotonicInInterpretAdapter", "", {"test_no_clock"}),
    "TestEmptyObjectSuccess": ("EmptyObjectSuccessAdapter", "", {"test_empty_success"}),
    "TestUndeclaredSuccessFields": (
        "AcmeAdapter",
        "required_success_fields = ()",
        {"test_success_fields_declared"},
    ),
    # -- the core owns the base URL: a path relative to it, nothing else
    "TestAbsoluteUrl": ("AbsoluteUrlAdapter", "", {"test_request_paths_are_relative"}),
    "TestWrongBaseUrl": (
        "AcmeAdapter",
        "base_url = 'https://api.acme.test/v2'",
        {"test_request_paths_are_relative"},
    ),
}

#: Tests a broken case skips because of what it leaves undeclared.
SKIPPED: dict[str, set[str]] = {
    "TestUndeclaredSuccessFields": {
        "test_success_required_fields",
        "test_success_required_fields_not_null",
    },
}

#: Tests the kit runs per adapter: a correct adapter with conversations passes them all.
TESTS_PER_ADAPTER = (
    2  # identity, capabilities
    + 5  # states
    + 2 * len(HOSTILE_IDS)  # message and conversation ids
    + 1  # relative request paths
    + 1  # conversation operation
    + 3 * len(ERROR_EXPECTATIONS)
    + 1  # vendor error bodies
    + len(ODD_ERROR_BODIES)
    + len(MALFORMED_SUCCESS_BODIES)
    + 5  # success: declared, empty, unknown fields, required fields, not null
    + len(RETRY_AFTER_FORMS)
    + 2  # trace id, rate-limit feedback
    + 4  # no I/O, no clock, secrets, unknown setting
)


@pytest.fixture(autouse=True)
def _no_plugin_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions load no installed plugins: faster, and only the kit is under test."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


HEADER = """
import kit_adapters as k
from msgbridge.testing import AdapterConformance


class _Acme(AdapterConformance):
    settings = k.ACME_SETTINGS
    error_bodies = k.ACME_ERRORS
    success_body = k.ACME_SUCCESS
    required_success_fields = ("id",)
    secret_settings = ("api_token",)
    retry_after_statuses = (429, 503)
    trace_id_header = "X-Acme-Trace"
    rate_limit_headers = k.ACME_RATE_HEADERS
    rate_limit_feedback = k.ACME_RATE_FEEDBACK
"""


def _module(classes: dict[str, tuple[str, str]]) -> str:
    parts = [HEADER]
    for name, (adapter, extra) in classes.items():
        parts.append(f"\nclass {name}(_Acme):\n    adapter = k.{adapter}()\n    {extra}\n")
    return "\n".join(parts)


def _outcomes(pytester: pytest.Pytester, source: str) -> dict[str, dict[str, set[str]]]:
    """Run *source* in a fresh session; {class: {"passed"|"failed"|"skipped": names}}."""
    pytester.syspathinsert(HERE)
    pytester.makepyfile(test_generated=textwrap.dedent(source))
    recorder = pytester.inline_run("-p", "no:cacheprovider", "--tb=no")
    result: dict[str, dict[str, set[str]]] = {}
    passed, skipped, failed = recorder.listoutcomes()
    for outcome, reports in (("passed", passed), ("skipped", skipped), ("failed", failed)):
        for report in reports:
            _, cls, test = report.nodeid.split("::")
            result.setdefault(cls, {"passed": set(), "failed": set(), "skipped": set()})
            result[cls][outcome].add(test)
    errors = [r for r in recorder.getreports("pytest_collectreport") if r.failed]
    assert not errors, errors
    return result


def test_correct_adapter_passes_everything(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, _module({"TestAcme": ("AcmeAdapter", "")}))
    acme = outcomes["TestAcme"]
    assert acme["failed"] == set()
    assert acme["skipped"] == set()
    assert len(acme["passed"]) == TESTS_PER_ADAPTER


def test_each_broken_adapter_fails_exactly_its_rule(pytester: pytest.Pytester) -> None:
    source = _module({name: (adapter, extra) for name, (adapter, extra, _) in BROKEN.items()})
    outcomes = _outcomes(pytester, source)
    failed = {name: outcomes[name]["failed"] for name in BROKEN}
    assert failed == {name: expected for name, (_, _, expected) in BROKEN.items()}
    for name, (_, _, expected) in BROKEN.items():
        skipped = SKIPPED.get(name, set())
        assert outcomes[name]["skipped"] == skipped, name
        assert len(outcomes[name]["passed"]) == TESTS_PER_ADAPTER - len(expected | skipped), name


def test_failures_say_why(pytester: pytest.Pytester) -> None:
    source = _module(
        {
            "TestRawPath": ("RawPathAdapter", ""),
            "TestNonRetryable429": ("NonRetryable429Adapter", ""),
            "TestSocketInPrepare": ("SocketInPrepareAdapter", ""),
            "TestEchoHeaders": ("EchoHeadersAdapter", ""),
        }
    )
    pytester.syspathinsert(HERE)
    pytester.makepyfile(test_generated=textwrap.dedent(source))
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-k",
        "dotdot-traversal or 429-json or test_no_io or test_no_secret_leaks",
    )
    result.stdout.fnmatch_lines_random(
        [
            "*ConformanceError: id '../../oauth/token' gave path "
            "'/v1/messages/../../oauth/token/status': "
            "the path has a dot segment '..' (a traversal)*",
            "*ConformanceError: HTTP 429 with json body*RateLimited.retryable is False, "
            "expected True*",
            "*ConformanceError: prepare_[*]/interpret must be sans-I/O*"
            "attempted I/O: socket.socket()*",
            "*ConformanceError: the error for HTTP 400 shows the Authorization bearer token*",
        ]
    )
    result.assert_outcomes(failed=4, passed=16)


def test_missing_adapter_attribute_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_generated="""
        from msgbridge.testing import AdapterConformance

        class TestForgotAdapter(AdapterConformance):
            settings = {"api_token": "x"}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "test_adapter_identity")
    result.stdout.fnmatch_lines(["*TestForgotAdapter must set adapter = YourAdapter()*"])
    result.assert_outcomes(errors=1)


def test_conformance_case_can_be_given_directly(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(HERE)
    pytester.makepyfile(
        test_generated="""
        import kit_adapters as k
        from msgbridge.testing import AdapterConformance, ConformanceCase

        class TestAcmeByCase(AdapterConformance):
            @classmethod
            def conformance_case(cls):
                return ConformanceCase(
                    adapter=k.AcmeAdapter(),
                    settings=k.ACME_SETTINGS,
                    secret_settings="api_token",
                    success_body={"id": "acme-1"},
                    required_success_fields=["id"],
                    retry_after_statuses=[429, 503],
                    trace_id_header="X-Acme-Trace",
                    rate_limit_headers=k.ACME_RATE_HEADERS,
                )
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    # No error_bodies: only the vendor-body check is skipped.
    result.assert_outcomes(passed=TESTS_PER_ADAPTER - 1, skipped=1)


# -- the pure pieces, without pytester -------------------------------------------------


def test_import_msgbridge_never_imports_pytest() -> None:
    code = (
        "import sys, msgbridge, msgbridge.testing, msgbridge.testing.checks; "
        "assert 'pytest' not in sys.modules, 'pytest imported'; "
        "msgbridge.testing.AdapterConformance; "
        "assert 'pytest' in sys.modules; print('ok')"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_public_api_is_explicit() -> None:
    for name in msgbridge.testing.__all__:
        assert getattr(msgbridge.testing, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        msgbridge.testing.nope  # noqa: B018


def test_forbid_io_blocks_records_and_restores() -> None:
    originals = (socket.socket.__init__, time.sleep, open)
    had_connect = "connect" in vars(socket.socket)
    with forbid_io() as attempts:
        with pytest.raises(ForbiddenIO, match=r"socket\.socket\(\)"):
            socket.socket()
        with contextlib.suppress(ForbiddenIO):  # a swallowed attempt is still recorded
            time.sleep(0)
        with pytest.raises(ForbiddenIO):
            open(__file__)  # noqa: SIM115
        with pytest.raises(ForbiddenIO):
            socket.create_connection(("127.0.0.1", 9))
    assert attempts == ["socket.socket()", "time.sleep()", "open()", "socket.create_connection()"]
    assert (socket.socket.__init__, time.sleep, open) == originals
    assert ("connect" in vars(socket.socket)) is had_connect
    with socket.socket() as sock:  # works again
        assert sock.fileno() >= 0


def test_forbid_io_leaves_other_threads_alone() -> None:
    slept: list[bool] = []

    def work() -> None:
        time.sleep(0)
        slept.append(True)

    worker = threading.Thread(target=work)
    with forbid_io() as attempts:
        worker.start()
        worker.join(5)
    assert slept == [True]
    assert attempts == []


def test_check_no_io_catches_swallowed_attempts() -> None:
    sys.path.insert(0, str(HERE))
    try:
        import kit_adapters as k
    finally:
        sys.path.remove(str(HERE))
    good = ConformanceCase(adapter=k.AcmeAdapter(), settings=k.ACME_SETTINGS)
    check_no_io(good)
    bad = ConformanceCase(adapter=k.SwallowedSleepAdapter(), settings=k.ACME_SETTINGS)
    with pytest.raises(ConformanceError, match=r"attempted I/O: time\.sleep\(\)$"):
        check_no_io(bad)


def test_check_relative_paths_names_the_request_and_the_rule() -> None:
    sys.path.insert(0, str(HERE))
    try:
        import kit_adapters as k
    finally:
        sys.path.remove(str(HERE))
    check_relative_paths(ConformanceCase(adapter=k.AcmeAdapter(), settings=k.ACME_SETTINGS))
    bad = ConformanceCase(adapter=k.AbsoluteUrlAdapter(), settings=k.ACME_SETTINGS)
    with pytest.raises(ConformanceError) as caught:
        check_relative_paths(bad)
    first = str(caught.value).splitlines()[0]
    assert first.startswith(
        "update_status for 'msgbridge-conformance-id': the adapter's request path "
        "'https://api.acme.test/v1/messages/msgbridge-conformance-id/status' is unsafe: "
        "it has a scheme (an absolute URL)"
    )


def test_case_normalises_bodies_and_hides_settings() -> None:
    sys.path.insert(0, str(HERE))
    try:
        import kit_adapters as k
    finally:
        sys.path.remove(str(HERE))
    case = ConformanceCase(
        adapter=k.AcmeAdapter(),
        settings={"api_token": k.API_TOKEN},
        error_bodies={400: {"detail": "x"}, "429": "slow"},  # type: ignore[dict-item]
        success_body={"id": "1"},
        secret_settings="api_token",
    )
    assert case.error_bodies == {400: b'{"detail": "x"}', 429: b"slow"}
    assert case.success_body == b'{"id": "1"}'
    assert case.secret_settings == ("api_token",)
    assert k.API_TOKEN not in repr(case)
    with pytest.raises(ConformanceError, match="do not parse"):
        ConformanceCase(adapter=k.AcmeAdapter(), settings={"nope": 1}).parsed_settings()


def test_expectations_for_statuses_outside_the_table() -> None:
    assert expectation_for(404).error_type is NotFound
    assert (expectation_for(422).error_type, expectation_for(422).retryable) == (
        VendorRejected,
        False,
    )
    assert (expectation_for(507).error_type, expectation_for(507).retryable) == (
        VendorUnavailable,
        True,
    )
    with pytest.raises(ConformanceError, match="HTTP 302"):
        expectation_for(302)
