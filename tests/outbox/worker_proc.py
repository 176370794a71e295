"""A worker process for the many-workers tests and benchmark.

``python worker_proc.py SPEC_JSON``; the spec holds ``target`` (a SQLite path or a
PostgreSQL DSN), ``connections`` (``[{"name", "adapter", "token", "settings",
"rate_limit"?}]``) and worker options (``lease_seconds``, ``batch_size``,
``max_in_flight``, ``per_connection``, ``rate_limits``, ``affinity``, ``mode``: ``drain``
until empty or ``forever`` until SIGTERM). Prints one JSON line with the report.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

from msgbridge import BearerToken, Connection
from msgbridge.outbox import Outbox, OutboxWorker
from msgbridge.retry import RetryPolicy


def connections(spec: dict[str, Any]) -> list[Connection]:
    return [
        Connection(
            item["name"],
            adapter=item["adapter"],
            credentials=BearerToken(item["token"]),
            settings=item["settings"],
            rate_limit=tuple(item["rate_limit"]) if item.get("rate_limit") else None,
        )
        for item in spec["connections"]
    ]


def main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    options: dict[str, Any] = {
        key: spec[key]
        for key in ("lease_seconds", "batch_size", "max_in_flight", "per_connection", "affinity")
        if key in spec
    }
    started = time.monotonic()
    target = spec["target"]
    postgres = target.startswith("postgresql://") or "host=" in target
    with Outbox(target, **({} if postgres else {"busy_timeout": 30.0})) as outbox:
        worker = OutboxWorker.create(
            outbox,
            connections(spec),
            rate_limits=spec.get("rate_limits", False),
            bridge_retry=RetryPolicy(
                max_attempts=2, initial_backoff=0.02, max_backoff=0.1, deadline=2.0
            ),
            retry=RetryPolicy(max_attempts=100, initial_backoff=0.05, max_backoff=0.5),
            idle_interval=spec.get("idle_interval", 0.05),
            **options,
        )
        with worker:
            sys.stdout.write(json.dumps({"ready": worker.owner}) + "\n")
            sys.stdout.flush()
            if spec.get("mode", "drain") == "forever":
                report = worker.run_forever(stop)
            else:
                report = worker.drain(until_empty=True, timeout=spec.get("timeout", 120.0))
        round_trips = outbox.store.round_trips
    out = {
        "round_trips": round_trips,
        "owner": worker.owner,
        "seconds": time.monotonic() - started,
        **{k: getattr(report, k) for k in ("leased", "applied", "skipped", "retried", "dead")},
        **{k: getattr(report, k) for k in ("released", "lost", "fenced")},
    }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
