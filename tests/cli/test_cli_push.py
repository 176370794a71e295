"""``msgbridge push``: JSON lines through ``update_many``, rejects file, summary, exit code."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from msgbridge.cli import push_cmd
from msgbridge.emulator import Emulator

from .conftest import HL_ACCOUNT, HS_CHANNEL, HS_PORTAL, Cli, write_config


def _line(connection: str, **body: Any) -> str:
    return json.dumps({"connection": connection, **body})


def _status(connection: str, message_id: str, state: str, **extra: Any) -> str:
    return _line(connection, status={"message_id": message_id, "state": state, **extra})


MIXED = [
    _status("acme", "m-1", "sent"),  # 1
    _status("acme", "m-1", "delivered"),  # 2
    "not json",  # 3
    "",  # 4 (blank: ignored)
    _status("nope", "m-1", "read"),  # 5
    _status("acme", "m-2", "delivred"),  # 6
    _status("acme", "m-2", "read", extra=1),  # 7
    _status("hs", "h-1", "read"),  # 8
    _line("hs", conversation={"conversation_id": "c-9", "starred": True}),  # 9: fails
    _status("acme", "no-such", "read"),  # 10: fails (404)
    "[1, 2]",  # 11
    _status("acme", "m-1", "pending"),  # 12: stale
    _line("acme", conversation={"conversation_id": "c-1", "unread_count": 0}),  # 13
    '{"connection": "acme", "connection": "hs", "status": {}}',  # 14
    json.dumps({"status": {"message_id": "m-1", "state": "read"}}),  # 15
    _line("acme", status={"message_id": "m-3", "state": "failed", "error": {"message": "x"}}),
]


def _seed(emu: Emulator) -> None:
    for message_id in ("m-1", "m-2", "m-3"):
        emu.seed_message("highlevel", message_id, account=HL_ACCOUNT)
    emu.seed_message("hubspot", "h-1", account=HS_PORTAL, channel_id=HS_CHANNEL)
    emu.seed_conversation("highlevel", "c-1", account=HL_ACCOUNT, unread_count=3)


def _records(path: Path) -> list[dict[str, Any]]:
    return sorted(
        (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()),
        key=lambda r: r["line"],
    )


def _expected_rejects(config: Path, trace_id: str) -> list[dict[str, Any]]:
    return [
        {
            "line": 3,
            "kind": "malformed",
            "reason": "not valid JSON: Expecting value (column 1)",
            "text": "not json",
        },
        {
            "line": 5,
            "kind": "malformed",
            "reason": f"unknown connection 'nope'; {config} defines: acme, hs",
            "text": MIXED[4],
        },
        {
            "line": 6,
            "kind": "malformed",
            "reason": "status: expected one of pending, sent, delivered, read, failed, "
            "got 'delivred' @ $.state",
            "connection": "acme",
            "text": MIXED[5],
        },
        {
            "line": 7,
            "kind": "malformed",
            "reason": "status: unknown key(s) 'extra'; allowed: message_id, state, error, "
            "occurred_at, conversation_id, channel_id, email_message_id, recipients @ $",
            "connection": "acme",
            "text": MIXED[6],
        },
        {
            "line": 9,
            "kind": "failed",
            "reason": "adapter 'hubspot' cannot update conversations "
            "(connection='hs', adapter='hubspot', id='c-9')",
            "connection": "hs",
            "outcome": "failed",
            "error": "UnsupportedOperation",
            "text": MIXED[8],
        },
        {
            "line": 10,
            "kind": "failed",
            "reason": "HighLevel does not know this id: Message not found "
            "(connection='acme', adapter='highlevel', id='no-such', http_status=404, "
            f"trace_id={trace_id!r})",
            "connection": "acme",
            "outcome": "failed",
            "error": "NotFound",
            "http_status": 404,
            "attempts": 1,
            "text": MIXED[9],
        },
        {
            "line": 11,
            "kind": "malformed",
            "reason": "expected a JSON object, got an array",
            "text": "[1, 2]",
        },
        {
            "line": 14,
            "kind": "malformed",
            "reason": "duplicate key 'connection'",
            "text": MIXED[13],
        },
        {
            "line": 15,
            "kind": "malformed",
            "reason": "connection is required (a connection name from the config file)",
            "text": MIXED[14],
        },
    ]


@pytest.mark.parametrize("sender", ["auto", "httpx", "aiohttp"])
def test_mixed_file_rejects_exactly_the_lines_that_did_not_apply(
    cli: Cli, emu: Emulator, config: Path, sender: str
) -> None:
    """Same outcome on the async aiohttp path (the default) and the threaded httpx one."""
    _seed(emu)
    source = config.parent / "updates.jsonl"
    source.write_text("\n".join(MIXED) + "\n", encoding="utf-8")
    # relative: the cwd is the config's directory
    result = cli("push", "updates.jsonl", "--sender", sender)
    assert result.exit_code == 1, result.stderr
    [not_found] = emu.find_requests(status=404)
    rejects = config.parent / "updates.jsonl.rejects.jsonl"
    assert _records(rejects) == _expected_rejects(config, not_found.id)
    # The good lines were applied, the stale one was not.
    assert emu.message("highlevel", "m-1").status == "delivered"
    assert emu.message("hubspot", "h-1").status == "READ"
    assert emu.message("highlevel", "m-3").status == "failed"
    assert emu.conversation("highlevel", "c-1").unread_count == 0
    assert "16 line(s) read (1 blank)" in result.stdout
    assert "9 line(s) did not apply; see updates.jsonl.rejects.jsonl" in result.stdout
    assert "push summary" in result.stdout


def test_json_summary_counts_by_connection_and_outcome(
    cli: Cli, emu: Emulator, config: Path
) -> None:
    _seed(emu)
    source = config.parent / "updates.jsonl"
    source.write_text("\n".join(MIXED) + "\n", encoding="utf-8")
    summary = cli.json("push", "updates.jsonl", code=1)
    assert summary["lines"] == 16
    assert summary["blank_lines"] == 1
    assert summary["ok"] is False
    assert summary["rejects"] == {"path": "updates.jsonl.rejects.jsonl", "lines": 9}
    totals = summary["totals"]
    assert totals["failed"] == 2
    assert totals["malformed"] == 7
    # m-1's "sent" and "pending" never reach the vendor (superseded or stale).
    skipped = sum(v for k, v in totals.items() if k.startswith("skipped_"))
    assert (totals["applied"], skipped) == (4, 2)
    by = summary["by_connection"]
    assert by["(none)"] == {"malformed": 5}  # lines 3, 5, 11, 14, 15 name no known connection
    assert by["hs"] == {"applied": 1, "failed": 1}
    assert by["acme"]["malformed"] == 2
    assert by["acme"]["failed"] == 1
    assert by["acme"]["applied"] == 3


def test_all_good_input_exits_0_and_leaves_an_empty_rejects_file(
    cli: Cli, emu: Emulator, config: Path
) -> None:
    _seed(emu)
    source = config.parent / "good.jsonl"
    source.write_text(
        "\n".join(
            [
                _status("acme", "m-1", "delivered"),
                _status("acme", "m-2", "read"),
                _status("hs", "h-1", "pending"),  # HubSpot cannot: skipped, not a failure
            ]
        ),
        encoding="utf-8",
    )
    stale = config.parent / "good.jsonl.rejects.jsonl"
    stale.write_text("left over from an earlier run\n")
    result = cli("push", str(source))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert stale.read_text() == ""
    assert emu.message("highlevel", "m-2").status == "read"


def test_stdin_input_and_default_rejects_path(cli: Cli, emu: Emulator, config: Path) -> None:
    _seed(emu)
    data = "\n".join([_status("acme", "m-1", "read"), "{oops", _status("acme", "m-9", "read")])
    result = cli("push", "-", input=data)
    assert result.exit_code == 1
    records = _records(config.parent / "rejects.jsonl")
    assert [(r["line"], r["kind"]) for r in records] == [(2, "malformed"), (3, "failed")]
    assert records[0]["text"] == "{oops"
    assert emu.message("highlevel", "m-1").status == "read"


def test_include_skipped_and_explicit_rejects_path(cli: Cli, emu: Emulator, config: Path) -> None:
    _seed(emu)
    source = config.parent / "in.jsonl"
    source.write_text(
        "\n".join([_status("acme", "m-1", "read"), _status("hs", "h-1", "pending")]) + "\n"
    )
    out = config.parent / "out" / "rej.jsonl"
    out.parent.mkdir()
    result = cli("push", str(source), "--rejects", str(out), "--rejects-include-skipped")
    assert result.exit_code == 0
    [record] = _records(out)
    assert record["line"] == 2
    assert record["kind"] == "skipped"
    assert record["outcome"] == "skipped_unsupported"
    assert record["reason"] == "hubspot has no value for 'pending'"


def test_unusable_connection_rejects_its_lines_and_others_still_go(
    emu: Emulator, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(emu)
    write_config(
        config,
        emu,
        '[connections.ghost]\nadapter = "highlevel"\ntoken_env = "GHOST_TOKEN"\n',
    )
    monkeypatch.chdir(config.parent)
    monkeypatch.delenv("GHOST_TOKEN", raising=False)
    cli = Cli(
        {"MSGBRIDGE_CONFIG": str(config), "ACME_TOKEN": "hl-secret-token-1a2b3c", "HS_TOKEN": "x"}
    )
    source = config.parent / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                _status("ghost", "g-1", "read"),
                _status("acme", "m-1", "read"),
                _status("ghost", "g-2", "read"),
            ]
        )
    )
    result = cli("push", str(source))
    assert result.exit_code == 1
    records = _records(config.parent / "in.jsonl.rejects.jsonl")
    assert [r["line"] for r in records] == [1, 3]
    assert records[0]["reason"] == (
        f"connection 'ghost' is not usable: {config}: connections.ghost: environment variable "
        "GHOST_TOKEN (token_env) is not set"
    )
    assert emu.message("highlevel", "m-1").status == "read"


def test_over_long_and_non_utf8_lines_are_rejected_without_losing_them(
    cli: Cli, emu: Emulator, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(emu)
    monkeypatch.setattr(push_cmd, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(push_cmd, "TRUNCATED_TEXT_BYTES", 20)
    long_line = _status("acme", "m-1", "read", recipients=["x" * 200])
    bad_bytes = b'{"connection": "acme", \xff\xfe}'
    source = config.parent / "in.jsonl"
    source.write_bytes(
        long_line.encode() + b"\n" + bad_bytes + b"\r\n" + _status("acme", "m-2", "read").encode()
    )
    result = cli("push", str(source))
    assert result.exit_code == 1
    long_record, bad_record = _records(config.parent / "in.jsonl.rejects.jsonl")
    assert long_record == {
        "line": 1,
        "kind": "malformed",
        "reason": "line is longer than 100 bytes",
        "truncated": True,
        "text": long_line[:20],
    }
    assert bad_record["line"] == 2
    assert bad_record["reason"] == "line is not valid UTF-8"
    assert base64.b64decode(bad_record["raw_base64"]) == bad_bytes
    assert emu.message("highlevel", "m-2").status == "read"


def test_missing_input_file_and_rejects_over_input(cli: Cli, config: Path) -> None:
    missing = cli("push", "does-not-exist.jsonl")
    assert missing.exit_code == 4
    assert "does-not-exist.jsonl: No such file or directory" in missing.stderr
    source = config.parent / "in.jsonl"
    source.write_text("")
    same = cli("push", str(source), "--rejects", str(source))
    assert same.exit_code == 2
    assert "--rejects must not be the input file" in same.stderr


def test_memory_stays_bounded_on_a_long_input(
    cli: Cli, emu: Emulator, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.configure("highlevel", unknown_messages="create", rate_limits_enabled=False)
    # The client paces at the vendor's budget (100 per 10 s) unless the config says more.
    write_config(
        config,
        emu,
        '[connections.fast]\nadapter = "highlevel"\ntoken_env = "ACME_TOKEN"\n'
        "rate_limit = { requests = 100000, per_seconds = 1 }\n"
        f'[connections.fast.settings]\nbase_url = "{emu.base_url("highlevel")}"\n',
    )
    lines = 2200
    source = config.parent / "big.jsonl"
    with source.open("w") as handle:
        for n in range(lines):
            handle.write(_status("fast", f"big-{n}", "delivered") + "\n")
    peak = 0
    original = push_cmd._Run.record

    def record(self: push_cmd._Run, receipt: Any) -> None:
        nonlocal peak
        peak = max(peak, len(self.in_flight))
        original(self, receipt)

    monkeypatch.setattr(push_cmd._Run, "record", record)
    summary = cli.json("push", str(source), "--max-in-flight", "16", "--per-connection", "16")
    assert summary["totals"] == {"applied": lines}
    # Only the bridge's read-ahead is held, never the whole input.
    assert 500 < peak <= 1024 + 1, peak
    assert len(emu.messages("highlevel")) == lines
