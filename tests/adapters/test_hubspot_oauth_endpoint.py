"""HubSpot OAuth v1 is deprecated on 2027-02-16 (``hubspot.md`` §5): every token call
msgbridge makes must use the 2026-03 endpoint."""

from __future__ import annotations

from pathlib import Path

import msgbridge
from msgbridge.adapters.hubspot import HubSpotOAuth

SOURCE = Path(msgbridge.__file__).parent


def test_default_token_url_is_the_2026_03_endpoint() -> None:
    assert HubSpotOAuth.default_token_url == "https://api.hubapi.com/oauth/2026-03/token"


def test_no_client_code_builds_a_v1_token_url() -> None:
    # The emulator alone serves /oauth/v1/token, as HubSpot does until the deprecation.
    offenders = [
        str(path.relative_to(SOURCE))
        for path in SOURCE.rglob("*.py")
        if "emulator" not in path.parts and "oauth/v1" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
