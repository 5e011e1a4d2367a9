"""`make bench`: the app against a bare-Flask baseline serving the same bytes, in one run.

For each database (PostgreSQL, then SQLite): a fresh database, migrated and seeded, filled up to
50 treatments (the list of 50 is about 50 KB); the app and `baseline_app.py` under the same
gunicorn settings; their responses checked byte for byte; then wrk against both in alternating
rounds (app, baseline, app, baseline, ...). Prints rps, p50 and p99 per endpoint, the ratio
app/baseline against the issue's targets, and writes a CSV to benchmarks/results/.

Only ratios measured in one run mean anything: absolute figures drift on shared machines.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _support as s

DETAIL_SLUG = "exosomes"
BOOKING_SLUGS = [  # five seeded treatments, bookable and not
    "botulinum-toxin-type-a", "hyaluronic-acid-fillers", "exosomes", "microneedling", "stem-cell-facials",
]  # fmt: skip
POST_SCRIPT = s.BENCH_DIR / "wrk" / "post_json.lua"
# Targets from issue 5: app rps / baseline rps, medians of alternating rounds.
TARGETS = {"list": 0.8, "detail": 0.8, "detail_304": 0.8, "booking_5": 0.6}
# The headless CMS of the reference table x10: absolute, so for information only.
CMS_X10 = {"list": 1700, "detail": 2500}


@dataclass
class Endpoint:
    name: str  # also the name of the captured response the baseline replays
    method: str
    path: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def endpoints(detail_etag: str) -> list[Endpoint]:
    booking = json.dumps({"treatments": BOOKING_SLUGS}).encode()
    return [
        Endpoint("list", "GET", "/v1/treatments?per_page=50"),
        Endpoint("detail", "GET", f"/v1/treatments/{DETAIL_SLUG}"),
        Endpoint("detail_304", "GET", f"/v1/treatments/{DETAIL_SLUG}", 304, {"If-None-Match": detail_etag}),
        Endpoint(
            "booking_5", "POST", "/v1/booking-checks", 200, {"Content-Type": "application/json"}, booking
        ),
        Endpoint("changes", "GET", "/v1/changes?after=0&limit=100"),
    ]


def bench_env(database: s.Database, overrides: list[str]) -> dict[str, str]:
    """The app's environment: its defaults, except what a one-address load generator needs."""
    extra = {
        # The per-address rate limits (300 reads a minute) would answer wrk with 429s: raised,
        # not disabled, so the limiter's own cost per request is still measured.
        "TPA_RATE_LIMIT_PUBLIC": "1000000000/minute",
        "TPA_RATE_LIMIT_BOOKING": "1000000000/minute",
    }
    for item in overrides:
        key, _, value = item.partition("=")
        extra[key] = value
    return s.app_env(database.url, **extra)


# --- data --------------------------------------------------------------------------------------


def fill_catalogue(url: str, total: int) -> int:
    """Add treatments through the service layer (as the seed does) until there are `total`.

    Each is a copy of a seeded treatment under a new slug and name, with its studies,
    regulatory entries and initial decision (which passes the policy gate like any other)."""
    from sqlalchemy import func, select

    from api import create_app
    from api.audit.service import SEED_ACTOR
    from api.context import current_rules
    from api.db import get_engine, get_session
    from api.seed import read_catalogue
    from api.treatments import service
    from api.treatments.models import Treatment

    app = create_app({"DATABASE_URL": url, "PUBLIC_BASE_URL": "http://127.0.0.1"})
    try:
        with app.app_context():
            session = get_session()
            count = session.scalar(select(func.count(Treatment.id))) or 0
            items = read_catalogue()
            index = 0
            while count < total:
                item = copy.deepcopy(items[index % len(items)])
                variant = index // len(items) + 2
                data = item["data"]
                data["slug"] = f"{data['slug']}-variant-{variant}"
                data["name"] = f"{data['name']} (variant {variant})"
                data["external_ids"] = {k: f"{v}-v{variant}" for k, v in data.get("external_ids", {}).items()}
                service.create_treatment(
                    session, data, SEED_ACTOR, current_rules(), studies=item["studies"],
                    regulatory=item["regulatory"], decision=item["decision"],
                )  # fmt: skip
                count += 1
                index += 1
            return count
    finally:
        with app.app_context():
            get_engine().dispose()


# Values that legitimately differ between two responses of the same server.
VARYING_HEADERS = {"date", "x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"}


def capture(app: s.Server, eps: list[Endpoint], folder: Path) -> None:
    """Record the app's responses: the bytes and headers the baseline will replay."""
    responses: dict[str, Any] = {}
    for ep in eps:
        reply = s.request(ep.method, app.base + ep.path, ep.body, ep.headers)
        if reply.status != ep.status:
            raise RuntimeError(
                f"app answered {ep.name} with {reply.status}, not {ep.status}: {reply.body[:300]!r}\n"
                f"{app.log_tail()}"
            )
        (folder / f"{ep.name}.body").write_bytes(reply.body)
        responses[ep.name] = {"status": reply.status, "headers": reply.headers}
    meta = {"detail_slug": DETAIL_SLUG, "responses": responses}
    (folder / "fixtures.json").write_text(json.dumps(meta, indent=2))


def verify(app: s.Server, baseline: s.Server, eps: list[Endpoint]) -> dict[str, int]:
    """Both servers answer each endpoint with the same status, body bytes and headers."""
    sizes = {}
    for ep in eps:
        a = s.request(ep.method, app.base + ep.path, ep.body, ep.headers)
        b = s.request(ep.method, baseline.base + ep.path, ep.body, ep.headers)
        if a.status != ep.status or b.status != ep.status:
            raise RuntimeError(f"{ep.name}: expected {ep.status}, app {a.status}, baseline {b.status}")
        if a.body != b.body:
            raise RuntimeError(f"{ep.name}: bodies differ ({len(a.body)} vs {len(b.body)} bytes)")
        ah = {k.lower(): v for k, v in a.headers.items() if k.lower() not in VARYING_HEADERS}
        bh = {k.lower(): v for k, v in b.headers.items() if k.lower() not in VARYING_HEADERS}
        if ah != bh:
            differ = sorted(k for k in ah.keys() | bh.keys() if ah.get(k) != bh.get(k))
            raise RuntimeError(f"{ep.name}: headers differ: {differ}: app {ah}, baseline {bh}")
        sizes[ep.name] = len(a.body)
    return sizes


# --- measuring ---------------------------------------------------------------------------------


def wrk_once(wrk: str, server: s.Server, ep: Endpoint, seconds: int, args: argparse.Namespace,
             body_files: dict[str, Path]) -> s.WrkResult:  # fmt: skip
    env = None
    script = None
    headers = dict(ep.headers)
    if ep.method == "POST":
        script = POST_SCRIPT
        env = os.environ | {"WRK_BODY_FILE": str(body_files[ep.name])}
        headers.pop("Content-Type", None)  # the script sets it
    return s.run_wrk(
        wrk, server.base + ep.path, seconds, args.threads, args.connections, headers, script, env
    )


def bench_database(kind: str, args: argparse.Namespace, wrk: str) -> list[dict[str, Any]]:
    s.log(f"== {kind}: preparing a fresh database ==")
    database = s.create_database(kind, "http")
    s.migrate_and_seed(database)
    total = fill_catalogue(database.url, args.treatments)
    s.log(f"catalogue: {total} treatments")

    gunicorn_args = {"workers": args.workers}
    app = s.Server(
        f"app-{kind}", "api:create_app()", bench_env(database, args.app_env), **gunicorn_args
    ).start()
    # `trusted=False` (TPA_CACHE_COHERENCE=database, or a listener not confirmed): every read
    # asks the database; else reads are answered from memory until the next write.
    s.log(f"{app.name} read cache: {s.cache_state(app)}")
    folder = Path(tempfile.mkdtemp(prefix="tpa-bench-fixtures-"))
    s.CLEANUP.add(f"delete {folder}", lambda: shutil.rmtree(folder, ignore_errors=True))
    etag = s.request("GET", app.base + f"/v1/treatments/{DETAIL_SLUG}").headers.get("ETag", "")
    eps = endpoints(etag)
    capture(app, eps, folder)
    baseline_env = s.app_env("", BENCH_FIXTURES=str(folder))
    baseline = s.Server(
        f"baseline-{kind}", "baseline_app:create_app()", baseline_env,
        extra_args=["--pythonpath", str(s.BENCH_DIR)], **gunicorn_args,
    ).start()  # fmt: skip
    sizes = verify(app, baseline, eps)
    items = len(json.loads((folder / "list.body").read_bytes())["items"])
    s.log("verified: same status, body bytes and headers from both servers; bodies: "
          + ", ".join(f"{n} {b:,} B" for n, b in sizes.items()) + f"; list holds {items} items")  # fmt: skip
    body_files = {}
    for ep in eps:
        if ep.body is not None:
            body_files[ep.name] = folder / f"{ep.name}.request.json"
            body_files[ep.name].write_bytes(ep.body)

    servers = {"app": app, "baseline": baseline}
    if args.warmup:
        s.log(f"warm-up: {args.warmup} s per endpoint and server")
        for ep in eps:
            for server in servers.values():
                wrk_once(wrk, server, ep, args.warmup, args, body_files)

    samples: dict[tuple[str, str], list[s.WrkResult]] = {}
    for round_no in range(1, args.rounds + 1):
        for ep in eps:
            for label, server in servers.items():  # app, baseline, app, baseline, ...
                result = wrk_once(wrk, server, ep, args.duration, args, body_files)
                samples.setdefault((ep.name, label), []).append(result)
                flag = f"  ({result.errors} errors)" if result.errors else ""
                s.log(
                    f"round {round_no}/{args.rounds} {ep.name:<10} {label:<8} {result.rps:8.0f} rps  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms{flag}"
                )
    app.stop()
    baseline.stop()
    database.drop()

    rows = []
    for ep in eps:
        a, b = samples[(ep.name, "app")], samples[(ep.name, "baseline")]
        app_rps, base_rps = s.median(r.rps for r in a), s.median(r.rps for r in b)
        ratio = app_rps / base_rps if base_rps else float("nan")
        # Each round's app/baseline pair ran back to back: their ratio cancels slow drift.
        paired = s.median(x.rps / y.rps for x, y in zip(a, b, strict=True) if y.rps)
        target = TARGETS.get(ep.name)
        verdict = "-" if target is None else ("PASS" if ratio >= target else "FAIL")
        rows.append({
            "db": kind, "endpoint": ep.name, "method": ep.method, "path": ep.path, "status": ep.status,
            "body_bytes": sizes[ep.name],
            "app_rps": round(app_rps, 1), "baseline_rps": round(base_rps, 1), "ratio": round(ratio, 3),
            "paired_ratio": round(paired, 3),
            "target": target if target is not None else "", "result": verdict,
            "app_p50_ms": round(s.median(r.p50_ms for r in a), 2),
            "baseline_p50_ms": round(s.median(r.p50_ms for r in b), 2),
            "app_p99_ms": round(s.median(r.p99_ms for r in a), 2),
            "baseline_p99_ms": round(s.median(r.p99_ms for r in b), 2),
            "app_rps_rounds": ";".join(f"{r.rps:.0f}" for r in a),
            "baseline_rps_rounds": ";".join(f"{r.rps:.0f}" for r in b),
            "app_errors": sum(r.errors for r in a), "baseline_errors": sum(r.errors for r in b),
            "rounds": args.rounds, "duration_s": args.duration, "threads": args.threads,
            "connections": args.connections, "workers": args.workers, "treatments": total,
            "cores": s.core_count(), "load_after": s.load_line(),
        })  # fmt: skip
    return rows


def report(kind: str, rows: list[dict[str, Any]], stamp: str) -> None:
    print()
    print(f"== {kind}: app vs bare-Flask baseline (median of {rows[0]['rounds']} alternating rounds of "
          f"{rows[0]['duration_s']} s; wrk -t{rows[0]['threads']} -c{rows[0]['connections']}; "
          f"gunicorn sync x{rows[0]['workers']}; {s.core_count()} cores) ==")  # fmt: skip
    headers = ["endpoint", "app rps", "base rps", "app/base", "target", "", "paired", "app p50", "base p50",
               "app p99", "base p99", "body", "errors"]  # fmt: skip
    body = [
        [r["endpoint"], f"{r['app_rps']:,.0f}", f"{r['baseline_rps']:,.0f}", f"{r['ratio']:.2f}x",
         f">= {r['target']}x" if r["target"] != "" else "-", r["result"], f"{r['paired_ratio']:.2f}x",
         f"{r['app_p50_ms']:.2f} ms", f"{r['baseline_p50_ms']:.2f} ms", f"{r['app_p99_ms']:.2f} ms",
         f"{r['baseline_p99_ms']:.2f} ms", f"{r['body_bytes']:,} B",
         f"{r['app_errors']}/{r['baseline_errors']}"]
        for r in rows
    ]  # fmt: skip
    print(s.table(headers, body, right=range(1, 13)))
    print("app/base: median app rps / median baseline rps (PASS/FAIL is on this); paired: median of the")
    print(f"rounds' own app/baseline ratios. {rows[-1]['load_after']} at the end.")
    for r in rows:
        if r["endpoint"] in CMS_X10:
            ok = "meets" if r["app_rps"] >= CMS_X10[r["endpoint"]] else "below"
            print(
                f"info: {r['endpoint']} {r['app_rps']:,.0f} rps {ok} 10x the issue's headless-CMS figure "
                f"({CMS_X10[r['endpoint']]:,}); absolute, so it depends on this machine's load"
            )
    misses = [r["endpoint"] for r in rows if r["result"] == "FAIL"]
    print(f"targets: {'all met' if not misses else 'missed by ' + ', '.join(misses)}")
    path = s.write_csv(
        s.RESULTS_DIR / f"bench-{kind}-{stamp}.csv", list(rows[0]), [list(r.values()) for r in rows]
    )
    print(f"csv: {path.relative_to(s.ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both",
                        help="which configuration(s) to run (default: postgres, then sqlite)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per endpoint/server (0: none)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--workers", type=int, default=5, help="gunicorn sync workers, both apps (default 5)")
    parser.add_argument("--treatments", type=int, default=50, help="catalogue size (default 50)")
    parser.add_argument(
        "--app-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the app only, e.g. TPA_LOG_REQUESTS=false (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1:
        parser.error("--rounds and --duration must be at least 1")

    print(s.machine_line())
    print(s.load_line())
    wrk = s.ensure_wrk()
    stamp = s.timestamp()
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    try:
        for kind in kinds:
            report(kind, bench_database(kind, args, wrk), stamp)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        s.CLEANUP.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
