"""How long to wait before trying again, and when to stop."""

from __future__ import annotations

import random

import attrs

from msgbridge.errors import ConfigurationError, MessagingError

__all__ = ["RetryPolicy"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ConfigurationError(f"{attribute.name} must be zero or more", key=attribute.name)


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter, a bounded number of attempts and a deadline.

    A vendor's own wait (``Retry-After``, rate-limit headers, HighLevel's provider race)
    wins over the computed backoff. Waits longer than ``max_retry_after`` or past the
    ``deadline`` are not waited for: the error is raised instead.
    """

    max_attempts: int = attrs.field(default=5)
    initial_backoff: float = attrs.field(default=0.5, validator=_positive)
    max_backoff: float = attrs.field(default=30.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    #: Fraction of each backoff that is random (0 = none, 1 = "full jitter").
    jitter: float = attrs.field(default=0.5)
    #: Seconds from the first attempt after which no new attempt starts.
    deadline: float = attrs.field(default=60.0, validator=_positive)
    max_retry_after: float = attrs.field(default=60.0, validator=_positive)

    @jitter.validator
    def _check_jitter(self, _: attrs.Attribute[float], value: float) -> None:
        if not 0 <= value <= 1:
            raise ConfigurationError(
                f"jitter is the random fraction of each backoff: 0 to 1, got {value}", key="jitter"
            )

    @max_attempts.validator
    def _check_attempts(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ConfigurationError("max_attempts must be at least 1", key="max_attempts")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """The wait before retry *retry_number* (1 for the first retry)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry_number - 1))
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
