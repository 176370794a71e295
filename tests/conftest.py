"""Fixtures shared by every test directory."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio only."""
    return "asyncio"


@pytest.fixture(autouse=True, scope="session")
def _private_state_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test writes the CLI's per-user state file into the real home directory."""
    import os

    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
