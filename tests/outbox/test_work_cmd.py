"""``msgbridge outbox work``: a long-running worker process that stops cleanly on SIGTERM."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msgbridge import MessageStatus
from msgbridge.emulator import Emulator
from msgbridge.outbox import Outbox, OutboxWorker

from .conftest import hl_connection, sqlite_rows
from .test_cli import TOKEN, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGTERM")

HL_RANK = {"pending": 0, "delivered": 2, "read": 3, "failed": 2}


@pytest.fixture
def acme_config(tmp_path: Path, emu: Emulator) -> Path:
    path = tmp_path / "msgbridge.toml"
    path.write_text(
        f"""
[connections.highlevel]
adapter = "highlevel"
token_env = "ACME_TOKEN"
[connections.highlevel.settings]
base_url = "{emu.base_url("highlevel")}"
location_id = "demo-location"
version = "2021-04-15"
"""
    )
    return path


def start_work(db: Path, config: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "msgbridge.cli",
            "outbox",
            "work",
            "--db",
            str(db),
            "--config",
            str(config),
            "--json",
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ACME_TOKEN": TOKEN, "COLUMNS": "200"},
    )


@pytest.mark.parametrize(
    ("latency", "deadline", "concurrency"),
    [(0.02, "10", "4"), (1.0, "0.5", "2")],
    ids=["finishes-in-time", "deadline-gives-back"],
)
def test_sigterm_loses_nothing_and_holds_no_lease_past_its_deadline(
    emu: Emulator,
    tmp_path: Path,
    acme_config: Path,
    latency: float,
    deadline: str,
    concurrency: str,
) -> None:
    db = tmp_path / "work.db"
    ids = [f"w{i}" for i in range(150)]
    with Outbox(db) as box:
        box.enqueue_many([("highlevel", MessageStatus(i, "delivered")) for i in ids])
        box.enqueue("elsewhere", MessageStatus("x1", "read"))  # no connection serves it
    emu.faults.latency(latency, rate=1.0)
    proc = start_work(
        db,
        acme_config,
        "--status-interval",
        "0.3",
        "--shutdown-deadline",
        deadline,
        "--lease-seconds",
        "30",
        "--concurrency",
        concurrency,
        "--batch-size",
        "50",
    )
    try:
        deadline_at = time.monotonic() + 30
        while len(emu.messages("highlevel")) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline_at
            time.sleep(0.05)
        time.sleep(0.4)  # at least one status line
        proc.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < float(deadline) + 5.0 + 2.0  # deadline, in-flight requests, start-up slack
    assert "stopping: no new leases" in err
    assert "msgbridge outbox work: applied" in err  # a status line
    assert "elsewhere (1)" in err  # warned about rows nobody here serves
    summary = json.loads(out)
    assert summary["stopped_by"] == "SIGTERM"
    # No lease is left behind: connections and rows are free for the next worker now.
    assert sqlite_rows(db, "SELECT count(*) FROM msgbridge_leases WHERE owner IS NOT NULL") == [
        (0,)
    ]
    assert sqlite_rows(
        db, "SELECT count(*) FROM msgbridge_outbox WHERE lease_owner IS NOT NULL"
    ) == [(0,)]
    assert sqlite_rows(db, "SELECT count(*) FROM msgbridge_workers") == [(0,)]
    # Nothing lost: another worker picks up at once and finishes the rest.
    emu.faults.reset()
    with (
        Outbox(db) as box,
        OutboxWorker.create(
            box, [hl_connection(emu)], rate_limits=False, lease_seconds=30
        ) as worker,
    ):
        rest = worker.drain(until_empty=False)
        assert box.stats().dead == 0
    assert summary["work"]["applied"] + rest.applied + rest.skipped == len(ids)
    for message_id in ids:
        history = emu.message("highlevel", message_id).statuses
        assert history[-1] == "delivered"
        assert not any(HL_RANK[b] < HL_RANK[a] for a, b in itertools.pairwise(history))


def test_drain_fails_when_rows_of_unconfigured_connections_are_left(
    emu: Emulator, tmp_path: Path, acme_config: Path
) -> None:
    db = tmp_path / "d.db"
    with Outbox(db) as box:
        box.enqueue("highlevel", MessageStatus("d1", "read"))
        box.enqueue("elsewhere", MessageStatus("x1", "read"))
    result = run("drain", "--db", str(db), "--config", str(acme_config), ACME_TOKEN=TOKEN)
    assert result.exit_code == 1
    assert "1 pending row(s) belong to connections this config does not define" in result.stderr
    assert "elsewhere (1)" in result.stderr
    assert emu.message("highlevel", "d1").statuses == ["read"]
    # Asking for one connection explicitly leaves the others on purpose: no failure.
    result = run(
        "drain",
        "--db",
        str(db),
        "--config",
        str(acme_config),
        "--connection",
        "highlevel",
        ACME_TOKEN=TOKEN,
    )
    assert result.exit_code == 0, result.stderr
