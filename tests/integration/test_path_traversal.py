"""Hostile ids stay one encoded path segment all the way to the vendor's status route."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from msgbridge import AdapterRegistry, MessageStatus, Outcome
from msgbridge.emulator import Emulator

from .support import api_requests, connection, open_runner, seed, status_path, vendor_value

pytestmark = pytest.mark.anyio

HOSTILE_IDS = ["../../oauth/token", "a/b?x=1", "..%2F..%2Foauth%2Ftoken", "#frag ment"]


@pytest.mark.parametrize("message_id", HOSTILE_IDS)
@pytest.mark.parametrize("vendor", ["highlevel", "hubspot"])
async def test_hostile_id_reaches_exactly_its_own_status_route(
    emu: Emulator, registry: AdapterRegistry, runner_kind: str, vendor: str, message_id: str
) -> None:
    seed(emu, vendor, message_id)
    seed(emu, vendor, "token")  # what a traversal would land on, if it escaped its segment
    async with open_runner(runner_kind, [connection(emu, vendor)], registry=registry) as runner:
        receipt = await runner.update_status(vendor, MessageStatus(message_id, "read"))

    assert receipt.outcome is Outcome.APPLIED
    assert receipt.subject_id == message_id
    (recorded,) = emu.requests
    assert recorded.route == "update_message_status"
    assert recorded.status == 200
    assert recorded.query == {}
    # One segment, percent-encoded: nothing of the id leaks into the path structure.
    prefix, _, rest = status_path(emu, vendor, "\0").partition("\0")
    assert recorded.path.startswith(prefix)
    assert recorded.path.endswith(rest)
    segment = recorded.path[len(prefix) : len(recorded.path) - len(rest)]
    assert "/" not in segment
    assert "?" not in segment
    assert "#" not in segment
    assert unquote(segment) == message_id
    # aiohttp's URL library may normalise "%3D" to "=" (same segment); httpx sends it as is.
    assert recorded.path in {
        status_path(emu, vendor, s) for s in (segment, segment.replace("%3D", "="))
    }
    # The vendor applied it to exactly that message, and nothing else was touched.
    assert emu.message(vendor, message_id).statuses == [vendor_value(vendor, receipt.state)]
    assert emu.message(vendor, "token").status is None
    assert emu.find_requests(route="oauth_token") == []
    assert [r for r in api_requests(emu) if "/oauth/" in r.path] == []
