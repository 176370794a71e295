"""Make I/O fail loudly while an adapter runs, to prove it is sans-I/O.

Adapters must not touch the network, files, subprocesses or sleep: the same adapter
serves the sync and the async bridge, and the bridge owns every wait and every byte
on the wire. :func:`forbid_io` patches the usual entry points for the current thread
only (other threads, such as a test server, keep working) and records every attempt,
so an adapter that swallows the error is still caught.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import io
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["ForbiddenIO", "IOAttempts", "forbid_io"]


class ForbiddenIO(AssertionError):
    """Raised by a patched I/O entry point inside :func:`forbid_io`."""


class IOAttempts(list[str]):
    """What was attempted inside :func:`forbid_io`, e.g. ``["socket.socket()"]``."""


#: (owner, attribute, label) of every entry point blocked by :func:`forbid_io`.
_TARGETS: tuple[tuple[Any, str, str], ...] = (
    (socket.socket, "__init__", "socket.socket()"),
    (socket.socket, "connect", "socket.connect()"),
    (socket.socket, "connect_ex", "socket.connect_ex()"),
    (socket, "create_connection", "socket.create_connection()"),
    (socket, "getaddrinfo", "socket.getaddrinfo()"),
    (builtins, "open", "open()"),
    (io, "open", "io.open()"),
    (os, "open", "os.open()"),
    (subprocess.Popen, "__init__", "subprocess.Popen()"),
    (time, "sleep", "time.sleep()"),
    (asyncio, "sleep", "asyncio.sleep()"),
)


def _blocker(
    original: Callable[..., Any], label: str, owner_thread: int, attempts: IOAttempts
) -> Callable[..., Any]:
    def blocked(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner_thread:
            return original(*args, **kwargs)
        attempts.append(label)
        raise ForbiddenIO(f"{label} was called inside a sans-I/O adapter call")

    return blocked


@contextlib.contextmanager
def forbid_io() -> Iterator[IOAttempts]:
    """Block sockets, file opens, subprocesses and sleeps in this thread; yield attempts.

    Use it around ``prepare_*`` and ``interpret`` calls, then assert the yielded list is
    empty: an adapter may catch :class:`ForbiddenIO`, but the attempt is recorded.
    """
    attempts = IOAttempts()
    owner_thread = threading.get_ident()
    saved: list[tuple[Any, str, Any, bool]] = []
    try:
        for owner, name, label in _TARGETS:
            original = getattr(owner, name)
            # Inherited attributes (socket.connect) are removed again, not shadowed.
            saved.append((owner, name, original, name in vars(owner)))
            setattr(owner, name, _blocker(original, label, owner_thread, attempts))
        yield attempts
    finally:
        for owner, name, original, own in reversed(saved):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
