"""Fixtures for the core suite."""

from __future__ import annotations

import pytest

from .support import FakeClock


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which bridge runs the scenario: ``Bridge`` or ``AsyncBridge``."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
