"""The ``/_emulator`` control endpoint: the Python API over JSON, for out-of-process users.

=======  ==================================  =============================================
GET      /_emulator/state                    every vendor's settings and state
GET      /_emulator/requests?vendor=&route=  recorded requests (``&method= &status=
                                             &account= &limit=``)
DELETE   /_emulator/requests                 forget recorded requests
GET      /_emulator/messages/{vendor}/{id}   one message with its history
GET      /_emulator/conversations/{v}/{id}   one conversation with its history
POST     /_emulator/reset                    back to the configured baseline
POST     /_emulator/seed                     ``{"tokens": [...], "oauth_clients": [...],
                                             "messages": [...], "conversations": [...]}``
GET      /_emulator/faults                   active fault rules
POST     /_emulator/faults                   ``{"kind": "script"|"error"|"latency"|"drop", ...}``
DELETE   /_emulator/faults[/{id}]            remove all rules / one rule
POST     /_emulator/config                   ``{"vendor": ..., <VendorSettings fields>,
                                             "rate_limit": {...}|null, "account": ...}``
POST     /_emulator/clock                    ``{"advance": seconds}`` (adjustable clocks only)
=======  ==================================  =============================================

Errors are ``{"error": "..."}``. Raw tokens are accepted when seeding but never returned.
Control requests are not recorded.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from msgbridge.emulator.faults import FaultRule
from msgbridge.emulator.ratelimit import RateLimit

if TYPE_CHECKING:
    from msgbridge.emulator.emulator import Emulator

__all__ = ["ControlPlane"]

_SETTINGS_FIELDS = frozenset(
    {
        "unknown_messages",
        "rate_limits_enabled",
        "retry_after",
        "provider_race",
        "access_token_ttl",
        "rotate_refresh_tokens",
        "history_limit",
    }
)


_MESSAGE_KEYS = frozenset(
    {
        "vendor",
        "id",
        "account",
        "channel_id",
        "conversation_id",
        "status",
        "provider_ready_after",
        "email_message_id",
    }
)


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ControlError(400, f"{what} must be a JSON object")
    return value


def _list(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise ControlError(400, f"{key} must be a list")
    return [_object(item, f"each item of {key}") for item in items]


def _rate_limit(value: Any) -> RateLimit | None:
    if value is None:
        return None
    spec = _object(value, "rate_limit")
    unknown = set(spec) - {"max_requests", "interval", "daily", "secondly"}
    if unknown:
        raise ControlError(400, f"unknown rate_limit keys: {', '.join(sorted(unknown))}")
    return RateLimit(**spec)


class ControlPlane:
    def __init__(self, emulator: Emulator) -> None:
        self._emu = emulator

    def handle(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        try:
            data: Any = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "the body must be JSON"}
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        params = dict(parse_qsl(query))
        try:
            return self._dispatch(method, parts, params, data)
        except ControlError as exc:
            return exc.status, {"error": str(exc)}
        except KeyError as exc:
            return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
        except (TypeError, ValueError) as exc:
            return 400, {"error": str(exc)}

    def _dispatch(
        self, method: str, parts: list[str], params: dict[str, str], data: Any
    ) -> tuple[int, Any]:
        emu = self._emu
        head = parts[0] if parts else ""
        if method == "GET" and parts == ["state"]:
            return 200, emu.snapshot()
        if head == "requests" and len(parts) == 1:
            if method == "DELETE":
                emu.clear_requests()
                return 200, {"cleared": True}
            if method == "GET":
                return 200, self._requests(params)
        if method == "GET" and head == "messages" and len(parts) == 3:
            return 200, emu.message(parts[1], parts[2]).to_dict()
        if method == "GET" and head == "conversations" and len(parts) == 3:
            return 200, emu.conversation(parts[1], parts[2]).to_dict()
        if method == "POST" and parts == ["reset"]:
            emu.reset()
            return 200, {"reset": True}
        if method == "POST" and parts == ["seed"]:
            return 200, self._seed(_object(data, "the body"))
        if head == "faults":
            return self._faults(method, parts, data)
        if method == "POST" and parts == ["config"]:
            return 200, self._config(_object(data, "the body"))
        if method == "POST" and parts == ["clock"]:
            return 200, self._clock(_object(data, "the body"))
        raise ControlError(404, f"no control endpoint {method} /_emulator/{'/'.join(parts)}")

    def _requests(self, params: dict[str, str]) -> list[dict[str, Any]]:
        status = params.get("status")
        limit = params.get("limit")
        records = self._emu.find_requests(
            vendor=params.get("vendor"),
            route=params.get("route"),
            method=params.get("method"),
            status=int(status) if status else None,
            account=params.get("account"),
        )
        if limit:
            records = records[-int(limit) :]
        return [record.to_dict() for record in records]

    def _seed(self, data: dict[str, Any]) -> dict[str, int]:
        emu = self._emu
        unknown = set(data) - {"tokens", "oauth_clients", "messages", "conversations"}
        if unknown:
            raise ControlError(400, f"unknown seed keys: {', '.join(sorted(unknown))}")
        tokens = _list(data, "tokens")
        clients = _list(data, "oauth_clients")
        messages = _list(data, "messages")
        conversations = _list(data, "conversations")
        for item in tokens:
            emu.add_token(
                item["vendor"],
                item["token"],
                account=item["account"],
                expires_in=item.get("expires_in"),
            )
        for item in clients:
            extra = _object(item.get("extra", {}), "extra")
            emu.add_oauth_client(
                item["vendor"],
                item["client_id"],
                item["client_secret"],
                item["refresh_token"],
                account=item["account"],
                **{str(k): str(v) for k, v in extra.items()},
            )
        for item in conversations:
            emu.seed_conversation(
                item["vendor"],
                item["id"],
                account=item["account"],
                contact_id=item.get("contact_id"),
                unread_count=item.get("unread_count", 0),
                starred=item.get("starred", False),
            )
        for item in messages:
            # Keys beyond the named ones are vendor attributes (e.g. text, created_by,
            # channel_account_id), as keyword arguments are in the Python API.
            attributes = {k: v for k, v in item.items() if k not in _MESSAGE_KEYS}
            emu.seed_message(
                item["vendor"],
                item["id"],
                account=item["account"],
                channel_id=item.get("channel_id"),
                conversation_id=item.get("conversation_id"),
                status=item.get("status"),
                provider_ready_after=item.get("provider_ready_after"),
                email_message_id=item.get("email_message_id"),
                **attributes,
            )
        return {
            "tokens": len(tokens),
            "oauth_clients": len(clients),
            "messages": len(messages),
            "conversations": len(conversations),
        }

    def _faults(self, method: str, parts: list[str], data: Any) -> tuple[int, Any]:
        faults = self._emu.faults
        if method == "GET" and len(parts) == 1:
            return 200, faults.describe()
        if method == "DELETE" and len(parts) == 1:
            faults.clear()
            return 200, {"cleared": True}
        if method == "DELETE" and len(parts) == 2:
            if not faults.remove(int(parts[1])):
                raise ControlError(404, f"no fault rule {parts[1]}")
            return 200, {"removed": int(parts[1])}
        if method == "POST" and len(parts) == 1:
            rule = self._add_fault(_object(data, "the body"))
            return 200, rule.describe()
        raise ControlError(404, "no such faults endpoint")

    def _add_fault(self, spec: dict[str, Any]) -> FaultRule:
        faults = self._emu.faults
        kind = spec.get("kind")
        scope = {"vendor": spec.get("vendor"), "route": spec.get("route")}
        if kind == "script":
            return faults.script(spec["steps"], **scope)
        if kind == "error":
            return faults.error_rate(
                spec.get("rate", 1.0),
                spec.get("statuses", faults.DEFAULT_STATUSES),
                count=spec.get("count"),
                **scope,
            )
        if kind == "latency":
            return faults.latency(
                spec["seconds"],
                rate=spec.get("rate", 1.0),
                count=spec.get("count"),
                after=bool(spec.get("after", False)),
                **scope,
            )
        if kind == "drop":
            return faults.drop(
                rate=spec.get("rate", 1.0),
                count=spec.get("count"),
                after=bool(spec.get("after", False)),
                **scope,
            )
        raise ControlError(400, "kind must be one of: script, error, latency, drop")

    def _config(self, data: dict[str, Any]) -> dict[str, Any]:
        emu = self._emu
        vendor = data.get("vendor")
        if not isinstance(vendor, str):
            raise ControlError(400, "config needs a vendor name")
        unknown = set(data) - _SETTINGS_FIELDS - {"vendor", "rate_limit", "account"}
        if unknown:
            raise ControlError(400, f"unknown config keys: {', '.join(sorted(unknown))}")
        changes = {k: v for k, v in data.items() if k in _SETTINGS_FIELDS}
        if changes:
            emu.configure(vendor, **changes)
        if "rate_limit" in data:
            emu.set_rate_limit(vendor, _rate_limit(data["rate_limit"]), account=data.get("account"))
        state: dict[str, Any] = emu.vendor(vendor).snapshot()["settings"]
        return state

    def _clock(self, data: dict[str, Any]) -> dict[str, float]:
        clock = self._emu.clock
        advance = getattr(clock, "advance", None)
        if advance is None:
            raise ControlError(409, f"the emulator's clock ({clock!r}) cannot be moved")
        seconds = data.get("advance")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise ControlError(400, "advance must be a number of seconds")
        advance(float(seconds))
        return {"time": clock.time(), "monotonic": clock.monotonic()}
