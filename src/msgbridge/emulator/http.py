"""The small request/response types vendor handlers see.

The emulator speaks raw ASGI (measured ~20% faster than Starlette for the status PUT) and
hands vendors these plain objects, so a plugin's emulated vendor depends on no web
framework, only on this module.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "EmulatorRequest",
    "EmulatorResponse",
    "InvalidBody",
    "Reject",
    "dump_json",
]

_UNSET: Any = object()


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the vendors send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class InvalidBody(ValueError):
    """The body is not the JSON or form it claims to be."""


class EmulatorRequest:
    """One HTTP request routed to a vendor.

    ``path`` is the raw (still percent-encoded) path *below* the vendor prefix; ``params``
    holds the decoded path parameters of the matched route. Handlers may set ``account``
    (recorded with the request) and append to ``response_headers`` (added to whatever
    response is sent, errors included; used for rate-limit headers).
    """

    __slots__ = (
        "_form",
        "_json",
        "account",
        "body",
        "headers",
        "method",
        "now",
        "params",
        "path",
        "query",
        "request_id",
        "response_headers",
        "route",
        "wall",
    )

    def __init__(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        *,
        query: str = "",
        request_id: str = "",
        now: float = 0.0,
        wall: float = 0.0,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        #: Header names are lower-case (as ASGI delivers them); last value wins.
        self.headers = headers
        self.body = body
        self.request_id = request_id
        #: ``clock.monotonic()`` and ``clock.time()`` when the request arrived.
        self.now = now
        self.wall = wall
        self.params: dict[str, str] = {}
        self.route: str | None = None
        self.account: str | None = None
        self.response_headers: list[tuple[str, str]] = []
        self._json: Any = _UNSET
        self._form: dict[str, str] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-case (``""`` when absent)."""
        value = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`InvalidBody` when it is not JSON."""
        if self._json is _UNSET:
            if not self.body:
                raise InvalidBody("the request body is empty")
            try:
                self._json = json.loads(self.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidBody(f"the request body is not valid JSON: {exc}") from None
        return self._json

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (last value wins)."""
        if self._form is None:
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidBody("the form body is not UTF-8") from None
            self._form = dict(parse_qsl(text, keep_blank_values=True))
        return self._form

    def parsed_body(self) -> Any:
        """The body as recorded: JSON, form fields, or ``None`` (no/unparsable body)."""
        if not self.body:
            return None
        media = self.media_type
        try:
            if media == "application/x-www-form-urlencoded":
                return self.form()
            return self.json()
        except InvalidBody:
            return None

    def __repr__(self) -> str:
        return f"<EmulatorRequest {self.method} {self.path} id={self.request_id}>"


class EmulatorResponse:
    """A response: ``body`` is JSON-able (``None`` sends no body) or raw ``bytes``."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers: list[tuple[str, str]] = headers if headers is not None else []

    def __repr__(self) -> str:
        return f"<EmulatorResponse {self.status}>"


class Reject(Exception):
    """Raised by a handler to answer with *response* at once (auth, validation, limits)."""

    def __init__(self, response: EmulatorResponse) -> None:
        super().__init__(response.status)
        self.response = response
