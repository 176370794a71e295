"""``msgbridge send`` and ``msgbridge conversation`` against the in-process emulator."""

from __future__ import annotations

import json
import re
from pathlib import Path

from msgbridge.emulator import Emulator

from .conftest import HL_ACCOUNT, HS_CHANNEL, HS_PORTAL, Cli


def test_send_applies_and_prints_the_receipt(cli: Cli, emu: Emulator) -> None:
    emu.seed_message("highlevel", "m-1", account=HL_ACCOUNT)
    result = cli("send", "acme", "m-1", "delivered")
    assert result.exit_code == 0, result.stderr
    assert re.search(r"outcome\s+applied", result.stdout)
    assert re.search(r"vendor value\s+delivered", result.stdout)
    assert re.search(r"HTTP status\s+200", result.stdout)
    assert "messageId=m-1" in result.stdout
    assert emu.message("highlevel", "m-1").status == "delivered"


def test_send_json_receipt(cli: Cli, emu: Emulator) -> None:
    emu.seed_message("highlevel", "m-2", account=HL_ACCOUNT)
    data = cli.json(
        "send",
        "acme",
        "m-2",
        "failed",
        "--error-message",
        "carrier rejected",
        "--error-code",
        "30007",
        "--error-kind",
        "carrier",
        "--email-message-id",
        "e-1",
        "--recipient",
        "a@example.com",
        "--recipient",
        "b@example.com",
    )
    assert data["outcome"] == "applied"
    assert data["ok"] is True
    assert data["adapter"] == "highlevel"
    assert data["state"] == "failed"
    assert data["vendor_value"] == "failed"
    assert data["attempts"] == 1
    assert data["http_status"] == 200
    assert data["vendor_ids"]["messageId"] == "m-2"
    assert data["trace_id"]
    change = emu.message("highlevel", "m-2").history[-1]
    assert change.fields == {
        "status": "failed",
        "error": {"code": "30007", "type": "carrier", "message": "carrier rejected"},
        "emailMessageId": "e-1",
        "recipients": ["a@example.com", "b@example.com"],
    }


def test_hubspot_send_and_unsupported_state_is_a_skip(cli: Cli, emu: Emulator) -> None:
    emu.seed_message("hubspot", "h-1", account=HS_PORTAL, channel_id=HS_CHANNEL)
    data = cli.json("send", "hs", "h-1", "delivered")
    assert (data["outcome"], data["vendor_value"]) == ("applied", "SENT")
    assert emu.message("hubspot", "h-1").status == "SENT"
    skipped = cli.json("send", "hs", "h-1", "pending")
    assert skipped["outcome"] == "skipped_unsupported"
    assert skipped["attempts"] == 0
    assert len(emu.message("hubspot", "h-1").history) == 1


def test_failed_send_prints_a_failed_receipt_and_exits_1(cli: Cli, emu: Emulator) -> None:
    data = cli.json("send", "acme", "no-such-message", "read", code=1)
    assert data["outcome"] == "failed"
    assert data["ok"] is False
    assert data["error"] == "NotFound"
    assert data["http_status"] == 404
    assert data["attempts"] == 1  # a 404 is not retried
    human = cli("send", "acme", "no-such-message", "read")
    assert human.exit_code == 1
    assert re.search(r"outcome\s+failed", human.stdout)
    assert "NotFound" in human.stdout


def test_retries_transient_errors_and_reports_attempts(cli: Cli, emu: Emulator) -> None:
    emu.seed_message("highlevel", "m-3", account=HL_ACCOUNT)
    emu.faults.fail_next(503, times=2, route="update_message_status")
    data = cli.json("send", "acme", "m-3", "read")
    assert (data["outcome"], data["attempts"]) == ("applied", 3)
    emu.seed_message("highlevel", "m-4", account=HL_ACCOUNT)  # m-3 is read: a duplicate now
    emu.faults.fail_next(503, times=3, route="update_message_status")  # config: 3 attempts
    failed = cli.json("send", "acme", "m-4", "read", code=1)
    assert (failed["outcome"], failed["attempts"], failed["http_status"]) == ("failed", 3, 503)


def test_usage_and_configuration_errors_are_one_line(cli: Cli) -> None:
    bad_state = cli("send", "acme", "m-1", "delivred")
    assert bad_state.exit_code == 2
    assert "Traceback" not in bad_state.stderr
    error_without_failed = cli("send", "acme", "m-1", "read", "--error-message", "x")
    assert error_without_failed.exit_code == 2
    assert error_without_failed.stderr.strip() == (
        "msgbridge: error: invalid update: error is only allowed with state 'failed', not 'read'"
    )
    code_without_message = cli("send", "acme", "m-1", "failed", "--error-code", "1")
    assert code_without_message.exit_code == 2
    assert "--error-code and --error-kind need --error-message" in code_without_message.stderr
    unknown = cli("send", "nope", "m-1", "read")
    assert unknown.exit_code == 3
    assert unknown.stderr.strip().startswith("msgbridge: error: configuration: unknown connection")
    assert "defines: acme, hs" in unknown.stderr


def test_verbose_shows_the_traceback(cli: Cli) -> None:
    result = cli("--verbose", "send", "nope", "m-1", "read")
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    again = cli("send", "nope", "m-1", "read", "-v")
    assert "Traceback (most recent call last)" in again.stderr
    quiet = cli("send", "nope", "m-1", "read")
    assert "Traceback" not in quiet.stderr


def test_conversation_update(cli: Cli, emu: Emulator) -> None:
    emu.seed_conversation("highlevel", "c-1", account=HL_ACCOUNT, unread_count=4)
    data = cli.json("conversation", "acme", "c-1", "--unread-count", "0", "--starred")
    assert data["outcome"] == "applied"
    assert data["state"] is None
    state = emu.conversation("highlevel", "c-1")
    assert (state.unread_count, state.starred) == (0, True)
    cli.json("conversation", "acme", "c-1", "--not-starred")
    assert emu.conversation("highlevel", "c-1").starred is False
    assert emu.conversation("highlevel", "c-1").unread_count == 0


def test_conversation_errors(cli: Cli) -> None:
    nothing = cli("conversation", "acme", "c-1")
    assert nothing.exit_code == 2
    assert "must set unread_count or starred" in nothing.stderr
    hubspot = cli.json("conversation", "hs", "c-1", "--starred", code=1)
    assert hubspot["outcome"] == "failed"
    assert hubspot["error"] == "UnsupportedOperation"
    negative = cli("conversation", "acme", "c-1", "--unread-count", "-1")
    assert negative.exit_code == 2


def _oauth_config(config_dir: Path, emu: Emulator, store: str | None) -> Path:
    path = config_dir / "oauth.toml"
    store_line = f'token_store = "{store}"\n' if store else ""
    path.write_text(
        '[connections.hlo]\nadapter = "highlevel"\n[connections.hlo.oauth]\n'
        'client_id_env = "HLO_ID"\nclient_secret_env = "HLO_SECRET"\n'
        'refresh_token_env = "HLO_REFRESH"\n'
        f'token_url = "{emu.base_url("highlevel")}/oauth/token"\n{store_line}'
        f'[connections.hlo.settings]\nbase_url = "{emu.base_url("highlevel")}"\n',
        encoding="utf-8",
    )
    return path


OAUTH_ENV = {"HLO_ID": "cli-client", "HLO_SECRET": "cli-client-secret", "HLO_REFRESH": "rt-first"}


def test_oauth_rotated_refresh_tokens_survive_between_runs(
    cli: Cli, emu: Emulator, config: Path
) -> None:
    """HighLevel refresh tokens are single-use: the token store keeps the rotated one."""
    emu.add_oauth_client(
        "highlevel", "cli-client", "cli-client-secret", "rt-first", account=HL_ACCOUNT
    )
    emu.configure(
        "highlevel", access_token_ttl=30.0
    )  # inside the refresh margin: every run refreshes
    for n in range(3):
        emu.seed_message("highlevel", f"o-{n}", account=HL_ACCOUNT)
    path = _oauth_config(config.parent, emu, "state/hl-tokens.json")
    for n in range(3):
        result = cli("send", "hlo", f"o-{n}", "read", "--config", str(path), **OAUTH_ENV)
        assert result.exit_code == 0, result.stdout + result.stderr
        assert emu.message("highlevel", f"o-{n}").status == "read"
        for secret in OAUTH_ENV.values():
            if secret != "cli-client":
                assert secret not in result.stdout + result.stderr
    stored = json.loads((config.parent / "state" / "hl-tokens.json").read_text())
    assert stored["refresh_token"] not in ("rt-first", "")
    assert len(emu.find_requests(vendor="highlevel", route="oauth_token", status=200)) == 3


def test_oauth_without_a_token_store_warns_and_loses_the_rotated_token(
    cli: Cli, emu: Emulator, config: Path
) -> None:
    emu.add_oauth_client(
        "highlevel", "cli-client", "cli-client-secret", "rt-first", account=HL_ACCOUNT
    )
    emu.seed_message("highlevel", "o-1", account=HL_ACCOUNT)
    path = _oauth_config(config.parent, emu, None)
    first = cli("send", "hlo", "o-1", "read", "--config", str(path), **OAUTH_ENV)
    assert first.exit_code == 0
    assert "OAuth without oauth.token_store" in first.stderr
    emu.seed_message("highlevel", "o-2", account=HL_ACCOUNT)  # o-1 again: a duplicate now
    second = cli("send", "hlo", "o-2", "read", "--config", str(path), "--json", **OAUTH_ENV)
    assert second.exit_code == 1  # the single-use refresh token was spent by the first run
    assert json.loads(second.stdout)["error"] == "AuthenticationError"
