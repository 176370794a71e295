"""Shared helpers of the benchmarks: the emulator subprocess, timing, CPU, stats, tables.

Everything a benchmark module needs and nothing vendor- or client-specific:

* :class:`EmulatorProcess` starts ``benchmarks/emulator_server.py`` as a separate process on
  a free loopback port, waits until its control endpoint answers, and stops it;
* :func:`measure` runs one timed section and reports wall time plus the CPU seconds the
  client process and the emulator process each spent in it (the machine has 2 cores, so
  which side saturated a core tells what limited a number);
* :func:`pump` is the bounded-concurrency worker pool every raw/peer client uses;
* :func:`median`, :func:`md_table`, :func:`machine_lines` format the results.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable

#: HighLevel's and HubSpot's demo tokens (registered by the emulator; published values).
HL_TOKEN = "demo-highlevel-token"
HS_TOKEN = "demo-hubspot-token"
HS_CHANNEL = 1000
HL_VERSION = "2021-04-15"

T = TypeVar("T")


# -- the emulator process ---------------------------------------------------------------


class EmulatorProcess:
    """``benchmarks/emulator_server.py`` in its own process, on a free loopback port."""

    def __init__(self, cpu: int | None = None, **options: Any) -> None:
        self.options = {"port": 0, **options}
        self.cpu = cpu
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.ps: psutil.Process | None = None

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        cmd = [PYTHON, "-u", str(BENCH_DIR / "emulator_server.py"), json.dumps(self.options)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        if not first.startswith("msgbridge emulator on "):
            self.stop()
            raise RuntimeError(f"emulator did not start: {first!r}")
        self.url = first.rsplit(" ", 1)[1]
        self.ps = psutil.Process(self.proc.pid)
        if self.cpu is not None:
            self.ps.cpu_affinity([self.cpu])
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.control("GET", "/faults")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("emulator did not answer its control endpoint") from None
                time.sleep(0.05)
        # Drain the banner so the pipe never fills.
        _drain(self.proc)
        return self

    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{vendor}"

    def control(self, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        """Call ``/_emulator{path}`` (stdlib HTTP, so it never shares a client pool)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback http URL we built
            f"{self.url}/_emulator{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def cpu_seconds(self) -> float:
        assert self.ps is not None
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        assert self.ps is not None
        return float(self.ps.memory_info().rss) / 2**20

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _drain(proc: subprocess.Popen[str]) -> None:
    import threading

    def run() -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            pass

    threading.Thread(target=run, daemon=True, name="emulator-stdout").start()


def pin_client(cpu: int | None) -> None:
    """Pin this (client) process to one core, or leave it free (``None``)."""
    if cpu is not None:
        psutil.Process().cpu_affinity([cpu])


# -- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One timed section: wall seconds, CPU seconds of each process, work done.

    ``other_cpu`` is what every other process on the machine used meanwhile (the machine
    is shared: other engineers run test suites on it).
    """

    wall: float
    client_cpu: float
    emulator_cpu: float
    count: int
    other_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.wall

    @property
    def client_us(self) -> float:
        """Client CPU microseconds per item."""
        return self.client_cpu / self.count * 1e6

    @property
    def emulator_util(self) -> float:
        """Emulator CPU as a fraction of one core over the section."""
        return self.emulator_cpu / self.wall

    @property
    def client_util(self) -> float:
        return self.client_cpu / self.wall

    @property
    def other_util(self) -> float:
        return self.other_cpu / self.wall


def client_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def machine_cpu_seconds() -> float:
    """CPU seconds all processes spent (user + nice + system; interrupts excluded, since
    loopback packet processing is charged there rather than to our processes)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system)


#: A sample during which other processes used more than this share of one core is redone.
NOISE_LIMIT = 0.15
#: How long to wait for the machine to be quiet before a sample, and how often to redo one.
QUIET_WAIT = 20.0
MAX_REDO = 2


async def wait_quiet(limit: float = NOISE_LIMIT, timeout: float = QUIET_WAIT) -> float:
    """Wait until other processes use less than *limit* of a core (over 0.5 s); returns the
    last level seen (we are idle meanwhile, so all busy time is someone else's)."""
    deadline = time.monotonic() + timeout
    while True:
        m0, t0 = machine_cpu_seconds(), time.perf_counter()
        await asyncio.sleep(0.5)
        level = (machine_cpu_seconds() - m0) / (time.perf_counter() - t0)
        if level < limit or time.monotonic() > deadline:
            return level
        await asyncio.sleep(1.0)


async def measure(emulator: EmulatorProcess, run: Callable[[], Awaitable[int]]) -> Sample:
    """Time ``await run()`` (which returns how many items it completed)."""
    c0, e0, m0 = client_cpu_seconds(), emulator.cpu_seconds(), machine_cpu_seconds()
    t0 = time.perf_counter()
    count = await run()
    wall = time.perf_counter() - t0
    client, emu = client_cpu_seconds() - c0, emulator.cpu_seconds() - e0
    other = max(0.0, machine_cpu_seconds() - m0 - client - emu)
    return Sample(wall, client, emu, count, other)


async def pump(items: Iterable[T], concurrency: int, one: Callable[[T], Awaitable[bool]]) -> int:
    """Run ``one(item)`` for every item with at most *concurrency* at once; count successes.

    *concurrency* workers share one iterator: the usual, cheapest asyncio pattern.
    """
    source = iter(items)
    done = 0

    async def worker() -> None:
        nonlocal done
        for item in source:
            if await one(item):
                done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


class Ids:
    """Fresh message ids, never reused within a process run (the state guard and the
    emulator see a new message every time)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = f"{prefix}-{os.getpid()}-{int(time.time())}"
        self.next = 0

    def take(self, n: int) -> list[str]:
        start, self.next = self.next, self.next + n
        return [f"{self.prefix}-{i}" for i in range(start, start + n)]


def alternating(names: Sequence[str], rep: int) -> list[str]:
    """Run order for repetition *rep*: forward on even, reversed on odd."""
    return list(names) if rep % 2 == 0 else list(reversed(names))


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# -- reporting ----------------------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


PACKAGES = (
    "msgbridge",
    "httpx",
    "aiohttp",
    "uvicorn",
    "uvloop",
    "httptools",
    "gohighlevel-api-client",
    "hubspot-sdk",
    "httpx-aiohttp",
    "hubspot-api-client",
    "requests",
)


def machine_lines(pinning: str) -> list[str]:
    memory = psutil.virtual_memory().total / 2**30
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    return [
        f"- Machine: {_cpu_model()}, {psutil.cpu_count()} logical cores, "
        f"{memory:.0f} GiB RAM; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        "client event loop: asyncio (default policy); emulator: uvicorn + uvloop + httptools, "
        "one process",
        f"- CPU placement: {pinning}",
        f"- Versions: {versions}",
    ]


# -- clients under test ---------------------------------------------------------------------


class Client:
    """One client under test: ``open`` it, ``run`` batches of message ids, ``close`` it.

    ``run(ids, concurrency)`` sends one update per id with at most *concurrency* in flight
    and returns how many the vendor applied.
    """

    name = ""

    async def open(self, base: str) -> None:
        """Prepare against the vendor base URL (``http://127.0.0.1:PORT/<vendor>``)."""

    async def run(self, ids: list[str], concurrency: int) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        """Release what ``open`` made."""


def connection(
    vendor: str, base: str, name: str, rate_limit: tuple[int, float] | None = None
) -> Any:
    """A msgbridge connection to the emulator's demo account of *vendor*."""
    from msgbridge import BearerToken, Connection

    if vendor == "highlevel":
        return Connection(
            name,
            adapter="highlevel",
            credentials=BearerToken(HL_TOKEN),
            settings={"base_url": base},
            rate_limit=rate_limit,
        )
    return Connection(
        name,
        adapter="hubspot",
        credentials=BearerToken(HS_TOKEN),
        settings={"base_url": base, "channel_id": HS_CHANNEL},
        rate_limit=rate_limit,
    )


class Bridged(Client):
    """msgbridge ``AsyncBridge.update_many`` on the default httpx or the fast aiohttp sender.

    HighLevel updates are ``delivered``, HubSpot ones ``sent`` (``statusType: SENT``).
    ``limiter=True`` switches per-connection rate limiting on with a budget far above what
    is sent (it never waits: what the limiter itself costs); otherwise
    ``rate_limits=False``, since the emulator is unthrottled.
    """

    def __init__(self, vendor: str = "highlevel", *, fast: bool, limiter: bool = False) -> None:
        self.vendor = vendor
        self.fast = fast
        self.limiter = limiter
        sender = "fast aiohttp sender" if fast else "default httpx sender"
        self.name = f"msgbridge AsyncBridge.update_many ({sender})"

    async def open(self, base: str) -> None:
        from msgbridge import AdapterRegistry, AsyncBridge

        budget = (1_000_000, 1.0) if self.limiter else None  # the largest accepted budget
        sender = None
        if self.fast:
            from msgbridge.fast import AiohttpSender

            sender = AiohttpSender()
        # msgbridge's own cost: built-in adapters only, so an observer plugin installed in
        # the environment (msgbridge-otel in the dev venv) is not measured with it.
        registry = AdapterRegistry.from_entry_points(
            environ={"MSGBRIDGE_PLUGINS_ALLOW": "msgbridge"}
        )
        self.bridge = AsyncBridge(
            [connection(self.vendor, base, "c", budget)],
            sender=sender,
            rate_limits=self.limiter,
            registry=registry,
        )

    async def run(self, ids: list[str], concurrency: int) -> int:
        from msgbridge import DeliveryState, MessageStatus, Outcome

        state = DeliveryState.DELIVERED if self.vendor == "highlevel" else DeliveryState.SENT
        items = (("c", MessageStatus(i, state)) for i in ids)
        applied = 0
        async for receipt in self.bridge.update_many(
            items, max_in_flight=concurrency, per_connection=concurrency
        ):
            applied += receipt.outcome is Outcome.APPLIED
        return applied

    async def close(self) -> None:
        await self.bridge.aclose()


async def timed(
    emulator: EmulatorProcess,
    make: Callable[[], Client],
    base: str,
    ids: Ids,
    n: int,
    concurrency: int,
) -> Sample:
    """Open a fresh client, warm it up (untimed), time *n* updates, close it.

    Waits for the (shared) machine to be quiet first, and redoes a sample during which
    other processes used more than ``NOISE_LIMIT`` of a core (keeping the quietest). A
    run in which not every update was applied is an error, never a number.
    """
    best: Sample | None = None
    for _ in range(MAX_REDO + 1):
        await wait_quiet()
        client = make()
        await client.open(base)
        try:
            await client.run(ids.take(max(2 * concurrency, 50)), concurrency)
            batch = ids.take(n)
            sample = await measure(emulator, lambda: client.run(batch, concurrency))  # noqa: B023
        finally:
            await client.close()
        if sample.count != n:
            raise RuntimeError(f"{client.name}: only {sample.count} of {n} updates applied")
        if best is None or sample.other_util < best.other_util:
            best = sample
        if sample.other_util <= NOISE_LIMIT:
            break
    assert best is not None
    return best
