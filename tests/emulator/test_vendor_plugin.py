"""A third-party vendor plugs in through the same interface as the built-ins."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from msgbridge.emulator import (
    EmulatedVendor,
    Emulator,
    EmulatorConfig,
    EmulatorRequest,
    EmulatorResponse,
    Reject,
    Route,
)


class Acme(EmulatedVendor):
    """``POST /v1/messages/{id}/status`` with ``{"state": ...}`` and ``X-Api-Key`` auth."""

    def __init__(self) -> None:
        super().__init__("acme")

    def routes(self) -> Sequence[Route]:
        return [Route("POST", "/v1/messages/{id}/status", self._status, "update_message_status")]

    def error_response(self, request, status, message=None):
        return EmulatorResponse(status, {"ok": False, "reason": message or str(status)})

    def _status(self, request: EmulatorRequest) -> EmulatorResponse:
        entry = self.tokens.get(request.headers.get("x-api-key", ""))
        if entry is None:
            raise Reject(self.error_response(request, 401, "bad key"))
        message = self.messages.get(request.params["id"])
        if message is None or message.account != entry.account:
            raise Reject(self.error_response(request, 404, "no such message"))
        body = request.json()
        self.messages.apply(
            message,
            body["state"],
            error=None,
            fields=body,
            wall=request.wall,
            request_id=request.request_id,
        )
        return EmulatorResponse(200, {"ok": True, "state": message.status})


def test_plugin_vendor_is_served_with_builtins():
    with Emulator(EmulatorConfig(demo=True), vendors=[Acme()]) as emu, httpx.Client() as http:
        assert set(emu.vendor_names) == {"highlevel", "leadway", "hoop", "hubspot", "acme"}
        emu.add_token("acme", "acme-key", account="a1")
        emu.seed_message("acme", "x1", account="a1")
        url = emu.base_url("acme") + "/v1/messages/x1/status"
        assert url.endswith("/acme/v1/messages/x1/status")
        ok = http.post(url, json={"state": "done"}, headers={"X-Api-Key": "acme-key"})
        assert ok.json() == {"ok": True, "state": "done"}
        assert http.post(url, json={"state": "done"}).status_code == 401
        emu.faults.fail_next(503, vendor="acme")
        injected = http.post(url, json={"state": "done"}, headers={"X-Api-Key": "acme-key"})
        assert injected.json() == {"ok": False, "reason": "503"}
        assert emu.message("acme", "x1").statuses == ["done"]
        record = emu.find_requests(vendor="acme")[0]
        assert record.headers["x-api-key"] == "***"
        emu.reset()
        with pytest.raises(KeyError):
            emu.message("acme", "x1")


def test_plugin_vendor_can_replace_a_builtin_and_names_must_be_unique():
    class MyHubSpot(Acme):
        def __init__(self) -> None:
            EmulatedVendor.__init__(self, "hubspot")

    emu = Emulator(vendors=[MyHubSpot()])
    assert isinstance(emu.vendor("hubspot"), MyHubSpot)
    with pytest.raises(ValueError, match="both named"):
        Emulator(vendors=[Acme(), Acme()])
    only = Emulator(vendors=[Acme()], builtins=False)
    assert only.vendor_names == ["acme"]
