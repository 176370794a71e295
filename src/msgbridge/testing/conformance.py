"""The pytest face of the conformance kit: inherit, configure, run.

This is the one module of :mod:`msgbridge.testing` that imports pytest, and nothing
imports it unless you do: pytest is a test-time dependency, never a runtime one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from msgbridge.adapter import Adapter, Operation, RateFeedback
from msgbridge.model import DeliveryState
from msgbridge.testing.checks import (
    ERROR_EXPECTATIONS,
    GENERIC_ERROR_BODY_KINDS,
    HOSTILE_IDS,
    MALFORMED_SUCCESS_BODIES,
    ODD_ERROR_BODIES,
    RETRY_AFTER_FORMS,
    BodyLike,
    ConformanceCase,
    ConformanceError,
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
    check_retry_after,
    check_state,
    check_success_accepts_unknown_fields,
    check_success_fields_declared,
    check_success_required_fields,
    check_success_required_fields_not_null,
    check_trace_id,
    check_unknown_setting_rejected,
    check_vendor_error_bodies,
)

__all__ = ["AdapterConformance"]


class AdapterConformance:
    """Inherit from this in a ``Test*`` class to run the adapter conformance suite.

    Set ``adapter`` and ``settings`` (and the optional attributes below), or override
    :meth:`conformance_case` to return a :class:`ConformanceCase`. The class is not
    named ``Test*``, so pytest collects only your subclass.
    """

    adapter: ClassVar[Adapter[Any]]
    settings: ClassVar[Mapping[str, Any]] = {}
    sample_status_kwargs: ClassVar[Mapping[str, Any]] = {}
    sample_conversation_kwargs: ClassVar[Mapping[str, Any]] = {}
    error_bodies: ClassVar[Mapping[int, BodyLike]] = {}
    success_body: ClassVar[BodyLike | None] = None
    required_success_fields: ClassVar[tuple[str, ...]] = ()
    secret_settings: ClassVar[tuple[str, ...]] = ()
    base_url: ClassVar[str | None] = None
    message_id_in_path: ClassVar[bool] = True
    conversation_id_in_path: ClassVar[bool] = True
    success_is_empty: ClassVar[bool] = False
    retry_after_statuses: ClassVar[tuple[int, ...]] = (429,)
    trace_id_header: ClassVar[str | None] = None
    rate_limit_headers: ClassVar[Mapping[str, str]] = {}
    rate_limit_feedback: ClassVar[RateFeedback | None] = None

    @classmethod
    def conformance_case(cls) -> ConformanceCase:
        """The case under test, built from the class attributes."""
        adapter = getattr(cls, "adapter", None)
        if not isinstance(adapter, Adapter):
            raise ConformanceError(f"{cls.__name__} must set adapter = YourAdapter()")
        return ConformanceCase(
            adapter=adapter,
            settings=cls.settings,
            sample_status_kwargs=cls.sample_status_kwargs,
            sample_conversation_kwargs=cls.sample_conversation_kwargs,
            error_bodies=cls.error_bodies,
            success_body=cls.success_body,
            required_success_fields=cls.required_success_fields,
            secret_settings=cls.secret_settings,
            base_url=cls.base_url,
            message_id_in_path=cls.message_id_in_path,
            conversation_id_in_path=cls.conversation_id_in_path,
            success_is_empty=cls.success_is_empty,
            retry_after_statuses=cls.retry_after_statuses,
            trace_id_header=cls.trace_id_header,
            rate_limit_headers=cls.rate_limit_headers,
            rate_limit_feedback=cls.rate_limit_feedback,
        )

    @pytest.fixture
    def adapter_case(self) -> ConformanceCase:
        return self.conformance_case()

    # -- description and requests -------------------------------------------------

    def test_adapter_identity(self, adapter_case: ConformanceCase) -> None:
        check_adapter_identity(adapter_case)

    def test_capabilities_map_every_state(self, adapter_case: ConformanceCase) -> None:
        check_capabilities(adapter_case)

    @pytest.mark.parametrize("state", list(DeliveryState), ids=lambda s: s.value)
    def test_state_mapping(self, adapter_case: ConformanceCase, state: DeliveryState) -> None:
        check_state(adapter_case, state)

    @pytest.mark.parametrize("hostile_id", list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS))
    def test_message_id_is_one_path_segment(
        self, adapter_case: ConformanceCase, hostile_id: str
    ) -> None:
        check_path_segment(adapter_case, hostile_id, operation=Operation.UPDATE_STATUS)

    def test_request_paths_are_relative(self, adapter_case: ConformanceCase) -> None:
        check_relative_paths(adapter_case)

    def test_conversation_operation(self, adapter_case: ConformanceCase) -> None:
        check_conversation_operation(adapter_case)

    @pytest.mark.parametrize("hostile_id", list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS))
    def test_conversation_id_is_one_path_segment(
        self, adapter_case: ConformanceCase, hostile_id: str
    ) -> None:
        if not adapter_case.supports_conversations():
            pytest.skip("the adapter does not declare Operation.UPDATE_CONVERSATION")
        check_path_segment(adapter_case, hostile_id, operation=Operation.UPDATE_CONVERSATION)

    # -- interpret ----------------------------------------------------------------

    @pytest.mark.parametrize("kind", list(GENERIC_ERROR_BODY_KINDS))
    @pytest.mark.parametrize("status", list(ERROR_EXPECTATIONS))
    def test_error_status_mapping(
        self, adapter_case: ConformanceCase, status: int, kind: str
    ) -> None:
        check_generic_error(adapter_case, status, kind)

    def test_vendor_error_bodies(self, adapter_case: ConformanceCase) -> None:
        if not adapter_case.error_bodies:
            pytest.skip("no vendor-shaped error_bodies given")
        check_vendor_error_bodies(adapter_case)

    @pytest.mark.parametrize("kind", list(ODD_ERROR_BODIES))
    def test_odd_error_body(self, adapter_case: ConformanceCase, kind: str) -> None:
        check_error_body(adapter_case, kind)

    @pytest.mark.parametrize("kind", list(MALFORMED_SUCCESS_BODIES))
    def test_malformed_success(self, adapter_case: ConformanceCase, kind: str) -> None:
        check_malformed_success(adapter_case, kind)

    def test_success_accepts_unknown_fields(self, adapter_case: ConformanceCase) -> None:
        if adapter_case.success_body is None:
            pytest.skip("no success_body given")
        check_success_accepts_unknown_fields(adapter_case)

    def test_success_fields_declared(self, adapter_case: ConformanceCase) -> None:
        check_success_fields_declared(adapter_case)

    def test_empty_success(self, adapter_case: ConformanceCase) -> None:
        check_empty_success(adapter_case)

    def test_success_required_fields(self, adapter_case: ConformanceCase) -> None:
        if adapter_case.success_body is None or not adapter_case.required_success_fields:
            pytest.skip("no success_body and required_success_fields given")
        check_success_required_fields(adapter_case)

    def test_success_required_fields_not_null(self, adapter_case: ConformanceCase) -> None:
        if adapter_case.success_body is None or not adapter_case.required_success_fields:
            pytest.skip("no success_body and required_success_fields given")
        check_success_required_fields_not_null(adapter_case)

    # -- what vendors put in headers ------------------------------------------------

    @pytest.mark.parametrize("form", list(RETRY_AFTER_FORMS))
    def test_retry_after(self, adapter_case: ConformanceCase, form: str) -> None:
        check_retry_after(adapter_case, form)

    def test_trace_id(self, adapter_case: ConformanceCase) -> None:
        if adapter_case.trace_id_header is None:
            pytest.skip("no trace_id_header declared")
        check_trace_id(adapter_case)

    def test_rate_limit_feedback(self, adapter_case: ConformanceCase) -> None:
        check_rate_limit_feedback(adapter_case)

    # -- purity, secrets, settings ---------------------------------------------------

    def test_no_io(self, adapter_case: ConformanceCase) -> None:
        check_no_io(adapter_case)

    def test_no_clock(self, adapter_case: ConformanceCase) -> None:
        check_no_clock(adapter_case)

    def test_no_secret_leaks(self, adapter_case: ConformanceCase) -> None:
        check_no_secret_leaks(adapter_case)

    def test_unknown_setting_rejected(self, adapter_case: ConformanceCase) -> None:
        check_unknown_setting_rejected(adapter_case)
