"""Typed errors of the outbox's storage, all under :class:`msgbridge.errors.MessagingError`.

Every storage failure is a :class:`StorageError`; the subclasses say what the caller can
do about it. None of them is raised after a partial write: a transaction that fails is
rolled back, so what was stored before is intact.
"""

from __future__ import annotations

from typing import Any

from msgbridge.errors import LeaseLost, MessagingError

__all__ = [
    "ForeignDatabase",
    "LeaseLost",
    "SchemaTooNew",
    "StorageCorrupt",
    "StorageError",
    "StorageFull",
    "StorageLocked",
    "StorageUnavailable",
]


class StorageError(MessagingError):
    """The outbox's database could not be used; ``location`` says which one."""

    def __init__(self, message: str, *, location: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.location = location

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} [{self.location}]" if self.location else text


class StorageCorrupt(StorageError):
    """The file is not a database, or its pages are damaged. Nothing was written to it."""


class ForeignDatabase(StorageCorrupt):
    """A valid database that belongs to something else (other tables or application id).

    It is refused untouched rather than taken over.
    """


class SchemaTooNew(StorageError):
    """The database was written by a newer msgbridge; this version refuses to touch it."""

    def __init__(self, message: str, *, found: int, supported: int, **context: Any) -> None:
        super().__init__(message, **context)
        self.found = found
        self.supported = supported


class StorageLocked(StorageError):
    """Another writer held the database longer than the busy/lock timeout. Retryable."""

    default_retryable = True


class StorageFull(StorageError):
    """The disk (or the database's configured size cap) is full; nothing was stored."""


class StorageUnavailable(StorageError):
    """The database server could not be reached or dropped the connection. Retryable."""

    default_retryable = True
