"""Duplicate deliveries reach the handler once per key across a kill -9 (real processes)."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .signing import HL_SMS_EXAMPLE, Ed25519Signer

SCRIPT = Path(__file__).with_name("crash_intake.py")
KEY = "highlevel:message:GKJxs4P5L8dWc5CFUITM"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


class Harness:
    def __init__(self, tmp: Path) -> None:
        signer = Ed25519Signer()
        self.public_key = signer.public_b64
        self.db = tmp / "inbound.db"
        self.log = tmp / "handled.log"
        self.log.touch()
        self.request = tmp / "request.json"
        self.request.write_text(json.dumps({
            "headers": {"X-GHL-Signature": signer.sign(HL_SMS_EXAMPLE)},
            "body": base64.b64encode(HL_SMS_EXAMPLE).decode(),
        }))  # fmt: skip

    def args(self, mode: str, offset: float = 0) -> list[str]:
        return [sys.executable, str(SCRIPT), mode, str(self.db), str(self.request),
                self.public_key, str(self.log), str(offset)]  # fmt: skip

    def kill_after(self, mode: str, marker: str) -> None:
        with subprocess.Popen(self.args(mode), stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603
            try:
                assert proc.stdout is not None
                line = proc.stdout.readline().strip()
                assert line == marker, line
                proc.send_signal(signal.SIGKILL)
            finally:
                proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    def deliver(self, offset: float = 0) -> dict[str, object]:
        done = subprocess.run(  # noqa: S603
            self.args("deliver", offset), capture_output=True, text=True, timeout=60, check=True
        )
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def handled(self) -> list[str]:
        return self.log.read_text().splitlines()

    def state(self) -> str:
        with sqlite3.connect(self.db) as conn:
            return str(conn.execute("SELECT state FROM msgbridge_inbound").fetchone()[0])


def test_killed_between_store_and_handler_then_redelivered(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.kill_after("store-and-hang", "STORED")
    assert h.state() == "pending"  # acknowledged-able: on disk before any 2xx
    assert h.handled() == []
    # HighLevel (or the operator) delivers the same webhook again, to a new process.
    assert h.deliver() == {"status": 200, "duplicate": True, "swept": 0}
    assert h.handled() == [f"{KEY} 1"]
    assert h.state() == "handled"
    # And again: stored once, handled once.
    assert h.deliver() == {"status": 200, "duplicate": True, "swept": 0}
    assert h.handled() == [f"{KEY} 1"]


def test_killed_inside_the_handler_is_handed_over_again_after_the_lease(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.kill_after("hang-in-handler", "IN_HANDLER")
    assert h.state() == "pending"
    # A retry while the dead process's lease still runs: stored once, not handed over twice.
    assert h.deliver() == {"status": 200, "duplicate": True, "swept": 0}
    assert h.handled() == []
    # Once the 30 s lease has expired (clock moved forward), the next delivery hands it over.
    assert h.deliver(offset=31) == {"status": 200, "duplicate": True, "swept": 0}
    assert h.handled() == [f"{KEY} 2"]  # at least once, same key, attempt counted
    assert h.state() == "handled"
