"""Configuration files: the reference format, ``config init``, the emulator's own config,
and loading without the command line's dependencies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import msgbridge.cli.config as cli_config
import msgbridge.config as core_config
from msgbridge.config import load_config, parse_config
from msgbridge.registry import AdapterRegistry

from .conftest import Cli


def test_format_prints_a_toml_file_that_loads_and_builds(bare_cli: Cli, tmp_path: Path) -> None:
    result = bare_cli("config", "--format")
    assert result.exit_code == 0
    data = tomllib.loads(result.stdout)  # valid TOML, the prose is in comments
    config = parse_config(data, "reference.toml", tmp_path / "reference.toml")
    assert sorted(config.connections) == ["acme", "hs"]
    assert config.connections["acme"].rate_limit == (100, 10.0)
    env = {"ACME_HL_TOKEN": "t", "HS_CLIENT_ID": "i", "HS_CLIENT_SECRET": "s", "HS_REFRESH": "r"}
    built = config.build_all(AdapterRegistry.from_entry_points(), env)
    assert [c.name for c in built] == ["acme", "hs"]
    assert "# * Secrets are only ever referenced" in result.stdout


def test_init_writes_a_commented_starter_that_loads(bare_cli: Cli, tmp_path: Path) -> None:
    result = bare_cli("config", "init")
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "msgbridge.toml"
    assert "wrote msgbridge.toml" in result.stdout
    assert "next:" in result.stdout
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# msgbridge.toml, written by `msgbridge config init`")
    config = load_config(path)
    assert config.connections["main"].token_env == "MSGBRIDGE_HIGHLEVEL_TOKEN"
    # The check command reads it and names the missing variable.
    check = bare_cli("config")
    assert check.exit_code == 3
    assert "MSGBRIDGE_HIGHLEVEL_TOKEN (missing)" in check.stdout
    # Never clobbers a file unless told to.
    path.write_text("# mine\n", encoding="utf-8")
    again = bare_cli("config", "init")
    assert again.exit_code == 2
    assert "already exists; pass --force" in again.stderr
    assert path.read_text(encoding="utf-8") == "# mine\n"
    other = tmp_path / "sub.toml"
    assert bare_cli("config", "init", str(other)).exit_code == 0
    assert bare_cli("config", "init", str(path), "--force").exit_code == 0
    assert path.read_text(encoding="utf-8") == other.read_text(encoding="utf-8")


def test_cli_config_module_re_exports_the_core_one() -> None:
    assert cli_config.load_config is core_config.load_config
    assert cli_config.Config is core_config.Config
    assert cli_config.ConnectionConfig is core_config.ConnectionConfig


def test_config_loads_without_typer_or_rich(tmp_path: Path) -> None:
    """A library reuses msgbridge.toml with the core dependencies only."""
    (tmp_path / "msgbridge.toml").write_text(
        textwrap.dedent(
            """
            [connections.a]
            adapter = "highlevel"
            token_env = "A_TOKEN"
            [connections.a.settings]
            location_id = "loc"
            [connections.b]
            adapter = "hubspot"
            [connections.b.oauth]
            client_id_env = "B_ID"
            client_secret_env = "B_SECRET"
            refresh_token_env = "B_REFRESH"
            token_store = "tokens.json"
            """
        ),
        encoding="utf-8",
    )
    script = textwrap.dedent(
        """
        import sys
        sys.modules["typer"] = None  # importing them now fails
        sys.modules["rich"] = None
        from msgbridge import Bridge
        from msgbridge.config import load_config
        config = load_config("msgbridge.toml")
        env = {"A_TOKEN": "t", "B_ID": "i", "B_SECRET": "s", "B_REFRESH": "r"}
        connections = config.build_all(environ=env)
        with Bridge(connections, retry=config.retry) as bridge:
            print(sorted(bridge.connections))
        print("typer" in sys.modules and sys.modules["typer"] is not None)
        """
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed script
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['a', 'b']", "False"]


def test_emulate_prints_a_matching_config_and_stops_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = tmp_path / "emu.toml"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "msgbridge.cli",
            "emulate",
            "--port",
            "0",
            "--write-config",
            str(written),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            banner.append(line)
            if line.startswith("Ctrl-C or SIGTERM stops") or not line:
                break
        printed = "".join(banner)
        start = printed.index("# msgbridge.toml for the emulator")
        block = printed[start : printed.index("# (written to")]
        assert block == written.read_text(encoding="utf-8")
        exports = dict(
            line.split("export ", 1)[1].strip().split("=", 1)
            for line in block.splitlines()
            if "export " in line
        )
        monkeypatch.chdir(tmp_path)
        cli = Cli({"MSGBRIDGE_CONFIG": str(written), **exports})
        for connection in ("highlevel", "leadway", "hoop", "hubspot"):
            result = cli("send", connection, f"{connection}-1", "read", "--json")
            assert result.exit_code == 0, (connection, result.stdout, result.stderr)
            assert json.loads(result.stdout)["outcome"] == "applied"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "emulator stopped (SIGTERM)" in stderr
    assert os.environ.get("EMULATOR_HIGHLEVEL_TOKEN") is None  # nothing leaked into ours
