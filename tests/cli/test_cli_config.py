"""The config file: inline secrets, environment variables, unknown keys, OAuth, token store."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from msgbridge.adapter import Adapter, PreparedRequest
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.auth import BearerToken, HeaderToken, TokenSet
from msgbridge.cli.config import load_config, looks_secret
from msgbridge.cli.token_store import FileTokenStore
from msgbridge.errors import ConfigurationError
from msgbridge.registry import AdapterRegistry

from .conftest import Cli

INLINE = "sk-inline-value-must-never-be-printed"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "msgbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error_line(result_stderr: str) -> str:
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result_stderr  # one clear line, no traceback
    return lines[0]


@pytest.mark.parametrize(
    ("toml", "where", "hint"),
    [
        (
            f'[connections.a]\nadapter = "highlevel"\ntoken = "{INLINE}"\n',
            "connections.a.token",
            'token_env = "VARIABLE_NAME"',
        ),
        (
            f'[connections.a]\nadapter = "highlevel"\ntoken_env = "T"\n'
            f'[connections.a.settings]\napi_key = "{INLINE}"\n',
            "connections.a.settings.api_key",
            "*_env",
        ),
        (
            f'[connections.a]\nadapter = "hubspot"\n[connections.a.oauth]\n'
            f'client_id_env = "I"\nclient_secret = "{INLINE}"\n',
            "connections.a.oauth.client_secret",
            'client_secret_env = "VARIABLE_NAME"',
        ),
        (
            f'[connections.a]\nadapter = "highlevel"\ntoken_env = "T"\n'
            f'[connections.a.settings]\nnested = {{ deep = {{ refresh_token = "{INLINE}" }} }}\n',
            "connections.a.settings.nested.deep.refresh_token",
            "*_env",
        ),
        (f'password = "{INLINE}"\n', "password", "*_env"),
    ],
)
def test_inline_secret_is_rejected_naming_the_key_without_the_value(
    bare_cli: Cli, tmp_path: Path, toml: str, where: str, hint: str
) -> None:
    config = _write(tmp_path, toml)
    for args in (["config"], ["send", "a", "m1", "read"], ["push", "-"]):
        result = bare_cli(*args, "--config", str(config))
        assert result.exit_code == 3, (args, result.stdout, result.stderr)
        line = _error_line(result.stderr)
        assert f"{where} holds a secret inline" in line
        assert hint in line
        assert INLINE not in result.stdout + result.stderr


def test_missing_environment_variable_is_named(bare_cli: Cli, tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        '[connections.acme]\nadapter = "highlevel"\ntoken_env = "ACME_HL_TOKEN_MISSING"\n',
    )
    result = bare_cli("send", "acme", "m1", "delivered", "--config", str(config))
    assert result.exit_code == 3
    assert _error_line(result.stderr) == (
        "msgbridge: error: configuration: "
        f"{config}: connections.acme: environment variable ACME_HL_TOKEN_MISSING "
        "(token_env) is not set"
    )
    empty = bare_cli(
        "send", "acme", "m1", "delivered", "--config", str(config), ACME_HL_TOKEN_MISSING=" "
    )
    assert empty.exit_code == 3
    assert "ACME_HL_TOKEN_MISSING (token_env) is empty" in empty.stderr


def test_a_pasted_secret_in_token_env_is_never_echoed(bare_cli: Cli, tmp_path: Path) -> None:
    # Looks like a variable name, but not a conventional one: its name is not shown.
    pasted = "pitAbC123xyz987secretValue"
    config = _write(
        tmp_path, f'[connections.acme]\nadapter = "highlevel"\ntoken_env = "{pasted}"\n'
    )
    result = bare_cli("send", "acme", "m1", "read", "--config", str(config))
    assert result.exit_code == 3
    assert pasted not in result.stderr
    assert "is it a pasted secret?" in result.stderr
    # Not even a valid name (dashes): refused at load time, value not shown.
    config = _write(
        tmp_path, '[connections.acme]\nadapter = "highlevel"\ntoken_env = "pit-abc-123"\n'
    )
    result = bare_cli("config", "--config", str(config))
    assert result.exit_code == 3
    assert "pit-abc-123" not in result.stderr
    assert "must be the NAME of an environment variable" in result.stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[connections.a]\nadapter = "highlevel"\ntoken_env = "T"\ntypo = 1\n',
            "connections.a: unknown key(s) 'typo'; allowed: adapter, token_env, oauth, "
            "strict, settings, rate_limit",
        ),
        ('[connection.a]\nadapter = "highlevel"\n', "unknown key(s) 'connection'"),
        (
            '[connections.a]\nadapter = "highlevel"\n',
            "set exactly one of token_env (a static token) or [oauth]",
        ),
        (
            '[connections.a]\ntoken_env = "T"\n',
            "connections.a: adapter is required",
        ),
        (
            '[connections.a]\nadapter = "hubspot"\n[connections.a.oauth]\nclient_id_env = "I"\n'
            'client_secret_env = "S"\nrefresh_token_env = "R"\nscope = "x"\n',
            "connections.a.oauth: unknown key(s) 'scope'",
        ),
        ("[retry]\nmax_atempts = 3\n", "retry: unknown key(s) 'max_atempts'"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_unknown_keys_and_structure_errors(
    bare_cli: Cli, tmp_path: Path, toml: str, message: str
) -> None:
    config = _write(tmp_path, toml)
    result = bare_cli("config", "--config", str(config))
    assert result.exit_code == 3
    assert message in _error_line(result.stderr)


def test_unknown_setting_is_reported_by_the_adapter_naming_the_connection(
    bare_cli: Cli, tmp_path: Path
) -> None:
    config = _write(
        tmp_path,
        '[connections.a]\nadapter = "highlevel"\ntoken_env = "T"\n'
        '[connections.a.settings]\nlocaton_id = "x"\n',
    )
    result = bare_cli("send", "a", "m1", "read", "--config", str(config), T="tok")
    assert result.exit_code == 3
    line = _error_line(result.stderr)
    assert "connections.a: invalid settings for adapter 'highlevel'" in line
    assert "'locaton_id'" in line


def test_default_path_and_environment_variable(bare_cli: Cli, tmp_path: Path) -> None:
    result = bare_cli("config")
    assert result.exit_code == 3
    assert "config file 'msgbridge.toml' was not found (pass --config PATH or set" in (
        result.stderr
    )
    other = tmp_path / "elsewhere.toml"
    other.write_text('[connections.x]\nadapter = "hubspot"\ntoken_env = "X_TOKEN"\n')
    data = bare_cli.json("config", MSGBRIDGE_CONFIG=str(other), X_TOKEN="abc")
    assert data["connections"][0]["connection"] == "x"
    assert data["connections"][0]["ok"] is True
    assert data["connections"][0]["environment"] == {"X_TOKEN": True}


def test_config_command_lists_problems_and_exits_3(bare_cli: Cli, tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        '[connections.good]\nadapter = "highlevel"\ntoken_env = "GOOD"\n'
        '[connections.bad]\nadapter = "nosuchadapter"\ntoken_env = "GOOD"\n',
    )
    data = bare_cli.json("config", "--config", str(config), code=3, GOOD="tok")
    rows = {row["connection"]: row for row in data["connections"]}
    assert rows["good"]["ok"] is True
    assert rows["bad"]["ok"] is False
    assert "unknown adapter 'nosuchadapter'" in rows["bad"]["problem"]
    fmt = bare_cli("config", "--format")
    assert fmt.exit_code == 0
    assert "[connections.acme]" in fmt.stdout
    assert "token_env" in fmt.stdout


def test_oauth_picks_the_vendor_family(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            "\n".join(
                f'[connections.{name}]\nadapter = "{name}"\n[connections.{name}.oauth]\n'
                'client_id_env = "CID"\nclient_secret_env = "CS"\nrefresh_token_env = "RT"\n'
                f'token_store = "tokens/{name}.json"\n'
                for name in ("highlevel", "leadway", "hubspot")
            ),
        )
    )
    registry = AdapterRegistry.from_entry_points()
    env = {"CID": "client", "CS": "secret", "RT": "refresh"}
    built = {name: c.build(registry, env) for name, c in config.connections.items()}
    assert type(built["highlevel"].credentials) is HighLevelOAuth
    assert type(built["leadway"].credentials) is HighLevelOAuth
    assert type(built["hubspot"].credentials) is HubSpotOAuth
    # The bootstrap refresh token went into the store file (relative to the config).
    store = tmp_path / "tokens" / "hubspot.json"
    assert json.loads(store.read_text())["refresh_token"] == "refresh"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600


def test_oauth_for_an_adapter_without_a_flow_is_an_error(tmp_path: Path) -> None:
    from msgbridge.adapters.hubspot import HubSpotAdapter

    class Other(HubSpotAdapter):
        """A vendor with no OAuth flow: the base adapter's default."""

        id = "other"
        credentials_from_oauth = Adapter.credentials_from_oauth

    registry = AdapterRegistry()
    registry.register(Other())
    config = load_config(
        _write(
            tmp_path,
            '[connections.x]\nadapter = "other"\n[connections.x.oauth]\n'
            'client_id_env = "CID"\nclient_secret_env = "CS"\nrefresh_token_env = "RT"\n',
        )
    )
    with pytest.raises(ConfigurationError, match="'other' has no OAuth flow; configure token_env"):
        config.connections["x"].build(registry, {"CID": "a", "CS": "b", "RT": "c"})


def test_token_store_wins_over_the_environment_once_it_holds_tokens(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t.json")
    assert store.load() is None
    store.save(TokenSet("access-1", "rotated-refresh", 123.0, {"locationId": "l1"}))
    loaded = store.load()
    assert loaded is not None
    assert (loaded.access_token, loaded.refresh_token, loaded.expires_at) == (
        "access-1",
        "rotated-refresh",
        123.0,
    )
    config = load_config(
        _write(
            tmp_path,
            '[connections.hl]\nadapter = "highlevel"\n[connections.hl.oauth]\n'
            'client_id_env = "CID"\nclient_secret_env = "CS"\ntoken_store = "t.json"\n',
        )
    )
    # No refresh_token_env needed: the store holds the rotated token.
    connection = config.connections["hl"].build(
        AdapterRegistry.from_entry_points(), {"CID": "a", "CS": "b"}
    )
    assert isinstance(connection.credentials, HighLevelOAuth)
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="is not a msgbridge token file"):
        config.connections["hl"].build(AdapterRegistry.from_entry_points(), {"CID": "a", "CS": "b"})


def test_static_token_becomes_a_bearer_token(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, '[connections.a]\nadapter = "hoop"\ntoken_env = "HOOP_TOKEN"\n')
    )
    connection = config.connections["a"].build(
        AdapterRegistry.from_entry_points(), {"HOOP_TOKEN": "tok"}
    )
    assert connection.credentials == BearerToken("tok")
    assert "tok" not in repr(connection)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("token", True),
        ("access_token", True),
        ("Refresh-Token", True),
        ("client_secret", True),
        ("api_key", True),
        ("password", True),
        ("webhook_secret", True),
        ("token_env", False),
        ("client_secret_env", False),
        ("token_url", False),
        ("token_store", False),
        ("location_id", False),
    ],
)
def test_looks_secret(key: str, secret: bool) -> None:
    assert looks_secret(key) is secret


_ANY_REQUEST = PreparedRequest("GET", "https://example.com/", {})


def test_adapter_may_turn_a_token_into_its_own_credential(tmp_path: Path) -> None:

    from msgbridge.adapters.hubspot import HubSpotAdapter

    class Custom(HubSpotAdapter):
        id = "custom"

        def credentials_from_token(self, token: str) -> HeaderToken:
            return HeaderToken("X-Custom-Token", token)

    registry = AdapterRegistry()
    registry.register(Custom())
    config = load_config(
        _write(tmp_path, '[connections.c]\nadapter = "custom"\ntoken_env = "CUSTOM_TOKEN"\n')
    )
    credentials = config.connections["c"].build(registry, {"CUSTOM_TOKEN": "t0k"}).credentials
    assert isinstance(credentials, HeaderToken)
    assert credentials.header == "X-Custom-Token"
    assert credentials.headers(_ANY_REQUEST) == {"X-Custom-Token": "t0k"}
