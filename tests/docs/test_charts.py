"""The performance page's charts come from recorded benchmark output, by a script.

The numbers the charts are drawn from (``benchmarks/results/recorded.md``) must be the
numbers the page's tables show, the page must show the committed images, and the script
must draw them (when matplotlib, the ``bench`` extra, is installed).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
charts = importlib.import_module("charts")

PAGE = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
RECORDED = (ROOT / "benchmarks" / "results" / "recorded.md").read_text(encoding="utf-8")


def _page_peers() -> dict[str, list[float]]:
    section = PAGE.split("## Peers", 1)[1].split("msgbridge ÷ peer", 1)[0]
    rows: dict[str, list[float]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4:
            try:
                rows[cells[0]] = [float(c.replace(",", "")) for c in cells[1:]]
            except ValueError:
                continue  # the header row
    return rows


def test_recorded_peers_are_the_pages_numbers() -> None:
    recorded = charts.peers(RECORDED)
    assert set(recorded) == {"highlevel", "hubspot"}
    values = sorted(
        sorted(v for _, v in points) for clients in recorded.values() for points in clients.values()
    )
    assert values == sorted(sorted(v) for v in _page_peers().values())
    assert all(
        [f for f, _ in points] == [1, 16, 64] for c in recorded.values() for points in c.values()
    )


def test_recorded_rss_is_the_pages_numbers() -> None:
    match = re.search(r"RSS at each 100k lines \(aiohttp run\):\s*([\d,\s]+) MB", PAGE)
    assert match is not None
    page = [float(x) for x in match.group(1).replace("\n", " ").split(",")]
    assert [rss for _, rss in charts.memory(RECORDED)] == page
    assert [lines for lines, _ in charts.memory(RECORDED)] == [n * 100_000 for n in range(1, 11)]


def test_the_page_shows_the_committed_charts() -> None:
    for name in ("perf-throughput.png", "perf-rss.png"):
        assert f"](img/{name})" in PAGE
        assert (ROOT / "docs" / "img" / name).stat().st_size > 10_000


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="needs the bench extra (matplotlib)"
)
def test_the_script_draws_both_charts(tmp_path: Path) -> None:
    written = charts.draw(ROOT / "benchmarks" / "results" / "recorded.md", tmp_path)
    assert sorted(p.name for p in written) == ["perf-rss.png", "perf-throughput.png"]
    for path in written:
        assert path.read_bytes().startswith(b"\x89PNG")
