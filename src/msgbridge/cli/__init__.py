"""The ``msgbridge`` command line (needs the ``cli`` extra: typer and rich).

Commands: ``adapters``, ``config``, ``send``, ``conversation``, ``push``, ``emulate`` and
``demo``; see ``msgbridge --help``. :func:`main` is the console-script entry point.
"""

from __future__ import annotations

from msgbridge.cli.app import app, main

__all__ = ["app", "main"]
