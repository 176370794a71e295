"""``msgbridge webhook verify``: a captured request checked against a key or secret."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .conftest import Cli

BODY = json.dumps(
    {"type": "SMS", "messageId": "cli-1", "locationId": "L", "message": "hi"}
).encode()


def _key() -> tuple[ed25519.Ed25519PrivateKey, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(der).decode()


def test_highlevel_request_verifies(bare_cli: Cli, tmp_path: Path) -> None:
    key, public = _key()
    (tmp_path / "body.json").write_bytes(BODY)
    signature = base64.b64encode(key.sign(BODY)).decode()
    data = bare_cli.json(
        "webhook",
        "verify",
        "-a",
        "highlevel",
        "--body",
        "body.json",
        "-H",
        f"X-GHL-Signature: {signature}",
        "-o",
        f"public_key={public}",
    )
    assert data["verified"] is True
    assert data["event"]["dedup_key"] == "message:cli-1"
    assert data["event"]["outbound"]["text"] == "hi"


def test_forged_reserialised_or_unsigned_requests_are_refused_with_the_reason(
    bare_cli: Cli, tmp_path: Path
) -> None:
    key, public = _key()
    signature = base64.b64encode(key.sign(BODY)).decode()
    (tmp_path / "reserialised.json").write_bytes(json.dumps(json.loads(BODY), indent=2).encode())
    data = bare_cli.json(
        "webhook",
        "verify",
        "-a",
        "highlevel",
        "--body",
        "reserialised.json",
        "-H",
        f"X-GHL-Signature: {signature}",
        "-o",
        f"public_key={public}",
        code=1,
    )
    assert (data["status"], data["error"]) == (401, "SignatureInvalid")
    assert "re-serialised" in data["reason"]
    (tmp_path / "body.json").write_bytes(BODY)
    result = bare_cli(
        "webhook", "verify", "-a", "highlevel", "--body", "body.json", "-o", f"public_key={public}"
    )
    assert result.exit_code == 1
    assert "SignatureMissing" in result.stdout


def test_hubspot_secret_from_the_environment_and_capture_time(
    bare_cli: Cli, tmp_path: Path
) -> None:
    url = "https://hooks.example.com/hs"
    captured = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.timezone.utc)
    stamp = str(int(captured.timestamp() * 1000))
    mac = hmac.new(b"s3cret", b"POST" + url.encode() + BODY + stamp.encode(), hashlib.sha256)
    headers = tmp_path / "headers.txt"
    headers.write_text(
        f"X-HubSpot-Signature-v3: {base64.b64encode(mac.digest()).decode()}\n"
        f"X-HubSpot-Request-Timestamp: {stamp}\n"
    )
    (tmp_path / "body.json").write_bytes(json.dumps({"type": "CHANNEL_ACCOUNT_CREATED"}).encode())
    args = [
        "webhook",
        "verify",
        "-a",
        "hubspot",
        "--body",
        "body.json",
        "--headers-file",
        str(headers),
        "-o",
        f"public_url={url}",
        "--option-env",
        "client_secret=HS_SECRET",
    ]
    # Signed over another body: refused. Then the right body, as of the capture time.
    stale = bare_cli.json(*args, code=1, HS_SECRET="s3cret")
    assert stale["error"] in {"WebhookExpired", "SignatureInvalid"}
    (tmp_path / "body.json").write_bytes(BODY)
    now = bare_cli.json(*args, code=1, HS_SECRET="s3cret")
    assert now["error"] == "WebhookExpired"  # captured a month ago
    ok = bare_cli.json(*args, "--at", "2026-11-01T09:31:00Z", code=1, HS_SECRET="s3cret")
    assert ok["error"] == "MalformedWebhook"  # verified; the body is not a HubSpot event
    result = bare_cli(*args, HS_SECRET="s3cret")
    assert "s3cret" not in result.stdout
    missing = bare_cli(*args)
    assert missing.exit_code == 3
