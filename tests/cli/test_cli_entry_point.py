"""The real entry points in a subprocess: ``python -m msgbridge.cli`` and ``msgbridge emulate``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from msgbridge.cli import main


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "msgbridge.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_version_help_and_usage_errors(tmp_path: Path) -> None:
    version = _run("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, "msgbridge 0.1.0")
    helped = _run("--help", cwd=tmp_path)
    assert helped.returncode == 0
    commands = ("adapters", "config", "send", "conversation", "push", "emulate", "demo", "outbox")
    for command in commands:
        assert command in helped.stdout
    assert "Exit codes:" in helped.stdout
    outbox = _run("outbox", "--help", cwd=tmp_path)
    assert outbox.returncode == 0
    for command in ("status", "drain", "dead", "requeue"):
        assert command in outbox.stdout
    missing = _run("send", cwd=tmp_path)
    assert missing.returncode == 2
    unknown = _run("frobnicate", cwd=tmp_path)
    assert unknown.returncode == 2


def test_errors_are_one_line_with_their_exit_code(tmp_path: Path) -> None:
    result = _run("send", "acme", "m1", "read", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "msgbridge: error: configuration: config file 'msgbridge.toml' was not found "
        "(pass --config PATH or set MSGBRIDGE_CONFIG)"
    ]
    verbose = _run("-v", "send", "acme", "m1", "read", cwd=tmp_path)
    assert verbose.returncode == 3
    assert "Traceback (most recent call last)" in verbose.stderr


def test_main_returns_the_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MSGBRIDGE_CONFIG", raising=False)
    assert main(["--version"]) == 0
    assert main(["config"]) == 3
    assert main(["send"]) == 2


def test_console_script_when_installed(tmp_path: Path) -> None:
    script = shutil.which("msgbridge", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the msgbridge console script is not installed in this environment")
    result = subprocess.run(  # noqa: S603
        [script, "adapters", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert '"id": "highlevel"' in result.stdout


def test_emulate_serves_in_the_foreground_and_prints_urls_and_tokens(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "msgbridge.cli",
            "emulate",
            "--port",
            "0",
            "--token",
            "highlevel:cli-e2e-token:loc-e2e",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("unknown message ids:"):
                break
        banner = "\n".join(lines)
        match = re.search(r"highlevel\s+(http://127\.0\.0\.1:\d+/highlevel)", banner)
        assert match, banner
        assert re.search(r"hubspot\s+http://127\.0\.0\.1:\d+/hubspot", banner)
        assert "cli-e2e-token  (account loc-e2e; Authorization: Bearer <token>)" in banner
        assert "demo-hubspot-token" in banner
        response = httpx.put(
            f"{match.group(1)}/conversations/messages/m-1/status",
            headers={"Authorization": "Bearer cli-e2e-token", "Version": "2021-04-15"},
            json={"status": "delivered"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "delivered"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_emulate_rejects_a_bad_token_spec(tmp_path: Path) -> None:
    result = _run("emulate", "--port", "0", "--token", "nonsense", cwd=tmp_path)
    assert result.returncode == 2
    assert "must look like VENDOR:TOKEN" in result.stderr
