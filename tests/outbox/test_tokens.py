"""``DatabaseTokenStore``: one rotating OAuth pair shared by processes through the outbox's
database (SQLite file or PostgreSQL), refreshed under a cross-process lock."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from msgbridge.auth import TokenSet
from msgbridge.emulator import Emulator
from msgbridge.errors import ConfigurationError
from msgbridge.outbox import DatabaseTokenStore, Outbox, StorageError

from .conftest import LOCATION

PAIR = TokenSet("access-secret-1", "refresh-secret-1", 1_700_000_000.0, {"locationId": "loc"})


def test_save_load_round_trip_and_nothing_secret_shows(target: str) -> None:
    store = DatabaseTokenStore(target, "highlevel:loc")
    try:
        assert store.load() is None
        store.save(PAIR)
        assert store.load() == PAIR
        assert DatabaseTokenStore(store.store, "other").load() is None
        text = repr(store) + repr(store.load())
        assert "secret" not in text
    finally:
        store.close()


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="non-empty"):
        DatabaseTokenStore(tmp_path / "x.db", " ")
    store = DatabaseTokenStore(tmp_path / "x.db", "k")
    with pytest.raises(ConfigurationError, match="TokenSet"):
        store.save({"access_token": "a"})  # type: ignore[arg-type]
    store.close()


def test_an_unreadable_pair_is_reported_without_its_content(tmp_path: Path) -> None:
    with Outbox(tmp_path / "t.db") as box:
        with box.store.transaction() as tx:
            tx.execute(
                "INSERT INTO msgbridge_tokens (key, payload, version, updated_at) "
                "VALUES ('k', '{\"access_token\": \"leaked-secret\"}', 1, 0)"
            )
        with pytest.raises(StorageError) as caught:
            DatabaseTokenStore(box, "k").load()
    assert "leaked-secret" not in str(caught.value)


def test_a_block_commits_on_exit_and_rolls_back_on_error(target: str) -> None:
    store = DatabaseTokenStore(target, "k")
    try:
        with store.locked():
            assert store.load() is None
            store.save(PAIR)
            assert store.load() == PAIR  # read inside the block sees its own write
        assert store.load() == PAIR
        newer = TokenSet("access-2", "refresh-2")

        def refresh_fails_halfway() -> None:
            with store.locked():
                store.save(newer)
                raise RuntimeError("refresh failed halfway")

        with pytest.raises(RuntimeError):
            refresh_fails_halfway()
        assert store.load() == PAIR
    finally:
        store.close()


def test_a_block_may_be_left_from_another_thread_and_excludes_other_processes(
    target: str,
) -> None:
    store = DatabaseTokenStore(target, "k")
    store.save(PAIR)
    block = store.locked()
    entered = threading.Event()
    left = threading.Event()

    def enter() -> None:
        block.__enter__()
        entered.set()

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert entered.is_set()
    other = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", WAITER, target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    assert other.poll() is None  # still waiting for the lock
    store.save(TokenSet("access-3", "refresh-3"))

    def leave() -> None:
        block.__exit__(None, None, None)
        left.set()

    thread = threading.Thread(target=leave)
    thread.start()
    thread.join()
    out, err = other.communicate(timeout=30)
    assert other.returncode == 0, err
    assert json.loads(out)["refresh"] == "refresh-3"  # it saw the committed rotation
    store.close()


WAITER = """
import json, sys
from msgbridge.outbox import DatabaseTokenStore
store = DatabaseTokenStore(sys.argv[1], "k", lock_timeout=30)
with store.locked():
    pair = store.load()
print(json.dumps({"refresh": pair.refresh_token}))
"""

ROTATOR = """
import json, sys, httpx
from msgbridge.outbox import DatabaseTokenStore
from msgbridge.auth import TokenSet
target, url, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = DatabaseTokenStore(target, "highlevel:loc")
failed = ok = 0
with httpx.Client() as http:
    for _ in range(rounds):
        with store.locked():
            current = store.load()
            answer = http.post(url, data={
                "grant_type": "refresh_token", "client_id": "app", "client_secret": "s3cret",
                "refresh_token": current.refresh_token, "user_type": "Location"})
            if answer.status_code != 200:
                failed += 1
                continue
            body = answer.json()
            store.save(TokenSet(body["access_token"], body["refresh_token"]))
            ok += 1
print(json.dumps({"ok": ok, "failed": failed}))
"""


def test_three_processes_share_one_single_use_refresh_token(emu: Emulator, target: str) -> None:
    """HighLevel refresh tokens die on use. Three processes refreshing one pair through
    the store never use a spent one: every refresh succeeds."""
    emu.add_oauth_client("highlevel", "app", "s3cret", "rt-1", account=LOCATION)
    seed = DatabaseTokenStore(target, "highlevel:loc")
    seed.save(TokenSet("", "rt-1", 0.0))
    url = emu.base_url("highlevel") + "/oauth/token"
    rounds = 15
    children = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", ROTATOR, target, url, str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    assert sum(r["failed"] for r in results) == 0, results
    assert sum(r["ok"] for r in results) == 3 * rounds
    final = seed.load()
    assert final is not None
    assert final.refresh_token != "rt-1"
    seed.close()


BRIDGE_PROCESS = """
import json, sys, time
from msgbridge import Bridge, Connection, MessageStatus
from msgbridge.adapters.highlevel import HighLevelOAuth
from msgbridge.outbox import DatabaseTokenStore
target, url, base_url, location, name, count = sys.argv[1:7]
store = DatabaseTokenStore(target, "highlevel:" + location)
credential = HighLevelOAuth(client_id="app", client_secret="s3cret", store=store,
                            token_url=url, refresh_margin=0)
connection = Connection("highlevel", adapter="highlevel", credentials=credential,
    settings={"base_url": base_url, "version": "2021-04-15", "location_id": location})
outcomes = {}
with Bridge([connection], rate_limits=False) as bridge:
    for index in range(int(count)):
        receipt = bridge.update_status(
            "highlevel", MessageStatus(f"{name}-{index}", "delivered"))
        outcomes[receipt.outcome.value] = outcomes.get(receipt.outcome.value, 0) + 1
        time.sleep(0.02)
print(json.dumps({"outcomes": outcomes, "refreshes": credential.refresh_count}))
"""


def test_three_bridges_in_three_processes_share_one_rotating_pair(
    emu: Emulator, target: str
) -> None:
    """Issue 11: three processes on one HighLevel location whose access tokens expire
    every 0.3 s; each refresh spends the refresh token. Through one DatabaseTokenStore
    every process re-reads the pair under the lock before refreshing: every update is
    applied, nobody is told to re-authorise."""
    emu.add_oauth_client("highlevel", "app", "s3cret", "rt-1", account=LOCATION)
    emu.configure("highlevel", access_token_ttl=0.3)
    seed = DatabaseTokenStore(target, f"highlevel:{LOCATION}")
    seed.save(TokenSet("", "rt-1", 0.0))
    seed.close()
    url = emu.base_url("highlevel") + "/oauth/token"
    children = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-c",
                BRIDGE_PROCESS,
                target,
                url,
                emu.base_url("highlevel"),
                LOCATION,
                f"p{n}",
                "40",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    assert [r["outcomes"] for r in results] == [{"applied": 40}] * 3
    assert sum(r["refreshes"] for r in results) >= 3  # the pair really rotated, often
