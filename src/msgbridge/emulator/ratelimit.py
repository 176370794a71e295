"""Per-account request budgets, like the vendors' per-location / per-portal limits.

Windows are **sliding logs** (true rolling windows, as some vendors' "rolling" policy
names say): each account keeps the arrival times of its last ``max_requests`` accepted
requests; a request is refused while ``max_requests`` arrived within the last
``interval`` seconds. Pruning is amortised O(1) and memory is bounded by the budget.
The daily budget is a fixed window that resets at midnight UTC (vendors either do not
say which midnight or use the account's time zone, which the emulator does not model).
Refused requests do not consume budget.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["RateLimit", "RateLimiter", "Verdict"]

DAY = 86_400.0


@dataclass(frozen=True)
class RateLimit:
    """A budget: ``max_requests`` per ``interval`` seconds, optional daily/secondly caps."""

    max_requests: int = 100
    interval: float = 10.0
    daily: int | None = None
    #: Per-second cap (a burst limit some vendors add to the windowed one).
    secondly: int | None = None

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.interval <= 0:
            raise ValueError("max_requests must be >= 1 and interval > 0")
        if self.daily is not None and self.daily < 1:
            raise ValueError("daily must be >= 1 or None")
        if self.secondly is not None and self.secondly < 1:
            raise ValueError("secondly must be >= 1 or None")


class Verdict(NamedTuple):
    """The outcome of one check, with what the rate-limit headers report."""

    allowed: bool
    limit: RateLimit
    remaining: int
    daily_remaining: int | None
    secondly_remaining: int | None
    #: Which window refused the request: ``"interval"``, ``"daily"`` or ``"secondly"``.
    policy: str | None = None
    #: Seconds until the refusing window frees a slot (0 when allowed).
    retry_in: float = 0.0

    @property
    def retry_after(self) -> int:
        """``retry_in`` rounded up to whole seconds, at least 1 (for a ``Retry-After``)."""
        return max(1, math.ceil(self.retry_in))


class _Window:
    __slots__ = ("burst", "day", "day_count", "second")

    def __init__(self) -> None:
        self.burst: deque[float] = deque()
        self.second: deque[float] = deque()
        self.day = -1
        self.day_count = 0


class RateLimiter:
    """Budgets per account; ``None`` as a budget means unlimited."""

    def __init__(self, default: RateLimit | None, *, enabled: bool = True) -> None:
        self.default = default
        self.enabled = enabled
        self._per_account: dict[str, RateLimit | None] = {}
        self._windows: dict[str, _Window] = {}

    def set_limit(self, limit: RateLimit | None, account: str | None = None) -> None:
        """Set the vendor default (``account=None``) or one account's budget."""
        if account is None:
            self.default = limit
        else:
            self._per_account[account] = limit

    def limit_for(self, account: str) -> RateLimit | None:
        if not self.enabled:
            return None
        return self._per_account.get(account, self.default)

    def check(self, account: str, now: float, wall: float) -> Verdict | None:
        """Count one request for *account*; ``None`` when it has no budget at all."""
        if not self.enabled:
            return None
        limit = self._per_account.get(account, self.default)
        if limit is None:
            return None
        window = self._windows.get(account)
        if window is None:
            window = self._windows[account] = _Window()
        burst = window.burst
        horizon = now - limit.interval
        while burst and burst[0] <= horizon:
            burst.popleft()
        second = window.second
        if limit.secondly is not None:
            while second and second[0] <= now - 1.0:
                second.popleft()
        day = int(wall // DAY)
        if day != window.day:
            window.day = day
            window.day_count = 0

        policy: str | None = None
        retry_in = 0.0
        if limit.daily is not None and window.day_count >= limit.daily:
            policy, retry_in = "daily", (day + 1) * DAY - wall
        elif len(burst) >= limit.max_requests:
            policy, retry_in = "interval", burst[0] + limit.interval - now
        elif limit.secondly is not None and len(second) >= limit.secondly:
            policy, retry_in = "secondly", second[0] + 1.0 - now
        if policy is None:
            burst.append(now)
            if limit.secondly is not None:
                second.append(now)
            window.day_count += 1
        return Verdict(
            allowed=policy is None,
            limit=limit,
            remaining=max(0, limit.max_requests - len(burst)),
            daily_remaining=None if limit.daily is None else limit.daily - window.day_count,
            secondly_remaining=(
                None if limit.secondly is None else max(0, limit.secondly - len(second))
            ),
            policy=policy,
            retry_in=max(0.0, retry_in),
        )

    def reset(self, default: RateLimit | None, *, enabled: bool) -> None:
        self.default = default
        self.enabled = enabled
        self._per_account.clear()
        self._windows.clear()
