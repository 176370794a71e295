"""The opt-in pytest plugin, exercised in a child pytest run (as a user would enable it)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
import httpx
import pytest

from msgbridge import Bridge, DeliveryState, MessageStatus, Outcome


def test_fixture_serves_every_vendor(msgbridge_emulator):
    emu = msgbridge_emulator
    emu.seed_message("highlevel", "m1", account="demo-location")
    response = httpx.put(
        emu.base_url("highlevel") + "/conversations/messages/m1/status",
        json={"status": "read"},
        headers={"Authorization": "Bearer demo-highlevel-token", "Version": "2021-04-15"},
    )
    assert response.status_code == 200
    emu.clock.advance(3600)


def test_state_and_clock_are_reset_between_tests(msgbridge_emulator):
    with pytest.raises(KeyError):
        msgbridge_emulator.message("highlevel", "m1")
    assert msgbridge_emulator.clock.offset == 0
    assert msgbridge_emulator.requests == ()


def test_connections_deliver_through_the_bridge(msgbridge_emulator, msgbridge_connections):
    emu = msgbridge_emulator
    builtins = {"highlevel", "leadway", "hoop", "hubspot"}
    assert builtins <= set(msgbridge_connections)  # plus every installed plugin vendor
    msgbridge_connections = {n: c for n, c in msgbridge_connections.items() if n in builtins}
    for name in ("highlevel", "leadway", "hoop"):
        emu.seed_message(name, "m-" + name, account="demo-location")
    emu.seed_message("hubspot", "m-hubspot", account="1234567", channel_id=1000)
    with Bridge(msgbridge_connections.values()) as bridge:
        for name in msgbridge_connections:
            status = MessageStatus("m-" + name, DeliveryState.DELIVERED)
            receipt = bridge.update_status(name, status)
            assert receipt.outcome is Outcome.APPLIED, receipt
    assert emu.message("highlevel", "m-highlevel").statuses == ["delivered"]
    assert emu.message("leadway", "m-leadway").statuses == ["delivered"]
    assert emu.message("hoop", "m-hoop").statuses == ["delivered"]
    assert emu.message("hubspot", "m-hubspot").statuses == ["SENT"]
"""


def run_child(tmp_path: Path, *plugin_args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *plugin_args,
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_plugin_fixtures_work_when_enabled(tmp_path):
    result = run_child(tmp_path, "-p", "msgbridge.emulator.pytest_plugin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_plugin_is_not_auto_loaded():
    """Opt-in only: no ``pytest11`` entry point may point at the plugin."""
    from importlib.metadata import entry_points

    targets = [ep.value for ep in entry_points(group="pytest11")]
    assert not [t for t in targets if t.startswith("msgbridge")]
