"""How long to wait before trying again, and when to stop."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import attrs

from msgbridge.errors import MessagingError
from msgbridge.validation import check_number

__all__ = ["RetryPolicy"]


#: Longest backoff or vendor wait a policy may ask for: one week.
MAX_WAIT = 7 * 24 * 3600.0
#: Largest deadline: about 31,700 years, i.e. "no deadline" (the outbox's own policy).
MAX_DEADLINE = 1e12
#: Most attempts a policy may make.
MAX_ATTEMPTS = 10_000


def _seconds(maximum: float) -> Callable[[object, attrs.Attribute[float], object], None]:
    def check(_: object, attribute: attrs.Attribute[float], value: object) -> None:
        check_number(value, key=attribute.name, minimum=0.0, maximum=maximum)

    return check


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter, a bounded number of attempts and a deadline.

    A vendor's own wait (``Retry-After``, rate-limit headers, HighLevel's provider race)
    wins over the computed backoff. Waits longer than ``max_retry_after`` or past the
    ``deadline`` are not waited for: the error is raised instead.

    Ranges (anything else, ``inf``, ``nan`` and booleans included, is a
    :class:`~msgbridge.errors.ConfigurationError` naming the field): ``max_attempts``
    1 to 10,000; ``initial_backoff``, ``max_backoff`` and ``max_retry_after`` 0 to one
    week (604,800 s); ``multiplier`` 0 to 1,000; ``jitter`` 0 to 1; ``deadline`` 0 to
    10**12 s (no deadline in practice).
    """

    max_attempts: int = attrs.field(default=5)
    initial_backoff: float = attrs.field(default=0.5, validator=_seconds(MAX_WAIT))
    max_backoff: float = attrs.field(default=30.0, validator=_seconds(MAX_WAIT))
    multiplier: float = attrs.field(default=2.0)
    #: Fraction of each backoff that is random (0 = none, 1 = "full jitter").
    jitter: float = attrs.field(default=0.5)
    #: Seconds from the first attempt after which no new attempt starts.
    deadline: float = attrs.field(default=60.0, validator=_seconds(MAX_DEADLINE))
    max_retry_after: float = attrs.field(default=60.0, validator=_seconds(MAX_WAIT))

    @multiplier.validator
    def _check_multiplier(self, _: attrs.Attribute[float], value: object) -> None:
        check_number(value, key="multiplier", minimum=0.0, maximum=1000.0)

    @jitter.validator
    def _check_jitter(self, _: attrs.Attribute[float], value: object) -> None:
        check_number(value, key="jitter", minimum=0.0, maximum=1.0)

    @max_attempts.validator
    def _check_attempts(self, _: attrs.Attribute[int], value: object) -> None:
        check_number(value, key="max_attempts", minimum=1, maximum=MAX_ATTEMPTS, integer=True)

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """The wait before retry *retry_number* (1 for the first retry)."""
        if self.initial_backoff == 0:
            return 0.0
        try:
            grown = self.initial_backoff * self.multiplier ** (retry_number - 1)
        except OverflowError:  # 2.0 ** 1024 on a policy with thousands of attempts
            grown = math.inf
        base = min(self.max_backoff, grown)
        return base * (1 - self.jitter) + base * self.jitter * rng.random()

    def delay(
        self, error: MessagingError, attempt: int, elapsed: float, rng: random.Random
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up now."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            wait = max(0.0, error.retry_after)
        else:
            wait = self.backoff(attempt, rng)
        if elapsed + wait > self.deadline:
            return None
        return wait

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt only."""
        return cls(max_attempts=1)
