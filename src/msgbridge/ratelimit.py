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

import bisect
import math
import threading
from collections import deque

from msgbridge.adapter import RateFeedback
from msgbridge.validation import check_number

__all__ = ["MAX_REQUESTS", "MAX_WINDOW", "SlidingWindowLimiter"]


#: Most requests a budget may allow per window.
MAX_REQUESTS = 1_000_000
#: Longest budget window, in seconds: one day (daily caps are informational only).
MAX_WINDOW = 86_400.0


class SlidingWindowLimiter:
    """At most ``requests`` per ``per_seconds`` window, by an injected clock. Thread-safe.

    Use :meth:`try_acquire` (or :meth:`acquire`, which says how long to wait) before a
    request and :meth:`release` when its answer arrived (or it failed). ``margin``
    stretches the window a little for clock differences with the vendor.

    Ranges: ``requests`` a whole number from 1 to 1,000,000; ``per_seconds`` finite,
    more than 0 and at most 86,400 (a day); ``margin`` 0 to 1. Anything else (``inf``,
    ``nan``, booleans, strings) is a :class:`~msgbridge.errors.ConfigurationError`.

    A vendor budget learnt from headers (:meth:`learn`) is enforced *together with* the
    configured one: against a vendor allowing 60 per 2 s, a 100 per 10 s limiter keeps
    both windows, so it bursts at most 60 and averages at most 10 per second.
    """

    def __init__(self, requests: int, per_seconds: float, *, margin: float = 0.02) -> None:
        check_number(requests, key="requests", minimum=1, maximum=MAX_REQUESTS, integer=True)
        check_number(
            per_seconds, key="per_seconds", minimum=0.0, maximum=MAX_WINDOW, exclusive_minimum=True
        )
        check_number(margin, key="margin", minimum=0.0, maximum=1.0)
        self.margin = float(margin)
        self._configured_window = float(per_seconds)
        #: Every budget in force, as (requests, window length with margin, window).
        self._budgets: list[tuple[int, float, float]] = [
            (requests, per_seconds * (1 + margin), float(per_seconds))
        ]
        self._done: deque[float] = deque()  # completion times, oldest first
        self._in_flight = 0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        """The burst: the fewest requests any budget in force allows per its window."""
        return self._tightest()[0]

    @property
    def per_seconds(self) -> float:
        """The window of the :attr:`requests` budget."""
        return self._tightest()[2]

    @property
    def window(self) -> float:
        """:attr:`per_seconds` stretched by the margin."""
        return self._tightest()[1]

    @property
    def budgets(self) -> tuple[tuple[int, float], ...]:
        """Every budget in force as ``(requests, per_seconds)``, burst first."""
        return tuple((n, w) for n, _, w in sorted(self._budgets))

    def _tightest(self) -> tuple[int, float, float]:
        return min(self._budgets)

    def _forget_old(self, now: float) -> None:
        longest = max(window for _, window, _ in self._budgets)
        while self._done and self._done[0] <= now - longest:
            self._done.popleft()

    def _slot(self, now: float) -> float:
        """Earliest time a request may go; ``inf`` means "when one in flight returns"."""
        self._forget_old(now)
        slot = max(now, self._paused_until)
        for requests, window, _ in self._budgets:
            start = bisect.bisect_right(self._done, now - window)
            used = self._in_flight + len(self._done) - start
            if used < requests:
                continue
            if self._in_flight >= requests:
                return math.inf
            # Enough completed requests must leave this window: the one at this position.
            oldest_that_must_expire = self._done[start + used - requests]
            slot = max(slot, oldest_that_must_expire + window)
        return slot

    def _used(self, now: float, window: float) -> int:
        return self._in_flight + len(self._done) - bisect.bisect_right(self._done, now - window)

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
        """Adapt to the vendor's headers: adopt its budget (requests per window) where it
        is stricter, by burst or by rate, and wait out a window it says is spent."""
        with self._lock:
            window = feedback.window or self._configured_window
            usable = math.isfinite(window) and 0 < window <= MAX_WINDOW
            maximum = feedback.maximum
            if usable and maximum is not None and 0 < maximum <= MAX_REQUESTS:
                self._adopt(maximum, window)
            if feedback.remaining == 0 and feedback.window and usable:
                self._forget_old(now)
                if self._used(now, self.window) < self.requests:
                    # The vendor counted requests we did not send (another process, or
                    # a smaller budget): wait out a whole window. When our own count is
                    # full, it already holds the next request until the window passed.
                    self._paused_until = max(self._paused_until, now + feedback.window)

    def _adopt(self, requests: int, per_seconds: float) -> None:
        """Enforce ``requests`` per ``per_seconds`` too, dropping any budget that another
        one already implies (so the list stays short and nothing is ever loosened)."""
        candidate = (requests, per_seconds * (1 + self.margin), float(per_seconds))
        budgets = [*self._budgets, candidate]
        self._budgets = [
            b
            for i, b in enumerate(budgets)
            if not any(
                _implies(o, b) and (o != b or j < i) for j, o in enumerate(budgets) if j != i
            )
        ]

    @property
    def paused_until(self) -> float:
        return self._paused_until

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}/{w:g}s" for n, w in self.budgets)
        return f"<SlidingWindowLimiter {shown}>"


def _implies(strict: tuple[int, float, float], other: tuple[int, float, float]) -> bool:
    """Whether obeying *strict* (n per window) guarantees obeying *other*.

    Within ``other``'s window, a rolling budget of n per w allows at most
    n * ceil(other_window / w) requests.
    """
    n, window, _ = strict
    other_n, other_window, _ = other
    if window >= other_window:
        return n <= other_n
    return n * math.ceil(other_window / window - 1e-9) <= other_n
