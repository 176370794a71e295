"""One emulator server for the whole integration suite, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from msgbridge import AdapterRegistry
from msgbridge.emulator import Emulator, EmulatorConfig, OffsetClock

from .support import RUNNERS


@pytest.fixture(scope="session")
def _integration_emulator() -> Iterator[Emulator]:
    # Real time (rate windows, latency and the provider race behave like the vendor's),
    # plus an offset a test may jump forward to expire a token without sleeping.
    with Emulator(EmulatorConfig(demo=True), clock=OffsetClock()) as emulator:
        yield emulator


@pytest.fixture
def emu(_integration_emulator: Emulator) -> Emulator:
    """The running emulator, back at its demo baseline (tokens, OAuth clients, no faults)."""
    clock = _integration_emulator.clock
    assert isinstance(clock, OffsetClock)
    clock.reset()  # first, so the baseline is seeded at real time
    _integration_emulator.reset()
    return _integration_emulator


@pytest.fixture(scope="session")
def registry() -> AdapterRegistry:
    """The built-in adapters, discovered once (bridges only read it)."""
    return AdapterRegistry.from_entry_points()


@pytest.fixture(params=RUNNERS)
def runner_kind(request: pytest.FixtureRequest) -> str:
    """Which bridge and sender run the scenario."""
    return str(request.param)
