"""Serve the msgbridge emulator for the benchmarks (run as a separate process).

``python benchmarks/emulator_server.py '<json options>'`` builds an
:class:`~msgbridge.emulator.EmulatorConfig` programmatically and calls
:func:`msgbridge.emulator.server.serve`. It exists because two things the benchmarks need
have no flag on ``python -m msgbridge.emulator``:

* ``accept_v3``: HighLevel's official SDK (``gohighlevel-api-client``) forces the header
  ``Version: v3`` on every call and users cannot override it; the emulator accepts only
  ``2021-04-15`` on ``/highlevel``. With this option the HighLevel vendor is replaced by
  one that accepts both values, so the SDK can make the call at all.
* ``record_limit`` / ``history_limit``: the benchmarks need every 429 kept (limits) and
  bounded history for a million messages (memory).

Options (all optional): ``port`` (0 = a free one; the banner's first line names it),
``unknown`` (``"reject"``/``"create"``), ``rate_limits`` (bool), ``tokens``
(``["VENDOR:TOKEN:ACCOUNT", ...]``), ``demo`` (bool), ``record_limit`` (int or null),
``history_limit`` (int or null), ``accept_v3`` (bool), ``seed`` (int).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from msgbridge.emulator import EmulatorConfig, TokenSeed
from msgbridge.emulator.highlevel import HIGHLEVEL, HighLevelFamily, HighLevelVariant
from msgbridge.emulator.server import serve


def build(options: dict[str, Any]) -> tuple[EmulatorConfig, list[HighLevelFamily]]:
    config = EmulatorConfig(
        unknown_messages="create" if options.get("unknown", "create") == "create" else "reject",
        rate_limits=bool(options.get("rate_limits", False)),
        seed=int(options.get("seed", 0)),
        record_limit=options.get("record_limit", 10_000),
        history_limit=options.get("history_limit"),
        demo=bool(options.get("demo", True)),
        tokens=tuple(TokenSeed.parse(spec) for spec in options.get("tokens", ())),
    )
    vendors: list[HighLevelFamily] = []
    if options.get("accept_v3", False):
        variant = HighLevelVariant(HIGHLEVEL.name, (*HIGHLEVEL.versions, "v3"))
        vendors.append(HighLevelFamily(variant))
    return config, vendors


def main(argv: list[str]) -> None:
    options = json.loads(argv[1]) if len(argv) > 1 else {}
    config, vendors = build(options)

    def announce(line: str) -> None:
        print(line, flush=True)

    serve(
        options.get("host", "127.0.0.1"),
        int(options.get("port", 0)),
        config,
        vendors=vendors,
        announce=announce,
    )


if __name__ == "__main__":
    main(sys.argv)
