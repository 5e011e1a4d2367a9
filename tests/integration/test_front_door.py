"""What reaches the API through a real server: bodies however framed, URIs however long"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from api import create_app
from api.api_keys.models import Role
from api.api_keys.service import create_key
from api.db import get_session
from tests.conftest import execute
from tests.databases import fresh_database
from tests.helpers import add_treatment, free_port, gunicorn

LIMIT = 1024 * 1024  # the default TPA_MAX_CONTENT_LENGTH
NBIB = (Path(__file__).resolve().parent.parent / "fixtures" / "literature" / "sample.nbib").read_text()


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    with fresh_database() as url:
        app = create_app({"DATABASE_URL": url, "LOG_REQUESTS": False})
        add_treatment(app, "microneedling", "under_review")
        with app.app_context():
            key = create_key(get_session(), "editor", Role("editor"))
        with gunicorn(url) as port:
            yield {"port": port, "app": app, "editor": {"Authorization": f"Bearer {key}"}}
        app.extensions["db_engine"].dispose()


def medline(size: int) -> bytes:
    """MEDLINE records with distinct PMIDs and DOIs, about `size` bytes in all."""
    records, n = [], 0
    while sum(map(len, records)) < size:
        n += 1
        records.append(
            NBIB.split("\n\n")[0].replace("99999911", f"9{n:07d}").replace("NBIB.011", f"CHUNK.{n}") + "\n\n"
        )
    return "".join(records).encode()


def send_chunked(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        connection.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, (response.getheader("Content-Type"), orjson.loads(response.read()))
    finally:
        connection.close()


def studies(app: Any) -> int:
    return execute(app, "SELECT count(*) FROM studies")[0][0]


def test_a_chunked_body_over_the_limit_is_413_and_writes_nothing(server):
    body = medline(int(LIMIT * 1.2))
    assert len(body) > LIMIT
    before = studies(server["app"])
    status, (content_type, problem) = send_chunked(
        server["port"], "/v1/treatments/microneedling/studies/import?format=nbib", body,
        server["editor"] | {"Content-Type": "application/x-nbib"},
    )  # fmt: skip
    assert (status, content_type, problem["status"]) == (413, "application/problem+json", 413)
    assert studies(server["app"]) == before


def test_a_chunked_body_within_the_limit_is_read_whole(server):
    body = medline(200_000)
    records = body.count(b"PMID- ")
    before = studies(server["app"])
    status, (_, result) = send_chunked(
        server["port"], "/v1/treatments/microneedling/studies/import?format=nbib", body,
        server["editor"] | {"Content-Type": "application/x-nbib"},
    )  # fmt: skip
    assert status == 201, result
    assert result["count"] == records and studies(server["app"]) == before + records


# --- the production front door: deploy/nginx/tpa-api.conf, Debian's nginx, its own prefix ------

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="needs Debian's nginx (.ci/run installs it)"
)
SLOW_CLIENTS = 50


@contextmanager
def nginx_in_front_of(upstream_port: int) -> Iterator[int]:
    """deploy/nginx/tpa-api.conf, its `listen` and upstream `server` pointed at free ports, run by
    Debian's nginx under a prefix of its own (never the system's nginx, its config or its pid)."""
    port = free_port()
    site = (ROOT / "deploy" / "nginx" / "tpa-api.conf").read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("server 127.0.0.1:8000 ", f"server 127.0.0.1:{upstream_port} ")
    with tempfile.TemporaryDirectory(prefix="tpa-nginx-") as prefix:
        (Path(prefix) / "site.conf").write_text(site)
        (Path(prefix) / "nginx.conf").write_text(f"""
            daemon off;
            worker_processes 1;
            pid {prefix}/nginx.pid;
            error_log {prefix}/error.log warn;
            events {{ worker_connections 1024; }}
            http {{
                access_log off;
                client_body_temp_path {prefix}/body;
                proxy_temp_path {prefix}/proxy;
                fastcgi_temp_path {prefix}/fastcgi;
                uwsgi_temp_path {prefix}/uwsgi;
                scgi_temp_path {prefix}/scgi;
                include {prefix}/site.conf;
            }}
        """)
        log = Path(prefix) / "stderr.log"
        with log.open("wb") as stderr:
            server = subprocess.Popen([NGINX, "-p", prefix, "-c", f"{prefix}/nginx.conf"], stderr=stderr)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert server.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
            yield port
        finally:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def front(server) -> Iterator[int]:
    with nginx_in_front_of(server["port"]) as port:
        yield port


def raw(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    lines = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return raw(
        port,
        f"GET {path} HTTP/1.1\r\nHost: clinic.example\r\n{lines}Connection: close\r\n\r\n".encode(),
    )


@contextmanager
def slow_clients(port: int, count: int) -> Iterator[None]:
    """`count` clients, each sending a request header a byte every half second, until the end."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    stop = threading.Event()

    def trickle() -> None:
        for sock in sockets:
            sock.sendall(b"GET /v1/treatments HTTP/1.1\r\nHost: clinic.example\r\nX-Slow: ")
        while not stop.wait(0.5):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"a")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1.0)  # every slow client is connected and trickling
        yield
    finally:
        stop.set()
        trickler.join(5)
        for sock in sockets:
            sock.close()


@needs_nginx
def test_fifty_slow_clients_do_not_hold_up_anyone_else(server, front):
    """Each slow client sends a header a byte at a time; nginx holds them, gunicorn never sees them.
    (Straight to gunicorn, a few such sockets block every sync worker.)"""
    with slow_clients(front, SLOW_CLIENTS):
        timings = []
        for _ in range(20):
            started = time.monotonic()
            status, _, _ = get(front, "/v1/treatments/microneedling")
            timings.append(time.monotonic() - started)
            assert status == 200
    print(f"\n  with {SLOW_CLIENTS} slow clients: slowest of 20 requests {max(timings) * 1000:.0f} ms")
    assert max(timings) < 2.0


@needs_nginx
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/treatments?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /v1/treatments HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"POST /v1/booking-checks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Content-Length: 2000000\r\n\r\n", 413),
    ],
    ids=["400", "414", "431", "413"],
)  # fmt: skip
def test_the_errors_nginx_makes_itself_are_problems_too(front, request_bytes, status):
    answered, headers, body = raw(front, request_bytes)
    assert answered == status
    assert headers["content-type"] == "application/problem+json"
    assert orjson.loads(body)["status"] == status


@needs_nginx
def test_an_api_that_is_down_is_a_502_problem_with_retry_after():
    with nginx_in_front_of(free_port()) as port:  # nothing listens upstream
        status, headers, body = get(port, "/v1/treatments")
    assert (status, headers["content-type"], headers["retry-after"]) == (502, "application/problem+json", "5")
    assert orjson.loads(body)["status"] == 502


def test_the_nginx_configuration_maps_every_error_it_makes_to_a_problem():
    site = (ROOT / "deploy" / "nginx" / "tpa-api.conf").read_text()
    for status in (400, 413, 414, 494, 502, 503, 504):
        assert f"error_page {status} " in site, status


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze")
def test_the_systemd_units_verify(tmp_path):
    """`systemd-analyze verify` on the units, their paths pointed at this checkout and the running
    virtualenv (it checks that each command exists); any warning fails too."""
    env = tmp_path / "env"
    env.write_text("")
    units = []
    for unit in sorted((ROOT / "deploy" / "systemd").iterdir()):
        text = unit.read_text().replace("/srv/tpa/.venv", sys.prefix).replace("/srv/tpa", str(ROOT))
        text = text.replace("/etc/tpa/env", str(env))
        text = text.replace("User=tpa", "User=root").replace("Group=tpa", "Group=root")
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
    assert len(units) >= 4
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", *units], capture_output=True, text=True, timeout=60,
                            env=os.environ | {"SYSTEMD_LOG_LEVEL": "notice"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
