"""``DatabaseTokenStore``: one OAuth token pair shared by every process, in the outbox's
database.

HighLevel refresh tokens are single-use: when one process rotates the pair, a process
that refreshes with the old refresh token locks the account out. A credential that
refreshes through this store does::

    with store.locked():            # exclusive across processes (and threads)
        current = store.load()      # the latest committed pair
        if current != what_i_used:  # someone refreshed meanwhile: adopt theirs
            adopt(current)
        else:                       # refresh over HTTP, then
            store.save(new_pair)    # written in the same transaction, committed on exit

so exactly one process refreshes at a time and every other one re-reads the pair first.
The lock is a row lock (PostgreSQL ``SELECT … FOR UPDATE``) or the database's write
lock (SQLite ``BEGIN IMMEDIATE``; hold it briefly: other writers of the file wait).

The block may be entered in one thread and left in another (async runners call it from
worker threads): it runs on a database connection of its own. Inside an open block of
this store, ``load`` and ``save`` act in that block's transaction; outside, each is its
own short transaction.

The pair is stored as JSON in ``msgbridge_tokens``: the database then holds secrets, so
give it the protection you give the tokens (file mode, database roles). Tokens never
appear in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from types import TracebackType
from typing import Any

from msgbridge.auth import TokenSet
from msgbridge.errors import ConfigurationError
from msgbridge.outbox.errors import StorageError, StorageLocked
from msgbridge.outbox.outbox import Outbox
from msgbridge.outbox.store import Store, Tx, open_store

__all__ = ["DatabaseTokenStore"]


class DatabaseTokenStore:
    """A :class:`msgbridge.TokenStore` with :meth:`locked`, kept under *key*.

    ``store_or_dsn`` is an :class:`~msgbridge.outbox.Outbox`, a
    :class:`~msgbridge.outbox.Store` (both left open on :meth:`close`) or anything
    :func:`~msgbridge.outbox.open_store` takes (opened here, closed on :meth:`close`).
    *key* names the pair (one per connection, e.g. ``"highlevel:loc-123"``).
    ``lock_timeout`` bounds the wait for another block of this process; the wait for
    another process's block is the store's own (SQLite ``busy_timeout``, PostgreSQL
    ``lock_timeout``); either ends in :class:`~msgbridge.outbox.StorageLocked`.
    """

    def __init__(
        self,
        store_or_dsn: Store | Outbox | str | os.PathLike[str] | Any,
        key: str,
        *,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = 30.0,
    ) -> None:
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError("a token store key must be a non-empty string", key="key")
        if lock_timeout <= 0:
            raise ConfigurationError("lock_timeout must be positive", key="lock_timeout")
        if isinstance(store_or_dsn, Outbox):
            self.store: Store = store_or_dsn.store
            self._owns = False
        elif isinstance(store_or_dsn, Store):
            self.store = store_or_dsn
            self._owns = False
        else:
            self.store = open_store(store_or_dsn)
            self._owns = True
        self.key = key
        self.clock = clock
        self.lock_timeout = lock_timeout
        # One block per process at a time; a Lock (not an RLock) may be released by
        # the thread that leaves the block, whichever it is.
        self._local = threading.Lock()
        self._block: _Block | None = None

    # -- TokenStore ------------------------------------------------------------------------
    def load(self) -> TokenSet | None:
        """The latest committed pair (inside :meth:`locked`: read under the lock)."""
        block = self._block
        if block is not None:
            return block.load()
        with self.store.transaction(write=False) as tx:
            return _read(tx, self.key)

    def save(self, tokens: TokenSet) -> None:
        """Store *tokens* (inside :meth:`locked`: committed when the block exits)."""
        if not isinstance(tokens, TokenSet):
            raise ConfigurationError(
                f"save() takes a msgbridge.auth.TokenSet, got {type(tokens).__name__}"
            )
        block = self._block
        if block is not None:
            block.save(tokens)
            return
        with self.store.transaction() as tx:
            _write(tx, self.key, tokens, self.clock())

    def locked(self) -> AbstractContextManager[None]:
        """Exclusive access to the pair across processes until the block exits."""
        return _Block(self)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns:
            self.store.close()

    def __repr__(self) -> str:
        return f"<DatabaseTokenStore {self.key!r} on {self.store.location}>"


class _Block(AbstractContextManager[None]):
    def __init__(self, owner: DatabaseTokenStore) -> None:
        self._owner = owner
        self._stack = ExitStack()
        self._tx: Tx | None = None
        self._use = threading.Lock()

    def __enter__(self) -> None:
        owner = self._owner
        if not owner._local.acquire(timeout=owner.lock_timeout):
            raise StorageLocked(
                f"token store {owner.key!r}: another block in this process held the lock "
                f"for more than {owner.lock_timeout:g} s",
                location=owner.store.location,
            )
        try:
            tx = self._stack.enter_context(owner.store.dedicated_transaction())
            tx.execute(
                "INSERT INTO msgbridge_tokens (key, payload, version, updated_at) "
                "VALUES (?, '', 0, ?) ON CONFLICT (key) DO NOTHING",
                (owner.key, owner.clock()),
            )
            # PostgreSQL: wait here for another process's block (row lock); SQLite: the
            # write lock taken by BEGIN IMMEDIATE already excludes everyone.
            tx.fetchone(
                "SELECT version FROM msgbridge_tokens WHERE key = ?" + tx.for_update,  # noqa: S608
                (owner.key,),
            )
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            owner._local.release()
            raise
        self._tx = tx
        owner._block = self

    def load(self) -> TokenSet | None:
        assert self._tx is not None
        with self._use:
            return _read(self._tx, self._owner.key)

    def save(self, tokens: TokenSet) -> None:
        assert self._tx is not None
        with self._use:
            _write(self._tx, self._owner.key, tokens, self._owner.clock())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        owner = self._owner
        owner._block = None
        self._tx = None
        try:
            self._stack.__exit__(exc_type, exc, tb)  # commit, or roll back on error
        finally:
            owner._local.release()


def _read(tx: Tx, key: str) -> TokenSet | None:
    row = tx.fetchone("SELECT payload FROM msgbridge_tokens WHERE key = ?", (key,))
    if row is None or not row[0]:
        return None
    try:
        data = json.loads(str(row[0]))
        tokens = TokenSet(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=float(data["expires_at"]) if data.get("expires_at") is not None else None,
            extra=dict(data.get("extra") or {}),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        # Never echo the payload: it holds secrets.
        raise StorageError(
            f"the stored token pair {key!r} cannot be read; save a new pair to replace it"
        ) from None
    return tokens


def _write(tx: Tx, key: str, tokens: TokenSet, now: float) -> None:
    payload = json.dumps(
        {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at,
            "extra": dict(tokens.extra),
        },
        separators=(",", ":"),
    )
    tx.execute(
        "INSERT INTO msgbridge_tokens (key, payload, version, updated_at) VALUES (?, ?, 1, ?) "
        "ON CONFLICT (key) DO UPDATE SET payload = excluded.payload, "
        "version = msgbridge_tokens.version + 1, updated_at = excluded.updated_at",
        (key, payload, now),
    )
