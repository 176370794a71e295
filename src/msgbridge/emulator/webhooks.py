"""The emulator plays the CRM: it sends signed webhooks and accepts inbound publishes.

Sending (:class:`WebhookSender`): the emulated CRM POSTs a signed webhook to a registered
delivery URL, retrying on the statuses the vendor retries on. Each vendor signs its own
webhooks in its own module (``EmulatedVendor.demo_loop``); the Ed25519 **test key** the
emulator signs with is published here (:data:`EMULATOR_ED25519_PUBLIC_KEY`: configure an
intake's public key with it against the emulator; never trust it anywhere else).
Duplicates, retries, delays, forged signatures and replays of a stale request are
injectable, and time (``clock``/``sleep``) is injectable so tests never wait.

Receiving: a vendor that accepts inbound publishes stores them with
:func:`inbound_publishes`; they are shown in the emulator's state (``inbound``).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from msgbridge.emulator.http import EmulatorRequest, InvalidBody, Reject

if TYPE_CHECKING:
    from msgbridge.emulator.vendor import EmulatedVendor

__all__ = [
    "EMULATOR_ED25519_PUBLIC_KEY",
    "InboundPublish",
    "SentWebhook",
    "WebhookSender",
    "inbound_publishes",
    "json_body",
    "sign_ed25519",
]

#: Seed of the emulator's Ed25519 **test** key: public on purpose, so anyone can forge
#: "emulator" webhooks. Use :data:`EMULATOR_ED25519_PUBLIC_KEY` only against the emulator.
_TEST_SEED = hashlib.sha256(b"msgbridge emulator webhook test key v1").digest()
#: The emulator's published Ed25519 public key (SPKI DER, base64).
EMULATOR_ED25519_PUBLIC_KEY = "MCowBQYDK2VwAyEA2XJmuMhrzFeMy2rO91blHjhq6oSHPpAog1/RuNVwqQM="


def _private_key() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - only without the extra
        raise RuntimeError(
            "signing emulated Ed25519 webhooks needs 'cryptography': "
            "pip install 'msgbridge[webhooks]'"
        ) from None
    return ed25519.Ed25519PrivateKey.from_private_bytes(_TEST_SEED)


def sign_ed25519(body: bytes, *, forge: bool = False) -> str:
    """Base64 Ed25519 signature of *body* by the emulator's test key (``forge=True``: by
    a freshly generated key, which no verifier trusts)."""
    if forge:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = _private_key()
    return base64.b64encode(key.sign(body)).decode()


@dataclass
class SentWebhook:
    """One webhook the emulated CRM sent, and every answer it got (retries included)."""

    url: str
    body: bytes
    headers: dict[str, str]
    statuses: list[int] = field(default_factory=list)

    @property
    def final_status(self) -> int | None:
        return self.statuses[-1] if self.statuses else None


class WebhookSender:
    """POST signed webhooks to a delivery URL like the vendor would (sync, injectable time)."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retry_statuses: Sequence[int] = (429,),
        max_retries: int = 6,
        retry_delay: float = 600.0,
    ) -> None:
        self._client = client or httpx.Client(timeout=10.0)
        self._owns = client is None
        self.clock = clock
        self.sleep = sleep
        #: The default is a CRM that retries only on 429, about every 10 minutes, up to
        #: 6 times (what one documents for its platform webhooks).
        self.retry_statuses = frozenset(retry_statuses)
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.sent: list[SentWebhook] = []

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        duplicates: int = 0,
        delay: float = 0.0,
    ) -> SentWebhook:
        """Send once (after *delay*), retry on the retry statuses, then *duplicates* copies."""
        record = SentWebhook(url, body, dict(headers))
        if delay:
            self.sleep(delay)
        for copy in range(1 + duplicates):
            for attempt in range(self.max_retries + 1):
                try:
                    status = self._client.post(url, content=body, headers=dict(headers)).status_code
                except httpx.TransportError:
                    status = 0
                record.statuses.append(status)
                if status not in self.retry_statuses or attempt == self.max_retries:
                    break
                self.sleep(self.retry_delay)
            del copy
        self.sent.append(record)
        return record

    def close(self) -> None:
        if self._owns:
            self._client.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- receiving inbound publishes ---------------------------------------------------------


@dataclass
class InboundPublish:
    """A contact's message a provider published into the emulated CRM."""

    id: str
    account: str
    body: dict[str, Any]
    request_id: str
    wall: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "body": self.body,
            "request_id": self.request_id,
            "wall": self.wall,
        }


def inbound_publishes(vendor: EmulatedVendor) -> list[InboundPublish]:
    """The publishes *vendor* accepted (kept on the vendor object; cleared with a new one)."""
    store: list[InboundPublish] = vendor.__dict__.setdefault("_inbound_publishes", [])
    return store


def json_body(request: EmulatorRequest, bad: Callable[[str], Reject]) -> dict[str, Any]:
    """The request's JSON object, or *bad*'s rejection (in the vendor's voice)."""
    try:
        body = request.json()
    except InvalidBody as exc:
        raise bad(str(exc)) from None
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body
