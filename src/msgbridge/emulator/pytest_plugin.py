"""Opt-in pytest fixtures: a running emulator and msgbridge connections pointing at it.

Enable with ``pytest_plugins = ["msgbridge.emulator.pytest_plugin"]`` in a conftest, or
``pytest -p msgbridge.emulator.pytest_plugin``. (It is deliberately not auto-loaded
through an entry point: a plugin that starts a server should be asked for.)

* ``msgbridge_emulator`` - the session's emulator, reset before each test (state, faults,
  records, clock offset). Its clock is an :class:`~msgbridge.emulator.OffsetClock`, so
  ``msgbridge_emulator.clock.advance(1801)`` expires a 30-minute token without sleeping.
  Vendors offered by installed adapter plugins are mounted too.
* ``msgbridge_demo_accounts`` - ``{vendor: account}``: the account each vendor's demo
  token belongs to (seed messages there).
* ``msgbridge_connections`` - ``{vendor: Connection}``, one per emulated vendor with an
  installed adapter (built-in or plugin), named after the vendor. Each is built from
  what the vendor declares: its demo token (the baseline ``demo-<vendor>-token``, or one
  registered for ``EmulatedVendor.demo_account(0)``), its settings
  (``EmulatedVendor.demo_connection``) and credentials from the adapter's own
  ``credentials_from_token`` (a bearer token, a header of the vendor's own, a signer).
* ``msgbridge_emulator_config`` - session-scoped :class:`~msgbridge.emulator.EmulatorConfig`;
  override it in your conftest to change the baseline (e.g. ``unknown_messages="create"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from msgbridge.emulator.clock import OffsetClock
from msgbridge.emulator.config import EmulatorConfig, demo_token
from msgbridge.emulator.emulator import Emulator

if TYPE_CHECKING:
    from msgbridge import Connection
    from msgbridge.registry import AdapterRegistry

__all__ = [
    "msgbridge_connections",
    "msgbridge_demo_accounts",
    "msgbridge_emulator",
    "msgbridge_emulator_config",
]


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


@pytest.fixture(scope="session")
def _msgbridge_registry() -> AdapterRegistry:
    from msgbridge.registry import AdapterRegistry

    return AdapterRegistry.from_entry_points()


@pytest.fixture
def msgbridge_emulator(_msgbridge_emulator_server: Emulator) -> Emulator:
    """A running emulator with fresh state (the server itself lives for the session)."""
    emulator = _msgbridge_emulator_server
    clock = emulator.clock
    if isinstance(clock, OffsetClock):
        clock.reset()  # first, so baseline tokens are seeded at real time
    emulator.reset()
    return emulator


def _demo_logins(emulator: Emulator, registry: AdapterRegistry) -> dict[str, tuple[str, str]]:
    """``{vendor: (account, token)}`` for every emulated vendor with an installed adapter.

    A vendor with a baseline token (``EmulatorConfig(demo=True)`` or ``tokens``) uses its
    first one; any other gets ``demo-<vendor>-token`` for its first demo account.
    """
    baseline: dict[str, tuple[str, str]] = {}
    for seed in emulator.accepted_tokens():
        if seed.expires_in is None:
            baseline.setdefault(seed.vendor, (seed.account or "", seed.token))
    logins: dict[str, tuple[str, str]] = {}
    for name in emulator.vendor_names:
        if name not in registry:
            continue  # an emulated vendor nobody installed an adapter for
        if name not in baseline:
            account, token = emulator.vendor(name).demo_account(0), demo_token(name)
            emulator.add_token(name, token, account=account)
            baseline[name] = (account, token)
        logins[name] = baseline[name]
    return logins


@pytest.fixture
def _msgbridge_demo_logins(
    msgbridge_emulator: Emulator, _msgbridge_registry: AdapterRegistry
) -> dict[str, tuple[str, str]]:
    return _demo_logins(msgbridge_emulator, _msgbridge_registry)


@pytest.fixture
def msgbridge_demo_accounts(
    _msgbridge_demo_logins: dict[str, tuple[str, str]],
) -> dict[str, str]:
    """``{vendor: account}`` whose demo token the emulator accepts in this test."""
    return {name: account for name, (account, _) in _msgbridge_demo_logins.items()}


@pytest.fixture
def msgbridge_connections(
    msgbridge_emulator: Emulator,
    _msgbridge_registry: AdapterRegistry,
    _msgbridge_demo_logins: dict[str, tuple[str, str]],
) -> dict[str, Connection]:
    """One ready :class:`msgbridge.Connection` per installed vendor, aimed at the emulator."""
    from msgbridge import Connection

    connections: dict[str, Connection] = {}
    for name, (account, token) in _msgbridge_demo_logins.items():
        vendor = msgbridge_emulator.vendor(name)
        settings, _ = vendor.demo_connection(msgbridge_emulator.base_url(name), account, token)
        adapter = _msgbridge_registry.get(name)
        connections[name] = Connection(
            name=name,
            adapter=name,
            credentials=adapter.credentials_from_token(token),
            settings=settings,
        )
    return connections
