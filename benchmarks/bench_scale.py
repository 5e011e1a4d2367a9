"""`make bench-scale`: do request costs stay flat as the catalogue and its history grow?

For each catalogue size (default 50, 5,000 and 50,000 treatments): a fresh database migrated
with the project's migrations and seeded, then synthetic treatments cloned from the seeded ones
(3 studies, 2 regulatory entries, 1 decision and 1 booking-system id each) and change events,
bulk-inserted; then the app under gunicorn and, sequentially, one request at a time:

- warm: the median of many requests once every worker's read cache holds the answer;
- cold: the median of the first request after a write (a change event is inserted through SQL
  before each one; on PostgreSQL the trigger of migration 0004 NOTIFYs every worker's cache
  listener, and the request is sent `HEARD_WAIT` later; on SQLite `PRAGMA data_version` moves on
  at once), so every worker's read cache and booking facts are empty and the request is built
  from the database.

Metrics: list page 1, page 50 and the last page (50 a page; reached by the cursor the page
before it hands out, as a client walking the list holds it), a detail, a booking check of 100
treatments, the change feed from the start and from the end (100 a page), and each worker's
resident memory (VmRSS) after the measurements. The table gives the ratio largest/smallest per
metric against the issue's 1.5x target. At the largest size on PostgreSQL every query a request
makes is run under EXPLAIN ANALYZE and any sequential scan is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

import _support as s

DETAIL_SLUG = "exosomes"
PAGE = 50
FEED_PAGE = 100
BOOKING_COUNT = 100
STUDIES_EACH, REGULATORY_EACH = 3, 2
FLAT_TARGET = 1.5
HEARD_WAIT = 0.05  # seconds from a write through SQL until the workers have heard its NOTIFY
MEMORY_TARGET_MB = 200
CHUNK = 5000
MANY_ROWS = 5000  # a plan node on a request path that handles this many rows is reported
SLOW_MS = 5.0  # ... and so is a statement that takes this long


@dataclass
class Metric:
    name: str
    method: str
    path: str
    body: bytes | None = None
    status: int = 200
    min_size: int = 0  # smaller catalogues do not have this page: not compared

    def send(self, server: s.Server) -> s.Reply:
        headers = {"Content-Type": "application/json"} if self.body else {}
        reply = s.request(self.method, server.base + self.path, self.body, headers)
        if reply.status != self.status:
            raise RuntimeError(f"{self.name}: {reply.status} {reply.body[:300]!r}\n{server.log_tail()}")
        return reply


# --- data --------------------------------------------------------------------------------------


def bulk_fill(database: s.Database, total: int) -> dict[str, int]:
    """Clone the seeded treatments up to `total`, with their facts in proportion, in bulk."""
    from sqlalchemy import create_engine, func, select, text

    from api.models import Base

    t = Base.metadata.tables
    treatments, studies, regulatory = t["treatments"], t["studies"], t["regulatory_statuses"]
    decisions, external_ids = t["decisions"], t["treatment_external_ids"]
    engine = create_engine(database.url)
    try:
        with engine.begin() as conn:
            templates = [
                dict(r) for r in conn.execute(select(treatments).order_by(treatments.c.id)).mappings()
            ]
            ids = [r["id"] for r in templates]
            if ids != list(range(1, len(ids) + 1)):
                raise RuntimeError(f"expected seeded treatment ids 1..{len(ids)}, got {ids}")

            def by_treatment(table: Any) -> dict[int, list[dict[str, Any]]]:
                grouped: dict[int, list[dict[str, Any]]] = {}
                for row in conn.execute(select(table).order_by(table.c.id)).mappings():
                    grouped.setdefault(row["treatment_id"], []).append(dict(row))
                return grouped

            study_rows, regulatory_rows = by_treatment(studies), by_treatment(regulatory)
            decision_rows = by_treatment(decisions)
            all_studies = [r for rows in study_rows.values() for r in rows]
            all_regulatory = [r for rows in regulatory_rows.values() for r in rows]
            next_id = {
                name: (conn.scalar(select(func.max(table.c.id))) or 0) + 1
                for name, table in (("studies", studies), ("regulatory", regulatory),
                                    ("decisions", decisions), ("external_ids", external_ids))
            }  # fmt: skip
            now = dt.datetime.now(dt.UTC)
            new: dict[str, list[dict[str, Any]]] = {k: [] for k in ("t", "s", "r", "d", "e")}
            counts = {"treatments": 0, "studies": 0, "regulatory": 0, "decisions": 0, "external_ids": 0}

            def flush(final: bool = False) -> None:
                for key, table, label in (("t", treatments, "treatments"), ("s", studies, "studies"),
                                          ("r", regulatory, "regulatory"), ("d", decisions, "decisions"),
                                          ("e", external_ids, "external_ids")):  # fmt: skip
                    if new[key] and (final or len(new["t"]) >= CHUNK):
                        conn.execute(table.insert(), new[key])
                        counts[label] += len(new[key])
                        new[key] = []

            for tid in range(len(templates) + 1, total + 1):
                template = templates[(tid - 1) % len(templates)]
                name = f"{template['name']} (variant {tid})"
                new["t"].append(template | {
                    "id": tid, "slug": f"{template['slug']}-variant-{tid}", "name": name,
                    "search_text": "\n".join([name, *template["aliases"]]).lower(),
                    "version": 1, "created_at": now, "updated_at": now,
                })  # fmt: skip
                for rows, pool, count, key, kind in (
                    (study_rows, all_studies, STUDIES_EACH, "s", "studies"),
                    (regulatory_rows, all_regulatory, REGULATORY_EACH, "r", "regulatory"),
                ):
                    source = rows.get(template["id"]) or pool
                    for j in range(count):
                        new[key].append(source[(tid + j) % len(source)] | {
                            "id": next_id[kind], "treatment_id": tid, "version": 1,
                            "created_at": now, "updated_at": now,
                        })  # fmt: skip
                        next_id[kind] += 1
                latest = decision_rows[template["id"]][-1]
                new["d"].append(latest | {"id": next_id["decisions"], "treatment_id": tid, "decided_at": now})
                next_id["decisions"] += 1
                new["e"].append({"id": next_id["external_ids"], "treatment_id": tid, "system": "bench",
                                 "external_id": f"svc-{tid}"})  # fmt: skip
                next_id["external_ids"] += 1
                flush()
            flush(final=True)
            if database.kind == "postgres":
                for table in (
                    "treatments",
                    "studies",
                    "regulatory_statuses",
                    "decisions",
                    "treatment_external_ids",
                ):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT max(id) FROM {table}))"))  # fmt: skip
        return counts
    finally:
        engine.dispose()


def bulk_events(database: s.Database, wanted: int) -> int:
    """Add `treatment.updated` events (spread over the catalogue) until the feed holds `wanted`."""
    conn = database.dbapi_connect()
    try:
        have = conn.execute("SELECT count(*) FROM change_events").fetchone()[0]
        missing = max(0, wanted - have)
        if database.kind == "postgres":
            conn.execute(
                """
                INSERT INTO change_events (event_type, treatment_slug, occurred_at, data)
                SELECT 'treatment.updated', t.slug, now(),
                       json_build_object('slug', t.slug, 'fields', json_build_array('summary'),
                                         'version', 2 + i / c.n)
                FROM (SELECT count(*)::int AS n FROM treatments) AS c
                CROSS JOIN generate_series(1, %s) AS i
                JOIN treatments AS t ON t.id = 1 + i %% c.n
                ORDER BY i
                """,
                (missing,),
            )
        else:
            n = conn.execute("SELECT count(*) FROM treatments").fetchone()[0]
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(" ")
            conn.execute("BEGIN")
            conn.execute(
                """
                WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
                INSERT INTO change_events (event_type, treatment_slug, occurred_at, data)
                SELECT 'treatment.updated', t.slug, ?,
                       json_object('slug', t.slug, 'fields', json_array('summary'), 'version', 2 + seq.i / ?)
                FROM seq JOIN treatments AS t ON t.id = 1 + seq.i % ?
                """,
                (missing, now, n, n),
            )
            conn.execute("COMMIT")
        return int(conn.execute("SELECT count(*) FROM change_events").fetchone()[0])
    finally:
        conn.close()


def analyze(database: s.Database) -> None:
    """Planner statistics (and the visibility map), as autovacuum would have them by now."""
    conn = database.dbapi_connect()
    try:
        conn.execute("VACUUM ANALYZE" if database.kind == "postgres" else "ANALYZE")
    finally:
        conn.close()


def write_event(conn: Any, kind: str) -> None:
    """One committed change: the cheapest write that empties every worker's read cache. On
    PostgreSQL the workers hear of it through the trigger's NOTIFY (`api.readcache.version`):
    waited for `HEARD_WAIT`; SQLite's workers see `PRAGMA data_version` move on at their next read."""
    placeholder = "%s" if kind == "postgres" else "?"
    now = dt.datetime.now(dt.UTC)
    value: Any = now if kind == "postgres" else now.replace(tzinfo=None).isoformat(" ")
    conn.execute(
        "INSERT INTO change_events (event_type, treatment_slug, occurred_at, data) "
        f"VALUES ('treatment.updated', 'exosomes', {placeholder}, {placeholder})",
        (value, json.dumps({"slug": "exosomes", "fields": ["summary"]})),
    )
    if kind == "postgres":
        time.sleep(HEARD_WAIT)


# --- measuring ---------------------------------------------------------------------------------


def metrics_for(database: s.Database, size: int) -> list[Metric]:
    conn = database.dbapi_connect()
    try:
        slugs = [r[0] for r in conn.execute("SELECT slug FROM treatments ORDER BY id").fetchall()]
        last_event = conn.execute("SELECT max(id) FROM change_events").fetchone()[0]
        last_page = max(1, math.ceil(size / PAGE))
        offset = (last_page - 1) * PAGE - 1  # the item that ends the page before the last
        query = f"SELECT name, id FROM treatments ORDER BY name, id LIMIT 1 OFFSET {offset}"
        before = conn.execute(query).fetchone() if last_page > 1 else None
    finally:
        conn.close()
    if len(slugs) >= BOOKING_COUNT:  # spread over the whole catalogue
        chosen = [slugs[i * len(slugs) // BOOKING_COUNT] for i in range(BOOKING_COUNT)]
    else:  # all of them, and unknown ones (answered not bookable after the same lookup)
        chosen = slugs + [f"not-in-catalogue-{i}" for i in range(BOOKING_COUNT - len(slugs))]
    from api.pagination import encode_cursor

    last = f"/v1/treatments?per_page={PAGE}" + (f"&cursor={encode_cursor(*before)}" if before else "")
    booking = json.dumps({"treatments": chosen}).encode()
    return [
        Metric("list page 1", "GET", f"/v1/treatments?per_page={PAGE}"),
        Metric("list page 50", "GET", f"/v1/treatments?per_page={PAGE}&page=50", min_size=49 * PAGE + 1),
        Metric("list last page", "GET", last),
        Metric("detail", "GET", f"/v1/treatments/{DETAIL_SLUG}"),
        Metric(f"booking check of {BOOKING_COUNT}", "POST", "/v1/booking-checks", booking),
        Metric("feed from start", "GET", f"/v1/changes?after=0&limit={FEED_PAGE}"),
        Metric(
            "feed from end", "GET", f"/v1/changes?after={max(0, last_event - FEED_PAGE)}&limit={FEED_PAGE}"
        ),
    ]


def measure(server: s.Server, database: s.Database, metric: Metric, mode: str, count: int,
            into: list[float]) -> None:  # fmt: skip
    """One batch: `count` requests back to back (warm), or each right after a write (cold)."""
    if mode == "warm":
        for _ in range(count):
            into.append(metric.send(server).seconds * 1000)
        return
    conn = database.dbapi_connect()
    try:
        for _ in range(count):
            write_event(conn, database.kind)
            into.append(metric.send(server).seconds * 1000)
    finally:
        conn.close()


def summarise(samples: dict[str, list[float]]) -> dict[str, Any]:
    warm, cold = samples["warm"], samples["cold"]
    return {
        "warm_ms": s.median(warm), "warm_p90_ms": s.percentile(warm, 90),
        "cold_ms": s.median(cold), "cold_p90_ms": s.percentile(cold, 90),
        "warm_n": len(warm), "cold_n": len(cold),
    }  # fmt: skip


# --- EXPLAIN -----------------------------------------------------------------------------------


def explain_requests(database: s.Database, metrics: list[Metric], out: list[str]) -> list[str]:
    """Run each metric's request in-process with a cold cache, capture every SQL statement it
    executes, and EXPLAIN it (ANALYZE on PostgreSQL, QUERY PLAN on SQLite). Returns findings."""
    from sqlalchemy import event

    from api import create_app
    from api.db import get_engine

    app = create_app({"DATABASE_URL": database.url, "PUBLIC_BASE_URL": "http://127.0.0.1",
                      "LOG_REQUESTS": False, "RATELIMIT_ENABLED": False})  # fmt: skip
    client = app.test_client()
    findings: list[str] = []
    conn = database.dbapi_connect()
    try:
        with app.app_context():
            engine = get_engine()
        captured: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
            captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", record)
        for metric in metrics:
            app.extensions["readcache"].forget()  # the next request finds every store empty
            captured.clear()
            headers = {"Content-Type": "application/json"} if metric.body else {}
            response = client.open(metric.path, method=metric.method, data=metric.body, headers=headers)
            if response.status_code != metric.status:
                raise RuntimeError(f"{metric.name}: in-process answer {response.status_code}")
            out.append(f"\n=== {metric.name}: {metric.method} {metric.path[:100]} ({len(captured)} queries)")
            for statement, parameters in captured:
                if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    continue
                out.append("\n--- " + " ".join(statement.split()))
                short = " ".join(statement.split())[:140]
                if database.kind == "postgres":
                    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).fetchall()
                    plan = [r[0] for r in rows]
                    out.extend("    " + line for line in plan)
                    findings.extend(postgres_findings(metric.name, plan, short))
                else:
                    rows = conn.execute("EXPLAIN QUERY PLAN " + statement, parameters or ()).fetchall()
                    plan = [str(r[-1]) for r in rows]
                    out.extend("    " + line for line in plan)
                    findings.extend(f"SCAN      {metric.name}: {line}  in: {short}"
                                    for line in plan if line.startswith("SCAN"))  # fmt: skip
        event.remove(engine, "before_cursor_execute", record)
    finally:
        conn.close()
        with app.app_context():
            get_engine().dispose()
    return findings


def postgres_findings(request_name: str, plan: list[str], sql: str) -> list[str]:
    """Sequential scans, plan nodes that touch many rows, and slow statements."""
    found = []
    timing = next((line.strip() for line in plan if line.strip().startswith("Execution Time")), "")
    for line in plan:
        node = line.strip().removeprefix("->").strip()
        if "Seq Scan" in node:
            found.append(f"SEQ SCAN  {request_name}: {node}  [{timing}]  in: {sql}")
            continue
        match = re.search(r"actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)", node)
        if match and int(match.group(1)) * int(match.group(2)) >= MANY_ROWS:
            found.append(f"MANY ROWS {request_name}: {node}  [{timing}]  in: {sql}")
    match = re.search(r"Execution Time: ([\d.]+) ms", timing)
    if match and float(match.group(1)) >= SLOW_MS:
        found.append(f"SLOW      {request_name}: {timing}  in: {sql}")
    return found


# --- one size ----------------------------------------------------------------------------------


def cache_fill_rss(database: s.Database, env: dict[str, str], entries: int, size: int) -> dict[str, Any]:
    """Worst case for memory: one worker whose read cache holds `entries` distinct keys for
    100-item list pages (distinct query strings for the first pages: page=01, page=001, ...;
    any client can send them, and each is a separate entry holding its own copy of the body)."""
    server = s.Server("app-cache-fill", "api:create_app()", env, workers=1).start()
    try:
        pages = max(1, min(10, math.ceil(size / 100)))
        started = time.monotonic()
        before = server.worker_rss_mb()[0]
        body_bytes = 0
        for i in range(entries):
            page = (i % pages) + 1
            zeros = "0" * (i // pages)
            reply = s.request("GET", f"{server.base}/v1/treatments?per_page=100&page={zeros}{page}")
            if reply.status != 200:
                raise RuntimeError(f"cache fill: {reply.status} {reply.body[:200]!r}")
            body_bytes += len(reply.body)
        after = server.worker_rss_mb()[0]
        return {"entries": entries, "rss_before_mb": before, "rss_after_mb": after,
                "body_mb": body_bytes / 2**20, "seconds": time.monotonic() - started}  # fmt: skip
    finally:
        server.stop()


@dataclass
class Size:
    treatments: int
    events_wanted: int
    database: s.Database | None = None
    events: int = 0
    server: s.Server | None = None
    metrics: list[Metric] | None = None
    env: dict[str, str] | None = None


def load(size: Size, args: argparse.Namespace) -> None:
    s.log(f"== loading {size.treatments:,} treatments, {size.events_wanted:,} change events ({args.db}) ==")
    size.database = database = s.create_database(args.db, f"scale{size.treatments}")
    started = time.monotonic()
    s.migrate_and_seed(database)
    steps = [time.monotonic()]
    counts = bulk_fill(database, size.treatments)
    steps.append(time.monotonic())
    size.events = bulk_events(database, size.events_wanted)
    steps.append(time.monotonic())
    analyze(database)
    steps.append(time.monotonic())
    fill, events, stats = (b - a for a, b in zip(steps, steps[1:], strict=False))
    s.log(
        f"loaded in {time.monotonic() - started:.0f} s (catalogue {fill:.0f} s, events {events:.0f} s, "
        f"vacuum/analyze {stats:.0f} s): {counts} beside the seed; {size.events:,} events"
    )
    size.env = s.app_env(
        database.url, TPA_RATE_LIMIT_PUBLIC="1000000000/minute", TPA_RATE_LIMIT_BOOKING="1000000000/minute"
    )
    size.metrics = metrics_for(database, size.treatments)


def run_all(sizes: list[Size], args: argparse.Namespace, explain_out: list[str]) -> list[dict[str, Any]]:
    """Load every size, serve them side by side, and measure in interleaved rounds (every metric
    at every size, round after round) so drift on a shared machine hits all sizes alike."""
    for size in sizes:
        load(size, args)
    for size in sizes:
        assert size.env is not None
        size.server = s.Server(f"app-{size.treatments}", "api:create_app()", size.env, workers=args.workers)
        size.server.start()
    for size in sizes:  # a worker that is not trusted asks the database on every read
        s.log(f"{size.server.name} read cache: {s.cache_state(size.server)}")  # type: ignore[arg-type,union-attr]
    names = [m.name for m in sizes[0].metrics or []]
    samples = {(size.treatments, n): {"warm": [], "cold": []} for size in sizes for n in names}
    for size in sizes:  # fill every worker's cache (and connection pool) before measuring
        for metric in size.metrics or []:
            for _ in range(args.warmup):
                metric.send(size.server)  # type: ignore[arg-type]
    rounds = max(1, args.rounds)
    # All warm rounds first: no write happens until they are done, so no warm sample is a miss.
    for mode, total in (("warm", args.requests), ("cold", args.cold)):
        for round_no in range(rounds if total else 0):
            count = total // rounds + (1 if round_no < total % rounds else 0)
            for index, name in enumerate(names):
                for size in sizes:
                    metric = (size.metrics or [])[index]
                    measure(size.server, size.database, metric, mode, count,  # type: ignore[arg-type]
                            samples[(size.treatments, name)][mode])  # fmt: skip
            s.log(f"{mode} round {round_no + 1}/{rounds} done")
    results = []
    for size in sizes:
        assert size.server is not None and size.database is not None
        rss = size.server.worker_rss_mb()
        size.server.stop()
        metrics = {n: summarise(samples[(size.treatments, n)]) for n in names}
        for name, row in metrics.items():
            warm, cold = row["warm_ms"], row["cold_ms"]
            s.log(f"{size.treatments:>7,} {name:<22} warm {warm:7.2f} ms   cold {cold:7.2f} ms")
        s.log(f"{size.treatments:>7,} worker RSS: " + ", ".join(f"{v:.1f}" for v in rss) + " MB")
        results.append({"size": size.treatments, "events": size.events, "metrics": metrics, "rss_mb": rss,
                        "findings": None, "cache_fill": None})  # fmt: skip
    largest, result = sizes[-1], results[-1]
    assert largest.database is not None and largest.env is not None
    if not args.no_explain:
        s.log(f"EXPLAIN of every query on the request paths at {largest.treatments:,} (cold cache)")
        explain_out.append(f"##### {largest.treatments:,} treatments, {largest.events:,} events, {args.db}")
        try:
            result["findings"] = explain_requests(largest.database, largest.metrics or [], explain_out)
        except Exception as error:  # still report what was measured
            result["findings"] = [f"ERROR     EXPLAIN did not finish: {error!r}"]
    if args.cache_fill:
        s.log(f"worst-case memory: filling one worker's read cache with {args.cache_fill:,} list pages")
        try:
            result["cache_fill"] = cache_fill_rss(
                largest.database, largest.env, args.cache_fill, largest.treatments
            )
        except Exception as error:
            s.log(f"cache fill did not finish: {error!r}")
    for size in sizes:
        size.database.drop()  # type: ignore[union-attr]
    return results


# --- report ------------------------------------------------------------------------------------


def report(all_results: list[dict[str, Any]], args: argparse.Namespace, stamp: str,
           explain_out: list[str], min_sizes: dict[str, int]) -> None:  # fmt: skip
    small, large = all_results[0], all_results[-1]
    sizes = [f"{r['size']:,}" for r in all_results]
    print()
    print(
        f"== bench-scale on {args.db}: medians of {args.requests} warm and {args.cold} cold sequential "
        f"requests per metric and size, in {args.rounds} interleaved rounds; "
        f"gunicorn sync x{args.workers}; {s.core_count()} cores =="
    )
    print("events: " + ", ".join(f"{r['events']:,}" for r in all_results) + " (one per size, same order)")
    headers = ["metric (ms)", *[f"{n} warm" for n in sizes], "ratio", "",
               *[f"{n} cold" for n in sizes], "ratio", ""]  # fmt: skip
    rows, csv_rows = [], []
    misses = []
    notes = []
    for name in small["metrics"]:
        line = [name]
        # the smallest size that has this page (page 50 needs 2,451 treatments)
        min_size = min_sizes.get(name, 0)
        base = next((i for i, r in enumerate(all_results) if r["size"] >= min_size), len(all_results))
        mark = "*" if base > 0 else ""
        if mark:
            since = f"{all_results[base]['size']:,}" if base < len(all_results) else "no size"
            notes.append(f"* {name}: empty below {min_size:,} treatments; ratio = largest / {since}")
        for mode in ("warm", "cold"):
            values = [r["metrics"][name][f"{mode}_ms"] for r in all_results]
            usable = base < len(all_results) - 1 and values[base]
            ratio = values[-1] / values[base] if usable else float("nan")
            verdict = "-" if math.isnan(ratio) else "PASS" if ratio <= FLAT_TARGET else "FAIL"
            if verdict == "FAIL":
                misses.append(f"{name} ({mode} {ratio:.2f}x)")
            shown = "-" if math.isnan(ratio) else f"{ratio:.2f}x{mark}"
            line += [*(f"{v:.2f}" for v in values), shown, verdict]
        rows.append(line)
        for r in all_results:
            m = r["metrics"][name]
            csv_rows.append(
                [args.db, r["size"], r["events"], name, m["warm_ms"], m["warm_p90_ms"], m["warm_n"],
                 m["cold_ms"], m["cold_p90_ms"], m["cold_n"], "", "", s.core_count()]
            )  # fmt: skip
    print(s.table(headers, rows, right=range(1, len(headers))))
    for note in notes:
        print(note)
    print(f"ratio = largest / smallest size; target <= {FLAT_TARGET}x. {s.load_line()} at the end.")
    print()
    mem_rows = []
    for r in all_results:
        rss = r["rss_mb"]
        mem_rows.append([f"{r['size']:,}", f"{max(rss):.1f}", f"{s.median(rss):.1f}", f"{min(rss):.1f}",
                         "PASS" if max(rss) < MEMORY_TARGET_MB else "FAIL"])  # fmt: skip
        csv_rows.append([args.db, r["size"], r["events"], "worker rss (MB)", "", "", "", "", "", "",
                         max(rss), s.median(rss), s.core_count()])  # fmt: skip
    print(s.table(["treatments", "worker RSS max MB", "median MB", "min MB", f"< {MEMORY_TARGET_MB} MB"],
                  mem_rows, right=range(1, 5)))  # fmt: skip
    mem_ratio = max(large["rss_mb"]) / max(small["rss_mb"])
    print(f"memory ratio largest/smallest: {mem_ratio:.2f}x (after the measurements above)")
    if max(large["rss_mb"]) >= MEMORY_TARGET_MB:
        misses.append(f"worker RSS {max(large['rss_mb']):.0f} MB at {large['size']:,}")
    fill = large.get("cache_fill")
    if fill:
        verdict = "PASS" if fill["rss_after_mb"] < MEMORY_TARGET_MB else "FAIL"
        print(
            f"worst case: one worker after {fill['entries']:,} distinct 100-item list URLs "
            f"({fill['body_mb']:.0f} MB of bodies, {fill['seconds']:.0f} s): "
            f"RSS {fill['rss_before_mb']:.0f} -> {fill['rss_after_mb']:.0f} MB  "
            f"{verdict} (< {MEMORY_TARGET_MB} MB)"
        )
        label = f"worker rss after {fill['entries']} cache fills"
        csv_rows.append(
            [args.db, large["size"], large["events"], label, "", "", "", "", "", "", fill["rss_after_mb"], "",
             s.core_count()]
        )  # fmt: skip
        if verdict == "FAIL":
            misses.append(f"worker RSS {fill['rss_after_mb']:.0f} MB with a full read cache")
    findings = large.get("findings")
    if findings is not None:
        print()
        scans = sum(f.startswith(("SEQ SCAN", "SCAN")) for f in findings)
        print(f"EXPLAIN at {large['size']:,} treatments: {scans} sequential scan(s) on request paths; "
              f"nodes handling >= {MANY_ROWS:,} rows and statements >= {SLOW_MS} ms:")  # fmt: skip
        for finding in findings:
            print("  " + finding)
        path = s.RESULTS_DIR / f"explain-{args.db}-{stamp}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(explain_out) + "\n")
        print(f"plans: {path.relative_to(s.ROOT)}")
    print()
    print(f"targets: {'all met' if not misses else 'missed: ' + '; '.join(misses)}")
    headers_csv = [
        "db", "treatments", "events", "metric", "warm_median_ms", "warm_p90_ms", "warm_n",
        "cold_median_ms", "cold_p90_ms", "cold_n", "rss_max_mb", "rss_median_mb", "cores",
    ]  # fmt: skip
    path = s.write_csv(s.RESULTS_DIR / f"bench-scale-{args.db}-{stamp}.csv", headers_csv, csv_rows)
    print(f"csv: {path.relative_to(s.ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--sizes", default="50,5000,50000", help="catalogue sizes (default 50,5000,50000)")
    parser.add_argument("--events", default="",
                        help="change events per size, comma-separated (default: 20 per treatment, at "
                             "least 1,000: 1,000 / 100,000 / 1,000,000)")  # fmt: skip
    parser.add_argument(
        "--requests", type=int, default=200, help="warm requests per metric and size (default 200)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds they are split into (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=25, help="requests per metric before measuring (default 25)"
    )
    parser.add_argument("--cold", type=int, default=25, help="cold requests per metric (default 25; 0: skip)")
    parser.add_argument("--workers", type=int, default=5, help="gunicorn sync workers (default 5)")
    parser.add_argument("--cache-fill", type=int, default=4096,
                        help="at the largest size, fill one worker's read cache with this many list pages "
                             "and report its RSS (default 4096, the cache's bound; 0: skip)")  # fmt: skip
    parser.add_argument("--no-explain", action="store_true", help="skip EXPLAIN at the largest size")
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in args.sizes.split(",") if x.strip())
    if not sizes or sizes[0] < 18:
        parser.error("sizes must be at least 18 (the seed catalogue)")
    if args.events:
        events = [int(x) for x in args.events.split(",")]
        events = events * len(sizes) if len(events) == 1 else events
        if len(events) != len(sizes):
            parser.error("--events needs one value, or one per size")
    else:
        events = [max(1000, 20 * n) for n in sizes]

    print(s.machine_line())
    print(s.load_line())
    stamp = s.timestamp()
    explain_out: list[str] = []
    started = time.monotonic()
    try:
        plan = [Size(n, e) for n, e in zip(sizes, events, strict=True)]
        results = run_all(plan, args, explain_out)
        min_sizes = {m.name: m.min_size for m in plan[0].metrics or []}
        report(results, args, stamp, explain_out, min_sizes)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        s.CLEANUP.run()
    print(f"total time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
