"""The conformance checks, as plain functions over a :class:`ConformanceCase`.

Every check raises :class:`ConformanceError` (an ``AssertionError``) saying what the
adapter did and what the contract in :mod:`msgbridge.adapter` asks for, so the checks
run under pytest (see :class:`msgbridge.testing.AdapterConformance`), unittest or a
script. Nothing here imports pytest, and nothing here performs I/O.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import attrs

from msgbridge.adapter import (
    Adapter,
    Fidelity,
    Operation,
    RateFeedback,
    RequestSpec,
    ResponseView,
    VendorResult,
    check_base_url,
    check_path,
    resolve_base_url,
)
from msgbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponse,
    MessagingError,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnsupportedOperation,
    VendorRejected,
    VendorUnavailable,
)
from msgbridge.model import ConversationUpdate, DeliveryState, MessageStatus, StatusError
from msgbridge.testing.noio import forbid_clock, forbid_io

__all__ = [
    "BEARER_TOKEN",
    "BENIGN_ID",
    "ERROR_EXPECTATIONS",
    "GENERIC_ERROR_BODY_KINDS",
    "HOSTILE_IDS",
    "MALFORMED_SUCCESS_BODIES",
    "ODD_ERROR_BODIES",
    "RETRY_AFTER_FORMS",
    "TRACE_ID",
    "UNKNOWN_SETTING",
    "BodyLike",
    "ConformanceCase",
    "ConformanceError",
    "ErrorExpectation",
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
]

T = TypeVar("T")

#: Ids that try to change a URL's path structure; each must stay one encoded segment.
HOSTILE_IDS: Mapping[str, str] = {
    "dotdot-traversal": "../../oauth/token",
    "slash-and-query": "a/b?x=1",
    "fragment": "x#y",
    "percent": "100%",
    "encoded-dotdot": "%2e%2e%2f%2e%2e%2foauth",
    "backslash": "..\\..\\oauth",
    "space-unicode-semicolon": "a b;ü=1",
}
#: The id hostile ids are compared against: what a well-behaved URL looks like.
BENIGN_ID = "msgbridge-conformance-id"
#: A token the checks put in ``Authorization``; it must never reach an error message.
BEARER_TOKEN = "msgbridge-conformance-bearer-0b5e1c"  # noqa: S105 - a marker, not a secret
#: A settings key no adapter has; parsing it must fail naming it.
UNKNOWN_SETTING = "msgbridge_conformance_unknown_key"
#: The trace id the kit puts in the adapter's declared ``trace_id_header``.
TRACE_ID = "msgbridge-conformance-trace-5d1f"

#: ``Retry-After`` as vendors send it, with the wait each must become (RFC 9110 10.2.3):
#: delta-seconds, and an HTTP date read against the response's own ``Date`` header.
RETRY_AFTER_FORMS: Mapping[str, tuple[Mapping[str, str], float]] = {
    "seconds": ({"Retry-After": "7"}, 7.0),
    "http-date": (
        {"Retry-After": "Wed, 21 Oct 2037 07:28:30 GMT", "Date": "Wed, 21 Oct 2037 07:28:00 GMT"},
        30.0,
    ),
}


@attrs.frozen
class ErrorExpectation:
    """What an error status must become; ``retryable`` None means "not checked"."""

    error_type: type[MessagingError]
    retryable: bool | None
    #: Whether vendor-shaped bodies are held to ``retryable`` too (a vendor 403 may
    #: legitimately be retryable, e.g. HighLevel's provider-not-ready race).
    vendor_retryable: bool | None


ERROR_EXPECTATIONS: Mapping[int, ErrorExpectation] = {
    400: ErrorExpectation(VendorRejected, False, False),
    401: ErrorExpectation(AuthenticationError, False, None),
    403: ErrorExpectation(PermissionDenied, False, None),
    404: ErrorExpectation(NotFound, False, None),
    429: ErrorExpectation(RateLimited, True, True),
    500: ErrorExpectation(VendorUnavailable, True, True),
    502: ErrorExpectation(VendorUnavailable, True, True),
    503: ErrorExpectation(VendorUnavailable, True, True),
    504: ErrorExpectation(VendorUnavailable, True, True),
}

#: Bodies with no vendor shape: each must still map by status alone.
GENERIC_ERROR_BODY_KINDS: Mapping[str, bytes] = {
    "json": b'{"message":"msgbridge conformance check","error":"Error"}',
    "html": b"<html>oops</html>",
    "empty": b"",
}

#: JSON a vendor should not send but a proxy or a bug might; never a crash.
ODD_ERROR_BODIES: Mapping[str, bytes] = {
    "json-list": b'["oops"]',
    "json-null": b"null",
    "json-number": b"42",
    "json-string": b'"oops"',
    "null-fields": b'{"message":null,"error":null,"errors":null,"category":null}',
    "wrong-types": b'{"message":{"text":1},"error":7,"traceId":7,"category":["x"]}',
    "message-list": b'{"message":["a",1,null],"error":"Error"}',
    "errors-not-a-list": b'{"message":"oops","errors":7}',
    "invalid-utf8": b"\xff\xfe\xfa{",
}

#: 2xx bodies that are not a vendor success; each must be reported applied with a
#: warning (``VendorResult.warning``), or, from older adapters, raise ``MalformedResponse``.
MALFORMED_SUCCESS_BODIES: Mapping[str, bytes] = {
    "not-json": b"<html>oops</html>",
    "json-list": b"[]",
    "json-string": b'"ok"',
}


class ConformanceError(AssertionError):
    """An adapter broke the contract; the message says which rule and how."""


BodyLike = bytes | str | Mapping[str, Any] | list[Any]


def _as_bytes(value: BodyLike) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


def _optional_bytes(value: BodyLike | None) -> bytes | None:
    return None if value is None else _as_bytes(value)


def _error_bodies(value: Mapping[int, BodyLike]) -> Mapping[int, bytes]:
    return {int(status): _as_bytes(body) for status, body in value.items()}


def _names(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):  # ("api_token") without the comma is a classic slip
        return (value,)
    return tuple(value)


def _frozen_dict(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def _statuses(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(status) for status in value)


def _headers(value: Mapping[str, str]) -> Mapping[str, str]:
    return {str(name): str(header) for name, header in value.items()}


@attrs.frozen(kw_only=True)
class ConformanceCase:
    """One adapter under test and the data the checks need to exercise it.

    Bodies may be given as bytes, text or JSON-able objects; they are kept as bytes.
    """

    adapter: Adapter[Any]
    #: Raw settings mapping, parsed with ``adapter.parse_settings`` (never shown: secrets).
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_dict, repr=False)
    #: Extra ``MessageStatus`` keyword arguments the adapter needs (e.g. ``channel_id``).
    sample_status_kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    #: Extra ``ConversationUpdate`` keyword arguments (e.g. ``account_id``).
    sample_conversation_kwargs: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_dict
    )
    #: Vendor-shaped error bodies by HTTP status.
    error_bodies: Mapping[int, bytes] = attrs.field(factory=dict, converter=_error_bodies)
    #: A vendor success body for a status update; enables the 2xx acceptance checks.
    success_body: bytes | None = attrs.field(default=None, converter=_optional_bytes)
    #: Top-level keys of ``success_body`` the adapter cannot do without.
    required_success_fields: tuple[str, ...] = attrs.field(default=(), converter=_names)
    #: Settings keys whose values are secrets (tokens, keys, passwords).
    secret_settings: tuple[str, ...] = attrs.field(default=(), converter=_names)
    #: Expected base URL of the connection; default: what the core resolves
    #: (``adapter.base_url(settings)``: the ``base_url`` setting or the adapter's default).
    base_url: str | None = None
    #: False for adapters that send the message id in the body, not the URL path.
    message_id_in_path: bool = True
    #: Same for conversation ids.
    conversation_id_in_path: bool = True
    #: True when the vendor's success carries no body (204 No Content): then an empty
    #: answer is a success and ``required_success_fields`` need not be declared.
    success_is_empty: bool = False
    #: Error statuses whose ``Retry-After`` the adapter honours (``retry_after`` set on
    #: the error); 429 always, add 503 if the vendor sends it there.
    retry_after_statuses: tuple[int, ...] = attrs.field(default=(429,), converter=_statuses)
    #: The response header the vendor puts its request/trace id in (e.g. ``X-Request-Id``).
    trace_id_header: str | None = None
    #: Rate-limit headers as the vendor sends them (e.g. ``{"X-RateLimit-Remaining":
    #: "3"}``); required when the adapter overrides ``rate_limit_feedback``.
    rate_limit_headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    #: What ``rate_limit_feedback`` must read from ``rate_limit_headers`` (if None: any
    #: feedback with a field set).
    rate_limit_feedback: RateFeedback | None = None

    def parsed_settings(self) -> Any:
        """The adapter's typed settings (a ``ConfigurationError`` is a broken case)."""
        try:
            return self.adapter.parse_settings(self.settings)
        except ConfigurationError as exc:
            raise ConformanceError(
                f"the case's settings do not parse for adapter {self.adapter.id!r}: {exc}"
            ) from None

    def expected_base_url(self) -> str:
        if self.base_url is not None:
            return check_base_url(self.base_url)
        return resolve_base_url(self.adapter, self.parsed_settings())

    def sendable_states(self) -> tuple[DeliveryState, ...]:
        return tuple(s for s in DeliveryState if self.adapter.capabilities.mapping(s).sendable)

    def supports_conversations(self) -> bool:
        return Operation.UPDATE_CONVERSATION in self.adapter.capabilities.operations

    def status_update(
        self,
        state: DeliveryState,
        *,
        message_id: str = BENIGN_ID,
        error: StatusError | None = None,
    ) -> MessageStatus:
        kwargs = dict(self.sample_status_kwargs)
        if error is not None:
            kwargs["error"] = error
        return MessageStatus(message_id, state, **kwargs)

    def conversation_update(self, *, conversation_id: str = BENIGN_ID) -> ConversationUpdate:
        kwargs: dict[str, Any] = {"unread_count": 0, "starred": True}
        kwargs.update(self.sample_conversation_kwargs)
        return ConversationUpdate(conversation_id, **kwargs)

    def first_status_request(self) -> RequestSpec:
        """A prepared request for the first sendable state, for ``interpret`` checks."""
        states = self.sendable_states()
        if not states:
            raise ConformanceError(f"adapter {self.adapter.id!r} maps no state to a vendor value")
        return self.adapter.prepare_status(
            self.status_update(states[0], message_id=BENIGN_ID), self.parsed_settings()
        )


# -- helpers ----------------------------------------------------------------------------


def _success_response(case: ConformanceCase, headers: Mapping[str, str]) -> ResponseView | None:
    """The vendor's success answer, if the case describes one."""
    if case.success_is_empty:
        return ResponseView(204, headers, b"")
    if case.success_body is not None:
        return ResponseView(200, headers, case.success_body)
    return None


def _fail(message: str) -> ConformanceError:
    return ConformanceError(message)


def _collect(items: Iterable[T], check: Callable[[T], None]) -> None:
    """Run *check* on every item and report every failure at once."""
    problems: list[str] = []
    for item in items:
        try:
            check(item)
        except ConformanceError as exc:
            problems.append(str(exc))
    if problems:
        raise ConformanceError("\n".join(problems))


def _interpret(case: ConformanceCase, request: RequestSpec, response: ResponseView) -> Any:
    """``interpret``'s result or the ``MessagingError`` it raised; anything else fails."""
    settings = case.parsed_settings()
    try:
        return case.adapter.interpret(request, response, settings)
    except MessagingError as exc:
        return exc
    except Exception as exc:
        raise _fail(
            f"interpret raised {type(exc).__name__}: {exc} for HTTP {response.status} with "
            f"body {response.body[:80]!r}; it must raise only msgbridge.errors.MessagingError"
        ) from exc


_PCHAR = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


# -- identity, capabilities, requests ---------------------------------------------------


def check_adapter_identity(case: ConformanceCase) -> None:
    """The registry's rules: lower-case id, attrs settings class, safe default base URL."""
    adapter = case.adapter
    adapter_id = getattr(adapter, "id", None)
    if not isinstance(adapter, Adapter):
        raise _fail(f"{adapter!r} is not an msgbridge.adapter.Adapter")
    if (
        not isinstance(adapter_id, str)
        or not adapter_id
        or adapter_id != adapter_id.lower()
        or any(ch.isspace() for ch in adapter_id)
    ):
        raise _fail(f"adapter id must be lower-case without spaces, got {adapter_id!r}")
    if not attrs.has(adapter.settings_type):
        raise _fail(f"settings_type of {adapter_id!r} must be an attrs class")
    try:
        check_base_url(adapter.defaults.base_url)
    except ConfigurationError as exc:
        raise _fail(f"defaults.base_url of {adapter_id!r} is unsafe: {exc.message}") from None


def check_capabilities(case: ConformanceCase) -> None:
    """Every state is mapped, and status updates are offered for at least one state."""
    caps = case.adapter.capabilities
    missing = [s.value for s in DeliveryState if s not in caps.states]
    if missing:
        raise _fail(f"capabilities do not map states: {', '.join(missing)}")
    if Operation.UPDATE_STATUS not in caps.operations:
        raise _fail("capabilities.operations must include Operation.UPDATE_STATUS")
    if not case.sendable_states():
        raise _fail("no state maps to a vendor value: the adapter can send nothing")


def check_request_spec(
    case: ConformanceCase, spec: object, *, operation: Operation, subject_id: str
) -> RequestSpec:
    """A request the bridge can send: known method, JSON body, no credentials (its path
    is :func:`check_relative_paths`' business)."""
    if not isinstance(spec, RequestSpec):
        raise _fail(f"prepare_* must return a RequestSpec, got {type(spec).__name__}")
    problems: list[str] = []
    if spec.method not in _METHODS:
        problems.append(f"method {spec.method!r} is not one of {sorted(_METHODS)}")
    for name, value in spec.headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            problems.append(f"header {name!r} must map a str to a str")
        elif name.lower() in {"authorization", "proxy-authorization"}:
            problems.append(
                f"header {name!r} is set by prepare_*; credentials are the bridge's job "
                "(RequestSpec never holds credentials)"
            )
        elif any(ch in value for ch in "\r\n"):
            problems.append(f"header {name!r} contains a line break")
    try:
        json.dumps(spec.json, allow_nan=False)
        spec.body_bytes()
    except (TypeError, ValueError) as exc:
        problems.append(f"json body is not JSON-serialisable: {exc}")
    if spec.operation is not operation:
        problems.append(f"operation is {spec.operation!r}, expected {operation!r}")
    if spec.subject_id != subject_id:
        problems.append(f"subject_id is {spec.subject_id!r}, expected {subject_id!r}")
    if problems:
        raise _fail("; ".join(problems))
    return spec


def _failure_examples() -> tuple[StatusError | None, ...]:
    return (
        None,
        StatusError("conformance failure"),
        StatusError("conformance failure", code="E42", kind="provider"),
    )


def check_state(case: ConformanceCase, state: DeliveryState) -> None:
    """A mapped state prepares a valid request; an unmapped one is declared as such."""
    mapping = case.adapter.capabilities.mapping(state)
    if case.adapter.vendor_value(state) != mapping.vendor_value:
        raise _fail(f"vendor_value({state.value!r}) disagrees with capabilities")
    if mapping.fidelity is Fidelity.NONE:
        if mapping.vendor_value is not None:
            raise _fail(
                f"state {state.value!r} has fidelity NONE but vendor_value "
                f"{mapping.vendor_value!r}; use StateMapping.none()"
            )
        return
    if not isinstance(mapping.vendor_value, str) or not mapping.vendor_value:
        raise _fail(
            f"state {state.value!r} has fidelity {mapping.fidelity.value} but no vendor value"
        )
    settings = case.parsed_settings()
    errors = _failure_examples() if state is DeliveryState.FAILED else (None,)
    for error in errors:
        update = case.status_update(state, error=error)
        spec = case.adapter.prepare_status(update, settings)
        check_request_spec(
            case, spec, operation=Operation.UPDATE_STATUS, subject_id=update.message_id
        )


def check_path_segment(case: ConformanceCase, hostile_id: str, *, operation: Operation) -> None:
    """A hostile id is one percent-encoded path segment and changes nothing else."""
    settings = case.parsed_settings()

    def prepare(identifier: str) -> RequestSpec:
        if operation is Operation.UPDATE_CONVERSATION:
            spec = case.adapter.prepare_conversation(
                case.conversation_update(conversation_id=identifier), settings
            )
        else:
            state = case.sendable_states()[0]
            spec = case.adapter.prepare_status(
                case.status_update(state, message_id=identifier), settings
            )
        return check_request_spec(case, spec, operation=operation, subject_id=identifier)

    benign, hostile = prepare(BENIGN_ID), prepare(hostile_id)
    b, h = urlsplit(benign.path), urlsplit(hostile.path)
    shown = f"id {hostile_id!r} gave path {hostile.path!r}"
    if (b.scheme, b.netloc, b.query, b.fragment) != (h.scheme, h.netloc, h.query, h.fragment):
        raise _fail(f"{shown}: the id changed the host, query or fragment")
    b_segments, h_segments = b.path.split("/"), h.path.split("/")
    dots = [s for s in h_segments if s in {".", ".."}]
    if dots:
        raise _fail(f"{shown}: the path has a dot segment {dots[0]!r} (a traversal)")
    flag = (
        "conversation_id_in_path"
        if operation is Operation.UPDATE_CONVERSATION
        else "message_id_in_path"
    )
    in_path = bool(getattr(case, flag))
    if not in_path:
        if hostile.path != benign.path:
            raise _fail(f"{shown}: the id is declared not to be in the path but changed it")
        return
    slots = [i for i, s in enumerate(b_segments) if s == BENIGN_ID]
    if len(slots) != 1:
        raise _fail(
            f"the id must appear exactly once as a path segment; {BENIGN_ID!r} gave path "
            f"{benign.path!r} (set {flag}=False if the id travels in the body)"
        )
    if len(h_segments) != len(b_segments):
        raise _fail(
            f"{shown}: the id split into {len(h_segments) - len(b_segments) + 1} path "
            "segments; encode it with msgbridge.adapter.path_segment"
        )
    slot = slots[0]
    others_equal = all(
        hs == bs for i, (hs, bs) in enumerate(zip(h_segments, b_segments, strict=True)) if i != slot
    )
    segment = h_segments[slot]
    if not others_equal or not _PCHAR.match(segment) or unquote(segment) != hostile_id:
        raise _fail(
            f"{shown}: the id is not one percent-encoded path segment (segment "
            f"{segment!r}); encode it with msgbridge.adapter.path_segment"
        )


def _all_requests(case: ConformanceCase, settings: Any) -> list[RequestSpec]:
    """Every request the case can make the adapter prepare: each sendable state (failures
    with and without a code), and a conversation update when one is declared."""
    requests: list[RequestSpec] = []
    for state in case.sendable_states():
        errors = _failure_examples() if state is DeliveryState.FAILED else (None,)
        for error in errors:
            requests.append(
                case.adapter.prepare_status(case.status_update(state, error=error), settings)
            )
    if case.supports_conversations():
        requests.append(case.adapter.prepare_conversation(case.conversation_update(), settings))
    return requests


def check_relative_paths(case: ConformanceCase) -> None:
    """Every request's path is relative to the connection's base URL, which the core
    owns: it starts with one ``/``, has no scheme or host, no ``.``/``..`` segment, and
    is encoded ASCII (the core refuses anything else with ``UnsafeRequest``). The base
    URL the core resolves for the case's settings is the expected one."""
    settings = case.parsed_settings()
    problems: list[str] = []
    try:
        base = resolve_base_url(case.adapter, settings)
    except ConfigurationError as exc:
        raise _fail(f"the core refuses the base URL for the case's settings: {exc}") from None
    if case.base_url is not None and base != check_base_url(case.base_url):
        problems.append(f"the base URL resolves to {base!r}, expected {case.base_url!r}")
    for spec in _all_requests(case, settings):
        if not isinstance(spec, RequestSpec):
            problems.append(f"prepare_* must return a RequestSpec, got {type(spec).__name__}")
            continue
        try:
            check_path(spec.path)
        except MessagingError as exc:
            problems.append(f"{spec.operation.value} for {spec.subject_id!r}: {exc.message}")
    if problems:
        raise _fail("\n".join(dict.fromkeys(problems)))


def check_conversation_operation(case: ConformanceCase) -> None:
    """Declared conversation updates prepare a valid request; undeclared ones refuse."""
    settings = case.parsed_settings()
    update = case.conversation_update()
    if not case.supports_conversations():
        try:
            spec = case.adapter.prepare_conversation(update, settings)
        except UnsupportedOperation:
            return
        except MessagingError as exc:
            raise _fail(
                "prepare_conversation without Operation.UPDATE_CONVERSATION must raise "
                f"UnsupportedOperation, got {type(exc).__name__}: {exc}"
            ) from None
        raise _fail(
            "prepare_conversation returned a request but capabilities do not declare "
            f"Operation.UPDATE_CONVERSATION: {spec!r}"
        )
    spec = case.adapter.prepare_conversation(update, settings)
    check_request_spec(
        case, spec, operation=Operation.UPDATE_CONVERSATION, subject_id=update.conversation_id
    )


# -- interpret: errors ------------------------------------------------------------------


def expectation_for(status: int) -> ErrorExpectation:
    """The rule for *status*: the table, else errors.py's "other 4xx" / "5xx" classes."""
    if status in ERROR_EXPECTATIONS:
        return ERROR_EXPECTATIONS[status]
    if 400 <= status < 500:
        return ErrorExpectation(VendorRejected, False, False)
    if 500 <= status < 600:
        return ErrorExpectation(VendorUnavailable, True, True)
    raise _fail(f"HTTP {status} is not an error status the kit has a rule for")


def _check_error(
    case: ConformanceCase,
    status: int,
    body: bytes,
    *,
    label: str,
    retryable: bool | None,
    request: RequestSpec | None = None,
    headers: Mapping[str, str] | None = None,
) -> MessagingError:
    expected = expectation_for(status)
    request = request or case.first_status_request()
    outcome = _interpret(case, request, ResponseView(status, headers or {}, body))
    where = f"HTTP {status} with {label} body {body[:60]!r}"
    if headers:
        where += f" and headers {dict(headers)!r}"
    if isinstance(outcome, VendorResult):
        raise _fail(f"{where}: interpret returned a success ({outcome!r}) instead of raising")
    if not isinstance(outcome, expected.error_type):
        raise _fail(
            f"{where}: expected {expected.error_type.__name__}, got "
            f"{type(outcome).__name__}: {outcome}"
        )
    if outcome.http_status != status:
        raise _fail(f"{where}: the error's http_status is {outcome.http_status!r}")
    if retryable is not None and outcome.retryable is not retryable:
        raise _fail(
            f"{where}: {type(outcome).__name__}.retryable is {outcome.retryable!r}, "
            f"expected {retryable!r}"
        )
    wait = outcome.retry_after
    if wait is not None and (not isinstance(wait, (int, float)) or not math.isfinite(wait)):
        raise _fail(f"{where}: retry_after must be a finite number of seconds, got {wait!r}")
    if wait is not None and wait < 0:
        raise _fail(f"{where}: retry_after is negative ({wait!r})")
    return outcome


def check_generic_error(case: ConformanceCase, status: int, kind: str) -> None:
    """A body with no vendor shape (generic JSON, HTML, empty) still maps by status."""
    expected = ERROR_EXPECTATIONS[status]
    _check_error(
        case,
        status,
        GENERIC_ERROR_BODY_KINDS[kind],
        label=kind,
        retryable=expected.retryable,
    )


def check_vendor_error_bodies(case: ConformanceCase) -> None:
    """The author's vendor-shaped bodies map to the right type and retryability.

    Statuses outside :data:`ERROR_EXPECTATIONS` follow :mod:`msgbridge.errors`: another
    4xx is ``VendorRejected`` (not retryable), another 5xx ``VendorUnavailable``.
    """

    def one(status: int) -> None:
        _check_error(
            case,
            status,
            case.error_bodies[status],
            label="vendor",
            retryable=expectation_for(status).vendor_retryable,
        )

    _collect(sorted(case.error_bodies), one)


def check_error_body(case: ConformanceCase, kind: str) -> None:
    """An odd JSON body never crashes ``interpret`` and still maps by status."""
    body = ODD_ERROR_BODIES[kind]

    def one(status: int) -> None:
        _check_error(case, status, body, label=kind, retryable=ERROR_EXPECTATIONS[status].retryable)

    _collect(ERROR_EXPECTATIONS, one)


# -- interpret: success -----------------------------------------------------------------


def _flagged(outcome: object) -> bool:
    """An unreadable 2xx answer, flagged: applied with a warning (the vendor did apply
    it, so that is preferred), or ``MalformedResponse`` (accepted from older adapters)."""
    if isinstance(outcome, VendorResult):
        return bool(outcome.warning)
    return isinstance(outcome, MalformedResponse)


_FLAGGED = "a VendorResult with a warning (or MalformedResponse)"


def check_malformed_success(case: ConformanceCase, kind: str) -> None:
    """A 2xx whose body is not a vendor success is applied with a warning (or raises
    ``MalformedResponse``); never silently read as a clean success."""
    body = MALFORMED_SUCCESS_BODIES[kind]
    outcome = _interpret(case, case.first_status_request(), ResponseView(200, {}, body))
    if not _flagged(outcome):
        raise _fail(f"HTTP 200 with body {body!r} ({kind}): expected {_FLAGGED}, got {outcome!r}")
    status = getattr(outcome, "http_status", None)
    if status != 200:
        raise _fail(f"{type(outcome).__name__} for {kind} has http_status {status!r}")


def _success_object(case: ConformanceCase) -> dict[str, Any]:
    if case.success_body is None:
        raise _fail("this check needs success_body")
    data = json.loads(case.success_body)
    if not isinstance(data, dict):
        raise _fail("success_body must be a JSON object")
    return data


def _accepted(case: ConformanceCase, body: Mapping[str, Any], what: str) -> VendorResult:
    raw = json.dumps(body).encode()
    outcome = _interpret(case, case.first_status_request(), ResponseView(200, {}, raw))
    if not isinstance(outcome, VendorResult):
        raise _fail(f"{what}: interpret must return a VendorResult, got {outcome!r}")
    if outcome.http_status != 200:
        raise _fail(f"{what}: VendorResult.http_status is {outcome.http_status!r}, expected 200")
    return outcome


def check_success_accepts_unknown_fields(case: ConformanceCase) -> None:
    """Vendors add fields; a success with unknown extras is still a success."""
    data = _success_object(case)
    plain = _accepted(case, data, "the success_body")
    extra = {
        **data,
        "msgbridgeConformanceExtra": {"nested": [1, 2, 3]},
        "msgbridgeConformanceFlag": True,
    }
    with_extra = _accepted(case, extra, "the success_body with unknown extra fields")
    if with_extra != plain:
        raise _fail(f"unknown fields changed the result: {plain!r} became {with_extra!r}")


def _iter_required(case: ConformanceCase) -> Iterator[str]:
    data = _success_object(case)
    for name in case.required_success_fields:
        if name not in data:
            raise _fail(f"required_success_fields names {name!r}, absent from success_body")
        yield name


def check_success_fields_declared(case: ConformanceCase) -> None:
    """The case says what a success must contain, so ``{}`` cannot pass for one.

    Either ``success_body`` with the ``required_success_fields`` the adapter reads, or
    ``success_is_empty=True`` for a vendor that answers 204 No Content.
    """
    if case.success_is_empty:
        if case.required_success_fields:
            raise _fail("success_is_empty=True contradicts required_success_fields")
        return
    if case.success_body is None or not case.required_success_fields:
        raise _fail(
            "declare success_body and required_success_fields (the top-level keys the "
            "adapter reads from a vendor success), or success_is_empty=True if the vendor "
            "answers with no body; without them an adapter accepting {} would pass"
        )
    list(_iter_required(case))


def check_empty_success(case: ConformanceCase) -> None:
    """An empty JSON object is a clean success only for a vendor whose success is empty;
    for any other it is flagged (applied with a warning, or ``MalformedResponse``)."""
    outcome = _interpret(case, case.first_status_request(), ResponseView(200, {}, b"{}"))
    if case.success_is_empty:
        empty = _interpret(case, case.first_status_request(), ResponseView(204, {}, b""))
        for label, result in (("HTTP 200 {}", outcome), ("HTTP 204 with no body", empty)):
            if not isinstance(result, VendorResult) or result.warning:
                raise _fail(f"success_is_empty, yet {label} gave {result!r}")
        return
    if not _flagged(outcome):
        raise _fail(
            f"HTTP 200 with body {{}}: expected {_FLAGGED} (a success without the fields "
            f"the adapter needs), got {outcome!r}"
        )


def check_success_required_fields(case: ConformanceCase) -> None:
    """Dropping a field the adapter needs is flagged (warning or ``MalformedResponse``)."""
    data = _success_object(case)

    def one(name: str) -> None:
        body = json.dumps({k: v for k, v in data.items() if k != name}).encode()
        outcome = _interpret(case, case.first_status_request(), ResponseView(200, {}, body))
        if not _flagged(outcome):
            raise _fail(f"success without {name!r}: expected {_FLAGGED}, got {outcome!r}")

    _collect(_iter_required(case), one)


def check_success_required_fields_not_null(case: ConformanceCase) -> None:
    """A required field sent as ``null`` is as missing as an absent one (not ``"None"``)."""
    data = _success_object(case)

    def one(name: str) -> None:
        body = json.dumps({**data, name: None}).encode()
        outcome = _interpret(case, case.first_status_request(), ResponseView(200, {}, body))
        if not _flagged(outcome):
            raise _fail(f"success with {name!r}: null: expected {_FLAGGED}, got {outcome!r}")

    _collect(_iter_required(case), one)


# -- interpret: what vendors put in headers ---------------------------------------------


def check_retry_after(case: ConformanceCase, form: str) -> None:
    """``Retry-After`` (seconds, or an HTTP date against ``Date``) becomes ``retry_after``.

    Checked for every status in ``retry_after_statuses`` (429 unless the case says
    otherwise): the bridge waits what the vendor asked instead of guessing.
    """
    headers, wait = RETRY_AFTER_FORMS[form]

    def one(status: int) -> None:
        error = _check_error(
            case,
            status,
            GENERIC_ERROR_BODY_KINDS["json"],
            label="json",
            retryable=True,
            headers=headers,
        )
        got = error.retry_after
        if got is None or abs(got - wait) > 0.001:
            raise _fail(
                f"HTTP {status} with Retry-After {headers['Retry-After']!r}"
                + (f" and Date {headers['Date']!r}" if "Date" in headers else "")
                + f": {type(error).__name__}.retry_after is {got!r}, expected {wait!r} "
                "(read it with msgbridge.wire.parse_retry_after)"
            )

    _collect(case.retry_after_statuses, one)


def check_trace_id(case: ConformanceCase) -> None:
    """The vendor's trace id header reaches every error and the success result."""
    header = case.trace_id_header
    if header is None:
        raise _fail("this check needs trace_id_header")
    traced = {header: TRACE_ID}

    def one(status: int) -> None:
        error = _check_error(
            case,
            status,
            GENERIC_ERROR_BODY_KINDS["json"],
            label="json",
            retryable=None,
            headers=traced,
        )
        if error.trace_id != TRACE_ID:
            raise _fail(
                f"HTTP {status} with {header}: {TRACE_ID!r}: {type(error).__name__}.trace_id "
                f"is {error.trace_id!r}; support tickets need it"
            )

    problems: list[str] = []
    try:
        _collect(ERROR_EXPECTATIONS, one)
    except ConformanceError as exc:
        problems.append(str(exc))
    plain, with_header = _success_response(case, {}), _success_response(case, traced)
    if plain is not None and with_header is not None:
        request = case.first_status_request()
        before = _interpret(case, request, plain)
        after = _interpret(case, request, with_header)
        if isinstance(after, VendorResult) and isinstance(before, VendorResult):
            # A trace id in the body may win over the header; none at all may not.
            if after.trace_id != TRACE_ID and (before.trace_id is None or after != before):
                problems.append(
                    f"a success with {header}: {TRACE_ID!r} gave VendorResult.trace_id "
                    f"{after.trace_id!r}"
                )
        else:
            problems.append(f"the declared success answer did not succeed: {after!r}")
    if problems:
        raise _fail("\n".join(problems))


def _overrides_rate_limit_feedback(adapter: Adapter[Any]) -> bool:
    return type(adapter).rate_limit_feedback is not Adapter.rate_limit_feedback


def check_rate_limit_feedback(case: ConformanceCase) -> None:
    """Declared rate-limit headers become ``RateFeedback``; garbage never crashes.

    An adapter that overrides ``rate_limit_feedback`` must declare the headers it reads
    (``rate_limit_headers``), so the kit can hold it to them.
    """
    adapter = case.adapter
    if not case.rate_limit_headers:
        if _overrides_rate_limit_feedback(adapter):
            raise _fail(
                f"{type(adapter).__name__} overrides rate_limit_feedback but the case "
                "declares no rate_limit_headers: declare the headers the vendor sends"
            )
        return
    problems: list[str] = []

    def read(response: ResponseView) -> Any:
        try:
            return adapter.rate_limit_feedback(response)
        except Exception as exc:
            problems.append(
                f"rate_limit_feedback raised {type(exc).__name__}: {exc} for HTTP "
                f"{response.status} with headers {dict(response.headers)!r}"
            )
            return None

    headers = case.rate_limit_headers
    shown = dict(headers)
    for status, body in ((200, case.success_body or b""), (429, GENERIC_ERROR_BODY_KINDS["json"])):
        feedback = read(ResponseView(status, headers, body))
        if not isinstance(feedback, RateFeedback):
            problems.append(
                f"HTTP {status} with {shown!r}: rate_limit_feedback returned {feedback!r}, "
                "expected a RateFeedback"
            )
        elif case.rate_limit_feedback is not None and feedback != case.rate_limit_feedback:
            problems.append(
                f"HTTP {status} with {shown!r}: rate_limit_feedback returned {feedback!r}, "
                f"expected {case.rate_limit_feedback!r}"
            )
        elif feedback == RateFeedback():
            problems.append(f"HTTP {status} with {shown!r}: the RateFeedback says nothing")
    garbage = {name: "not-a-number" for name in headers}
    for odd in ({}, garbage, {name: "" for name in headers}):
        feedback = read(ResponseView(429, odd, b""))
        if feedback is not None and not isinstance(feedback, RateFeedback):
            problems.append(f"headers {odd!r}: rate_limit_feedback returned {feedback!r}")
    if problems:
        raise _fail("\n".join(dict.fromkeys(problems)))


# -- purity, secrets, settings ----------------------------------------------------------


def check_no_io(case: ConformanceCase) -> None:
    """``prepare_*`` and ``interpret`` succeed with sockets, files and sleep blocked."""
    settings = case.parsed_settings()
    updates = [case.status_update(s) for s in case.sendable_states()]
    conversation = case.conversation_update() if case.supports_conversations() else None
    responses = [ResponseView(s, {}, GENERIC_ERROR_BODY_KINDS["json"]) for s in ERROR_EXPECTATIONS]
    if case.success_body is not None:
        responses.append(ResponseView(200, {}, case.success_body))
    problems: list[str] = []
    with forbid_io() as attempts:
        try:
            requests = [case.adapter.prepare_status(u, settings) for u in updates]
            if conversation is not None:
                case.adapter.prepare_conversation(conversation, settings)
            for response in responses:
                with contextlib.suppress(MessagingError):
                    case.adapter.interpret(requests[0], response, settings)
        except Exception as exc:  # report, never let a blocked call escape unexplained
            problems.append(f"raised {type(exc).__name__}: {exc}")
    if attempts:
        problems.insert(0, f"attempted I/O: {', '.join(dict.fromkeys(attempts))}")
    if problems:
        raise _fail(
            "prepare_*/interpret must be sans-I/O (no sockets, files, subprocesses or "
            "sleeps): " + "; ".join(problems)
        )


def check_no_clock(case: ConformanceCase) -> None:
    """``prepare_*``, ``interpret`` and ``rate_limit_feedback`` never read the clock.

    Time belongs to the bridge (injectable, so retries and rate limits are testable);
    a wait the vendor gives as an HTTP date is measured against its ``Date`` header.
    """
    settings = case.parsed_settings()
    updates = [case.status_update(s) for s in case.sendable_states()]
    conversation = case.conversation_update() if case.supports_conversations() else None
    dated = RETRY_AFTER_FORMS["http-date"][0]
    vendor_headers = {**dated, **case.rate_limit_headers}
    if case.trace_id_header:
        vendor_headers[case.trace_id_header] = TRACE_ID
    responses = [
        ResponseView(s, vendor_headers, GENERIC_ERROR_BODY_KINDS["json"])
        for s in ERROR_EXPECTATIONS
    ]
    responses += [ResponseView(s, vendor_headers, b) for s, b in case.error_bodies.items()]
    success = _success_response(case, vendor_headers)
    if success is not None:
        responses.append(success)
    problems: list[str] = []
    with forbid_clock() as attempts:
        try:
            requests = [case.adapter.prepare_status(u, settings) for u in updates]
            if conversation is not None:
                requests.append(case.adapter.prepare_conversation(conversation, settings))
            for request in requests:
                for response in responses:
                    with contextlib.suppress(MessagingError):
                        case.adapter.interpret(request, response, settings)
            for response in responses:
                case.adapter.rate_limit_feedback(response)
        except Exception as exc:  # report, never let a refused read escape unexplained
            problems.append(f"raised {type(exc).__name__}: {exc}")
    if attempts:
        problems.insert(0, f"read the clock: {', '.join(dict.fromkeys(attempts))}")
    if problems:
        raise _fail(
            "prepare_*/interpret/rate_limit_feedback must not read the clock (time comes "
            "from the bridge; measure an HTTP-date Retry-After against the Date header): "
            + "; ".join(problems)
        )


def _texts_of_error(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), *(str(a) for a in exc.args)]
    texts.extend(str(v) for v in vars(exc).values() if v is not None)
    return texts


def check_no_secret_leaks(case: ConformanceCase) -> None:
    """Secrets from settings and bearer tokens never show in reprs, requests or errors."""
    secrets: dict[str, str] = {"Authorization bearer token": BEARER_TOKEN}
    for key in case.secret_settings:
        if key not in case.settings:
            raise _fail(f"secret_settings names {key!r}, which the case's settings do not set")
        value = case.settings[key]
        if not isinstance(value, str) or len(value) < 4:
            raise _fail(f"secret setting {key!r} must be a string of 4+ characters in the case")
        secrets[f"setting {key!r}"] = value

    def scan(where: str, texts: Iterable[str]) -> None:
        for text in texts:
            for name, secret in secrets.items():
                if secret in text:
                    raise _fail(f"{where} shows the {name}: {text[:200]!r}")

    settings = case.parsed_settings()
    scan("repr(adapter)", [repr(case.adapter), str(case.adapter)])
    scan("the parsed settings' repr", [repr(settings), str(settings)])
    try:
        case.adapter.parse_settings({**case.settings, UNKNOWN_SETTING: "x"})
    except MessagingError as exc:
        scan("the ConfigurationError for an unknown key", _texts_of_error(exc))
    requests = [
        case.adapter.prepare_status(case.status_update(s), settings) for s in case.sendable_states()
    ]
    if case.supports_conversations():
        requests.append(case.adapter.prepare_conversation(case.conversation_update(), settings))
    for request in requests:
        scan("a prepared RequestSpec (it must never hold credentials)", [repr(request)])
    auth = {"Authorization": f"Bearer {BEARER_TOKEN}"}
    request = attrs.evolve(requests[0], headers={**requests[0].headers, **auth})
    bodies = [GENERIC_ERROR_BODY_KINDS["json"], b"<html>oops</html>"]
    for status in ERROR_EXPECTATIONS:
        for body in [*bodies, case.error_bodies.get(status, b"")]:
            outcome = _interpret(case, request, ResponseView(status, {}, body))
            if isinstance(outcome, BaseException):
                scan(f"the error for HTTP {status}", _texts_of_error(outcome))
            else:
                scan(f"the result for HTTP {status}", [repr(outcome)])
    if case.success_body is not None:
        outcome = _interpret(case, request, ResponseView(200, {}, case.success_body))
        scan("the success result", [repr(outcome)])


def check_unknown_setting_rejected(case: ConformanceCase) -> None:
    """A typo in settings is an error naming the key, not silently ignored."""
    try:
        case.adapter.parse_settings({**case.settings, UNKNOWN_SETTING: 1})
    except ConfigurationError as exc:
        if UNKNOWN_SETTING not in str(exc):
            raise _fail(
                f"the ConfigurationError does not name {UNKNOWN_SETTING!r}: {exc}"
            ) from None
        if exc.key not in (None, UNKNOWN_SETTING):
            raise _fail(
                f"ConfigurationError.key is {exc.key!r}, expected {UNKNOWN_SETTING!r}"
            ) from None
        return
    except Exception as exc:
        raise _fail(
            "an unknown settings key must raise ConfigurationError, got "
            f"{type(exc).__name__}: {exc}"
        ) from None
    raise _fail(f"settings with unknown key {UNKNOWN_SETTING!r} were accepted")
