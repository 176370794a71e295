"""A worker process for the crash tests: drains a SQLite outbox until it is empty.

``python crash_worker.py SPEC_JSON`` where the spec holds ``db`` (the SQLite file),
``connections`` (``[{"name", "adapter", "token", "settings"}]``), ``lease_seconds`` and
``batch_size``. Exits 0 once nothing is pending for its connections. The crash tests
SIGKILL it at random points and start it again.
"""

from __future__ import annotations

import json
import sys

from msgbridge import BearerToken, Connection
from msgbridge.outbox import Outbox, OutboxWorker
from msgbridge.retry import RetryPolicy


def main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    connections = [
        Connection(
            item["name"],
            adapter=item["adapter"],
            credentials=BearerToken(item["token"]),
            settings=item["settings"],
        )
        for item in spec["connections"]
    ]
    with Outbox(spec["db"], busy_timeout=10.0) as outbox:
        worker = OutboxWorker.create(
            outbox,
            connections,
            rate_limits=False,
            bridge_retry=RetryPolicy(
                max_attempts=2, initial_backoff=0.02, max_backoff=0.1, deadline=2.0
            ),
            retry=RetryPolicy(max_attempts=100, initial_backoff=0.02, max_backoff=0.2),
            lease_seconds=spec["lease_seconds"],
            batch_size=spec["batch_size"],
            idle_interval=0.05,
        )
        with worker:
            report = worker.drain(until_empty=True)
    sys.stdout.write(json.dumps({"applied": report.applied, "dead": report.dead}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
