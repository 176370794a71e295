"""The ``msgbridge`` command line (needs the ``cli`` extra: typer and rich).

Commands: ``adapters``, ``config``, ``send``, ``conversation``, ``push``, ``emulate``,
``demo`` and ``outbox``; see ``msgbridge --help``. :func:`main` is the console-script
entry point. Without typer and rich the package still imports, so its typer-free
modules (the file token store used by :mod:`msgbridge.config`) work in any program;
only ``app`` and ``main`` then raise an ``ImportError`` saying what to install.
"""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = ["app", "main"]

if importlib.util.find_spec("typer") and importlib.util.find_spec("rich"):
    from msgbridge.cli.app import app, main
else:  # pragma: no cover - tested in an environment without the cli extra

    def __getattr__(name: str) -> Any:
        if name in ("app", "main"):
            raise ImportError(
                "the msgbridge command line needs the 'cli' extra: pip install 'msgbridge[cli]'"
            )
        raise AttributeError(f"module 'msgbridge.cli' has no attribute {name!r}")
