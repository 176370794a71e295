"""``msgbridge emulate`` as an operator meets it, for every installed vendor alike.

A real ``msgbridge emulate`` subprocess (the installed entry points' vendors, over
loopback) is started once. Its banner lists a demo token for every installed vendor,
plugins included, with the way that vendor expects it (bearer, its own header, a
request signature); the ``msgbridge.toml`` it writes has one connection per vendor and
every one of them applies through ``msgbridge send``; hand-written TOML connections for
the Chatwoot and Front plugins (``token_env``) apply too. ``msgbridge send`` runs
in-process through the typer app.
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
from typer.testing import CliRunner, Result

from msgbridge.cli import app
from msgbridge.emulator import builtin_vendors
from msgbridge.registry import AdapterRegistry

pytest.importorskip("uvicorn", reason="serving the emulator needs the emulator extra")

REGISTRY = AdapterRegistry.from_entry_points()
#: Every emulated vendor an installed distribution declares, by name.
DECLARED = {
    v.name: v
    for v in [*builtin_vendors(), *REGISTRY.emulated_vendors]
    if v.name in REGISTRY  # a vendor without an installed adapter cannot be sent to
}


class Emulate:
    """A running ``msgbridge emulate`` and what it printed."""

    def __init__(self, root: str, banner: str, config: Path) -> None:
        self.root = root
        self.banner = banner
        self.config = config


@pytest.fixture(scope="module")
def emulate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulate]:
    config = tmp_path_factory.mktemp("emulate") / "msgbridge.toml"
    command = [sys.executable, "-m", "msgbridge.cli", "emulate", "--port", "0", "--unknown",
               "reject", "--write-config", str(config)]  # fmt: skip
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
    seen: list[str] = []
    try:
        while not any(line.startswith("unknown message ids:") for line in seen):
            try:
                seen.append(lines.get(timeout=30))
            except queue.Empty:
                pytest.fail("msgbridge emulate printed no banner: " + "".join(seen))
        match = re.match(r"msgbridge emulator on (http://\S+)", seen[0])
        assert match, seen
        root = match.group(1)
        for _ in range(200):  # the banner is printed before uvicorn starts listening
            try:
                httpx.get(f"{root}/_emulator/state", timeout=1.0)
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        yield Emulate(root, "".join(seen), config)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def send(config: Path, tmp_path: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(
        app,
        ["send", "--config", str(config), "--state", str(tmp_path / "guard.sqlite3"), *args],
        env={"COLUMNS": "200", **env},
        catch_exceptions=False,
    )


def seed(root: str, vendor: str, message_id: str, account: str, **extra: object) -> None:
    item = {"vendor": vendor, "id": message_id, "account": account, **extra}
    httpx.post(f"{root}/_emulator/seed", json={"messages": [item]}).raise_for_status()


def stored(root: str, vendor: str, message_id: str) -> dict[str, object]:
    response = httpx.get(f"{root}/_emulator/messages/{vendor}/{message_id}")
    response.raise_for_status()
    data: dict[str, object] = response.json()
    return data


def test_banner_lists_a_demo_token_per_installed_vendor_with_its_scheme(emulate: Emulate) -> None:
    assert {"chatwoot", "front", "kommo"} <= set(DECLARED)  # .ci/run installs the plugins
    for name, vendor in DECLARED.items():
        token_line = [name, f"demo-{name}-token"]
        line = next(
            (ln for ln in emulate.banner.splitlines() if ln.split()[:2] == token_line), None
        )
        assert line is not None, f"no demo token line for {name}:\n{emulate.banner}"
        assert f"(account {vendor.demo_token_account()}; {vendor.credential_scheme})" in line
    # Not "Bearer" for every vendor: Chatwoot's header and Kommo's signature are named.
    assert "api_access_token: <token>" in emulate.banner
    assert "X-Signature" in emulate.banner
    assert "accepted tokens (Authorization: Bearer <token>)" not in emulate.banner


def test_the_written_config_applies_through_every_vendor(emulate: Emulate, tmp_path: Path) -> None:
    text = emulate.config.read_text(encoding="utf-8")
    env = dict(re.findall(r"^#   export (\w+)=(\S+)$", text, flags=re.MULTILINE))
    for name, vendor in DECLARED.items():
        assert f"[connections.{name}]" in text, name
        adapter = REGISTRY.get(name)
        state = next(
            s for s in ("delivered", "read", "sent", "failed")
            if adapter.capabilities.mapping(s).sendable
        )  # fmt: skip
        message_id = f"written-{name}-1"
        account = vendor.demo_token_account()
        fields = vendor.demo_message_fields(message_id)
        settings, _ = vendor.demo_connection(f"{emulate.root}/{name}", account, "-")
        extra: dict[str, object] = dict(fields)
        if vendor.needs_channel_id:
            extra["channel_id"] = settings["channel_id"]
        seed(emulate.root, name, message_id, account, **extra)
        args = [name, message_id, state, "--json"]
        if "conversation_id" in fields:
            args += ["--conversation-id", fields["conversation_id"]]
        if state == "failed":
            args += ["--error-message", "carrier rejected"]
        result = send(emulate.config, tmp_path, env, *args)
        assert result.exit_code == 0, (name, result.stdout, result.stderr)
        receipt = json.loads(result.stdout)
        assert receipt["outcome"] == "applied", (name, receipt)
        assert stored(emulate.root, name, message_id)["status"] == receipt["vendor_value"]


CHATWOOT_TOML = """
[connections.support]
adapter = "chatwoot"
token_env = "CHATWOOT_API_TOKEN"
[connections.support.settings]
base_url = "{root}/chatwoot"
account_id = 1
"""

FRONT_TOML = """
[connections.inbox]
adapter = "front"
token_env = "FRONT_API_TOKEN"
[connections.inbox.settings]
base_url = "{root}/front"
"""


def test_a_toml_chatwoot_connection_sends_with_its_own_header(
    emulate: Emulate, tmp_path: Path
) -> None:
    if "chatwoot" not in DECLARED:
        pytest.skip("msgbridge-chatwoot is not installed")
    config = tmp_path / "msgbridge.toml"
    config.write_text(CHATWOOT_TOML.format(root=emulate.root), encoding="utf-8")
    seed(emulate.root, "chatwoot", "701", "1", conversation_id="42")
    env = {"CHATWOOT_API_TOKEN": "demo-chatwoot-token"}
    for state in ("delivered", "read"):
        result = send(config, tmp_path, env, "support", "701", state, "--conversation-id",
                      "42", "--json")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["outcome"] == "applied"
    message = stored(emulate.root, "chatwoot", "701")
    assert [change["status"] for change in message["history"]] == ["delivered", "read"]  # type: ignore[union-attr]
    requests = httpx.get(f"{emulate.root}/_emulator/requests", params={"vendor": "chatwoot"})
    last = requests.json()[-1]
    assert last["status"] == 200
    # The token travelled in Chatwoot's header (masked in the record), not as a bearer.
    assert last["headers"].get("api_access_token") == "***"
    assert "authorization" not in {k.lower() for k in last["headers"]}
    assert "demo-chatwoot-token" not in result.stdout + result.stderr


def test_a_toml_front_connection_marks_a_message_failed(emulate: Emulate, tmp_path: Path) -> None:
    if "front" not in DECLARED:
        pytest.skip("msgbridge-front is not installed")
    config = tmp_path / "msgbridge.toml"
    config.write_text(FRONT_TOML.format(root=emulate.root), encoding="utf-8")
    account = DECLARED["front"].demo_token_account()
    seed(emulate.root, "front", "msg_front_1", account, conversation_id="cnv_1")
    env = {"FRONT_API_TOKEN": "demo-front-token"}
    result = send(config, tmp_path, env, "inbox", "msg_front_1", "failed", "--error-message",
                  "Number unreachable", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outcome"] == "applied"
    message = stored(emulate.root, "front", "msg_front_1")
    assert message["status"] == "failed"
    assert message["history"][-1]["error"] == "Number unreachable"  # type: ignore[index]
    # Front accepts nothing else: a delivered update is skipped before any request.
    skipped = send(config, tmp_path, env, "inbox", "msg_front_2", "delivered", "--json")
    assert skipped.exit_code == 0, skipped.stderr
    assert json.loads(skipped.stdout)["outcome"] == "skipped_unsupported"
