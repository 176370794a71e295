"""The state guard: never send a stale or duplicate status for a message.

Vendors do not document ordering rules (HighLevel, HubSpot), so carrier callbacks that
arrive out of order would regress a message from ``read`` to ``delivered``. The guard
remembers the last applied state per (connection, message) in a bounded LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol, runtime_checkable

from msgbridge.model import DeliveryState, Outcome

__all__ = ["Guard", "StateGuard", "verdict"]


@runtime_checkable
class Guard(Protocol):
    """What the bridge needs of a guard; the outbox persists one in its database."""

    def check(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> Outcome | None: ...

    def record(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> None:
        """Remember an applied state; must never move a message to a state that may not
        follow the one it holds."""

    def last(self, connection: str, message_id: str) -> DeliveryState | None: ...

    def forget(self, connection: str) -> None: ...


def verdict(
    previous: tuple[DeliveryState, str] | None, state: DeliveryState, vendor_value: str
) -> Outcome | None:
    """The guard's rule, for any storage: stale, duplicate, or news (``None``)."""
    if previous is None:
        return None
    last_state, last_value = previous
    if not state.may_follow(last_state):
        return Outcome.SKIPPED_STALE
    if vendor_value == last_value:
        return Outcome.SKIPPED_DUPLICATE
    return None


class StateGuard:
    """Bounded memory of applied states; the oldest entries are forgotten first."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._applied: OrderedDict[tuple[str, str], tuple[DeliveryState, str]] = OrderedDict()
        self._lock = threading.Lock()

    def check(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> Outcome | None:
        """``SKIPPED_STALE``/``SKIPPED_DUPLICATE`` if the update is not news, else ``None``."""
        with self._lock:
            previous = self._applied.get((connection, message_id))
        return verdict(previous, state, vendor_value)

    def record(
        self, connection: str, message_id: str, state: DeliveryState, vendor_value: str
    ) -> None:
        """Remember *state* as applied; never moves a message backwards (monotonic)."""
        key = (connection, message_id)
        with self._lock:
            previous = self._applied.get(key)
            if previous is None or state.may_follow(previous[0]):
                self._applied[key] = (state, vendor_value)
            self._applied.move_to_end(key)
            while len(self._applied) > self.max_entries:
                self._applied.popitem(last=False)

    def last(self, connection: str, message_id: str) -> DeliveryState | None:
        with self._lock:
            previous = self._applied.get((connection, message_id))
        return previous[0] if previous else None

    def forget(self, connection: str) -> None:
        """Drop what is known about one connection (it was removed)."""
        with self._lock:
            for key in [k for k in self._applied if k[0] == connection]:
                del self._applied[key]

    def __len__(self) -> int:
        return len(self._applied)
