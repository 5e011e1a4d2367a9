"""In-process cost of a cache hit: the WSGI app called directly, no socket, no load generator.

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        .venv/bin/python benchmarks/hit_cost.py [TREE]

TREE is a checkout of this repository (default: this one), so two versions can be compared in one
session by alternating them (e.g. a `git worktree` of an older commit). A fresh seeded database;
each case is warmed, then timed as the minimum of 7 batches of 2,000 calls (the minimum is what
the machine's other jobs disturb least).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

TREE = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[1])
sys.path.insert(0, TREE)
os.chdir(TREE)

os.environ.setdefault("TPA_SECRET_KEY", "benchmarks-only-console-secret-key-0123456789")  # servers need one
from api import create_app  # noqa: E402
from api.context import current_rules  # noqa: E402
from api.db import get_session  # noqa: E402
from api.seed import load_catalogue  # noqa: E402
from tests.databases import fresh_database  # noqa: E402

CHECK = orjson.dumps({"treatments": ["exosomes", "botulinum-toxin-type-a", "microneedling", "chemical-peels",
                                     "polynucleotides"]})  # fmt: skip


def environ(path: str, query: str = "", body: bytes = b"") -> dict[str, Any]:
    env = {"REQUEST_METHOD": "POST" if body else "GET", "PATH_INFO": path, "QUERY_STRING": query,
           "SERVER_NAME": "x", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "x",
           "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "127.0.0.1"}  # fmt: skip
    if body:
        env |= {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))}
    return env


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "detail": lambda: environ("/v1/treatments/exosomes"),
    "list": lambda: environ("/v1/treatments"),
    "changes": lambda: environ("/v1/changes", "after=0&limit=100"),
    "booking_5": lambda: environ("/v1/booking-checks", body=CHECK),
}


def main() -> None:
    with fresh_database() as url:
        # An older tree's write lease is set to 0 (the key is ignored where it no longer exists).
        unlimited = "100000000/minute"
        app = create_app({"DATABASE_URL": url, "PUBLIC_BASE_URL": "http://127.0.0.1",
                          "LOG_REQUESTS": False, "CACHE_WRITE_LEASE_SECONDS": 0.0,
                          "RATE_LIMIT_PUBLIC": unlimited, "RATE_LIMIT_BOOKING": unlimited})  # fmt: skip
        with app.app_context():
            load_catalogue(get_session(), current_rules())
        time.sleep(1.0)  # the seeding's writes are heard

        def start_response(*_args: Any) -> None:
            pass

        for name, make in CASES.items():
            for _ in range(50):
                b"".join(app.wsgi_app(make(), start_response))
            batches = []
            for _ in range(7):
                started = time.perf_counter()
                for _ in range(2000):
                    b"".join(app.wsgi_app(make(), start_response))
                batches.append((time.perf_counter() - started) / 2000 * 1e6)
            print(f"{name:10} {min(batches):7.1f} µs a request (min of 7 × 2,000)")
        app.extensions["db_engine"].dispose()


if __name__ == "__main__":
    main()
