"""The CLI and the generic emulator code name no vendor (issue 12, item 1).

Everything the CLI needs per vendor comes from what the vendor declares
(``EmulatedVendor.credential_scheme``/``demo_*``/``demo_loop``, the adapter's
capabilities), so a plugin vendor is driven exactly like a built-in one. This scans the
source for the id of every installed adapter: it fails as soon as someone special-cases
a vendor in ``cli/`` or in the emulator's shared modules again. Each vendor's own
emulator module (the one defining its ``EmulatedVendor``, and its ``<module>_*.py``
helpers) is where its name belongs.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import msgbridge.cli
import msgbridge.emulator
from msgbridge.emulator import EmulatedVendor, builtin_vendors
from msgbridge.registry import AdapterRegistry

CLI = Path(msgbridge.cli.__file__).parent
EMULATOR = Path(msgbridge.emulator.__file__).parent


def _vendor_modules() -> set[Path]:
    """The emulator modules that belong to one vendor."""
    vendors = [*builtin_vendors(), *AdapterRegistry.from_entry_points().emulated_vendors]
    own = {
        Path(inspect.getfile(type(v))).resolve() for v in vendors if isinstance(v, EmulatedVendor)
    }
    helpers = {
        path.resolve()
        for path in EMULATOR.glob("*.py")
        if any(path.stem.startswith(f"{module.stem}_") for module in own)
    }
    return own | helpers


def _ids() -> set[str]:
    ids = {entry.adapter.id for entry in AdapterRegistry.from_entry_points()}
    assert {"highlevel", "leadway", "hoop", "hubspot"} <= ids
    return ids


def test_the_scan_covers_the_cli_and_the_shared_emulator_modules() -> None:
    own = _vendor_modules()
    shared = {p.name for p in EMULATOR.glob("*.py") if p.resolve() not in own}
    assert {"emulator.py", "app.py", "state.py", "vendor.py", "webhooks.py", "config.py",
            "loop.py", "__init__.py", "pytest_plugin.py"} <= shared  # fmt: skip
    assert {"highlevel.py", "highlevel_email.py", "hubspot.py"} <= {p.name for p in own}


def test_no_adapter_id_in_the_cli_or_the_shared_emulator_code() -> None:
    own = _vendor_modules()
    files = sorted(CLI.glob("*.py")) + sorted(
        p for p in EMULATOR.glob("*.py") if p.resolve() not in own
    )
    pattern = re.compile("|".join(sorted(map(re.escape, _ids()))), re.IGNORECASE)
    found = [
        f"{path.relative_to(CLI.parent)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "vendor names outside the vendors' own modules:\n" + "\n".join(found)
