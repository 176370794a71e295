"""``python -m msgbridge.cli``."""

from __future__ import annotations

import sys

from msgbridge.cli import main

sys.exit(main())
