"""Fault injection: scripted outcomes, random errors, latency and dropped connections.

Rules are scoped to a vendor and/or a route name (``None`` = any) and evaluated per
request in this order:

1. the first matching **script** with steps left consumes one step (a status code, ``"drop"``,
   or ``None``/``200`` for "answer normally");
2. otherwise the first matching **error** or **drop** rule that fires (``rate``, drawn from
   one seeded :class:`random.Random`, so a run is reproducible for a given request order);
3. every matching **latency** rule that fires adds its delay.

Injected statuses are answered by the vendor in its own error-body shape, before auth and
state (like a gateway failing), unless a rule says ``after=True``: then the vendor applies
the request first and the delay or drop hits the answer (the "did it go through?" case).
A drop sends a response whose declared Content-Length exceeds the bytes sent, then closes
the connection: clients see a transport error (``httpx.RemoteProtocolError``).
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FaultInjector", "FaultPlan", "FaultRule", "ScriptStep"]

#: One scripted outcome: a status code (200 = normal answer), ``"drop"``, or ``None`` (normal).
ScriptStep = int | Literal["drop"] | None

FaultKind = Literal["script", "error", "drop", "latency"]


@dataclass(eq=False)
class FaultRule:
    kind: FaultKind
    vendor: str | None = None
    route: str | None = None
    rate: float = 1.0
    statuses: tuple[int, ...] = ()
    latency: float = 0.0
    after: bool = False
    #: How many more times the rule may fire (``None`` = unlimited); removed at 0.
    remaining: int | None = None
    script: deque[ScriptStep] = field(default_factory=deque)
    id: int = 0

    def matches(self, vendor: str, route: str | None) -> bool:
        return (self.vendor is None or self.vendor == vendor) and (
            self.route is None or self.route == route
        )

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "vendor": self.vendor,
            "route": self.route,
            "rate": self.rate,
            "statuses": list(self.statuses),
            "latency": self.latency,
            "after": self.after,
            "remaining": self.remaining,
            "script": list(self.script),
        }


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one request."""

    status: int | None = None
    drop: bool = False
    drop_after: bool = False
    delay: float = 0.0
    delay_after: float = 0.0

    @property
    def label(self) -> str | None:
        parts = []
        if self.status is not None:
            parts.append(f"status:{self.status}")
        if self.drop or self.drop_after:
            parts.append("drop" + (":after" if self.drop_after else ""))
        if self.delay:
            parts.append(f"latency:{self.delay:g}")
        if self.delay_after:
            parts.append(f"latency:{self.delay_after:g}:after")
        return ",".join(parts) or None


def _check_status(status: int) -> int:
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise ValueError(f"an injected status must be an int in 200..599, got {status!r}")
    return status


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within 0..1, got {rate!r}")
    return float(rate)


class FaultInjector:
    """The emulator's fault rules (``emu.faults``). Thread-safe."""

    DEFAULT_STATUSES = (500, 502, 503, 504)

    def __init__(self, seed: int | None = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not crypto
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        #: Fast-path flag read without the lock by the request pipeline.
        self.active = False

    # -- adding rules --------------------------------------------------------------------
    def script(
        self,
        steps: Iterable[ScriptStep],
        *,
        vendor: str | None = None,
        route: str | None = None,
    ) -> FaultRule:
        """The next matching requests get these outcomes in order, e.g. ``[503, 503, 200]``."""
        checked: deque[ScriptStep] = deque()
        for step in steps:
            if step is None or step == "drop":
                checked.append(step)
            else:
                checked.append(_check_status(step))
        if not checked:
            raise ValueError("a script needs at least one step")
        return self._add(FaultRule("script", vendor, route, script=checked))

    def error_rate(
        self,
        rate: float,
        statuses: Iterable[int] = DEFAULT_STATUSES,
        *,
        vendor: str | None = None,
        route: str | None = None,
        count: int | None = None,
    ) -> FaultRule:
        """Answer a fraction *rate* of matching requests with one of *statuses* (at random)."""
        codes = tuple(_check_status(s) for s in statuses)
        if not codes:
            raise ValueError("statuses cannot be empty")
        return self._add(
            FaultRule(
                "error", vendor, route, rate=_check_rate(rate), statuses=codes, remaining=count
            )
        )

    def fail_next(
        self,
        status: int = 503,
        times: int = 1,
        *,
        vendor: str | None = None,
        route: str | None = None,
    ) -> FaultRule:
        """Shorthand: the next *times* matching requests get *status*."""
        return self.script([status] * times, vendor=vendor, route=route)

    def latency(
        self,
        seconds: float,
        *,
        rate: float = 1.0,
        vendor: str | None = None,
        route: str | None = None,
        count: int | None = None,
        after: bool = False,
    ) -> FaultRule:
        """Delay matching requests by *seconds* (``after=True``: apply first, then delay)."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        return self._add(
            FaultRule(
                "latency",
                vendor,
                route,
                rate=_check_rate(rate),
                latency=float(seconds),
                after=after,
                remaining=count,
            )
        )

    def drop(
        self,
        *,
        rate: float = 1.0,
        vendor: str | None = None,
        route: str | None = None,
        count: int | None = None,
        after: bool = False,
    ) -> FaultRule:
        """Cut the connection mid-response (``after=True``: the update is applied first)."""
        return self._add(
            FaultRule("drop", vendor, route, rate=_check_rate(rate), after=after, remaining=count)
        )

    def _add(self, rule: FaultRule) -> FaultRule:
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError("count must be >= 1 or None")
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
            self.active = True
        return rule

    # -- managing ------------------------------------------------------------------------
    def remove(self, rule: FaultRule | int) -> bool:
        rule_id = rule if isinstance(rule, int) else rule.id
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            self.active = bool(self._rules)
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules = []
            self.active = False

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._seed = seed
            self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not crypto

    def reset(self) -> None:
        """No rules, and the RNG back to its seed (so a reset run repeats exactly)."""
        with self._lock:
            self._rules = []
            self.active = False
            self._rng = random.Random(self._seed)  # noqa: S311

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        with self._lock:
            return tuple(self._rules)

    # -- deciding ------------------------------------------------------------------------
    def plan(self, vendor: str, route: str | None) -> FaultPlan | None:
        """Decide the faults for one request (consumes script steps and counts)."""
        with self._lock:
            status: int | None = None
            drop = drop_after = False
            delay = delay_after = 0.0
            decided = False
            spent: list[FaultRule] = []
            for rule in self._rules:
                if rule.kind != "script" or not rule.matches(vendor, route):
                    continue
                step = rule.script.popleft()
                if not rule.script:
                    spent.append(rule)
                decided = True
                if step == "drop":
                    drop = True
                elif step is not None and step != 200:
                    status = step
                break
            for rule in self._rules:
                if rule.kind == "script" or not rule.matches(vendor, route):
                    continue
                if rule.kind != "latency" and decided:
                    continue
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                if rule.kind == "error":
                    status = rule.statuses[self._rng.randrange(len(rule.statuses))]
                    decided = True
                elif rule.kind == "drop":
                    if rule.after:
                        drop_after = True
                    else:
                        drop = True
                    decided = True
                elif rule.after:
                    delay_after += rule.latency
                else:
                    delay += rule.latency
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        spent.append(rule)
            if spent:
                self._rules = [r for r in self._rules if r not in spent]
                self.active = bool(self._rules)
            if status is None and not (drop or drop_after) and not (delay or delay_after):
                return None
            return FaultPlan(status, drop, drop_after, delay, delay_after)

    def describe(self) -> list[dict[str, object]]:
        return [rule.describe() for rule in self.rules]
