"""A webhook-intake process for the crash tests (run as a subprocess, killed with SIGKILL).

Usage: crash_intake.py MODE DB REQUEST.json PUBLIC_KEY HANDLED_LOG CLOCK_OFFSET

MODE
  store-and-hang   verify + store (``Intake.receive``), print STORED, then hang: the parent
                   kills the process between the store and the hand-over.
  hang-in-handler  ``Intake.handle``; the handler prints IN_HANDLER and hangs (killed there).
  deliver          ``Intake.handle`` (a vendor's retry), then ``process_pending``; prints the
                   answer as JSON. The handler appends the key and attempt to HANDLED_LOG.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

from msgbridge.adapters.highlevel_webhooks import HighLevelWebhookVerifier
from msgbridge.inbound import InboundDelivery, InboundStore, Intake


def main() -> None:
    mode, db, request_file, public_key, log_file, offset = sys.argv[1:7]
    request = json.loads(Path(request_file).read_text())
    body = base64.b64decode(request["body"])

    def clock() -> float:
        return time.time() + float(offset)

    def record(delivery: InboundDelivery) -> None:
        if mode == "hang-in-handler":
            print("IN_HANDLER", flush=True)
            time.sleep(3600)
        with open(log_file, "a") as handle:
            handle.write(f"{delivery.key} {delivery.attempt}\n")
            handle.flush()
            os.fsync(handle.fileno())

    intake = Intake(
        InboundStore(db, clock=clock),
        {"highlevel": HighLevelWebhookVerifier(public_key=public_key)},
        record,
        clock=clock,
        lease=30.0,
    )
    if mode == "store-and-hang":
        response = intake.receive(request["headers"], body)
        print("STORED" if response.status == 200 else f"REFUSED {response.status}", flush=True)
        time.sleep(3600)
    elif mode == "hang-in-handler":
        intake.handle(request["headers"], body)
    elif mode == "deliver":
        response = intake.handle(request["headers"], body)
        swept = intake.process_pending()
        print(json.dumps({"status": response.status, "duplicate": response.duplicate,
                          "swept": swept}), flush=True)  # fmt: skip
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
