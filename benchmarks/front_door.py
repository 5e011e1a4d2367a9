"""The latency slow clients add behind the front door (deploy/nginx/tpa-api.conf).

    .venv/bin/python benchmarks/front_door.py [--requests 300] [--slow 50]

Serves a seeded SQLite database with gunicorn (4 sync workers, as deployed) behind Debian's nginx
running deploy/nginx/tpa-api.conf under a prefix of its own (tests/integration/test_front_door.py
starts it the same way). Times sequential reads of a treatment through nginx, first alone, then
while `--slow` clients trickle a request header a byte every half second. Target: the slow
clients add less than 100 ms at the 99th percentile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("TPA_SECRET_KEY", "benchmarks-only-console-secret-key-0123456789")  # servers need one
from api import create_app  # noqa: E402
from api.context import current_rules  # noqa: E402
from api.db import alembic_config, get_session  # noqa: E402
from api.seed import load_catalogue  # noqa: E402
from tests.helpers import gunicorn  # noqa: E402
from tests.integration.test_front_door import get, nginx_in_front_of, slow_clients  # noqa: E402


def timings(port: int, count: int) -> list[float]:
    measured = []
    for _ in range(count):
        started = time.perf_counter()
        status, _, _ = get(port, "/v1/treatments/exosomes")
        measured.append(time.perf_counter() - started)
        assert status == 200, status
    return measured


def summary(name: str, measured: list[float]) -> dict[str, float]:
    ordered = sorted(measured)
    figures = {"median": statistics.median(ordered), "p99": ordered[int(len(ordered) * 0.99) - 1],
               "max": ordered[-1]}  # fmt: skip
    print(f"  {name:<24} " + "  ".join(f"{k} {v * 1000:7.2f} ms" for k, v in figures.items()))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--slow", type=int, default=50)
    args = parser.parse_args()
    from alembic import command

    with tempfile.TemporaryDirectory(prefix="tpa-front-") as folder:
        url = f"sqlite:///{folder}/bench.db"
        command.upgrade(alembic_config(url), "head")
        app = create_app({"DATABASE_URL": url, "PUBLIC_BASE_URL": "http://127.0.0.1", "LOG_REQUESTS": False})
        with app.app_context():
            load_catalogue(get_session(), current_rules())
        app.extensions["db_engine"].dispose()
        with gunicorn(url, workers=4) as upstream, nginx_in_front_of(upstream) as port:
            timings(port, 50)  # warm every worker's caches
            print(f"GET /v1/treatments/exosomes through nginx, {args.requests} sequential requests:")
            alone = summary("alone", timings(port, args.requests))
            with slow_clients(port, args.slow):
                crowded = summary(f"with {args.slow} slow clients", timings(port, args.requests))
        added = crowded["p99"] - alone["p99"]
        print(f"  added at the 99th percentile: {added * 1000:.2f} ms (target < 100 ms): "
              f"{'met' if added < 0.1 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
