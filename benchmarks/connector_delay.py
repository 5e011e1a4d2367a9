"""How long from a decision to the booking system switching the service? (Connectors, issue 16.)

A fresh database (PostgreSQL by default, `--db sqlite` for the embedded one; unique, removed at
the end whatever happens) holds one approved treatment mapped to a Square service. A fake Square
(tests/fakes/square.py, validating against Square's OpenAPI document) serves on 127.0.0.1; a
gunicorn server serves the API; `flask connectors run` (the worker, as deployed) follows the
change feed. Then, for each of `--rounds` rounds, the treatment is withdrawn through the API (t0:
its 201 arrived) and the fake Square is watched until the service's `available_for_booking` is
false (the delay), then approved again and watched until it is true.

Prints the median, p95 and max delay of the withdrawals and the approvals in milliseconds,
against the target max <= 5 s (exit 1 if missed, or if the fake saw a request Square's document
does not allow).

    .venv/bin/python benchmarks/connector_delay.py --rounds 30
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import _support as s

sys.path.insert(0, str(s.ROOT))
from tests.fakes.square import FakeSquare  # noqa: E402
from tests.helpers import serving  # noqa: E402

SLUG, SERVICE = "connector-probe", "SQ-PROBE"
warnings.filterwarnings("ignore", "Unsupported scheme type")  # openapi-core on Square's oauth2 scheme
TARGET_MS = 5000.0
ROUND_TIMEOUT = 30.0
JSON = {"Content-Type": "application/json"}


def prepare(url: str) -> tuple[str, str]:
    """Migrate, add the approved, mapped treatment; an admin and a reviewer key."""
    from alembic import command

    from api import create_app
    from api.api_keys.models import Role
    from api.api_keys.service import create_key
    from api.audit.service import SEED_ACTOR
    from api.context import current_rules
    from api.db import alembic_config, get_session
    from api.treatments import service
    from tests.helpers import approval, study

    command.upgrade(alembic_config(url), "head")
    app = create_app({"DATABASE_URL": url, "LOG_REQUESTS": False, "PUBLIC_BASE_URL": "http://127.0.0.1"})
    try:
        with app.app_context():
            data = {"slug": SLUG, "name": "Connector probe", "category": "skin_procedure",
                    "summary": "Withdrawn and approved again by benchmarks/connector_delay.py.",
                    "external_ids": {"square": SERVICE}}  # fmt: skip
            service.create_treatment(
                get_session(), data, SEED_ACTOR, current_rules(), studies=[study()], regulatory=[approval()],
                decision={"status": "approved", "reason": "Strong evidence and FDA approval."},
            )  # fmt: skip
            return (create_key(get_session(), "bench-admin", Role("admin")),
                    create_key(get_session(), "bench-reviewer", Role("reviewer")))  # fmt: skip
    finally:
        app.extensions["db_engine"].dispose()


def post(server: s.Server, path: str, body: dict, key: str) -> s.Reply:
    reply = s.request("POST", server.base + path, json.dumps(body).encode(),
                      JSON | {"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    if reply.status not in (201, 202):
        raise RuntimeError(f"POST {path}: {reply.status} {reply.body[:300]!r}")
    return reply


def watch(fake: FakeSquare, available: bool, since: float) -> float:
    """Milliseconds from `since` until the service's availability is `available`."""
    deadline = time.monotonic() + ROUND_TIMEOUT
    while fake.available(SERVICE) != available:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{SERVICE} not switched {'on' if available else 'off'} in {ROUND_TIMEOUT} s")
        time.sleep(0.002)
    return (time.perf_counter() - since) * 1000


def summary(name: str, values: list[float]) -> list[object]:
    return [
        name,
        len(values),
        f"{s.median(values):.0f}",
        f"{s.percentile(values, 95):.0f}",
        f"{max(values):.0f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30, help="withdrawals and approvals (default 30)")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args(argv)
    print(s.machine_line())
    print(s.load_line())
    fake = FakeSquare()
    fake.add_service(SERVICE, "Connector probe")
    try:
        with serving(fake) as square_url:
            database = s.create_database(args.db, "connectors")
            admin, reviewer = prepare(database.url)
            env = s.app_env(database.url, TPA_RATELIMIT_ENABLED="false", TPA_LOG_REQUESTS="false",
                            TPA_CONNECTORS_ALLOW_LOOPBACK_HTTP="true", TPA_SECRET_KEYS=_key())  # fmt: skip
            server = s.Server("api", "api:create_app()", env, workers=2).start()
            log = Path(server.log_path or "/dev/null").with_suffix(".worker.log")
            command = [str(s.BIN / "flask"), "--app", "api", "connectors", "run"]
            with log.open("w") as out:
                worker = subprocess.Popen(command, cwd=s.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            s.CLEANUP.add("stop the connector worker", lambda: (worker.terminate(), worker.wait(30)))
            post(server, "/v1/connectors", {"system": "square", "name": "bench", "base_url": square_url,
                                            "credentials": {"access_token": fake.token}}, admin)  # fmt: skip
            time.sleep(2)  # the worker's first full pass
            off, on = [], []
            decision = f"/v1/treatments/{SLUG}/decisions"
            for _ in range(args.rounds):
                post(server, decision, {"status": "withdrawn", "reason": "benchmark"}, reviewer)
                off.append(watch(fake, False, time.perf_counter()))
                post(server, decision, {"status": "approved", "reason": "benchmark"}, reviewer)
                on.append(watch(fake, True, time.perf_counter()))
            print(
                f"\nDecision (its 201 arrived) → Square's service switched, {args.db}, {args.rounds} rounds:"
            )
            rows = [summary("withdrawal → off", off), summary("approval → on", on)]
            print(s.table(["", "rounds", "median ms", "p95 ms", "max ms"], rows, right=range(1, 5)))
            missed = max(off + on) > TARGET_MS
            print(f"target: max <= {TARGET_MS:.0f} ms: {'MISSED' if missed else 'met'}")
            if fake.violations:
                print("requests or answers Square's document does not allow:", *fake.violations, sep="\n  ")
            return 1 if missed or fake.violations else 0
    finally:
        s.CLEANUP.run()


def _key() -> str:
    from api.connectors.vault import new_key

    return new_key()


if __name__ == "__main__":
    sys.exit(main())
