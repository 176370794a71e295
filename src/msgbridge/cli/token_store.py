"""A file-backed OAuth token store, so rotated refresh tokens survive the process.

Refresh tokens may be single-use (some vendors return a new one with every refresh and
the old one dies). A command that refreshes and then exits would lose the new token and leave the
account needing re-authorisation, so OAuth connections can name a ``token_store`` file.
The file is created with mode 0600, replaced atomically (write, fsync, rename) before
the new token is used, and holds secrets: keep it out of version control.

Several processes may share one store file: refreshes happen inside :meth:`FileTokenStore.locked`
(an exclusive ``flock`` on a ``.lock`` file beside it, POSIX only), where the file is
re-read first, so a pair another process rotated is adopted, never refreshed again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from msgbridge.auth import TokenSet
from msgbridge.errors import ConfigurationError

__all__ = ["FileTokenStore"]


class FileTokenStore:
    """:class:`msgbridge.TokenStore` kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TokenSet | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(
                f"token store {str(self.path)!r} cannot be read: {exc.strerror}",
                key="token_store",
            ) from None
        try:
            data: Any = json.loads(raw)
            access = data["access_token"]
            refresh = data["refresh_token"]
            expires_at = data.get("expires_at")
            extra = data.get("extra") or {}
            if not (
                isinstance(access, str)
                and isinstance(refresh, str)
                and refresh
                and (expires_at is None or isinstance(expires_at, (int, float)))
                and isinstance(extra, dict)
            ):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(
                f"token store {str(self.path)!r} is not a msgbridge token file; delete it to "
                "start again from the refresh token in the environment",
                key="token_store",
            ) from None
        return TokenSet(access, refresh, float(expires_at) if expires_at else None, extra)

    def save(self, tokens: TokenSet) -> None:
        data = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at,
            "extra": tokens.extra,
        }
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:  # mkstemp creates the file readable and writable by its owner only
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms without directory fds
            return
        try:
            os.fsync(dir_fd)
        except OSError:  # pragma: no cover
            pass
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive section across processes (``flock``; may be released from
        another thread than the one that took it)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no cross-process lock
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"
