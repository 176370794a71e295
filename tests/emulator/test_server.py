"""Starting and stopping: in-process context manager, and the blocking ``serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from msgbridge.emulator import Emulator


def test_context_manager_binds_loopback_and_frees_the_port():
    with Emulator() as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        assert emu.base_url("hubspot") == emu.url + "/hubspot"
        assert httpx.get(emu.url + "/_emulator/state").status_code == 200
        port = emu.port if emu.port else int(emu.url.rsplit(":", 1)[1])
    assert not emu.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_emulator/state")
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.url


def test_two_emulators_run_side_by_side():
    with Emulator() as one, Emulator() as two:
        assert one.url != two.url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_python_m_serve_prints_tokens_and_serves(tmp_path):
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable, "-m", "msgbridge.emulator", "--port", str(port),
            "--unknown", "create", "--token", "hubspot:cli-token:42",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        banner = []
        assert process.stdout is not None
        while True:
            line = process.stdout.readline()
            assert line, "server exited: " + "".join(banner)
            banner.append(line)
            if line.startswith("unknown message ids"):
                break
        text = "".join(banner)
        assert "demo-highlevel-token" in text
        assert "cli-token" in text
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.patch(
                    base + "/hubspot/conversations/custom-channels/2026-03/5/messages/x",
                    json={"statusType": "SENT"},
                    headers={"Authorization": "Bearer cli-token"},
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 200
        assert response.json()["channelId"] == "5"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == 0


@pytest.mark.anyio
async def test_app_works_without_a_server_through_asgi_transport():
    emu = Emulator()
    emu.add_token("hubspot", "t", account="9")
    emu.seed_message("hubspot", "a/b", account="9", channel_id=3)
    transport = httpx.ASGITransport(app=emu.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.patch(
            "/hubspot/conversations/v3/custom-channels/3/messages/a%2Fb?x=1",
            json={"statusType": "READ"},
            headers={"Authorization": "Bearer t"},
        )
    assert response.status_code == 200, response.text
    assert emu.message("hubspot", "a/b").statuses == ["READ"]
    assert emu.requests[0].query == {"x": "1"}
