"""Precompiled routes: a vendor declares ``Route("PUT", "/a/{id}/b", handler, name)``.

Matching is one dict lookup for literal paths and a handful of precompiled regexes for
parameterised ones, on the raw path, so an encoded ``/`` (``%2F``) inside an id stays
inside that id instead of splitting it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from msgbridge.emulator.http import EmulatorRequest, EmulatorResponse

__all__ = ["Handler", "Route", "Router"]

Handler = Callable[[EmulatorRequest], EmulatorResponse]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Route:
    """One endpoint. ``name`` scopes faults (``route="update_message_status"``) and records.

    Handlers are synchronous and run under the vendor's lock; they answer with an
    :class:`EmulatorResponse` or raise :class:`~msgbridge.emulator.http.Reject`.
    """

    method: str
    pattern: str
    handler: Handler
    name: str

    def __post_init__(self) -> None:
        if not self.pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {self.pattern!r}")


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        self._static: dict[tuple[str, str], Route] = {}
        self._dynamic: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        self._all_paths: list[tuple[re.Pattern[str], str]] = []
        for route in self.routes:
            method = route.method.upper()
            regex = self._compile(route.pattern)
            self._all_paths.append((regex, method))
            if _PARAM.search(route.pattern) is None:
                key = (method, route.pattern)
                if key in self._static:
                    raise ValueError(f"duplicate route {method} {route.pattern}")
                self._static[key] = route
            else:
                self._dynamic.setdefault(method, []).append((regex, route))

    @staticmethod
    def _compile(pattern: str) -> re.Pattern[str]:
        parts: list[str] = []
        last = 0
        for m in _PARAM.finditer(pattern):
            parts.append(re.escape(pattern[last : m.start()]))
            parts.append(f"(?P<{m.group(1)}>[^/]+)")
            last = m.end()
        parts.append(re.escape(pattern[last:]))
        return re.compile("^" + "".join(parts) + "$")

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for *method* and raw *path*, with its decoded parameters."""
        route = self._static.get((method, path))
        if route is not None:
            return route, {}
        for regex, candidate in self._dynamic.get(method, ()):
            m = regex.match(path)
            if m is not None:
                return candidate, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def allowed_methods(self, path: str) -> list[str]:
        """Methods that *path* would match (for a 405 on a miss); slow path only."""
        return sorted({method for regex, method in self._all_paths if regex.match(path)})
