"""Caches stay consistent across gunicorn workers: a read after a committed write reflects it"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from api import create_app
from api.api_keys.models import Role
from api.api_keys.service import create_key
from api.db import get_session
from tests.databases import fresh_database
from tests.helpers import add_treatment, approval, study

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port, method, path, payload=None, headers=None):
    data = orjson.dumps(payload) if payload is not None else None
    headers = {"Content-Type": "application/json"} | (headers or {})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, orjson.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, orjson.loads(error.read() or b"null")


# How the workers learn of writes (README, "Caching"): the host generation alone (no lease: the
# fast path answers right up to the write), the host generation with its write lease (reads
# after the write ask the database), and the database on every read.
COHERENCE = {
    "host-generation": {"CACHE_WRITE_LEASE_SECONDS": 0.0},
    "host-lease": {},
    "database": {"CACHE_COHERENCE": "database"},
}


@pytest.fixture(params=COHERENCE.values(), ids=COHERENCE.keys())
def served(request):
    """A migrated database with one approved treatment, served by several gunicorn workers."""
    coherence = request.param
    with fresh_database() as url:
        app = create_app({"DATABASE_URL": url, "LOG_REQUESTS": False} | coherence)
        add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])
        with app.app_context():
            key = create_key(get_session(), "reviewer", Role("reviewer"))
        app.extensions["db_engine"].dispose()
        port = free_port()
        env = (
            os.environ
            | {
                "DATABASE_URL": url,
                "TPA_RATELIMIT_ENABLED": "false",
                "TPA_LOG_REQUESTS": "false",
            }
            | {f"TPA_{name}": str(value) for name, value in coherence.items()}
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--no-control-socket", "--workers", str(WORKERS),
             "--bind", f"127.0.0.1:{port}", "api:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if call(port, "GET", "/health/live")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
            yield port, {"Authorization": f"Bearer {key}"}
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_a_withdrawal_is_seen_by_every_worker_at_once(served):
    port, reviewer = served
    check = {"treatments": ["botox", "botox", "botox", "botox", "botox"]}
    # Warm every worker's caches: many requests spread over the workers.
    for _ in range(WORKERS * 10):
        assert call(port, "POST", "/v1/booking-checks", check)[2]["bookable"] is True
        assert call(port, "GET", "/v1/treatments/botox")[2]["status"] == "approved"
    etag = call(port, "GET", "/v1/treatments")[1]["ETag"]

    withdrawal = {"status": "withdrawn", "reason": "A safety signal is under review."}
    status, _, _ = call(port, "POST", "/v1/treatments/botox/decisions", withdrawal, reviewer)
    assert status == 201

    for _ in range(WORKERS * 10):
        assert call(port, "POST", "/v1/booking-checks", check)[2]["bookable"] is False
        assert call(port, "GET", "/v1/treatments/botox")[2]["status"] == "withdrawn"
        listed, _, body = call(port, "GET", "/v1/treatments", headers={"If-None-Match": etag})
        assert listed == 200 and body["items"][0]["status"] == "withdrawn"
