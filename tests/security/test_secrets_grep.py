"""Issue 10: known test secrets are grepped for in everything msgbridge produces.

Real requests go to the real emulator over loopback with every sender (httpx sync,
httpx async, aiohttp), logging at DEBUG for msgbridge, httpx, httpcore and aiohttp.
Then each secret (a bearer token, a refused bearer token, an OAuth client secret and
refresh token and the tokens the vendor minted from them, a Chatwoot access token, and
a password in a base URL that must be refused) is searched for in: the logs, the
command line's ``-v`` output, reprs, exception strings and tracebacks, receipts, the
emulator's recording (in memory and over its control endpoint), the outbox's files on
disk and ``push``'s rejects file. A token store file is the one place tokens belong;
it is checked for mode 0600.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    MemoryTokenStore,
    MessageStatus,
    Receipt,
    RetryPolicy,
)
from msgbridge.adapters.hubspot import HubSpotOAuth
from msgbridge.auth import TokenSet
from msgbridge.cli import app
from msgbridge.emulator import Emulator, EmulatorConfig
from msgbridge.errors import ConfigurationError, MessagingError
from msgbridge.fast import AiohttpSender
from msgbridge.outbox import Outbox

pytest.importorskip("msgbridge_chatwoot", reason="the Chatwoot plugin is part of the suite")

from msgbridge_chatwoot import ChatwootToken

LOGGERS = ("msgbridge", "httpx", "httpcore", "aiohttp")
BEARER = "sec-bearer-SECRET-a1b2c3"
BAD_BEARER = "sec-badbearer-SECRET-d4e5f6"
CLIENT_SECRET = "sec-client-SECRET-a7b8c9"
REFRESH_TOKEN = "sec-refresh-SECRET-d0e1f2"
STALE_ACCESS = "sec-stale-SECRET-a3b4c5"
CHATWOOT = "secChatwootSECRETd6e7f8"
URL_PASSWORD = "sec-urlpass-SECRET-a9b0"
SECRETS = [BEARER, BAD_BEARER, CLIENT_SECRET, REFRESH_TOKEN, STALE_ACCESS, CHATWOOT, URL_PASSWORD]

HL_ACCOUNT = "loc-sec-1"
HS_PORTAL = "7001"
HS_CHANNEL = 4711
CW_ACCOUNT = "1"
HS_CLIENT = "sec-hs-client"
RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02, jitter=0.0)
SENDERS = ("sync-httpx", "async-httpx", "async-aiohttp")


@pytest.fixture(scope="module")
def _server() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(unknown_messages="create"), plugins=True) as emu:
        yield emu


@pytest.fixture
def emu(_server: Emulator) -> Emulator:
    _server.reset()
    _server.add_token("highlevel", BEARER, account=HL_ACCOUNT)
    _server.add_oauth_client("hubspot", HS_CLIENT, CLIENT_SECRET, REFRESH_TOKEN, account=HS_PORTAL)
    _server.add_token("chatwoot", CHATWOOT, account=CW_ACCOUNT)
    for n in range(1, 6):
        _server.seed_message("hubspot", f"s-{n}", account=HS_PORTAL, channel_id=HS_CHANNEL)
        _server.seed_message("chatwoot", f"{4700 + n}", account=CW_ACCOUNT, conversation_id="12")
    return _server


@pytest.fixture
def registry() -> AdapterRegistry:
    return AdapterRegistry.from_entry_points()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG on every logger that could see a request, restored afterwards."""
    saved = {name: logging.getLogger(name) for name in LOGGERS}
    state = {n: (lg.level, lg.propagate, list(lg.handlers)) for n, lg in saved.items()}
    for name, logger in saved.items():
        logger.propagate = True
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    for name, (level, propagate, handlers) in state.items():
        logger = saved[name]
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


def _error_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, MessagingError):
        texts += [str(error.vendor_message), repr(vars(error))]
    return texts


def _receipt_texts(receipt: Receipt) -> list[str]:
    texts = [repr(receipt), str(receipt.detail), repr(dict(receipt.vendor_ids))]
    if receipt.error is not None:
        texts += _error_texts(receipt.error)
    return texts


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    assert caplog.records, "nothing was logged: the log grep would prove nothing"
    texts = [caplog.text]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), str(record.exc_text)]
    return texts


def _recording_texts(emu: Emulator) -> list[str]:
    recorded = [r.to_dict() for r in emu.requests]
    assert recorded, "the emulator recorded nothing"
    control = httpx.get(f"{emu.url}/_emulator/requests", timeout=10.0)
    assert control.status_code == 200
    return [json.dumps(recorded, default=str), control.text]


def _around(text: str, secret: str) -> str:
    at = text.find(secret)
    return text[max(0, at - 80) : at + len(secret) + 80]


def _leaks(secrets: list[str], texts: list[str]) -> dict[str, list[str]]:
    found = {
        s: [t[max(0, t.find(s) - 80) : t.find(s) + 80] for t in texts if s in t] for s in secrets
    }
    return {secret: where for secret, where in found.items() if where}


def _connections(emu: Emulator, store: MemoryTokenStore) -> list[Connection]:
    oauth = HubSpotOAuth(
        client_id=HS_CLIENT,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        access_token=STALE_ACCESS,
        expires_at=time.time() - 5,  # expired: the first request refreshes
        token_url=f"{emu.base_url('hubspot')}/oauth/2026-03/token",
        store=store,
    )
    hl = {"base_url": emu.base_url("highlevel"), "location_id": HL_ACCOUNT}
    return [
        Connection("hl", adapter="highlevel", credentials=BearerToken(BEARER), settings=hl),
        Connection("bad", adapter="highlevel", credentials=BearerToken(BAD_BEARER), settings=hl),
        Connection(
            "hs",
            adapter="hubspot",
            credentials=oauth,
            settings={"base_url": emu.base_url("hubspot"), "channel_id": HS_CHANNEL},
        ),
        Connection(
            "cw",
            adapter="chatwoot",
            credentials=ChatwootToken(CHATWOOT),
            settings={"base_url": emu.base_url("chatwoot"), "account_id": int(CW_ACCOUNT)},
        ),
    ]


UPDATES = [
    ("hl", MessageStatus("h-1", "delivered")),
    ("bad", MessageStatus("h-2", "read")),  # 401: the refused token must not be echoed
    ("hs", MessageStatus("s-1", "read")),  # refreshes: client secret + refresh token sent
    ("cw", MessageStatus("4701", "read", conversation_id="12")),
    ("hl", MessageStatus("h-3", "read")),  # after a scripted 503: a retry is logged
]


def _refused_base_url_texts(registry: AdapterRegistry) -> list[str]:
    """A password in a base URL is refused, in code and for every adapter."""
    texts: list[str] = []
    for adapter, extra in (
        ("highlevel", {}),
        ("hubspot", {"channel_id": HS_CHANNEL}),
        ("chatwoot", {"account_id": 1}),
        ("front", {}),
    ):
        settings = {"base_url": f"https://bot:{URL_PASSWORD}@api.example.com", **extra}
        connection = Connection(
            "leaky", adapter=adapter, credentials=BearerToken("t"), settings=settings
        )
        texts.append(repr(connection))
        with pytest.raises(ConfigurationError) as info:
            Bridge([connection], registry=registry)
        texts += _error_texts(info.value)
    return texts


def _malformed_secret_texts() -> list[str]:
    """Credentials refusing a malformed secret must not quote it back."""
    texts: list[str] = []
    for bad in (BEARER + "\n", BEARER + "\r\nX: y", BEARER + "\x00", BEARER + "\x1b", " " + BEARER):
        for make in (BearerToken, ChatwootToken):
            try:
                credential = make(bad)
            except MessagingError as exc:
                texts += _error_texts(exc)
            else:
                texts += [repr(credential), str(credential)]
    return texts


async def _run(kind: str, connections: list[Connection], registry: AdapterRegistry) -> list[Any]:
    """Every update once, then all again through update_many; receipts and errors."""
    results: list[Any] = []
    if kind == "sync-httpx":
        with Bridge(connections, registry=registry, retry=RETRY) as bridge:
            results.append(repr(bridge))
            for name, update in UPDATES:
                try:
                    results.append(bridge.update_status(name, update))
                except MessagingError as exc:
                    results.append(exc)
            results += list(bridge.update_many(UPDATES))
        return results
    sender = AiohttpSender() if kind == "async-aiohttp" else None
    async with AsyncBridge(connections, registry=registry, retry=RETRY, sender=sender) as bridge:
        results.append(repr(bridge))
        for name, update in UPDATES:
            try:
                results.append(await bridge.update_status(name, update))
            except MessagingError as exc:
                results.append(exc)
        results += [receipt async for receipt in bridge.update_many(UPDATES)]
    return results


@pytest.mark.anyio
@pytest.mark.parametrize("kind", SENDERS)
async def test_no_secret_in_logs_reprs_errors_or_the_recording(
    kind: str,
    emu: Emulator,
    registry: AdapterRegistry,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    store = MemoryTokenStore()
    connections = _connections(emu, store)
    texts = [repr(c) for c in connections] + [repr(c.credentials) for c in connections]
    texts += _refused_base_url_texts(registry)
    texts += _malformed_secret_texts()
    emu.faults.script([503, 200], vendor="highlevel")
    results = await _run(kind, connections, registry)

    # The scenario did what it says, so the grep below means something.
    receipts = [r for r in results if isinstance(r, Receipt)]
    errors = [r for r in results if isinstance(r, BaseException)]
    applied = sorted(r.subject_id for r in receipts if r.ok)
    assert applied == sorted(["h-1", "s-1", "4701", "h-3"] * 2), results
    assert [type(e).__name__ for e in errors] == ["AuthenticationError"]
    assert [r.status for r in emu.find_requests(route="oauth_token")].count(200) == 1
    assert any(r.status == 503 for r in emu.find_requests(vendor="highlevel"))
    minted = store.load()
    assert isinstance(minted, TokenSet)
    secrets = [*SECRETS, minted.access_token, minted.refresh_token]

    texts += [str(r) if isinstance(r, str) else "" for r in results]
    for receipt in receipts:
        texts += _receipt_texts(receipt)
    for error in errors:
        texts += _error_texts(error)
    texts += [repr(store), repr(minted)]
    texts += _log_texts(debug_logs)
    texts += _recording_texts(emu)
    assert _leaks(secrets, texts) == {}


# -- the command line and the outbox's files ----------------------------------------------


def _config(tmp_path: Path, emu: Emulator) -> Path:
    path = tmp_path / "msgbridge.toml"
    path.write_text(
        f"""
[retry]
max_attempts = 2
initial_backoff = 0.01
max_backoff = 0.02

[connections.hl]
adapter = "highlevel"
token_env = "SEC_HL_TOKEN"
[connections.hl.settings]
base_url = "{emu.base_url("highlevel")}"
location_id = "{HL_ACCOUNT}"

[connections.bad]
adapter = "highlevel"
token_env = "SEC_BAD_TOKEN"
[connections.bad.settings]
base_url = "{emu.base_url("highlevel")}"

[connections.hs]
adapter = "hubspot"
[connections.hs.oauth]
client_id_env = "SEC_HS_CLIENT_ID"
client_secret_env = "SEC_HS_CLIENT_SECRET"
refresh_token_env = "SEC_HS_REFRESH"
token_url = "{emu.base_url("hubspot")}/oauth/2026-03/token"
token_store = "tokens/hs.json"
[connections.hs.settings]
base_url = "{emu.base_url("hubspot")}"
channel_id = {HS_CHANNEL}

[connections.leaky]
adapter = "highlevel"
token_env = "SEC_HL_TOKEN"
[connections.leaky.settings]
base_url = "https://bot:{URL_PASSWORD}@api.example.com"
""",
        encoding="utf-8",
    )
    return path


ENV = {
    "SEC_HL_TOKEN": BEARER,
    "SEC_BAD_TOKEN": BAD_BEARER,
    "SEC_HS_CLIENT_ID": HS_CLIENT,
    "SEC_HS_CLIENT_SECRET": CLIENT_SECRET,
    "SEC_HS_REFRESH": REFRESH_TOKEN,
    "COLUMNS": "200",
}


def test_no_secret_in_cli_verbose_output_or_outbox_files(
    tmp_path: Path,
    emu: Emulator,
    debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # `push -` writes rejects.jsonl here: grepped too
    config = _config(tmp_path, emu)
    runner = CliRunner()
    outputs: list[str] = []

    def cli(*args: str, stdin: str | None = None) -> int:
        result = runner.invoke(
            app,
            [*args, "--config", str(config), "-v"],
            input=stdin,
            env=ENV,
            catch_exceptions=False,
        )
        outputs.extend([result.stdout, result.stderr])
        # The CLI points its loggers at its own stderr; give caplog its loggers back.
        for name in LOGGERS:
            logging.getLogger(name).propagate = True
        return result.exit_code

    assert cli("send", "hl", "c-1", "delivered") == 0
    assert cli("send", "bad", "c-2", "read") != 0
    assert cli("send", "leaky", "c-3", "read") == 3
    lines = "".join(
        json.dumps({"connection": name, "status": {"message_id": mid, "state": "read"}}) + "\n"
        for name, mid in (("hl", "c-4"), ("bad", "c-5"), ("hs", "s-2"), ("leaky", "c-6"))
    )
    assert cli("push", "-", stdin=lines) != 0  # 'bad' and 'leaky' fail, the rest applied
    assert emu.message("hubspot", "s-2").status == "READ"

    # The outbox: updates stored on disk, drained through the config (one dead letter).
    db = tmp_path / "box" / "outbox.db"
    db.parent.mkdir()
    with Outbox(str(db)) as box:
        box.enqueue("hl", MessageStatus("c-7", "read"))
        box.enqueue("bad", MessageStatus("c-8", "read"))
        box.enqueue("hs", MessageStatus("s-3", "read"))
    cli("outbox", "drain", "--db", str(db), "--connection", "hl", "--connection", "bad",
        "--connection", "hs")  # fmt: skip
    cli("outbox", "dead", "--db", str(db))
    cli("outbox", "status", "--db", str(db))

    store_file = tmp_path / "tokens" / "hs.json"
    assert stat.S_IMODE(os.stat(store_file).st_mode) == 0o600
    saved = json.loads(store_file.read_text(encoding="utf-8"))
    minted = [v for k, v in saved.items() if "token" in k and isinstance(v, str)]
    assert minted, saved
    secrets = [*SECRETS, *minted]

    # -v raised the loggers (without it, httpx's INFO request lines are not shown).
    assert any("msgbridge: INFO httpx: HTTP Request" in o for o in outputs), outputs[:2]
    assert f"{URL_PASSWORD}" not in "".join(outputs)
    assert any("user name or password" in o for o in outputs)
    files = {
        str(p.relative_to(tmp_path)): p.read_bytes().decode("utf-8", "replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and p != store_file and p != config
    }
    assert any(name.startswith("box") for name in files), files.keys()
    assert "rejects.jsonl" in files, files.keys()
    texts = [*outputs, *files.values(), *_recording_texts(emu)]
    texts += [t for t in _log_texts(debug_logs)]
    assert _leaks(secrets, texts) == {}
