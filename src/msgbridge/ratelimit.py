"""Per-connection rate limiting: never send a request faster than the vendor allows.

Vendor budgets are rolling windows ("100 requests per 10 s per location"). A token
bucket would allow twice that in a window (a full bucket plus its refill). Counting
send times is not enough either: a request sent at ``t`` may *arrive* later (a slow
TCP or TLS set-up), so the vendor can see it inside the next window.

So a request counts against the window from the moment it is sent until ``window``
after its answer came back: while in flight it counts fully, and once answered it is
stamped with its completion time, which is never earlier than its arrival. A new request
may go when fewer than ``requests`` are in flight or completed within the last window.
Whatever the network does, the vendor never sees more than ``requests`` arrivals in any
window. The limiter also obeys pauses (a 429, or headers saying the window is spent) and
adopts a stricter budget the vendor announces.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from msgbridge.adapter import RateFeedback

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """At most ``requests`` per ``per_seconds`` window, by an injected clock. Thread-safe.

    Use :meth:`try_acquire` (or :meth:`acquire`, which says how long to wait) before a
    request and :meth:`release` when its answer arrived (or it failed). ``margin``
    stretches the window a little for clock differences with the vendor.
    """

    def __init__(self, requests: int, per_seconds: float, *, margin: float = 0.02) -> None:
        if requests < 1 or not per_seconds > 0:
            raise ValueError("a rate budget needs requests >= 1 and per_seconds > 0")
        self.requests = requests
        self.per_seconds = per_seconds
        self.margin = margin
        self.window = per_seconds * (1 + margin)
        self._done: deque[float] = deque()  # completion times, oldest first
        self._in_flight = 0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def _forget_old(self, now: float) -> None:
        while self._done and self._done[0] <= now - self.window:
            self._done.popleft()

    def _slot(self, now: float) -> float:
        """Earliest time a request may go; ``inf`` means "when one in flight returns"."""
        self._forget_old(now)
        earliest = max(now, self._paused_until)
        used = self._in_flight + len(self._done)
        if used < self.requests:
            return earliest
        if self._in_flight >= self.requests:
            return math.inf
        # Enough completed requests must leave the window: the one at this position.
        oldest_that_must_expire = self._done[used - self.requests]
        return max(earliest, oldest_that_must_expire + self.window)

    def available_at(self, now: float) -> float:
        """The earliest time a request may be sent (``inf``: after a completion)."""
        with self._lock:
            return self._slot(now)

    def try_acquire(self, now: float) -> bool:
        """Take a slot if one is free right now."""
        with self._lock:
            if self._slot(now) > now:
                return False
            self._in_flight += 1
            return True

    def acquire(self, now: float, *, poll: float = 0.05) -> float:
        """Take a slot if free (returns 0.0), else how long to wait before asking again."""
        with self._lock:
            slot = self._slot(now)
            if slot <= now:
                self._in_flight += 1
                return 0.0
            return poll if math.isinf(slot) else slot - now

    def release(self, now: float) -> None:
        """The request's answer arrived (or it failed): it counts until ``now + window``."""
        with self._lock:
            if self._in_flight > 0:
                self._in_flight -= 1
            self._done.append(now)

    def pause_until(self, until: float) -> None:
        """Hold every request of this connection until *until* (a 429 said so)."""
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def learn(self, feedback: RateFeedback, now: float) -> None:
        """Adapt to the vendor's headers: a stricter budget (requests per window), or a
        spent window."""
        with self._lock:
            window = feedback.window or self.per_seconds
            if (
                feedback.maximum is not None
                and feedback.maximum > 0
                and feedback.maximum / window < self.requests / self.per_seconds
            ):
                # The vendor's budget is stricter than ours: adopt it, window included.
                self.requests = feedback.maximum
                self.per_seconds = window
                self.window = window * (1 + self.margin)
            if feedback.remaining == 0 and feedback.window:
                self._forget_old(now)
                if self._in_flight + len(self._done) < self.requests:
                    # The vendor counted requests we did not send (another process, or
                    # a smaller budget): wait out a whole window. When our own count is
                    # full, it already holds the next request until the window passed.
                    self._paused_until = max(self._paused_until, now + feedback.window)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def __repr__(self) -> str:
        return f"<SlidingWindowLimiter {self.requests}/{self.per_seconds}s>"
