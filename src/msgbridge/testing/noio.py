"""Make I/O fail loudly while an adapter runs, to prove it is sans-I/O.

Adapters must not touch the network, files, subprocesses or sleep: the same adapter
serves the sync and the async bridge, and the bridge owns every wait and every byte
on the wire. Nor may they read the clock (:func:`forbid_clock`): the bridge's clock is
injectable so retries are testable, and an adapter reading its own would escape it.
:func:`forbid_io` patches the usual entry points for the current thread
only (other threads, such as a test server, keep working) and records every attempt,
so an adapter that swallows the error is still caught.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime
import gc
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "ClockAttempts",
    "ForbiddenClock",
    "ForbiddenIO",
    "IOAttempts",
    "forbid_clock",
    "forbid_io",
]


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


# -- the clock --------------------------------------------------------------------------


class ForbiddenClock(AssertionError):
    """Raised by a patched clock inside :func:`forbid_clock`."""


class ClockAttempts(list[str]):
    """Clock reads attempted inside :func:`forbid_clock`, e.g. ``["datetime.now()"]``."""


#: Callers allowed to read the clock: a log record stamps its own time, and test tooling
#: (pytest, hypothesis, coverage) times itself, even while an adapter runs.
_CLOCK_EXEMPT = ("logging", "_pytest", "pytest", "pluggy", "hypothesis", "coverage")

#: ``time`` functions that always read a clock.
_TIME_READS: tuple[str, ...] = (
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
)
#: ``time`` functions that read the clock only when not given a time (their last arg).
_TIME_DEFAULTS: Mapping[str, int] = {
    "gmtime": 0,
    "localtime": 0,
    "ctime": 0,
    "asctime": 0,
    "strftime": 1,
}


def _exempt(frame_depth: int) -> bool:
    caller = sys._getframe(frame_depth).f_globals.get("__name__", "")
    return any(caller == name or caller.startswith(name + ".") for name in _CLOCK_EXEMPT)


class _Guard:
    """Decides, per call, whether a clock read is recorded and refused."""

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.attempts = ClockAttempts()

    def refuse(self, label: str, depth: int) -> bool:
        if threading.get_ident() != self.owner or _exempt(depth + 2):
            return False
        self.attempts.append(label)
        return True

    def error(self, label: str) -> ForbiddenClock:
        return ForbiddenClock(
            f"{label} read the clock inside a sans-I/O adapter call; time comes from the "
            "bridge (or the response's Date header)"
        )


def _time_blocker(guard: _Guard, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    label = f"time.{name}()"
    position = _TIME_DEFAULTS.get(name)

    def blocked(*args: Any, **kwargs: Any) -> Any:
        reads = position is None or len(args) <= position or args[position] is None
        if reads and guard.refuse(label, 1):
            raise guard.error(label)
        return original(*args, **kwargs)

    blocked.__wrapped__ = original  # type: ignore[attr-defined]
    return blocked


class _RealTypeMeta(type):
    """``isinstance(real_datetime, FakeDatetime)`` stays true while the fakes are in place."""

    _real: type

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls._real)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._real)


def _clock_free_types(guard: _Guard) -> tuple[type, type]:
    real_date, real_datetime = datetime.date, datetime.datetime

    def check(label: str) -> None:
        if guard.refuse(label, 2):
            raise guard.error(label)

    class ClockFreeDate(datetime.date, metaclass=_RealTypeMeta):
        _real = real_date

        @classmethod
        def today(cls) -> Any:
            check("date.today()")
            return real_date.today()

    class ClockFreeDatetime(datetime.datetime, metaclass=_RealTypeMeta):
        _real = real_datetime

        @classmethod
        def now(cls, tz: Any = None) -> Any:
            check("datetime.now()")
            return real_datetime.now(tz)

        @classmethod
        def utcnow(cls) -> Any:
            check("datetime.utcnow()")
            return real_datetime.utcnow()

        @classmethod
        def today(cls) -> Any:
            check("datetime.today()")
            return real_datetime.today()

    ClockFreeDate.__name__ = ClockFreeDate.__qualname__ = "date"
    ClockFreeDatetime.__name__ = ClockFreeDatetime.__qualname__ = "datetime"
    return ClockFreeDate, ClockFreeDatetime


@contextlib.contextmanager
def forbid_clock() -> Iterator[ClockAttempts]:
    """Make clock reads fail in this thread while an adapter runs; yield the attempts.

    Patched: ``time.time``/``time_ns``/``monotonic``/``perf_counter`` (and ``gmtime``,
    ``localtime``, ``ctime``, ``strftime`` called without a time), ``datetime.now``,
    ``utcnow``, ``today`` and ``date.today``, both on the ``time`` and ``datetime``
    modules and wherever a loaded module imported them by name (``from datetime
    import datetime``). Other threads, ``logging`` and test tooling keep the real
    clock, and automatic garbage collection (whose callbacks are not the adapter's) is
    paused. An adapter may catch :class:`ForbiddenClock`; the attempt is still recorded.
    """
    guard = _Guard()
    fake_date, fake_datetime = _clock_free_types(guard)
    replacements: dict[int, Any] = {
        id(datetime.date): fake_date,
        id(datetime.datetime): fake_datetime,
    }
    for name in (*_TIME_READS, *_TIME_DEFAULTS):
        original = getattr(time, name)
        replacements[id(original)] = _time_blocker(guard, name, original)
    originals = {
        id(datetime.date): datetime.date,
        id(datetime.datetime): datetime.datetime,
        **{id(getattr(time, n)): getattr(time, n) for n in (*_TIME_READS, *_TIME_DEFAULTS)},
    }
    saved: list[tuple[dict[str, Any], str, Any]] = []
    # A garbage-collection callback (hypothesis times collections) would run inside the
    # adapter's call without being the adapter's: no automatic collection meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict) or module is sys.modules[__name__]:
                continue
            for key, value in list(namespace.items()):
                if id(value) in replacements and originals.get(id(value)) is value:
                    saved.append((namespace, key, value))
                    namespace[key] = replacements[id(value)]
        yield guard.attempts
    finally:
        for namespace, key, value in reversed(saved):
            namespace[key] = value
        if collecting:
            gc.enable()
