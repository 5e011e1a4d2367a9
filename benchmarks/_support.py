"""Shared plumbing for the benchmarks: databases, gunicorn servers, wrk, HTTP, tables, cleanup.

Everything a benchmark starts (a server, a database, a temp folder) registers its own undo with
`Cleanup`, which runs them newest first on a normal exit, an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
BIN = Path(sys.prefix) / "bin" if (Path(sys.prefix) / "bin" / "gunicorn").exists() else ROOT / ".venv" / "bin"
HOST = "127.0.0.1"  # the only address any benchmark talks to
# The server database to create throwaway databases beside (the same default as the tests).
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- cleanup -----------------------------------------------------------------------------------


class Cleanup:
    """Undo actions run once, newest first, whatever way the process ends."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], None]]] = []
        atexit.register(self.run)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        # Ctrl-C raises KeyboardInterrupt even where the shell started us with SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through every `finally`, then atexit

    def add(self, label: str, action: Callable[[], None]) -> Callable[[], None]:
        """Register an undo; returns it, to be run early if wanted (it runs at most once)."""
        done = False

        def once() -> None:
            nonlocal done
            if not done:
                done = True
                action()

        self._actions.append((label, once))
        return once

    def run(self) -> None:
        while self._actions:
            label, action = self._actions.pop()
            try:
                action()
            except Exception as error:  # keep undoing the rest
                print(f"cleanup: {label} failed: {error}", file=sys.stderr)


CLEANUP = Cleanup()


# --- small helpers -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def timestamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def core_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_line() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"cores: {core_count()} ({os.cpu_count()} online; {cpu}); Python {sys.version.split()[0]}"


def load_line() -> str:
    """The load average: above the core count, something else was competing for the CPU."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return "load average: unknown"
    return f"load average {one} {five} {fifteen} (1/5/15 min) on {core_count()} cores"


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def run(cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a command to completion (bounded in time); raise with its output if it fails."""
    result = subprocess.run(
        list(cmd), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# A server refuses to start without TPA_SECRET_KEY; the benchmarks' apps get this one (in-process
# apps through the environment, servers through `app_env`).
BENCHMARK_SECRET_KEY = "benchmarks-only-console-secret-key-0123456789"
os.environ.setdefault("TPA_SECRET_KEY", BENCHMARK_SECRET_KEY)


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPA_") and k != "DATABASE_URL"}
    env["DATABASE_URL"] = database_url
    env["TPA_PUBLIC_BASE_URL"] = "http://127.0.0.1"  # a server needs one; benchmarks publish no page
    env["TPA_SECRET_KEY"] = BENCHMARK_SECRET_KEY  # a server needs one; benchmarks sign no console form
    env.update(extra)
    return env


# --- databases -------------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # "postgres" | "sqlite"
    url: str  # SQLAlchemy URL the app uses
    name: str = ""
    drop: Callable[[], None] = lambda: None  # drop it now (the cleanup does it otherwise)

    def dbapi_connect(self) -> Any:
        """A plain DB-API connection in autocommit mode (psycopg or sqlite3)."""
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(
                self.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
            )
        import sqlite3

        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn


def _postgres_admin() -> Any:
    import psycopg

    return psycopg.connect(POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def create_database(kind: str, label: str) -> Database:
    """A new empty database with a unique name, dropped (or deleted) by the cleanup."""
    if kind == "postgres":
        from sqlalchemy.engine import make_url

        name = f"tpa_bench_{label}_{uuid.uuid4().hex[:10]}"
        with _postgres_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with _postgres_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped PostgreSQL database {name}")

        return Database("postgres", url, name, CLEANUP.add(f"drop database {name}", drop))
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix=f"tpa-bench-{label}-")

        def delete() -> None:
            shutil.rmtree(folder, ignore_errors=True)
            log(f"deleted SQLite database {folder}/bench.db")

        return Database("sqlite", f"sqlite:///{folder}/bench.db", f"{folder}/bench.db",
                        CLEANUP.add(f"delete {folder}", delete))  # fmt: skip
    raise ValueError(f"unknown database kind {kind!r}")


def migrate_and_seed(database: Database) -> None:
    """Schema through the project's migrations, then the seed catalogue, as `make run` does."""
    flask = [str(BIN / "flask"), "--app", "api"]
    run([*flask, "db", "upgrade"], env=app_env(database.url), timeout=300)
    out = run([*flask, "seed"], env=app_env(database.url), timeout=300)
    log(f"migrated and seeded ({out.strip()})")


# --- gunicorn ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A gunicorn master in its own process group, stopped by the cleanup whatever happens."""

    name: str
    app_spec: str
    env: dict[str, str]
    workers: int = 5
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        return [
            str(BIN / "gunicorn"), "--no-control-socket", "--worker-class", "sync",
            "--workers", str(self.workers), "--bind", f"{HOST}:{self.port}",
            "--log-level", "warning", *self.extra_args, self.app_spec,
        ]  # fmt: skip

    def start(self, ready_path: str = "/health/live", timeout: float = 60) -> Server:
        self.port = self.port or free_port()
        handle, path = tempfile.mkstemp(prefix=f"tpa-bench-{self.name}-", suffix=".log")
        self.log_path = Path(path)
        CLEANUP.add(f"delete {path}", lambda: self.log_path.unlink(missing_ok=True))  # type: ignore[union-attr]
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        os.close(handle)
        CLEANUP.add(f"stop {self.name}", self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if request("GET", self.base + ready_path, timeout=2).status == 200:
                    # every worker booted: each answers before gunicorn hands it a request
                    if len(self.worker_pids()) >= self.workers:
                        pid = self.process.pid
                        log(f"{self.name}: gunicorn pid {pid}, {self.workers} workers on {self.base}")
                        return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        return children_of(self.process.pid)

    def worker_rss_mb(self) -> list[float]:
        return [rss_mb(pid) for pid in self.worker_pids()]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session: the master leads its own group, workers in it
        for signum, wait in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
            if not group_alive(pgid):
                break
        if group_alive(pgid):
            print(f"warning: {self.name} process group {pgid} still alive", file=sys.stderr)
        else:
            log(f"{self.name}: stopped (gunicorn pid {pgid})")


def cache_state(server: Server) -> str:
    """How one worker of `server` hears of writes (`/health/ready`'s `cache`), for the log: a
    worker that is not `trusted` asks the database on every read (`api.readcache.version`)."""
    reply = request("GET", server.base + "/health/ready", timeout=10)
    if reply.status != 200:
        return f"unknown (/health/ready answered {reply.status})"
    state = json.loads(reply.body).get("cache") or {}
    return ", ".join(f"{k}={v}" for k, v in state.items()) or "unknown"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies count as gone
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) == pgid and stat[0] != "Z":
                    return True
    return False


def children_of(pid: int) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid and stat[0] != "Z":
                    pids.append(int(proc.name))
    return sorted(pids)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- HTTP --------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:  # fmt: skip
    """One request on a new connection (gunicorn's sync workers close each one anyway)."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    if host not in {"127.0.0.1", "localhost"}:
        raise ValueError(f"benchmarks only talk to 127.0.0.1, not {host}")
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        conn.request(method, "/" + path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        return Reply(response.status, {k: v for k, v in response.getheaders()}, data, elapsed)
    finally:
        conn.close()


# --- wrk ---------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: installing it from the system packages (apt-get install wrk)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([*sudo, "apt-get", "update"], [*sudo, "apt-get", "install", "-y", "wrk"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            sys.exit(f"could not install wrk ({' '.join(cmd)}):\n{result.stderr[-2000:]}")
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is still missing after apt-get install wrk")
    return found


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers plus socket errors other than the expected closes
    raw: str


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not match:
        raise ValueError(f"unparsable latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    wrk: str, url: str, duration: int, threads: int, connections: int,
    headers: dict[str, str] | None = None, script: Path | None = None, env: dict[str, str] | None = None,
) -> WrkResult:  # fmt: skip
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=duration + 60, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = result.stdout
    if result.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({result.returncode}): {out}\n{result.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read \d+, write (\d+), timeout (\d+)", out):
        errors += int(match.group(1)) + int(match.group(2)) + int(match.group(3))
    return WrkResult(rps, p50, p99, total, errors, out)


# --- output ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Iterable[int] = ()) -> str:
    right = set(right)
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(padded)

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *map(line, cells[1:])])


def write_csv(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path
