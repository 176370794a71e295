"""Kommo as an operator meets it: ``msgbridge emulate`` serves it, a TOML connection with
``token_env`` (the channel secret) makes ``msgbridge send`` sign and apply, ``msgbridge
adapters`` lists it and ``msgbridge demo`` drives it.

The emulator runs as a real ``msgbridge emulate`` subprocess (the installed entry point's
vendors, over loopback); the other commands run in-process through the typer app.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("msgbridge.emulator", reason="msgbridge's emulator is not installed")
pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

from typer.testing import CliRunner, Result

from msgbridge.cli import app

SECRET = "kommo-cli-channel-secret-7f3a"
SCOPE = "chan-cli_acct-cli"


@pytest.fixture(scope="module")
def emulate() -> Iterator[str]:
    """``msgbridge emulate`` on a free port, accepting SECRET for SCOPE; yields its root URL."""
    command = [
        sys.executable,
        "-m",
        "msgbridge.cli",
        "emulate",
        "--port",
        "0",
        "--no-demo-tokens",
        "--unknown",
        "reject",
        "--token",
        f"kommo:{SECRET}:{SCOPE}",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    root = None
    seen: list[str] = []
    try:
        while root is None:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail("msgbridge emulate printed no URL: " + "".join(seen))
            seen.append(line)
            match = re.match(r"msgbridge emulator on (http://\S+)", line)
            if match:
                root = match.group(1)
        for _ in range(200):  # the banner is printed before uvicorn starts listening
            try:
                httpx.get(f"{root}/_emulator/state", timeout=1.0)
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        yield root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(
        app, list(args), env={"COLUMNS": "200", **(env or {})}, catch_exceptions=False
    )
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr
    return result


def test_toml_connection_sends_signed_updates_to_msgbridge_emulate(
    emulate: str, tmp_path: Path
) -> None:
    seeds = [{"vendor": "kommo", "id": f"msg-{n}", "account": SCOPE} for n in (1, 2)]
    httpx.post(f"{emulate}/_emulator/seed", json={"messages": seeds}).raise_for_status()
    config = tmp_path / "msgbridge.toml"
    config.write_text(
        f"""
[retry]
max_attempts = 2
initial_backoff = 0.01
max_backoff = 0.05

[connections.chats]
adapter = "kommo"
token_env = "KOMMO_CHANNEL_SECRET"
[connections.chats.settings]
base_url = "{emulate}/kommo"
scope_id = "{SCOPE}"
""",
        encoding="utf-8",
    )
    env = {
        "MSGBRIDGE_CONFIG": str(config),
        "KOMMO_CHANNEL_SECRET": SECRET,
        "MSGBRIDGE_STATE": str(tmp_path / "guard.sqlite3"),  # never the real home
    }

    for state in ("delivered", "read"):
        result = run("send", "chats", "msg-1", state, "--json", env=env)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["outcome"] == "applied"
    failed = run(
        "send",
        "chats",
        "msg-2",
        "failed",
        "--error-message",
        "Not on WhatsApp",
        "--error-code",
        "904",
        "--json",
        env=env,
    )
    assert failed.exit_code == 0, failed.stderr
    assert json.loads(failed.stdout)["vendor_value"] == "-1"

    first = httpx.get(f"{emulate}/_emulator/messages/kommo/msg-1").json()
    assert [change["status"] for change in first["history"]] == ["1", "2"]
    second = httpx.get(f"{emulate}/_emulator/messages/kommo/msg-2").json()
    assert second["status"] == "-1"
    requests = httpx.get(f"{emulate}/_emulator/requests", params={"vendor": "kommo"}).json()
    assert [r["status"] for r in requests] == [200, 200, 200]


def test_a_wrong_secret_in_the_environment_fails_clearly(emulate: str, tmp_path: Path) -> None:
    config = tmp_path / "msgbridge.toml"
    config.write_text(
        f"""
[connections.chats]
adapter = "kommo"
token_env = "KOMMO_CHANNEL_SECRET"
[connections.chats.settings]
base_url = "{emulate}/kommo"
scope_id = "{SCOPE}"
""",
        encoding="utf-8",
    )
    env = {
        "MSGBRIDGE_CONFIG": str(config),
        "KOMMO_CHANNEL_SECRET": "not-the-secret",
        "MSGBRIDGE_STATE": str(tmp_path / "guard.sqlite3"),
    }
    result = run("send", "chats", "msg-2", "read", env=env)
    assert result.exit_code == 1
    assert "signature" in result.stdout + result.stderr
    assert "not-the-secret" not in result.stdout + result.stderr


def test_adapters_lists_kommo_from_its_distribution() -> None:
    result = run("adapters", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    (kommo,) = [a for a in data["adapters"] if a["id"] == "kommo"]
    assert kommo["source"]["distribution"] == "msgbridge-kommo"
    assert {s["state"]: s["vendor_value"] for s in kommo["states"]} == {
        "pending": None,
        "sent": None,
        "delivered": "1",
        "read": "2",
        "failed": "-1",
    }
    assert not [f for f in data["failures"] if "kommo" in json.dumps(f)]


def test_demo_drives_kommo_through_its_recipe() -> None:
    result = run("demo", "--messages", "200", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert "kommo" not in data["skipped_vendors"]
    kommo = data["vendors"]["kommo"]
    assert kommo["mismatches"] == 0
    assert kommo["http"]["ok"] > 0
