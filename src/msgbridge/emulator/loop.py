"""How an emulated vendor plays the CRM in ``msgbridge demo``'s inbound loop.

The loop (users send messages in the emulated CRMs → signed webhooks → the product's
intake → a fake carrier → statuses and replies back) is vendor-neutral: everything a
vendor does differently — how its webhooks are signed and verified, what its events look
like, how a message is seeded, which connection settings publishing needs, what a
contact's reply looks like — is declared by the vendor's :class:`DemoLoop`, returned by
:meth:`~msgbridge.emulator.vendor.EmulatedVendor.demo_loop`. A plugin vendor that
returns one plays the loop exactly like a built-in.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from msgbridge.emulator.vendor import EmulatedVendor
    from msgbridge.inbound.model import IncomingMessage, OutboundRequest
    from msgbridge.inbound.verify import WebhookVerifier

__all__ = ["DemoLoop", "WebhookKind"]

#: ``genuine``: signed as the vendor would; ``forged``: signed with another key or
#: secret; ``replayed``: a correctly signed request captured long ago (stale timestamp).
WebhookKind = Literal["genuine", "forged", "replayed"]


class DemoLoop(abc.ABC):
    """One vendor's part of the inbound loop; a fresh instance per run (it may hold the
    run's webhook secret)."""

    #: The account (location, portal, ...) the loop's messages belong to; the loop's
    #: connection uses a token of this account (``EmulatedVendor.demo_connection``).
    account: str

    def connection_settings(self) -> dict[str, Any]:
        """Settings the loop's connection needs besides ``demo_connection``'s (e.g. the
        ids publishing a reply needs)."""
        return {}

    @abc.abstractmethod
    def verifier(self, public_url: str) -> WebhookVerifier:
        """The intake's verifier for this vendor's webhooks, posted to *public_url*."""

    @abc.abstractmethod
    def seed(self, vendor: EmulatedVendor, message_id: str, index: int) -> None:
        """Create the message a user sent in the CRM (so status updates can apply)."""

    @abc.abstractmethod
    def webhook(
        self, url: str, message_id: str, index: int, *, at: float, kind: WebhookKind
    ) -> tuple[bytes, dict[str, str]]:
        """Body and headers of the webhook announcing the message, sent at *at* (epoch
        seconds) to *url*."""

    def status_fields(self, outbound: OutboundRequest) -> dict[str, Any]:
        """Extra ``MessageStatus`` fields a status for *outbound* needs (e.g. a channel)."""
        return {}

    def reply(self, outbound: OutboundRequest) -> IncomingMessage | None:
        """The contact's reply to publish into the CRM, or ``None`` if the vendor's adapter
        does not publish incoming messages."""
        return None
