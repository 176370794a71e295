"""Fixtures for the command-line tests: the real typer app, an emulator, a config file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from msgbridge.cli import app
from msgbridge.emulator import Emulator, EmulatorConfig

#: Tokens the tests register with the emulator; they must never appear in any output.
HL_TOKEN = "hl-secret-token-1a2b3c"
HS_TOKEN = "hs-secret-token-4d5e6f"
HL_ACCOUNT = "loc-cli-1"
HS_PORTAL = "4242"
HS_CHANNEL = 77
SECRETS = (HL_TOKEN, HS_TOKEN)


class Cli:
    """Runs ``msgbridge ARGS`` in-process through the real typer application."""

    def __init__(self, env: dict[str, str]) -> None:
        self.runner = CliRunner()
        self.env = {"COLUMNS": "200", **env}

    def __call__(self, *args: str, input: str | bytes | None = None, **env: str) -> Result:
        result = self.runner.invoke(
            app, list(args), input=input, env={**self.env, **env}, catch_exceptions=False
        )
        for secret in SECRETS:
            assert secret not in result.stdout
            assert secret not in result.stderr
        return result

    def json(self, *args: str, code: int = 0, **env: str) -> Any:
        result = self(*args, "--json", **env)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The persistent guard's per-user state file: one per test, never the real home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("MSGBRIDGE_STATE", raising=False)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures the msgbridge/httpx loggers; undo it for the other suites."""
    saved = {
        name: (logger.level, logger.propagate, list(logger.handlers))
        for name in ("msgbridge", "httpx")
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (level, propagate, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


@pytest.fixture(scope="session")
def _emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(unknown_messages="reject", record_limit=100_000)) as emu:
        yield emu


@pytest.fixture
def emu(_emulator: Emulator) -> Emulator:
    """The session's emulator, reset, with the tests' tokens and a few messages."""
    _emulator.reset()
    _emulator.add_token("highlevel", HL_TOKEN, account=HL_ACCOUNT)
    _emulator.add_token("hubspot", HS_TOKEN, account=HS_PORTAL)
    return _emulator


def write_config(path: Path, emu: Emulator, extra: str = "") -> Path:
    path.write_text(
        f"""
[retry]
max_attempts = 3
initial_backoff = 0.01
max_backoff = 0.05

[connections.acme]
adapter = "highlevel"
token_env = "ACME_TOKEN"
[connections.acme.settings]
base_url = "{emu.base_url("highlevel")}"
location_id = "{HL_ACCOUNT}"

[connections.hs]
adapter = "hubspot"
token_env = "HS_TOKEN"
[connections.hs.settings]
base_url = "{emu.base_url("hubspot")}"
channel_id = {HS_CHANNEL}
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(tmp_path: Path, emu: Emulator) -> Path:
    return write_config(tmp_path / "msgbridge.toml", emu)


@pytest.fixture
def cli(config: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI with the config in MSGBRIDGE_CONFIG and the tokens in the environment."""
    monkeypatch.chdir(config.parent)
    return Cli({"MSGBRIDGE_CONFIG": str(config), "ACME_TOKEN": HL_TOKEN, "HS_TOKEN": HS_TOKEN})


@pytest.fixture
def bare_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI in an empty directory, with no config and no tokens."""
    monkeypatch.chdir(tmp_path)
    for name in ("MSGBRIDGE_CONFIG", "ACME_TOKEN", "HS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return Cli({})
