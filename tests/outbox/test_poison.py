"""A poison row (its adapter, credential or sender raises something unexpected) is
dead-lettered; every other row is applied and the worker never crash-loops."""

from __future__ import annotations

from collections.abc import Mapping

from msgbridge import Connection, MessageStatus
from msgbridge.adapter import PreparedRequest
from msgbridge.auth import Credential
from msgbridge.emulator import Emulator
from msgbridge.outbox import Outbox

from .conftest import FakeClock, hl_connection, make_worker


class _Crashing(Credential):
    def headers(self, request: PreparedRequest) -> Mapping[str, str]:
        raise RuntimeError("a plugin bug")


def test_a_poison_row_is_dead_lettered_and_the_rest_applied(
    outbox: Outbox, emu: Emulator, clock: FakeClock
) -> None:
    good = hl_connection(emu)
    poison = Connection(
        "poison", adapter="highlevel", credentials=_Crashing(), settings=dict(good.settings)
    )
    outbox.enqueue("poison", MessageStatus("m-poison", "delivered"))
    for index in range(30):
        outbox.enqueue("highlevel", MessageStatus(f"m{index}", "delivered"))
    applied = []
    for _ in range(3):  # run after run: never an exception, never the poison row again
        with make_worker(outbox, [good, poison], clock, batch_size=10) as worker:
            applied.append(worker.drain().applied)
    assert applied == [30, 0, 0]
    stats = outbox.stats()
    assert stats.pending == 0
    assert stats.dead == 1
    (dead,) = outbox.dead_letters()
    assert dead.connection == "poison"
    assert "RuntimeError" in (dead.reason or "")
    assert emu.message("highlevel", "m0").statuses == ["delivered"]
