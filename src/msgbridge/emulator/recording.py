"""Every request, recorded with its secrets masked before it is stored.

Masking happens at record time, not at read time, so a raw token or client secret is
never held by a record (it exists only in the token store). The buffer is a ring
(``limit`` most recent) so a long benchmark does not grow memory without bound.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

__all__ = [
    "MASK",
    "SECRET_FIELDS",
    "SECRET_HEADERS",
    "RecordedRequest",
    "Recorder",
    "mask_headers",
    "mask_value",
]

MASK = "***"

#: Header names (lower-case) whose values are secrets.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "private-app",
    }
)

#: Body / query keys whose values are secrets (compared lower-case).
SECRET_FIELDS = frozenset(
    {
        "access_token",
        "accesstoken",
        "refresh_token",
        "refreshtoken",
        "client_secret",
        "clientsecret",
        "id_token",
        "password",
        "token",
        "hapikey",
        "api_key",
        "apikey",
    }
)


def _mask_header(name: str, value: str) -> str:
    if name in ("authorization", "proxy-authorization"):
        scheme, _, rest = value.partition(" ")
        return f"{scheme} {MASK}" if rest else MASK
    return MASK


def mask_headers(headers: Mapping[str, str], extra: frozenset[str] = frozenset()) -> dict[str, str]:
    """Mask well-known secret headers plus a vendor's own (``api_access_token``)."""
    masked = dict(headers)
    for name in (SECRET_HEADERS | extra).intersection(masked):
        masked[name] = _mask_header(name, masked[name])
    return masked


def mask_value(value: Any) -> Any:
    """*value* with secret keys masked at any depth; returned unchanged when clean."""
    if isinstance(value, dict):
        out: dict[str, Any] | None = None
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_FIELDS and item is not None:
                new: Any = MASK
            elif isinstance(item, (dict, list)):
                new = mask_value(item)
            else:
                continue
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out
    if isinstance(value, list):
        items = [mask_value(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def mask_query(query: str) -> dict[str, str]:
    if not query:
        return {}
    result: dict[str, str] = {}
    for key, item in parse_qsl(query, keep_blank_values=True):
        result[key] = MASK if key.lower() in SECRET_FIELDS else item
    return result


class RecordedRequest(NamedTuple):
    """One request as the emulator saw it (secrets masked) and what it answered.

    A named tuple: one is built per request, and it is the cheapest immutable record.
    """

    id: str
    at: float
    vendor: str | None
    route: str | None
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    status: int | None
    response: Any
    account: str | None
    #: ``None``, or what fault was injected: ``"status:503"``, ``"drop"``, ``"latency:0.05"``.
    fault: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "vendor": self.vendor,
            "route": self.route,
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "headers": dict(self.headers),
            "body": self.body,
            "status": self.status,
            "response": self.response,
            "account": self.account,
            "fault": self.fault,
        }


class Recorder:
    """Thread-safe ring buffer of :class:`RecordedRequest` (``limit=0`` records nothing)."""

    def __init__(self, limit: int | None = 10_000) -> None:
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0 or None (unbounded)")
        self.limit = limit
        self._lock = threading.Lock()
        self._items: deque[RecordedRequest] = deque(maxlen=limit)
        #: Requests seen since the last reset, recorded or not (the ring may have dropped some).
        self.total = 0

    @property
    def enabled(self) -> bool:
        return self.limit != 0

    def add(self, record: RecordedRequest) -> None:
        with self._lock:
            self._items.append(record)
            self.total += 1

    def count(self) -> None:
        with self._lock:
            self.total += 1

    def snapshot(self) -> tuple[RecordedRequest, ...]:
        with self._lock:
            return tuple(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.total = 0

    @staticmethod
    def select(
        records: Iterable[RecordedRequest],
        *,
        vendor: str | None = None,
        route: str | None = None,
        method: str | None = None,
        status: int | None = None,
        account: str | None = None,
        path_contains: str | None = None,
    ) -> list[RecordedRequest]:
        return [
            r
            for r in records
            if (vendor is None or r.vendor == vendor)
            and (route is None or r.route == route)
            and (method is None or r.method == method.upper())
            and (status is None or r.status == status)
            and (account is None or r.account == account)
            and (path_contains is None or path_contains in r.path)
        ]
