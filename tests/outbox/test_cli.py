"""``msgbridge outbox …`` through typer, mounted the way the CLI's app mounts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from msgbridge import MessageStatus
from msgbridge.cli.outbox_cmd import outbox_app
from msgbridge.emulator import Emulator
from msgbridge.outbox import Outbox

root = typer.Typer(add_completion=False, rich_markup_mode=None)


@root.callback()
def _root() -> None:
    """The stand-in for the msgbridge app."""


root.add_typer(outbox_app, name="outbox")

TOKEN = "demo-highlevel-token"


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(
        root, ["outbox", *args], env={"COLUMNS": "200", **env}, catch_exceptions=False
    )


def run_json(*args: str, code: int = 0, **env: str) -> Any:
    result = run(*args, "--json", **env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.fixture
def config(tmp_path: Path, emu: Emulator) -> Path:
    path = tmp_path / "msgbridge.toml"
    path.write_text(
        f"""
[connections.acme]
adapter = "highlevel"
token_env = "ACME_TOKEN"
[connections.acme.settings]
base_url = "{emu.base_url("highlevel")}"
location_id = "demo-location"
version = "2021-04-15"

[connections.broken]
adapter = "highlevel"
token_env = "MISSING_TOKEN_VARIABLE"
"""
    )
    return path


@pytest.fixture
def filled(db_path: Path) -> Path:
    with Outbox(db_path) as outbox:
        outbox.enqueue("acme", MessageStatus("m1", "delivered"))
        outbox.enqueue("acme", MessageStatus("m2", "read"))
        outbox.enqueue("other", MessageStatus("m3", "sent"))
    return db_path


def test_status_table_and_json(filled: Path) -> None:
    result = run("status", "--db", str(filled))
    assert result.exit_code == 0, result.stderr
    assert "acme" in result.stdout
    assert "delivered" in result.stdout
    assert "total" in result.stdout
    assert "oldest pending update" in result.stdout
    data = run_json("status", "--db", str(filled))
    assert data["pending"] == 3
    assert data["dead"] == 0
    assert data["by_connection"]["acme"]["ready"] == 2
    assert {(r["connection"], r["state"]) for r in data["rows"]} == {
        ("acme", "delivered"),
        ("acme", "read"),
        ("other", "sent"),
    }


def test_status_from_the_environment_variable(filled: Path) -> None:
    assert run_json("status", MSGBRIDGE_OUTBOX_DB=str(filled))["pending"] == 3


def test_the_outbox_must_be_named_once(tmp_path: Path) -> None:
    result = run("status")
    assert result.exit_code == 2
    assert "exactly one of --db PATH" in result.stderr
    result = run("status", "--db", str(tmp_path / "a.db"), "--dsn", "host=/x dbname=y")
    assert result.exit_code == 2


def test_storage_problems_are_exit_code_4(tmp_path: Path) -> None:
    missing = run("status", "--db", str(tmp_path / "nope.db"))
    assert missing.exit_code == 4
    assert "no outbox database" in missing.stderr
    assert not (tmp_path / "nope.db").exists()  # inspecting never creates a file
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 50)
    result = run("dead", "--db", str(junk))
    assert result.exit_code == 4
    assert "StorageCorrupt" in result.stderr


def test_drain_dead_requeue_round_trip(
    filled: Path, config: Path, emu: Emulator, tmp_path: Path
) -> None:
    emu.configure("highlevel", unknown_messages="reject")
    emu.seed_message("highlevel", "m2", account="demo-location")
    env = {"ACME_TOKEN": TOKEN}
    result = run("drain", "--db", str(filled), "--config", str(config), **env)
    assert result.exit_code == 1, result.stderr  # m1 is unknown to the vendor: dead letter
    assert "skipping connection 'broken'" in result.stderr
    assert "MISSING_TOKEN_VARIABLE" in result.stderr
    assert "left in the outbox" in result.stdout  # "other" has no connection here
    assert emu.message("highlevel", "m2").statuses == ["read"]

    letters = run_json("dead", "--db", str(filled))["dead_letters"]
    assert [(d["subject_id"], d["error_type"], d["http_status"]) for d in letters] == [
        ("m1", "NotFound", 404)
    ]
    assert letters[0]["trace_id"]
    table = run("dead", "--db", str(filled))
    assert "NotFound" in table.stdout
    assert letters[0]["trace_id"] in table.stdout
    one = run("dead", "--db", str(filled), "--id", str(letters[0]["id"]))
    assert "Message not found" in one.stdout
    assert run("dead", "--db", str(filled), "--id", "999").exit_code == 2

    assert run("requeue", "--db", str(filled)).exit_code == 2
    emu.seed_message("highlevel", "m1", account="demo-location")
    requeued = run_json("requeue", str(letters[0]["id"]), "--db", str(filled))["requeued"]
    assert [(r["subject_id"], r["outcome"]) for r in requeued] == [("m1", "enqueued")]
    data = run_json(
        "drain", "--db", str(filled), "--config", str(config), "--connection", "acme", **env
    )
    assert data["drain"]["applied"] == 1
    assert data["dead"] == 0
    assert data["by_connection"] == {
        "other": {
            "ready": 1,
            "scheduled": 0,
            "leased": 0,
            "retrying": 0,
            "pending": 1,
            "dead": 0,
        }
    }
    assert emu.message("highlevel", "m1").statuses == ["delivered"]
    assert run("requeue", "--all", "--db", str(filled)).stdout.strip() == "nothing to requeue"


def test_drain_a_named_connection_that_is_unusable(filled: Path, config: Path) -> None:
    result = run("drain", "--db", str(filled), "--config", str(config), "--connection", "broken")
    assert result.exit_code == 3
    assert "MISSING_TOKEN_VARIABLE" in result.stderr


def test_status_over_postgres(pg_dsn: str) -> None:
    with Outbox(pg_dsn) as outbox:
        outbox.enqueue("acme", MessageStatus("m1", "read"))
    data = run_json("status", MSGBRIDGE_OUTBOX_DSN=pg_dsn)
    assert data["pending"] == 1
    assert "password" not in data["outbox"]
