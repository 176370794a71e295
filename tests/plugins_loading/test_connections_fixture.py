"""``msgbridge_connections`` covers every installed vendor from what each one declares.

Run in a child pytest session, as a user enables the plugin; the chatwoot and front
plugins are installed in the development environment (Chatwoot's token travels in an
``api_access_token`` header, so a Bearer connection would be refused).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
from msgbridge import AdapterRegistry, Bridge, DeliveryState, MessageStatus, Outcome

STATES = (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.READ)


def test_every_installed_vendor_has_a_working_connection(
    msgbridge_emulator, msgbridge_connections, msgbridge_demo_accounts
):
    emu = msgbridge_emulator
    registry = AdapterRegistry.from_entry_points()
    installed = {name for name in emu.vendor_names if name in registry}
    assert set(msgbridge_connections) == installed == set(msgbridge_demo_accounts)
    assert {"highlevel", "leadway", "hoop", "hubspot", "chatwoot", "front"} <= installed
    expected = {}
    with Bridge(msgbridge_connections.values()) as bridge:
        for name, connection in msgbridge_connections.items():
            adapter = registry.get(name)
            assert type(connection.credentials) is type(adapter.credentials_from_token("t"))
            state = next(s for s in STATES if adapter.capabilities.mapping(s).sendable)
            vendor = emu.vendor(name)
            message_id = "m-" + name
            fields = vendor.demo_message_fields(message_id)
            channel = connection.settings.get("channel_id") if vendor.needs_channel_id else None
            emu.seed_message(
                name,
                message_id,
                account=msgbridge_demo_accounts[name],
                conversation_id=fields.get("conversation_id"),
                channel_id=channel,
            )
            receipt = bridge.update_status(name, MessageStatus(message_id, state, **fields))
            assert receipt.outcome is Outcome.APPLIED, (name, receipt)
            expected[name] = adapter.capabilities.mapping(state).vendor_value
    for name, value in expected.items():
        assert emu.message(name, "m-" + name).status == value, name

"""


def test_connections_fixture_covers_plugins(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MSGBRIDGE_PLUGINS_ALLOW", None)
    env.pop("MSGBRIDGE_PLUGINS_BLOCK", None)
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "msgbridge.emulator.pytest_plugin",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
