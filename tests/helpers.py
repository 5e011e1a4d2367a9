"""Small builders for API tests"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from flask.testing import FlaskClient
from werkzeug.serving import WSGIRequestHandler, make_server


def random_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_treatment(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"slug": random_slug(), "name": "Test treatment", "category": "skin_procedure",
            "summary": "A treatment made by a test."} | fields  # fmt: skip
    response = client.post("/v1/treatments", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


STRONG_RCT = {"title": "A large randomised trial", "design": "rct", "participants": 250,
              "randomised": True, "controlled": True, "blinded": True, "follow_up_months": 12,
              "sponsorship": "industry", "peer_reviewed": True}  # fmt: skip
FDA_APPROVAL = {"regulator": "FDA", "status": "approved", "pathway": "PMA", "reference": "P000000",
                "source_url": "https://www.accessdata.fda.gov/example"}  # fmt: skip


def add_treatment(app: Any, slug: str, status: str = "under_review", **fields: Any) -> None:
    """Create a treatment through the service, as the seed does (studies, entries, decision)."""
    from api.audit.service import SEED_ACTOR
    from api.context import current_rules
    from api.db import get_session
    from api.treatments import service

    studies = fields.pop("studies", [])
    regulatory = fields.pop("regulatory", [])
    data = {"slug": slug, "name": slug.replace("-", " ").title(), "category": "skin_procedure",
            "summary": f"About {slug}."} | fields  # fmt: skip
    with app.app_context():
        service.create_treatment(
            get_session(), data, SEED_ACTOR, current_rules(), studies=studies, regulatory=regulatory,
            decision={"status": status, "reason": f"{slug} is {status}."},
        )  # fmt: skip


def decide(client: FlaskClient, headers: dict[str, str], slug: str, status: str, **extra: Any) -> Any:
    """Record a decision through the API (the response, whatever its status)."""
    body = {"status": status, "reason": f"The clinic decided: {status}."} | extra
    return client.post(f"/v1/treatments/{slug}/decisions", json=body, headers=headers)


def study(**fields: Any) -> dict[str, Any]:
    """A study dict as the service takes it (defaults: a strong, peer-reviewed RCT)."""
    return {"title": "A randomised trial", "design": "rct", "participants": 250, "randomised": True,
            "controlled": True, "blinded": True, "follow_up_months": 12, "sponsorship": "industry",
            "peer_reviewed": True} | fields  # fmt: skip


def approval(**fields: Any) -> dict[str, Any]:
    return {"regulator": "FDA", "status": "approved", "pathway": "PMA", "reference": "P000000",
            "source_url": "https://www.accessdata.fda.gov/example"} | fields  # fmt: skip


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per request: tests assert on answers, not on a test server's log."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app behind a real threaded HTTP server on a free port, for truly concurrent requests;
    yields its base URL and always shuts it down."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(30)


ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None):
    data = orjson.dumps(payload) if payload is not None else None
    headers = {"Content-Type": "application/json"} | (headers or {})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, orjson.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, orjson.loads(error.read() or b"null")


@contextmanager
def gunicorn(
    database_url: str, tmpdir: str | None = None, workers: int = WORKERS, **settings: str
) -> Iterator[int]:
    """A gunicorn server with default settings (no rate limits, no access log) but `settings`
    (`TPA_*` values), from the repository (so `gunicorn.conf.py` applies), on a free port."""
    port = free_port()
    env = os.environ | {"DATABASE_URL": database_url, "TPA_RATELIMIT_ENABLED": "false",
                        "TPA_LOG_REQUESTS": "false", "TPA_LOG_LEVEL": "CRITICAL"}  # fmt: skip
    env |= ({"TMPDIR": tmpdir} if tmpdir else {}) | {f"TPA_{name}": value for name, value in settings.items()}
    env.setdefault("TPA_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")  # a server refuses to start without
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--no-control-socket", "--workers", str(workers),
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
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
