"""``msgbridge push`` on long runs: progress, interrupts, resuming, fail-fast."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from msgbridge.cli import push_cmd
from msgbridge.emulator import Emulator

from .conftest import HL_TOKEN, Cli, write_config


def _status(connection: str, message_id: str, state: str) -> str:
    return json.dumps(
        {"connection": connection, "status": {"message_id": message_id, "state": state}}
    )


def _slow_config(config: Path, emu: Emulator, requests: int) -> Path:
    """A connection paced by the client at *requests* per second (the emulator is open)."""
    emu.configure("highlevel", unknown_messages="create", rate_limits_enabled=False)
    return write_config(
        config,
        emu,
        '[connections.slow]\nadapter = "highlevel"\ntoken_env = "ACME_TOKEN"\n'
        f"rate_limit = {{ requests = {requests}, per_seconds = 1 }}\n"
        f'[connections.slow.settings]\nbase_url = "{emu.base_url("highlevel")}"\n',
    )


def _input(path: Path, lines: int, bad_every: int = 0) -> list[int]:
    """*lines* updates for ``slow``; every *bad_every*-th is malformed. The bad numbers."""
    bad = []
    with path.open("w", encoding="utf-8") as handle:
        for n in range(1, lines + 1):
            if bad_every and n % bad_every == 0:
                handle.write(f"not json {n}\n")
                bad.append(n)
            else:
                handle.write(_status("slow", f"s-{n}", "delivered") + "\n")
    return bad


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("sender", ["aiohttp", "httpx"])
def test_sigterm_leaves_a_complete_rejects_file_and_a_resumable_partial_summary(
    emu: Emulator, config: Path, tmp_path: Path, sender: str
) -> None:
    _slow_config(config, emu, requests=20)
    source = tmp_path / "in.jsonl"
    bad = _input(source, 400, bad_every=7)
    env = {
        **os.environ,
        "MSGBRIDGE_CONFIG": str(config),
        "ACME_TOKEN": HL_TOKEN,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "COLUMNS": "100",
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "msgbridge.cli",
            "push",
            str(source),
            "--json",
            "--sender",
            sender,
            "--progress-every",
            "0.2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        # Wait until the push is well under way (its plain progress lines say so).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if "msgbridge: push:" in line and int(line.split()[2].split("/")[0]) >= 100:
                break
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    summary = json.loads(stdout)
    stopped = summary["stopped"]
    assert stopped["reason"] == "SIGTERM"
    after = stopped["after_line"]
    # Malformed lines are finished as soon as they are read (ahead of the sends), so
    # "after" is the contiguous prefix: fewer than the lines finished so far.
    assert 20 <= after < 400
    assert stopped["resume"] == f"--skip {after}"
    assert summary["ok"] is False
    assert summary["totals"].get("applied", 0) < 400 - len(bad)  # it really stopped early
    # Every malformed line up to the stop is in the rejects file, each record whole.
    rejects = tmp_path / "in.jsonl.rejects.jsonl"
    records = _records(rejects)
    assert all(r["kind"] == "malformed" for r in records)
    numbers = [r["line"] for r in records]
    assert [n for n in bad if n <= after] == [n for n in numbers if n <= after]
    assert summary["rejects"]["lines"] == len(records)
    assert summary["totals"]["malformed"] == len(records)
    # Continue where it stopped: in the end every good line applied, every bad one
    # rejected exactly once, and nothing sent before the stop was regressed or lost.
    cli = Cli({"MSGBRIDGE_CONFIG": str(config), "ACME_TOKEN": HL_TOKEN})
    emu.configure("highlevel", unknown_messages="create", rate_limits_enabled=False)
    slow_free = config.read_text().replace("requests = 20,", "requests = 100000,")
    config.write_text(slow_free)
    rest = cli.json(
        "push", str(source), "--skip", str(after), code=1, XDG_STATE_HOME=str(tmp_path / "state")
    )
    assert rest["stopped"] is None
    assert rest["lines"] == 400 - after
    assert sorted(r["line"] for r in _records(rejects)) == bad
    applied = {m.id for m in emu.messages("highlevel") if m.status == "delivered"}
    assert applied == {f"s-{n}" for n in range(1, 401) if n not in bad}


def test_plain_progress_lines_when_not_on_a_terminal(
    cli: Cli, emu: Emulator, config: Path, tmp_path: Path
) -> None:
    _slow_config(config, emu, requests=15)
    source = tmp_path / "in.jsonl"
    _input(source, 45)
    result = cli("push", str(source), "--progress-every", "0.3")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("msgbridge: push:")]
    assert len(lines) >= 2, result.stderr
    assert all("/45 lines (" in line and "lines/s" in line and "eta " in line for line in lines)
    # The run is limited by the client's pacing, and the user is told so.
    assert any("paced at the vendor budget: slow (15 per 1 s)" in line for line in lines)
    assert "pacing: msgbridge held slow (15 per 1 s" in result.stdout
    assert "applied" in lines[-1]


def test_no_progress_prints_nothing_on_stderr(
    cli: Cli, emu: Emulator, config: Path, tmp_path: Path
) -> None:
    _slow_config(config, emu, requests=15)
    source = tmp_path / "in.jsonl"
    _input(source, 30)
    result = cli("push", str(source), "--progress-every", "0.2", "--no-progress")
    assert result.exit_code == 0
    assert result.stderr == ""


@pytest.mark.parametrize("sender", ["httpx", "aiohttp"])
def test_a_dead_vendor_stops_the_push_after_consecutive_failures(
    cli: Cli, emu: Emulator, config: Path, tmp_path: Path, sender: str
) -> None:
    write_config(
        config,
        emu,
        '[connections.dead]\nadapter = "highlevel"\ntoken_env = "ACME_TOKEN"\n'
        '[connections.dead.settings]\nbase_url = "http://127.0.0.1:9"\n',
    )
    source = tmp_path / "in.jsonl"
    with source.open("w") as handle:
        for n in range(300):
            handle.write(_status("dead", f"d-{n}", "read") + "\n")
    result = cli(
        "push",
        str(source),
        "--max-consecutive-failures",
        "6",
        "--max-in-flight",
        "2",
        "--sender",
        sender,
    )
    assert result.exit_code == 1
    assert "msgbridge: error: push stopped: 6 updates in a row failed" in result.stderr
    assert "the vendor looks unreachable" in result.stderr
    records = _records(tmp_path / "in.jsonl.rejects.jsonl")
    assert 6 <= len(records) < 20  # not 300 lines each retried to exhaustion
    assert "stopped after line" in result.stdout
    assert "--skip" in result.stdout


def test_zero_disables_fail_fast(cli: Cli, emu: Emulator, config: Path, tmp_path: Path) -> None:
    write_config(
        config,
        emu,
        '[connections.dead]\nadapter = "highlevel"\ntoken_env = "ACME_TOKEN"\n'
        '[connections.dead.settings]\nbase_url = "http://127.0.0.1:9"\n',
    )
    source = tmp_path / "in.jsonl"
    source.write_text("".join(_status("dead", f"d-{n}", "read") + "\n" for n in range(8)))
    summary = cli.json("push", str(source), "--max-consecutive-failures", "0", code=1)
    assert summary["totals"] == {"failed": 8}
    assert summary["stopped"] is None


def test_resume_from_and_skip_are_exclusive(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("")
    result = cli("push", str(source), "--skip", "3", "--resume-from", "4")
    assert result.exit_code == 2
    assert "--skip N or --resume-from LINE, not both" in result.stderr


def test_resume_from_starts_at_that_line(
    cli: Cli, emu: Emulator, config: Path, tmp_path: Path
) -> None:
    _slow_config(config, emu, requests=1000)
    source = tmp_path / "in.jsonl"
    _input(source, 10)
    summary = cli.json("push", str(source), "--resume-from", "8")
    assert summary["lines"] == 3
    assert sorted(m.id for m in emu.messages("highlevel")) == ["s-10", "s-8", "s-9"]


def test_the_bar_fits_80_columns_with_counts_on_their_own_line(tmp_path: Path) -> None:
    tally = push_cmd._Tally()
    for outcome in (
        "applied",
        "skipped_stale",
        "skipped_duplicate",
        "skipped_superseded",
        "skipped_unsupported",
        "failed",
        "malformed",
    ):
        for _ in range(12345):
            tally.add("acme", outcome)
    sink = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    reporter = push_cmd._Reporter("bar", 1_000_000, 5.0, sink, tally)
    with reporter:
        reporter.done = 123_456
        reporter._refresh_bar()
        assert reporter._bar is not None
        out = Console(file=io.StringIO(), width=80, color_system=None)
        out.print(reporter._bar.get_renderable())
    text = out.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "123456/1000000" in lines[0]
    assert "eta" in lines[0]
    assert "applied 12345" in text
    assert "malformed 12345" in text
    assert "applied" not in lines[0]


def test_finished_tracks_the_contiguous_prefix() -> None:
    finished = push_cmd._Finished(10)
    for number in (12, 13, 11, 15):
        finished.add(number)
    assert finished.upto == 13
    finished.add(14)
    assert finished.upto == 15
