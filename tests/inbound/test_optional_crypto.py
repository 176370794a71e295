"""The core imports without the ``webhooks`` extra; verifiers that need it say so."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_core_and_inbound_import_without_cryptography() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["cryptography"] = None        # as if the extra were not installed
        import msgbridge, msgbridge.inbound, msgbridge.adapters.highlevel
        import msgbridge.adapters.hubspot, msgbridge.adapters.highlevel_webhooks
        from msgbridge.adapters.hubspot_webhooks import HubSpotWebhookVerifier
        HubSpotWebhookVerifier(client_secret="s", public_url="https://h.example/x")  # HMAC: fine
        from msgbridge.errors import ConfigurationError
        from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
        try:
            HighLevelWebhookVerifier()
        except ConfigurationError as exc:
            assert "msgbridge[webhooks]" in exc.message, exc.message
        else:
            raise SystemExit("expected a ConfigurationError naming the extra")
        assert "cryptography.hazmat" not in sys.modules
        print("ok")
        """
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
