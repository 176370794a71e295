"""Opt-in pytest fixtures: a running emulator and msgbridge connections pointing at it.

Enable with ``pytest_plugins = ["msgbridge.emulator.pytest_plugin"]`` in a conftest, or
``pytest -p msgbridge.emulator.pytest_plugin``. (It is deliberately not auto-loaded
through an entry point: a plugin that starts a server should be asked for.)

* ``msgbridge_emulator`` - the session's emulator, reset before each test (state, faults,
  records, clock offset). Its clock is an :class:`~msgbridge.emulator.OffsetClock`, so
  ``msgbridge_emulator.clock.advance(1801)`` expires a HubSpot token without sleeping.
* ``msgbridge_connections`` - ``{"highlevel": Connection, "leadway": ..., "hoop": ...,
  "hubspot": ...}`` using the demo tokens (``demo-<vendor>-token``).
* ``msgbridge_emulator_config`` - session-scoped :class:`~msgbridge.emulator.EmulatorConfig`;
  override it in your conftest to change the baseline (e.g. ``unknown_messages="create"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from msgbridge.emulator.clock import OffsetClock
from msgbridge.emulator.config import DEMO_HUBSPOT_CHANNEL_ID, EmulatorConfig, demo_token
from msgbridge.emulator.emulator import Emulator

if TYPE_CHECKING:
    from msgbridge import Connection

__all__ = [
    "msgbridge_connections",
    "msgbridge_emulator",
    "msgbridge_emulator_config",
]

#: ``Version`` each HighLevel-family connection sends (the vendor's documented default).
CONNECTION_VERSIONS = {"highlevel": "2021-04-15", "leadway": "2021-07-28", "hoop": "2021-04-15"}


@pytest.fixture(scope="session")
def msgbridge_emulator_config() -> EmulatorConfig:
    """The baseline every test starts from; override to customise."""
    return EmulatorConfig(demo=True)


@pytest.fixture(scope="session")
def _msgbridge_emulator_server(
    msgbridge_emulator_config: EmulatorConfig,
) -> Iterator[Emulator]:
    emulator = Emulator(msgbridge_emulator_config, clock=OffsetClock(), plugins=True)
    with emulator:
        yield emulator


@pytest.fixture
def msgbridge_emulator(_msgbridge_emulator_server: Emulator) -> Emulator:
    """A running emulator with fresh state (the server itself lives for the session)."""
    emulator = _msgbridge_emulator_server
    clock = emulator.clock
    if isinstance(clock, OffsetClock):
        clock.reset()  # first, so baseline tokens are seeded at real time
    emulator.reset()
    return emulator


@pytest.fixture
def msgbridge_connections(msgbridge_emulator: Emulator) -> dict[str, Connection]:
    """One ready :class:`msgbridge.Connection` per built-in adapter, aimed at the emulator."""
    from msgbridge import BearerToken, Connection

    connections: dict[str, Connection] = {}
    for name, version in CONNECTION_VERSIONS.items():
        connections[name] = Connection(
            name=name,
            adapter=name,
            credentials=BearerToken(demo_token(name)),
            settings={"base_url": msgbridge_emulator.base_url(name), "version": version},
        )
    connections["hubspot"] = Connection(
        name="hubspot",
        adapter="hubspot",
        credentials=BearerToken(demo_token("hubspot")),
        settings={
            "base_url": msgbridge_emulator.base_url("hubspot"),
            "channel_id": DEMO_HUBSPOT_CHANNEL_ID,
            "api_version": "2026-03",
        },
    )
    return connections
