"""Fixtures for the outbox suite: the real emulator over loopback, real SQLite files, and
a real, throwaway PostgreSQL server.

PostgreSQL: ``MSGBRIDGE_TEST_POSTGRES_DSN`` when set; otherwise a server is started for
the session with ``initdb`` + ``pg_ctl`` in a temporary directory (unix socket only, as
the ``postgres`` OS user when running as root). If that is impossible the PostgreSQL
tests are skipped with the reason, except under CI (``CI`` set), where it is an error.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgbridge import BearerToken, Bridge, Connection
from msgbridge.emulator import Emulator, EmulatorConfig
from msgbridge.outbox import Outbox, OutboxWorker, SQLiteStore
from msgbridge.retry import RetryPolicy

HL_VERSIONS = {"highlevel": "2021-04-15", "leadway": "2021-07-28", "hoop": "2021-04-15"}
LOCATION = "demo-location"


def _pg_bin() -> Path:
    """PostgreSQL's server binaries: ``MSGBRIDGE_PG_BIN``, else Debian's newest install."""
    if os.environ.get("MSGBRIDGE_PG_BIN"):
        return Path(os.environ["MSGBRIDGE_PG_BIN"])
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return installed[-1].parent if installed else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


class FakeClock:
    """Epoch clock for the outbox; ``sleep`` advances it instantly and records the wait."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# -- the emulator ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _outbox_emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(demo=True, unknown_messages="create", rate_limits=False)
    with Emulator(config) as emulator:
        yield emulator


@pytest.fixture
def emu(_outbox_emulator: Emulator) -> Emulator:
    """The session's emulator reset to: demo tokens, unknown ids created, no rate limits."""
    _outbox_emulator.reset()
    return _outbox_emulator


def hl_connection(emu: Emulator, vendor: str = "highlevel", **settings: Any) -> Connection:
    return Connection(
        vendor,
        adapter=vendor,
        credentials=BearerToken(f"demo-{vendor}-token"),
        settings={
            "base_url": emu.base_url(vendor),
            "version": HL_VERSIONS[vendor],
            "location_id": LOCATION,
            **settings,
        },
    )


@pytest.fixture
def connections(emu: Emulator) -> list[Connection]:
    return [hl_connection(emu, vendor) for vendor in HL_VERSIONS]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def outbox(db_path: Path, clock: FakeClock) -> Iterator[Outbox]:
    with Outbox(db_path, clock=clock) as box:
        yield box


def make_worker(
    outbox: Outbox,
    connections: list[Connection],
    clock: FakeClock,
    *,
    bridge_retry: RetryPolicy | None = None,
    **options: Any,
) -> OutboxWorker:
    """A worker whose bridge never sleeps for real (the outbox does the waiting)."""
    bridge = Bridge(
        connections,
        retry=bridge_retry or RetryPolicy.none(),
        guard=outbox.guard(),
        rate_limits=False,
        sleep=lambda _: None,
    )
    options.setdefault("retry", RetryPolicy(max_attempts=3, initial_backoff=10.0, jitter=0.0))
    worker = OutboxWorker(outbox, bridge, clock=clock, sleep=clock.sleep, **options)
    worker._owns_bridge = True  # closed with the worker
    return worker


def sqlite_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the file with a second, independent connection (what another process sees)."""
    with SQLiteStore(path) as store, store.transaction(write=False) as tx:
        return tx.fetchall(sql, params)


# -- PostgreSQL -------------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL tests need a server: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is an error, not a skip)")
    pytest.skip(message)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidate = PG_BIN / name
    return str(candidate) if candidate.exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A DSN of a PostgreSQL server for the session."""
    from_env = os.environ.get("MSGBRIDGE_TEST_POSTGRES_DSN")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'msgbridge[postgres]')")
    if from_env:
        yield from_env
        return
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        _unavailable(f"initdb/pg_ctl not found on PATH or in {PG_BIN}")
    assert initdb is not None
    assert pg_ctl is not None
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        runuser = shutil.which("runuser")
        if runuser is None:
            _unavailable("running as root and runuser is missing (postgres refuses root)")
        prefix = [str(runuser), "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="msgbridge-pg-"))
    data = base / "data"
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=90)  # noqa: S603

    started = False
    try:
        if as_root:
            shutil.chown(base, "postgres", "postgres")
        os.chmod(base, 0o700)
        try:
            run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "-N")
            options = (
                f"-k {base} -p {port} -c listen_addresses='' -c fsync=off "
                "-c full_page_writes=off -c max_connections=50"
            )
            log_file = str(base / "log")
            run(pg_ctl, "-D", str(data), "-l", log_file, "-w", "-t", "60", "-o", options, "start")
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            _unavailable(f"could not start one: {exc} {detail.decode(errors='replace')[-500:]}")
        started = True
        yield f"host={base} port={port} user=postgres dbname=postgres"
    finally:
        if started:
            subprocess.run(  # noqa: S603
                [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A DSN whose ``search_path`` is a fresh schema: every test gets empty tables."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{pg_server} options='-c search_path={schema}'"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One shared outbox for several processes: a SQLite file (schema created) or a
    PostgreSQL DSN."""
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        Outbox(path).close()
        return str(path)
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn
