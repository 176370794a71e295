"""The CLI's persistent guard: separate runs never regress a message at the vendor."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from msgbridge.cli._common import default_state_path
from msgbridge.emulator import Emulator

from .conftest import HL_ACCOUNT, Cli


def _history(emu: Emulator, message_id: str) -> list[str]:
    return [c.fields["status"] for c in emu.message("highlevel", message_id).history]


def test_two_send_runs_do_not_regress_the_vendor(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    emu.seed_message("highlevel", "m-1", account=HL_ACCOUNT)
    first = cli.json("send", "acme", "m-1", "delivered")
    assert first["outcome"] == "applied"
    second = cli.json("send", "acme", "m-1", "sent")  # a new process on the command line
    assert second["outcome"] == "skipped_stale"
    assert "delivered" in second["detail"]
    assert emu.message("highlevel", "m-1").status == "delivered"
    assert _history(emu, "m-1") == ["delivered"]
    # The state went to the documented per-user location (XDG_STATE_HOME in the tests).
    assert (tmp_path / "state" / "msgbridge" / "guard.sqlite3").is_file()


def test_push_runs_share_the_guard_with_send(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    emu.seed_message("highlevel", "m-2", account=HL_ACCOUNT)
    assert cli.json("send", "acme", "m-2", "read")["outcome"] == "applied"
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        json.dumps({"connection": "acme", "status": {"message_id": "m-2", "state": "delivered"}})
        + "\n",
        encoding="utf-8",
    )
    summary = cli.json("push", str(lines))
    assert summary["totals"] == {"skipped_stale": 1}
    assert _history(emu, "m-2") == ["read"]


def test_state_option_chooses_the_file(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    emu.seed_message("highlevel", "m-3", account=HL_ACCOUNT)
    state = tmp_path / "elsewhere" / "g.sqlite3"
    state.parent.mkdir()
    cli.json("send", "acme", "m-3", "delivered", "--state", str(state))
    rows = sqlite3.connect(state).execute("SELECT message_id, state FROM msgbridge_applied")
    assert list(rows) == [("m-3", "delivered")]
    # Another file knows nothing of it: the guard really is that file.
    other = tmp_path / "other.sqlite3"
    assert cli.json("send", "acme", "m-3", "sent", "--state", str(other))["outcome"] == "applied"


def test_no_guard_opts_out(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    emu.seed_message("highlevel", "m-4", account=HL_ACCOUNT)
    cli.json("send", "acme", "m-4", "delivered", "--no-guard")
    assert cli.json("send", "acme", "m-4", "sent", "--no-guard")["outcome"] == "applied"
    assert not (tmp_path / "state").exists()


def test_unusable_state_file_is_a_clear_error(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_text("hello, I am not SQLite\n" * 10, encoding="utf-8")
    result = cli("send", "acme", "m-5", "delivered", "--state", str(bad))
    assert result.exit_code == 4
    assert "cannot be used" in result.stderr
    assert "--no-guard" in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"XDG_STATE_HOME": "/srv/state", "HOME": "/home/u"}, "/srv/state/msgbridge"),
        ({"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, None),
        ({}, None),
    ],
)
def test_default_state_path(env: dict[str, str], expected: str | None) -> None:
    path = default_state_path(env)
    assert path.name == "guard.sqlite3"
    if expected is not None:
        assert str(path.parent) == expected
    else:
        assert path.parent == Path.home() / ".local" / "state" / "msgbridge"


def test_a_configuration_error_creates_no_state(bare_cli: Cli, tmp_path: Path) -> None:
    result = bare_cli("send", "acme", "m-1", "read")
    assert result.exit_code == 3
    assert not (tmp_path / "state").exists()
