"""Draw the performance page's charts from benchmark output (``run.py --out`` markdown).

    python benchmarks/charts.py [--results FILE] [--out-dir docs/img]

Reads the "Peers" tables (updates/s by client and in-flight count, one table per
vendor) and the "Memory" table (RSS at each 100k lines of ``msgbridge push``) and
writes ``perf-throughput.png`` and ``perf-rss.png``. The default input,
``benchmarks/results/recorded.md``, holds the runs the page reports; the committed
PNGs are this script's output for it, so rerun the script whenever that file or the
page's numbers change. Needs matplotlib (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "recorded.md"
DEFAULT_OUT = HERE.parent / "docs" / "img"

Table = list[dict[str, str]]


def _tables(text: str) -> list[tuple[str, Table]]:
    """Every markdown table with the paragraph line just above it (its caption)."""
    found: list[tuple[str, Table]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if line.startswith("|") and index + 1 < len(lines) and set(lines[index + 1]) <= set("|-: "):
            headers = [c.strip() for c in line.strip("|").split("|")]
            rows: Table = []
            index += 2
            while index < len(lines) and lines[index].strip().startswith("|"):
                cells = [c.strip() for c in lines[index].strip().strip("|").split("|")]
                rows.append(dict(zip(headers, cells, strict=False)))
                index += 1
            above = lines[: index - len(rows) - 2]
            caption = next((p.strip() for p in reversed(above) if p.strip()), "")
            found.append((caption, rows))
        else:
            index += 1
    return found


def _number(cell: str) -> float | None:
    """The first number in a cell ("1,994 (233 µs; 50%, 10%)" → 1994); None for "—"."""
    match = re.search(r"\d[\d,]*(?:\.\d+)?", cell)
    return float(match.group(0).replace(",", "")) if match else None


def peers(text: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``{vendor: {client: [(in flight, updates/s), ...]}}`` from the Peers tables."""
    result: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for caption, rows in _tables(text):
        match = re.match(r"\*\*(\w+)\*\*: updates/s", caption)
        if not match or not rows:
            continue
        vendor = match.group(1)
        for row in rows:
            points = []
            for header, cell in row.items():
                flight = re.match(r"(\d+) in flight", header)
                value = _number(cell)
                if flight and value is not None:
                    points.append((int(flight.group(1)), value))
            result.setdefault(vendor, {})[row["client"]] = sorted(points)
    return result


def memory(text: str) -> list[tuple[int, float]]:
    """``[(lines read, RSS MB), ...]`` from the Memory table."""
    for _, rows in _tables(text):
        if rows and "lines read" in rows[0] and "RSS then (MB)" in rows[0]:
            points = []
            for row in rows:
                lines, rss = _number(row["lines read"]), _number(row["RSS then (MB)"])
                if lines is not None and rss is not None:
                    points.append((int(lines), rss))
            return points
    return []


def _style(client: str) -> dict[str, object]:
    if client.startswith("msgbridge (fast"):
        return {"color": "#1b5e20", "linewidth": 2.6, "marker": "o"}
    if client.startswith("msgbridge"):
        return {"color": "#66bb6a", "linewidth": 2.2, "marker": "o"}
    return {"linewidth": 1.4, "marker": "s", "linestyle": "--"}


def draw(results: Path, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = results.read_text(encoding="utf-8")
    by_vendor = peers(text)
    rss = memory(text)
    if not by_vendor or not rss:
        raise SystemExit(f"{results}: no Peers tables or no Memory table found")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    plt.rcParams.update({"font.size": 10, "svg.hashsalt": "msgbridge"})

    fig, axes = plt.subplots(1, len(by_vendor), figsize=(11, 4.2), sharey=True)
    for axis, (vendor, clients) in zip(list(axes), sorted(by_vendor.items()), strict=True):
        for client, points in clients.items():
            xs = [p[0] for p in points]
            axis.plot(xs, [p[1] for p in points], label=client, **_style(client))  # type: ignore[arg-type]
        axis.set_xscale("log", base=2)
        axis.set_xticks([1, 16, 64], ["1", "16", "64"])
        axis.set_title(f"{vendor}: status updates per second")
        axis.set_xlabel("updates in flight")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("updates/s (higher is better)")
    fig.tight_layout()
    path = out_dir / "perf-throughput.png"
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    written.append(path)

    fig, axis = plt.subplots(figsize=(8, 3.6))
    axis.plot([p[0] / 1000 for p in rss], [p[1] for p in rss], marker="o", color="#1565c0")
    axis.axhline(200, color="#c62828", linestyle="--", linewidth=1.2)
    axis.text(rss[0][0] / 1000, 203, "target: 200 MB", color="#c62828", fontsize=9)
    axis.set_ylim(0, 220)
    axis.set_xlabel("lines read (thousands)")
    axis.set_ylabel("RSS of the push process (MB)")
    axis.set_title("msgbridge push over 1,000,000 lines: memory stays bounded")
    axis.grid(True, alpha=0.3)
    fig.tight_layout()
    path = out_dir / "perf-rss.png"
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for path in draw(args.results, args.out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
