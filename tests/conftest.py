"""Fixtures shared by every test directory."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# Property tests check what is generated, not how fast: on a loaded CI machine the first
# draw alone can take seconds, which is not a failure of the code under test.
settings.register_profile("msgbridge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("msgbridge")


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio only."""
    return "asyncio"


@pytest.fixture(autouse=True, scope="session")
def _private_state_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test writes the CLI's per-user state file into the real home directory."""
    import os

    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
