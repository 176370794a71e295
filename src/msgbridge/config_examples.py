"""Worked examples of the ``msgbridge.toml`` format (:mod:`msgbridge.config`).

``msgbridge config --format`` prints :data:`REFERENCE_TOML` and ``msgbridge config init``
writes :data:`STARTER_TOML`. An example has to load and build with what is installed,
so these name adapters msgbridge itself ships; they are data, and no code branches on
them (the CLI treats every installed adapter alike).
"""

from __future__ import annotations

__all__ = ["REFERENCE_TOML", "STARTER_TOKEN_ENV", "STARTER_TOML"]

#: ``msgbridge config --format``: the whole format, as a TOML file that loads as is.
REFERENCE_TOML = """\
# msgbridge.toml: the named connections msgbridge sends through.
#
# Where msgbridge looks: --config PATH, else $MSGBRIDGE_CONFIG, else ./msgbridge.toml.
# Programs read the same file with msgbridge.config.load_config(path).
#
# Rules:
# * Secrets are only ever referenced, by the NAME of an environment variable
#   (token_env, oauth.*_env). A key that looks like an inline secret (token,
#   access_token, refresh_token, client_secret, api_key, password, or anything ending
#   in _token, _secret, _password, _api_key), anywhere in the file, settings
#   included, rejects the whole file; its value is never printed.
# * Every connection has exactly one of token_env or an [connections.NAME.oauth] table.
# * Unknown keys are errors naming them; settings are checked by the adapter itself.
# * Environment variables are read when a connection is first used, so a command that
#   uses one connection does not need the others' variables.

# Optional: how failed requests are retried (msgbridge.RetryPolicy fields:
# max_attempts, initial_backoff, max_backoff, multiplier, jitter, deadline,
# max_retry_after).
[retry]
max_attempts = 5
initial_backoff = 0.5
deadline = 60.0

# One connection; "acme" is the name used on the command line and in push files.
[connections.acme]
adapter = "highlevel"          # an installed adapter: see `msgbridge adapters`
token_env = "ACME_HL_TOKEN"    # a static token (sent as Authorization: Bearer)
strict = false                 # optional: states the vendor cannot express are errors
# Optional: the client-side pacing budget (default: the vendor's published one,
# HighLevel 100 requests per 10 s per location). msgbridge waits before sending
# instead of collecting 429s; raise it only if the vendor gave you more.
rate_limit = { requests = 100, per_seconds = 10.0 }

[connections.acme.settings]    # the adapter's own settings (never secrets)
location_id = "loc-1"
# base_url = "http://127.0.0.1:8787/highlevel"   # e.g. the emulator

# OAuth refresh-token flow (HighLevel family and HubSpot) instead of token_env.
[connections.hs]
adapter = "hubspot"

[connections.hs.oauth]
client_id_env = "HS_CLIENT_ID"
client_secret_env = "HS_CLIENT_SECRET"
refresh_token_env = "HS_REFRESH"   # bootstraps the token store below
# token_url = "https://..."        # optional: the vendor's default otherwise
# Refresh tokens may be single-use (HighLevel rotates them on every refresh): rotated
# tokens are saved in this JSON file (relative to this file, mode 0600) before use.
# Once it holds tokens it wins over refresh_token_env; delete it after re-authorising.
# Without a store a rotated token is lost when the command exits (a warning says so).
token_store = "tokens/hs.json"

[connections.hs.settings]
channel_id = 123
"""

#: ``msgbridge config init``: a small commented file to start from.
STARTER_TOML = """\
# msgbridge.toml, written by `msgbridge config init`.
#
# Check it with `msgbridge config`; the whole format is in `msgbridge config --format`.
# Secrets never go in this file: name the environment variable that holds them.
# To try msgbridge with no account at all, run `msgbridge emulate`: it prints a file
# like this one that points at the local emulator.

[connections.main]                      # "main": the name you give on the command line
adapter = "highlevel"                   # see `msgbridge adapters` for the installed ones
token_env = "MSGBRIDGE_HIGHLEVEL_TOKEN" # export MSGBRIDGE_HIGHLEVEL_TOKEN=... first

[connections.main.settings]
location_id = "REPLACE-WITH-YOUR-LOCATION-ID"

# A HubSpot custom channel, with OAuth (uncomment to use):
# [connections.hubspot]
# adapter = "hubspot"
# [connections.hubspot.oauth]
# client_id_env = "HUBSPOT_CLIENT_ID"
# client_secret_env = "HUBSPOT_CLIENT_SECRET"
# refresh_token_env = "HUBSPOT_REFRESH_TOKEN"
# token_store = "tokens/hubspot.json"
# [connections.hubspot.settings]
# channel_id = 123

# Optional retry policy (defaults shown):
# [retry]
# max_attempts = 5
# initial_backoff = 0.5
# deadline = 60.0
"""

#: The environment variable :data:`STARTER_TOML`'s connection reads its token from.
STARTER_TOKEN_ENV = "MSGBRIDGE_HIGHLEVEL_TOKEN"  # noqa: S105 - a variable name, not a secret
