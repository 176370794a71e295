"""Per-connection rate limiting: never send a request faster than the vendor allows.

Vendor budgets are rolling windows ("100 requests per 10 s per location"). A token
bucket would allow twice that in a window (a full bucket plus its refill), so the
limiter keeps the times of the last ``requests`` sends and allows the next one only
once the oldest is a full window old. It also obeys pauses (a 429, or rate-limit
headers saying the window is spent) and learns a smaller budget from the vendor.
"""

from __future__ import annotations

import threading
from collections import deque

from msgbridge.adapter import RateFeedback

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """At most ``requests`` sends in any ``per_seconds`` window, by an injected clock.

    Thread-safe. Times are reserved, so concurrent callers each get their own slot.
    ``margin`` stretches the window a little to absorb network jitter between our
    clock and the vendor's counter.
    """

    def __init__(self, requests: int, per_seconds: float, *, margin: float = 0.02) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError("a rate budget needs requests >= 1 and per_seconds > 0")
        self.requests = requests
        self.per_seconds = per_seconds
        self.margin = margin
        self.window = per_seconds * (1 + margin)
        self._sent: deque[float] = deque(maxlen=requests)
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def _slot(self, now: float) -> float:
        earliest = max(now, self._paused_until)
        if len(self._sent) >= self.requests:
            earliest = max(earliest, self._sent[0] + self.window)
        return earliest

    def available_at(self, now: float) -> float:
        """The earliest time a request may be sent."""
        with self._lock:
            return self._slot(now)

    def try_acquire(self, now: float) -> bool:
        """Take a slot if one is free right now."""
        with self._lock:
            if self._slot(now) > now:
                return False
            self._sent.append(now)
            return True

    def acquire(self, now: float) -> float:
        """Reserve the next slot; returns how long to wait before using it."""
        with self._lock:
            slot = self._slot(now)
            self._sent.append(slot)
            return slot - now

    def pause_until(self, until: float) -> None:
        """Hold every request of this connection until *until* (a 429 said so)."""
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def learn(self, feedback: RateFeedback, now: float) -> None:
        """Adapt to the vendor's headers: a stricter budget (requests per window), or a
        spent window."""
        with self._lock:
            window = feedback.window or self.per_seconds
            if feedback.maximum is not None and feedback.maximum > 0 and (
                feedback.maximum / window < self.requests / self.per_seconds
            ):
                # The vendor's budget is stricter than ours: adopt it, window included.
                self.requests = feedback.maximum
                self.per_seconds = window
                self.window = window * (1 + self.margin)
                self._sent = deque(self._sent, maxlen=feedback.maximum)
            if feedback.remaining == 0 and feedback.window and len(self._sent) < self.requests:
                # The vendor counted requests we did not send (another process, or a
                # smaller budget): wait out a whole window. When our own log is full,
                # it already holds the next request until the window has passed.
                self._paused_until = max(self._paused_until, now + feedback.window)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def __repr__(self) -> str:
        return f"<SlidingWindowLimiter {self.requests}/{self.per_seconds}s>"
