"""``msgbridge.toml``: named connections, for the command line and for any program.

Needs only msgbridge's core dependencies (TOML is read with the standard library's
``tomllib``; ``tomli`` on Python 3.10), so a service can share the CLI's file::

    from msgbridge import Bridge
    from msgbridge.config import load_config

    config = load_config("msgbridge.toml")
    bridge = Bridge(config.build_all(), retry=config.retry)

Where the CLI looks: ``--config PATH``, else the environment variable
``MSGBRIDGE_CONFIG``, else ``./msgbridge.toml``. ``msgbridge config init`` writes a
commented starter file and ``msgbridge config --format`` prints the full reference.

Format::

    [retry]                                 # optional: msgbridge.RetryPolicy fields
    max_attempts = 5
    initial_backoff = 0.5
    deadline = 60.0

    [connections.acme]                      # "acme" is the name used on the command line
    adapter = "highlevel"                   # an installed adapter (see `msgbridge adapters`)
    token_env = "ACME_HL_TOKEN"             # static bearer token, read from this variable
    strict = false                          # optional: unsupported states become errors
    rate_limit = { requests = 100, per_seconds = 10.0 }   # optional budget override
    [connections.acme.settings]             # the adapter's own settings (never secrets)
    location_id = "loc-1"

    [connections.hs]
    adapter = "hubspot"
    [connections.hs.oauth]                  # OAuth refresh-token flow instead of token_env
    client_id_env = "HS_CLIENT_ID"
    client_secret_env = "HS_CLIENT_SECRET"
    refresh_token_env = "HS_REFRESH"
    # token_url = "https://…"               # optional: the vendor's default otherwise
    token_store = "tokens/hs.json"          # where rotated tokens are kept (see below)
    [connections.hs.settings]
    channel_id = 123

Rules:

* Secrets are only ever *referenced*, by the name of an environment variable
  (``token_env``, ``oauth.*_env``). A key that looks like an inline secret (``token``,
  ``access_token``, ``refresh_token``, ``client_secret``, ``api_key``, ``password``,
  anything ending in ``_token``/``_secret``/``_password``/``_api_key``), anywhere in the
  file, settings included, rejects the whole file; its value is never printed.
* Every connection has exactly one of ``token_env`` or ``[oauth]``. A token is sent as
  what the adapter's ``credentials_from_token`` builds (``Authorization: Bearer`` by
  default). OAuth
  works for the HighLevel family (highlevel, leadway, hoop and any variant of highlevel)
  and HubSpot.
* OAuth refresh tokens may be single-use (HighLevel rotates them on every refresh), so
  give ``token_store``: a JSON file (relative to the config file's directory, created
  with mode 0600) where the rotated tokens are saved before use. Once it holds tokens it
  wins over ``refresh_token_env``, which is then only needed to bootstrap; delete the
  file after re-authorising. Without a store a rotated token is lost when the command
  exits (a warning says so).
* Unknown keys are errors naming them; settings are checked by the adapter itself.
* Environment variables are read when a connection is first used, so a command that uses
  one connection does not need the others' variables. A missing or empty variable is an
  error naming the variable (never a value).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from msgbridge.adapter import Adapter, resolve_base_url
from msgbridge.auth import Credential
from msgbridge.connection import Connection
from msgbridge.errors import ConfigurationError, InvalidStatus, MessagingError
from msgbridge.model import check_identifier
from msgbridge.registry import AdapterRegistry
from msgbridge.retry import RetryPolicy
from msgbridge.strict import make_strict_converter, structure_strictly

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "Config",
    "ConnectionConfig",
    "OAuthConfig",
    "build_credentials",
    "load_config",
    "looks_secret",
    "parse_config",
    "read_secret",
    "shown_env_name",
]

CONFIG_ENV = "MSGBRIDGE_CONFIG"
DEFAULT_CONFIG = "msgbridge.toml"

_TOP_KEYS = ("connections", "retry")
_CONNECTION_KEYS = ("adapter", "token_env", "oauth", "strict", "settings", "rate_limit")
_OAUTH_REQUIRED = ("client_id_env", "client_secret_env")
_OAUTH_KEYS = (*_OAUTH_REQUIRED, "refresh_token_env", "token_url", "token_store")
_RATE_KEYS = ("requests", "per_seconds")

_SECRET_NAMES = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "api_key",
        "apikey",
        "password",
        "passwd",
        "secret",
        "private_key",
        "bearer",
        "authorization",
    }
)
_SECRET_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_apikey", "_private_key")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Names we are willing to print: conventional variable names, not pasted secrets.
_PRINTABLE_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def shown_env_name(name: str) -> str:
    """*name* if it looks like a variable name, else a placeholder (it may be a secret)."""
    return name if _PRINTABLE_ENV_NAME.match(name) else "<name hidden: not VARIABLE_NAME-like>"


def looks_secret(key: str) -> bool:
    """Whether a config key would hold a secret inline (``*_env`` keys never do)."""
    name = key.strip().lower().replace("-", "_")
    if name.endswith("_env"):
        return False
    return name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES)


def _dotted(parts: tuple[str, ...]) -> str:
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else repr(p) for p in parts)


def _secret_hint(parts: tuple[str, ...]) -> str:
    key = parts[-1]
    if len(parts) == 3 and parts[0] == "connections":
        return 'reference an environment variable instead: token_env = "VARIABLE_NAME"'
    if len(parts) == 4 and parts[0] == "connections" and parts[2] == "oauth":
        return f'reference an environment variable instead: {key}_env = "VARIABLE_NAME"'
    return (
        "secrets may only come from environment variables: use token_env or the "
        "[connections.NAME.oauth] *_env keys"
    )


def _reject_inline_secrets(node: object, parts: tuple[str, ...], origin: str) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = (*parts, str(key))
            if looks_secret(str(key)):
                raise ConfigurationError(
                    f"{origin}: {_dotted(here)} holds a secret inline, which is not allowed "
                    f"(the value is not shown); {_secret_hint(here)}",
                    key=str(key),
                )
            _reject_inline_secrets(value, here, origin)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _reject_inline_secrets(item, (*parts[:-1], f"{parts[-1]}[{index}]"), origin)


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ConfigurationError(
            f"{where}: unknown key(s) {names}; allowed: {', '.join(allowed)}", key=unknown[0]
        )


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where} must be a table, got {_toml_type(value)}")
    return value


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def _env_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise ConfigurationError(
            f"{where} must be the NAME of an environment variable (letters, digits and "
            "underscores, not starting with a digit), not the secret itself; the value is "
            "not shown",
            key=where.rsplit(".", 1)[-1],
        )
    return value


@attrs.frozen
class OAuthConfig:
    """``[connections.NAME.oauth]``: where the OAuth secrets are (variable names)."""

    client_id_env: str
    client_secret_env: str
    #: Bootstraps the token store (or is the only source without one).
    refresh_token_env: str | None = None
    token_url: str | None = None
    #: File keeping rotated tokens (absolute, resolved against the config's directory).
    token_store: Path | None = None


@attrs.frozen
class ConnectionConfig:
    """One ``[connections.NAME]`` table, checked but with no secret resolved yet."""

    name: str
    adapter: str
    origin: str
    token_env: str | None = None
    oauth: OAuthConfig | None = None
    strict: bool = False
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    rate_limit: tuple[int, float] | None = None

    @property
    def where(self) -> str:
        return f"{self.origin}: connections.{_dotted((self.name,))}"

    def build(
        self, registry: AdapterRegistry, environ: Mapping[str, str] | None = None
    ) -> Connection:
        """The :class:`Connection`, with its secrets read from the environment now.

        The adapter and its settings are checked too, so every problem names this
        connection. Raises :class:`ConfigurationError`; never shows a secret.
        """
        env = os.environ if environ is None else environ
        try:
            entry = registry.entry(self.adapter)
            credentials = build_credentials(self, entry.adapter, env)
            connection = Connection(
                self.name,
                adapter=self.adapter,
                credentials=credentials,
                settings=self.settings,
                strict=self.strict,
                rate_limit=self.rate_limit,
            )
            settings = entry.adapter.parse_settings(connection.settings)
            resolve_base_url(entry.adapter, settings)
        except MessagingError as exc:
            raise ConfigurationError(
                f"{self.where}: {exc.message}",
                key=getattr(exc, "key", None),
                connection=self.name,
            ) from None
        return connection


def read_secret(env: Mapping[str, str], variable: str, key: str) -> str:
    """The value of environment variable *variable* (named by config key *key*).

    Missing or empty is a :class:`ConfigurationError` naming the variable, never a value.
    """
    value = env.get(variable)
    shown = (
        f"environment variable {variable}"
        if _PRINTABLE_ENV_NAME.match(variable)
        else f"the environment variable named by {key} (name not shown: it does not "
        "look like a variable name; is it a pasted secret?)"
    )
    if value is None:
        raise ConfigurationError(f"{shown} ({key}) is not set", key=key)
    if not value.strip():
        raise ConfigurationError(f"{shown} ({key}) is empty", key=key)
    return value.strip()


# -- credentials ---------------------------------------------------------------------------
# Kept apart on purpose: how a connection's credentials are built from its config is
# about to become an adapter hook; this one function is what changes then.


def build_credentials(
    config: ConnectionConfig, adapter: Adapter[Any], env: Mapping[str, str]
) -> Credential:
    """The credentials of one connection, with its secrets read from *env* now.

    The adapter builds them (``credentials_from_token`` / ``credentials_from_oauth``);
    this function only reads the secrets and the token store the config names.
    """
    if config.token_env is not None:
        token = read_secret(env, config.token_env, "token_env")
        return adapter.credentials_from_token(token)
    assert config.oauth is not None
    oauth = config.oauth
    # Imports no typer: msgbridge.cli's package loads the app only when typer is installed.
    from msgbridge.cli.token_store import FileTokenStore

    store = FileTokenStore(oauth.token_store) if oauth.token_store is not None else None
    refresh_token: str | None = None
    if store is None or store.load() is None:
        if oauth.refresh_token_env is None:
            raise ConfigurationError(
                f"the token store {str(oauth.token_store)!r} holds no tokens yet; set "
                "oauth.refresh_token_env to bootstrap it",
                key="refresh_token_env",
            )
        refresh_token = read_secret(env, oauth.refresh_token_env, "oauth.refresh_token_env")
    if store is None:
        sys.stderr.write(
            f"msgbridge: warning: {config.where}: OAuth without oauth.token_store; a "
            "refresh token rotated by the vendor is lost when this command exits\n"
        )
    return adapter.credentials_from_oauth(
        client_id=read_secret(env, oauth.client_id_env, "oauth.client_id_env"),
        client_secret=read_secret(env, oauth.client_secret_env, "oauth.client_secret_env"),
        refresh_token=refresh_token,
        token_url=oauth.token_url,
        store=store,
    )


@attrs.frozen
class Config:
    """A checked ``msgbridge.toml``."""

    path: Path
    connections: Mapping[str, ConnectionConfig]
    retry: RetryPolicy | None = None

    def connection(self, name: str) -> ConnectionConfig:
        try:
            return self.connections[name]
        except KeyError:
            raise ConfigurationError(self.unknown_connection(name), connection=name) from None

    def unknown_connection(self, name: str) -> str:
        known = ", ".join(sorted(self.connections)[:20]) or "none"
        return f"unknown connection {name!r}; {self.path} defines: {known}"

    def build_all(
        self, registry: AdapterRegistry | None = None, environ: Mapping[str, str] | None = None
    ) -> list[Connection]:
        """Every connection, built (secrets read now); the first problem is raised."""
        registry = registry if registry is not None else AdapterRegistry.from_entry_points()
        return [c.build(registry, environ) for _, c in sorted(self.connections.items())]


def _rate_limit(value: object, where: str) -> tuple[int, float]:
    table = _table(value, where)
    _check_keys(table, _RATE_KEYS, where)
    requests = table.get("requests")
    per = table.get("per_seconds")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ConfigurationError(f"{where}.requests must be a positive integer", key="requests")
    if isinstance(per, bool) or not isinstance(per, (int, float)) or per <= 0:
        raise ConfigurationError(
            f"{where}.per_seconds must be a positive number", key="per_seconds"
        )
    return requests, float(per)


def _connection(name: str, raw: object, origin: str, base_dir: Path) -> ConnectionConfig:
    where = f"{origin}: connections.{_dotted((name,))}"
    try:
        check_identifier("connection name", name)
    except InvalidStatus as exc:
        raise ConfigurationError(f"{where}: {exc.message}", key="name") from None
    table = _table(raw, where)
    _check_keys(table, _CONNECTION_KEYS, where)
    adapter = table.get("adapter")
    if not isinstance(adapter, str) or not adapter.strip():
        raise ConfigurationError(
            f"{where}: adapter is required (an adapter id such as 'highlevel'; "
            "see `msgbridge adapters`)",
            key="adapter",
        )
    has_token, has_oauth = "token_env" in table, "oauth" in table
    if has_token == has_oauth:
        raise ConfigurationError(
            f"{where}: set exactly one of token_env (a static token) or [oauth] "
            "(an OAuth refresh token)",
            key="token_env",
        )
    token_env = _env_name(table["token_env"], f"{where}.token_env") if has_token else None
    oauth = None
    if has_oauth:
        owhere = f"{where}.oauth"
        otable = _table(table["oauth"], owhere)
        _check_keys(otable, _OAUTH_KEYS, owhere)
        missing = [k for k in _OAUTH_REQUIRED if k not in otable]
        if missing:
            raise ConfigurationError(f"{owhere}: missing {', '.join(missing)}", key=missing[0])
        token_url = otable.get("token_url")
        if token_url is not None and not isinstance(token_url, str):
            raise ConfigurationError(f"{owhere}.token_url must be a string", key="token_url")
        store = otable.get("token_store")
        if store is not None and (not isinstance(store, str) or not store.strip()):
            raise ConfigurationError(
                f"{owhere}.token_store must be a file path (a string)", key="token_store"
            )
        if "refresh_token_env" not in otable and store is None:
            raise ConfigurationError(
                f"{owhere}: missing refresh_token_env (or a token_store that holds tokens)",
                key="refresh_token_env",
            )
        oauth = OAuthConfig(
            client_id_env=_env_name(otable["client_id_env"], f"{owhere}.client_id_env"),
            client_secret_env=_env_name(otable["client_secret_env"], f"{owhere}.client_secret_env"),
            refresh_token_env=(
                _env_name(otable["refresh_token_env"], f"{owhere}.refresh_token_env")
                if "refresh_token_env" in otable
                else None
            ),
            token_url=token_url,
            token_store=(base_dir / Path(store).expanduser()) if store is not None else None,
        )
    strict = table.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigurationError(f"{where}.strict must be true or false", key="strict")
    settings = _table(table.get("settings", {}), f"{where}.settings")
    rate_limit = (
        _rate_limit(table["rate_limit"], f"{where}.rate_limit") if "rate_limit" in table else None
    )
    return ConnectionConfig(
        name=name,
        adapter=adapter.strip(),
        origin=origin,
        token_env=token_env,
        oauth=oauth,
        strict=strict,
        settings=dict(settings),
        rate_limit=rate_limit,
    )


def _retry(raw: object, origin: str) -> RetryPolicy:
    where = f"{origin}: retry"
    table = _table(raw, where)

    def error(message: str, key: str | None) -> ConfigurationError:
        return ConfigurationError(f"{where}: {message}", key=key)

    return structure_strictly(make_strict_converter(), table, RetryPolicy, error)


def parse_config(data: Mapping[str, Any], origin: str, path: Path | None = None) -> Config:
    """Check an already-parsed TOML document (see the module docstring)."""
    base_dir = (path or Path(origin)).parent
    _reject_inline_secrets(data, (), origin)
    _check_keys(data, _TOP_KEYS, origin)
    raw_connections = _table(data.get("connections", {}), f"{origin}: connections")
    connections = {
        name: _connection(name, raw, origin, base_dir) for name, raw in raw_connections.items()
    }
    retry = _retry(data["retry"], origin) if "retry" in data else None
    return Config(path=path or Path(origin), connections=connections, retry=retry)


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read and check the config file; ``None`` means ``./msgbridge.toml``."""
    explicit = path is not None
    file = Path(path) if path is not None else Path(DEFAULT_CONFIG)
    try:
        with file.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
    except FileNotFoundError:
        how = (
            "was not found"
            if explicit
            else f"was not found (pass --config PATH or set {CONFIG_ENV})"
        )
        raise ConfigurationError(f"config file {str(file)!r} {how}") from None
    except IsADirectoryError:
        raise ConfigurationError(f"config file {str(file)!r} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{file}: not valid UTF-8") from None
    return parse_config(data, str(file), file)
