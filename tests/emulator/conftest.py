"""Shared fixtures: one emulator server per session on a ManualClock, reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from msgbridge.emulator import Emulator, EmulatorConfig, ManualClock

HL_VERSION = {"highlevel": "2021-04-15", "leadway": "2021-07-28", "hoop": "2021-04-15"}


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(demo=True), clock=ManualClock()) as emulator:
        yield emulator


@pytest.fixture
def emu(_emulator_server: Emulator) -> Emulator:
    _emulator_server.reset()
    return _emulator_server


@pytest.fixture
def clock(emu: Emulator) -> ManualClock:
    assert isinstance(emu.clock, ManualClock)
    return emu.clock


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


class Api:
    """Small helpers to call the emulated endpoints the way a client would."""

    def __init__(self, emu: Emulator, http: httpx.Client) -> None:
        self.emu = emu
        self.http = http

    def hl_headers(
        self, vendor: str = "highlevel", *, token: str | None = None, version: str | None = None
    ) -> dict[str, str]:
        headers = {"Version": version or HL_VERSION[vendor]}
        headers["Authorization"] = f"Bearer {token or f'demo-{vendor}-token'}"
        return headers

    def hl_status(
        self,
        message_id: str,
        body: Any,
        *,
        vendor: str = "highlevel",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.put(
            f"{self.emu.base_url(vendor)}/conversations/messages/{message_id}/status",
            json=body,
            headers=headers if headers is not None else self.hl_headers(vendor),
        )

    def hl_conversation(
        self, conversation_id: str, body: Any, *, vendor: str = "highlevel"
    ) -> httpx.Response:
        return self.http.put(
            f"{self.emu.base_url(vendor)}/conversations/{conversation_id}",
            json=body,
            headers=self.hl_headers(vendor),
        )

    def hs_patch(
        self,
        message_id: str,
        body: Any,
        *,
        channel: str | int = 1000,
        version: str = "2026-03",
        token: str | None = "demo-hubspot-token",  # noqa: S107
    ) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.http.patch(
            self.hs_url(message_id, channel, version), json=body, headers=headers
        )

    def hs_url(self, message_id: str, channel: str | int = 1000, version: str = "2026-03") -> str:
        base = self.emu.base_url("hubspot")
        if version == "v3":
            return f"{base}/conversations/v3/custom-channels/{channel}/messages/{message_id}"
        return f"{base}/conversations/custom-channels/{version}/{channel}/messages/{message_id}"


@pytest.fixture
def api(emu: Emulator, http: httpx.Client) -> Api:
    return Api(emu, http)


def without_trace(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("traceId", "correlationId")}


@pytest.fixture
def strip_ids() -> Any:
    return without_trace
