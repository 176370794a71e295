"""Benchmark 5: memory. ``msgbridge push`` over a 1,000,000-line JSON-lines file.

A file of status updates (one fresh message id per line, round-robin over two HighLevel
and two HubSpot connections) is pushed by the real command line, ``msgbridge push FILE
--config msgbridge.toml --json``, in its own process, against the emulator (rate limits
off). ``msgbridge.toml`` names the connections, reads their tokens from environment
variables (never from the file) and raises each connection's ``rate_limit`` far above
what is sent, so the client limiter never waits. Everything else is the CLI's defaults
(``--max-in-flight 32 --per-connection 8``, the sync ``Bridge`` on httpx).

Peak RSS comes from ``/usr/bin/time -v`` (the kernel's high-water mark for the process)
when it exists, else from polling; polling (psutil, every 0.25 s) also samples RSS along
the way and the read position of the input file, which gives the time of each 100k-line
mark (the push reads lazily: what it has read is at most its bounded read-ahead, about
1,000 lines, beyond what it has handed to the bridge).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from _harness import BENCH_DIR, EmulatorProcess, fmt_rate, machine_cpu_seconds, md_table

#: (connection, adapter, token, account) for the four connections of the file.
CONNECTIONS = (
    ("hl-a", "highlevel", "mem-hl-a", "loc-mem-a"),
    ("hl-b", "highlevel", "mem-hl-b", "loc-mem-b"),
    ("hs-a", "hubspot", "mem-hs-a", "7000001"),
    ("hs-b", "hubspot", "mem-hs-b", "7000002"),
)
STATES = {"highlevel": "delivered", "hubspot": "sent"}
STEP = 100_000
TARGET_MB = 200


def token_specs() -> list[str]:
    return [f"{adapter}:{token}:{account}" for _, adapter, token, account in CONNECTIONS]


def _env_name(name: str) -> str:
    return "MSGBRIDGE_BENCH_TOKEN_" + name.upper().replace("-", "_")


def write_config(path: Path, emulator: EmulatorProcess) -> dict[str, str]:
    """The config file, and the environment variables holding the tokens."""
    lines = ["[retry]", "max_attempts = 5", ""]
    env = {}
    for name, adapter, token, _ in CONNECTIONS:
        env[_env_name(name)] = token
        lines += [
            f"[connections.{name}]",
            f'adapter = "{adapter}"',
            f'token_env = "{_env_name(name)}"',
            "rate_limit = { requests = 1000000, per_seconds = 1.0 }",
            f"[connections.{name}.settings]",
            f'base_url = "{emulator.base_url(adapter)}"',
        ]
        if adapter == "hubspot":
            lines.append("channel_id = 1000")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return env


def write_input(path: Path, lines: int) -> list[int]:
    """Write the JSON-lines file; returns the byte offset after every ``STEP`` lines."""
    marks: list[int] = []
    offset = 0
    stamp = int(time.time())
    with path.open("wb") as out:
        buffer: list[bytes] = []
        for i in range(lines):
            name, adapter, _, _ = CONNECTIONS[i % len(CONNECTIONS)]
            line = (
                json.dumps(
                    {
                        "connection": name,
                        "status": {"message_id": f"mem-{stamp}-{i:07d}", "state": STATES[adapter]},
                    },
                    separators=(",", ":"),
                )
                + "\n"
            ).encode()
            buffer.append(line)
            offset += len(line)
            if (i + 1) % STEP == 0 or i + 1 == lines:
                marks.append(offset)
                out.write(b"".join(buffer))
                buffer = []
    return marks


@dataclass
class Result:
    lines: int
    file_mb: float
    command: str
    wall: float = 0.0
    peak_rss_mb: float = 0.0
    peak_source: str = ""
    polled_peak_mb: float = 0.0
    #: (lines, seconds since start, RSS MB when the mark was passed)
    marks: list[tuple[int, float, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    client_cpu: float = 0.0
    emulator_cpu: float = 0.0
    other_cpu: float = 0.0


def _find_push(parent: psutil.Process) -> psutil.Process | None:
    """The msgbridge process itself (``/usr/bin/time`` is its parent when used)."""
    try:
        for child in [parent, *parent.children(recursive=True)]:
            if child.name() != "time" and "push" in child.cmdline():
                return child
    except psutil.Error:
        return None
    return None


def run(emulator: EmulatorProcess, lines: int, client_cpu: int | None) -> Result:
    work = Path(tempfile.mkdtemp(prefix="msgbridge-bench-"))
    try:
        source = work / "updates.jsonl"
        config = work / "msgbridge.toml"
        t0 = time.perf_counter()
        marks = write_input(source, lines)
        print(f"  memory: wrote {lines:,} lines in {time.perf_counter() - t0:.1f} s", flush=True)
        env = {**os.environ, **write_config(config, emulator)}
        exe = shutil.which("msgbridge", path=str(Path(BENCH_DIR.parent, ".venv", "bin")))
        push = [exe or "msgbridge", "push", str(source), "--config", str(config), "--json"]
        push += ["--rejects", str(work / "rejects.jsonl")]
        timer = shutil.which("time", path="/usr/bin:/bin")
        cmd = [timer, "-v", *push] if timer else push
        result = Result(
            lines,
            source.stat().st_size / 2**20,
            "msgbridge push updates.jsonl --config msgbridge.toml --json",
        )
        e0, m0 = emulator.cpu_seconds(), machine_cpu_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )
        outputs: dict[str, str] = {}

        def collect(name: str) -> None:
            stream = getattr(proc, name)
            outputs[name] = stream.read()

        readers = [threading.Thread(target=collect, args=(n,)) for n in ("stdout", "stderr")]
        for reader in readers:
            reader.start()
        parent = psutil.Process(proc.pid)
        target: psutil.Process | None = None
        next_mark = 0
        cpu_seen = 0.0
        while proc.poll() is None:
            time.sleep(0.25)
            if target is None:
                target = _find_push(parent)
                if target is None:
                    continue
                if client_cpu is not None:
                    target.cpu_affinity([client_cpu])
            try:
                rss = target.memory_info().rss / 2**20
                times = target.cpu_times()
                cpu_seen = times.user + times.system
                position = next(
                    (f.position for f in target.open_files() if f.path == str(source)), None
                )
            except psutil.Error:
                break
            result.polled_peak_mb = max(result.polled_peak_mb, rss)
            now = time.perf_counter() - started
            while position is not None and next_mark < len(marks) and position >= marks[next_mark]:
                result.marks.append((min((next_mark + 1) * STEP, lines), now, rss))
                next_mark += 1
        proc.wait()
        for reader in readers:
            reader.join()
        result.wall = time.perf_counter() - started
        result.exit_code = proc.returncode
        result.client_cpu = cpu_seen
        result.emulator_cpu = emulator.cpu_seconds() - e0
        ours = result.client_cpu + result.emulator_cpu
        result.other_cpu = max(0.0, machine_cpu_seconds() - m0 - ours)
        if next_mark < len(marks):  # the last mark(s): reached at exit
            result.marks.append((lines, result.wall, result.polled_peak_mb))
        try:
            result.summary = json.loads(outputs.get("stdout", "") or "{}")
        except ValueError:
            result.summary = {"unparsed stdout": outputs.get("stdout", "")[-500:]}
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", outputs.get("stderr", ""))
        if found:
            result.peak_rss_mb = int(found.group(1)) / 1024
            result.peak_source = "/usr/bin/time -v"
        else:
            result.peak_rss_mb = result.polled_peak_mb
            result.peak_source = "psutil polling"
        print(
            f"  memory: {lines:,} lines in {result.wall:.0f} s, peak RSS "
            f"{result.peak_rss_mb:.0f} MB, exit {result.exit_code}",
            flush=True,
        )
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(result: Result) -> str:
    per_step = result.wall / (result.lines / STEP)
    rows = []
    previous = 0.0
    for count, at, rss in result.marks:
        rows.append([f"{count:,}", f"{at:.1f}", f"{at - previous:.1f}", f"{rss:.0f}"])
        previous = at
    totals = result.summary.get("totals", {})
    outcome = ", ".join(f"{k} {v:,}" for k, v in sorted(totals.items())) or str(result.summary)
    met = result.peak_rss_mb < TARGET_MB
    return "\n".join(
        [
            "## 5. Memory",
            "",
            f"`{result.command}` over {result.lines:,} lines ({result.file_mb:.0f} MB), "
            "4 connections (2 HighLevel, 2 HubSpot), CLI defaults (`--sender auto`: "
            "`AsyncBridge` + aiohttp when the `fast` extra is installed, else the threaded "
            "httpx `Bridge`; 32 in flight), emulator rate limits off.",
            "",
            md_table(
                ["check", "result", "target", ""],
                [
                    [
                        "peak RSS of the push process",
                        f"{result.peak_rss_mb:.0f} MB ({result.peak_source}; polled peak "
                        f"{result.polled_peak_mb:.0f} MB)",
                        f"< {TARGET_MB} MB",
                        "met" if met else "**missed**",
                    ],
                    [
                        "time per 100k lines",
                        f"{per_step:.1f} s (total {result.wall:.0f} s, "
                        f"{fmt_rate(result.lines / result.wall)} lines/s)",
                        "report",
                        "",
                    ],
                    ["exit code / outcomes", f"{result.exit_code} / {outcome}", "0", ""],
                ],
            ),
            "",
            md_table(["lines read", "at (s)", "this 100k (s)", "RSS then (MB)"], rows),
            "",
            f"CPU over the run: push process {result.client_cpu / result.wall:.0%}, emulator "
            f"{result.emulator_cpu / result.wall:.0%} of one core; other processes "
            f"{result.other_cpu / result.wall:.0%}.",
            "",
        ]
    )
