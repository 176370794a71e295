"""Injectable clocks, so tests can move time (token expiry, rate windows, the provider
race) instead of sleeping.

The emulator reads two readings: ``monotonic()`` for durations (expiry, windows, races)
and ``time()`` for timestamps shown to clients and in history.
"""

from __future__ import annotations

import threading
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "OffsetClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clocks (``time.monotonic`` / ``time.time``)."""

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A frozen clock that moves only when told to: fully deterministic tests."""

    def __init__(self, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._wall = _time.time() if start is None else float(start)
        self._mono = 1_000.0

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both readings forward by *seconds* (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards; seconds must be >= 0")
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def __repr__(self) -> str:
        return f"ManualClock(time={self._wall:.3f})"


class OffsetClock:
    """Real time plus a jump offset: time flows normally and tests can still skip ahead.

    The pytest plugin uses it, so rate windows behave like the vendor's while a test can
    ``advance(1801)`` to expire a 30-minute token at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    @property
    def offset(self) -> float:
        return self._offset

    def monotonic(self) -> float:
        return _time.monotonic() + self._offset

    def time(self) -> float:
        return _time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards; seconds must be >= 0")
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        """Back to real time. Only safe when nothing depends on monotonic order (between tests)."""
        with self._lock:
            self._offset = 0.0

    def __repr__(self) -> str:
        return f"OffsetClock(offset={self._offset})"
