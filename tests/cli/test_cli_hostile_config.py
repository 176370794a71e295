"""Issue 10 in ``msgbridge.toml``: the file goes through the same constructors as code,
so ``inf``/``nan``, a password in a URL and a newline in a header value are refused
with one clear line (exit 3) before any request, and no secret is printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgbridge.cli.config import load_config
from msgbridge.errors import ConfigurationError
from msgbridge.registry import AdapterRegistry

from .conftest import Cli

PASSWORD = "toml-url-Pa55word"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "msgbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr  # one clear line, no traceback
    return lines[0]


HL = '[connections.a]\nadapter = "highlevel"\ntoken_env = "T"\n'
HS = '[connections.a]\nadapter = "hubspot"\ntoken_env = "T"\n'


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        pytest.param(
            HL + "rate_limit = { requests = 10, per_seconds = inf }\n",
            "rate_limit per_seconds must be a finite number",
            id="rate-limit-inf",
        ),
        pytest.param(
            HL + "rate_limit = { requests = 10, per_seconds = nan }\n",
            "rate_limit per_seconds must be a finite number",
            id="rate-limit-nan",
        ),
        pytest.param(
            HL + "rate_limit = { requests = 10, per_seconds = 1e9 }\n",
            "at most 86,400",
            id="rate-limit-huge-window",
        ),
        pytest.param(
            HL + '[connections.a.settings]\nversion = "2021-04-15\\n"\n',
            "version must be printable ASCII; character 10 is U+000A",
            id="newline-version",
        ),
        pytest.param(
            HL + '[connections.a.settings]\nversion = "2021-04-15\\r\\nX-Evil: 1"\n',
            "U+000D",
            id="crlf-version",
        ),
        pytest.param(
            HS + '[connections.a.settings]\napi_version = "2026-03\\n"\n',
            "api_version must be a date version",
            id="newline-api-version",
        ),
        pytest.param(
            HS + '[connections.a.settings]\napi_version = "\\uFF12\\uFF10\\uFF12\\uFF16-03"\n',
            "api_version must be a date version",
            id="fullwidth-api-version",
        ),
        pytest.param(
            HL + "[connections.a.settings]\nprovider_retry_after = inf\n",
            "provider_retry_after must be a finite number",
            id="provider-wait-inf",
        ),
        pytest.param(
            HL + '[connections.a.settings]\nbase_url = "https://api.example.com\\n"\n',
            "base_url must be printable ASCII",
            id="newline-base-url",
        ),
    ],
)
def test_hostile_connection_values_are_refused(
    bare_cli: Cli, tmp_path: Path, toml: str, expected: str
) -> None:
    config = _write(tmp_path, toml)
    result = bare_cli("send", "a", "m1", "read", "--config", str(config), T="tok")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    line = _error_line(result.stderr)
    assert "connections.a" in line
    assert expected in line
    checked = bare_cli.json("config", "--config", str(config), code=3, T="tok")
    [row] = checked["connections"]
    assert row["ok"] is False
    assert expected in row["problem"]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[retry]\nmax_backoff = nan\n", "max_backoff must be a finite number"),
        ("[retry]\ndeadline = inf\n", "deadline must be a finite number"),
        ("[retry]\ninitial_backoff = -inf\n", "initial_backoff must be a finite number"),
        ("[retry]\njitter = nan\n", "jitter must be a finite number"),
        ("[retry]\nmax_attempts = 1e3\n", "expected an integer"),
    ],
)
def test_hostile_retry_numbers_are_refused(
    bare_cli: Cli, tmp_path: Path, toml: str, expected: str
) -> None:
    """``max_backoff = nan`` raised a raw ValueError from time.sleep on main."""
    config = _write(tmp_path, toml + HL)
    result = bare_cli("config", "--config", str(config), T="tok")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    line = _error_line(result.stderr)
    assert "retry" in line
    assert expected in line


def test_a_password_in_a_base_url_is_refused_and_never_printed(
    bare_cli: Cli, tmp_path: Path
) -> None:
    config = _write(
        tmp_path,
        HL + f'[connections.a.settings]\nbase_url = "https://bot:{PASSWORD}@api.example.com"\n',
    )
    for args in (["send", "a", "m1", "read"], ["config"], ["config", "--json"]):
        result = bare_cli(*args, "--config", str(config), "-v", T="tok")
        assert result.exit_code == 3, (args, result.stdout, result.stderr)
        assert PASSWORD not in result.stdout + result.stderr
        assert "user name or password" in result.stdout + result.stderr
        assert "https://***@api.example.com" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "token_url",
    [
        "http://auth.example.com/oauth/token",
        f"https://id:{PASSWORD}@auth.example.com/oauth/token",
        "https://auth.example.com/oauth/token?x=1",
    ],
)
def test_oauth_token_url_is_checked(tmp_path: Path, token_url: str) -> None:
    """Built, not sent: the refresh would POST the client secret to this URL."""
    config = load_config(
        _write(
            tmp_path,
            '[connections.a]\nadapter = "hubspot"\n[connections.a.oauth]\n'
            'client_id_env = "I"\nclient_secret_env = "S"\nrefresh_token_env = "R"\n'
            f'token_url = "{token_url}"\ntoken_store = "tokens.json"\n',
        )
    )
    registry = AdapterRegistry.from_entry_points()
    with pytest.raises(ConfigurationError) as info:
        config.connection("a").build(registry, {"I": "i", "S": "s", "R": "r"})
    assert PASSWORD not in str(info.value)
    assert info.value.key == "token_url"
