"""`make soak`: readers, booking checks and writers at once against gunicorn and PostgreSQL.

A fresh PostgreSQL database (unique name, dropped at the end) is migrated and seeded; the app
runs under gunicorn (3 sync workers, rate limits off); then, for `--duration` seconds:

- readers: the list, a detail, the same detail revalidated with If-None-Match (304), feed pages;
- booking checkers: five treatments per check, seeded and newly approved ones;
- writers: create a treatment, add a study and a regulatory entry, approve it through the
  policy gate, PATCH a shared seeded treatment with If-Match (a 412 from a lost race is
  expected and counted apart), add a study to a shared treatment, and now and then record
  another decision;
- a feed follower reads the change feed from the start, following `next_after`, all along.

Then, straight from the database: zero 5xx and no unexpected status; every write answered 2xx
is there with exactly one audit record (matched by entity and id) and its change event; the
feed read from id 0 holds every event row with strictly increasing ids, and the follower saw
exactly that sequence. Prints requests, errors, p50/p99 per operation; exits 1 if a check fails.

    .venv/bin/python benchmarks/soak.py --duration 60
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import _support as s

EXPECTED = {  # operation -> statuses that are a correct answer
    "list": {200}, "detail": {200}, "detail_304": {304, 200}, "changes": {200}, "booking": {200},
    "create_treatment": {201}, "add_study": {201}, "add_regulatory": {201}, "decision": {201},
    "patch_read": {200}, "patch": {200, 412}, "feed_follow": {200},
}  # fmt: skip
STRONG_RCT = {"title": "Soak RCT", "design": "rct", "participants": 250, "randomised": True,
              "controlled": True, "blinded": True, "follow_up_months": 12, "sponsorship": "industry",
              "peer_reviewed": True}  # fmt: skip
FDA = {"regulator": "FDA", "status": "approved", "pathway": "PMA", "reference": "P000000",
       "source_url": "https://www.accessdata.fda.gov/example"}  # fmt: skip
NO_ANSWER = 0  # the status counted for a request that got no HTTP answer at all
SHARED_TREATMENTS = 3  # seeded treatments every writer PATCHes, so some races are lost


@dataclass
class Write:
    """A write answered 2xx, and how to find its audit record and its change event."""

    entity: str  # audit_records.entity
    action: str  # audit_records.action
    event_type: str
    slug: str
    entity_id: int | None = None  # None for a treatment: looked up by slug
    marker: str | None = None  # a PATCH: the summary it wrote (in the audit's changes)
    version: int | None = None  # a PATCH: the version it made (in the event's data)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # exceptions
    writes: list[Write] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, op: str, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[op][status] += 1
            self.latencies[op].append(seconds)

    def fail(self, op: str, error: str) -> None:
        with self.lock:
            self.failures[op].append(error)

    def wrote(self, write: Write) -> None:
        with self.lock:
            self.writes.append(write)


class Client:
    """One thread's HTTP calls: timed, counted, never raising (failures are counted)."""

    def __init__(self, base: str, stats: Stats, key: str | None = None) -> None:
        self.base, self.stats = base, stats
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}

    def call(self, op: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> s.Reply | None:  # fmt: skip
        sent = dict(self.auth) | (headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            reply = s.request(method, self.base + path, data, sent, timeout=30)
        except Exception as error:  # a refused or dropped connection: status 0, an error
            self.stats.note(op, NO_ANSWER, time.perf_counter() - started)
            self.stats.fail(op, f"{method} {path}: no answer: {error!r}")
            return None
        self.stats.note(op, reply.status, reply.seconds)
        if reply.status not in EXPECTED[op]:
            detail = reply.body[:300].decode(errors="replace")
            self.stats.fail(op, f"{method} {path} -> {reply.status}: {detail}")
        return reply


def body(reply: s.Reply | None) -> Any:
    return json.loads(reply.body) if reply is not None and reply.body else None


# --- the workload ------------------------------------------------------------------------------


def reader(client: Client, slugs: list[str], stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    etags: dict[str, str] = {}
    while not stop.is_set():
        choice = rng.random()
        if choice < 0.25:
            client.call("list", "GET", f"/v1/treatments?per_page={rng.choice([20, 50])}")
        elif choice < 0.55:
            slug = rng.choice(slugs)
            reply = client.call("detail", "GET", f"/v1/treatments/{slug}")
            if reply is not None and "ETag" in reply.headers:
                etags[slug] = reply.headers["ETag"]
        elif choice < 0.9 and etags:
            slug = rng.choice(list(etags))
            fresh = {"If-None-Match": etags[slug]}
            reply = client.call("detail_304", "GET", f"/v1/treatments/{slug}", headers=fresh)
            if reply is not None and reply.status == 200:  # changed since: the new version
                etags[slug] = reply.headers.get("ETag", etags[slug])
        else:
            client.call("changes", "GET", f"/v1/changes?after={rng.randint(0, 200)}&limit=50")


def booker(client: Client, slugs: list[str], approved: list[str], stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        pool = slugs + approved[-20:]
        refs = rng.sample(pool, min(5, len(pool)))
        reply = client.call("booking", "POST", "/v1/booking-checks", {"treatments": refs})
        answer = body(reply)
        if reply is not None and reply.status == 200:
            results = answer["results"]
            overall = all(r["bookable"] for r in results)
            if [r["treatment"] for r in results] != refs or answer["bookable"] != overall:
                client.stats.fail("booking", f"inconsistent answer for {refs}: {answer}")
            for r in results:
                if r["bookable"] and r["status"] != "approved":
                    client.stats.fail("booking", f"bookable but {r['status']}: {r}")


def writer(client: Client, n: int, shared: list[str], approved: list[str], stop: threading.Event) -> None:
    rng = random.Random(1000 + n)
    mine: list[str] = []
    round_ = 0
    while not stop.is_set():
        round_ += 1
        slug = f"soak-{n}-{round_}-{uuid.uuid4().hex[:6]}"
        new = {
            "slug": slug,
            "name": f"Soak {n}.{round_}",
            "category": "laser",
            "summary": "Made by the soak.",
        }
        created = client.call("create_treatment", "POST", "/v1/treatments", new)
        if created is not None and created.status == 201:
            client.stats.wrote(Write("treatment", "created", "treatment.created", slug))
            mine.append(slug)
            if add_entry(client, slug, "studies", STRONG_RCT | {"title": f"Soak RCT {slug}"}) and add_entry(
                client, slug, "regulatory", FDA
            ):
                if decide(client, slug, "approved", "Evidence and FDA approval in place (soak)."):
                    approved.append(slug)
        patch_shared(client, rng.choice(shared))
        cohort = {
            "title": f"Shared soak study {uuid.uuid4().hex[:8]}",
            "design": "cohort",
            "participants": 40,
        }
        add_entry(client, rng.choice(shared), "studies", cohort)
        if len(mine) > 1 and rng.random() < 0.3:
            status = rng.choice(["not_approved", "under_review"])
            decide(client, rng.choice(mine[:-1]), status, "Soak re-decision.")


def add_entry(client: Client, slug: str, kind: str, data: dict[str, Any]) -> bool:
    op, entity = ("add_study", "study") if kind == "studies" else ("add_regulatory", "regulatory")
    reply = client.call(op, "POST", f"/v1/treatments/{slug}/{kind}", data)
    if reply is None or reply.status != 201:
        return False
    client.stats.wrote(Write(entity, "created", f"{entity}.created", slug, entity_id=body(reply)["id"]))
    return True


def decide(client: Client, slug: str, status: str, reason: str) -> bool:
    decision = {"status": status, "reason": reason}
    reply = client.call("decision", "POST", f"/v1/treatments/{slug}/decisions", decision)
    if reply is None or reply.status != 201:
        return False
    client.stats.wrote(Write("decision", "created", "decision.recorded", slug, entity_id=body(reply)["id"]))
    return True


def patch_shared(client: Client, slug: str) -> None:
    current = client.call("patch_read", "GET", f"/v1/treatments/{slug}")
    if current is None or current.status != 200:
        return
    summary = f"Soak summary {uuid.uuid4().hex}"
    time.sleep(random.random() * 0.01)  # widen the window between read and write: races happen
    reply = client.call("patch", "PATCH", f"/v1/treatments/{slug}", {"summary": summary},
                        headers={"If-Match": current.headers["ETag"]})  # fmt: skip
    if reply is not None and reply.status == 200:
        version = body(reply)["version"]
        write = Write("treatment", "updated", "treatment.updated", slug, marker=summary, version=version)
        client.stats.wrote(write)


class Follower:
    """A change-feed consumer following `next_after` for the whole run."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: list[int] = []
        self.cursor = 0
        self.disorder: list[str] = []

    def catch_up(self) -> bool:
        """Read pages until an empty one; False if a request failed."""
        while True:
            reply = self.client.call("feed_follow", "GET", f"/v1/changes?after={self.cursor}&limit=100")
            if reply is None or reply.status != 200:
                return False
            page = body(reply)
            for event in page["events"]:
                if self.seen and event["id"] <= self.seen[-1]:
                    self.disorder.append(f"id {event['id']} after {self.seen[-1]}")
                self.seen.append(event["id"])
            self.cursor = page["next_after"]
            if not page["events"]:
                return True

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.catch_up()
            time.sleep(0.05)


# --- verification ------------------------------------------------------------------------------


def read_feed(base: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = 0
    while True:
        reply = s.request("GET", f"{base}/v1/changes?after={cursor}&limit=500", timeout=30)
        if reply.status != 200:
            raise RuntimeError(f"the feed answered {reply.status}")
        page = json.loads(reply.body)
        if not page["events"]:
            return events
        events.extend(page["events"])
        cursor = page["next_after"]


def verify(database: s.Database, base: str, stats: Stats, follower: Follower) -> list[str]:
    problems: list[str] = []
    five_xx = {op: sum(n for code, n in codes.items() if code >= 500) for op, codes in stats.statuses.items()}
    if any(five_xx.values()):
        problems.append(f"5xx answers: { {op: n for op, n in five_xx.items() if n} }")
    for op, errors in stats.failures.items():
        problems.append(f"{op}: {len(errors)} failed or unexpected answers, e.g. {errors[0]}")

    with database.dbapi_connect() as conn:
        ids = dict(conn.execute("SELECT slug, id FROM treatments").fetchall())
        audits = Counter(
            tuple(row) for row in conn.execute("SELECT entity, entity_id, action FROM audit_records")
        )
        patch_audits = Counter(
            row[0]
            for row in conn.execute(
                "SELECT changes->'summary'->>'to' FROM audit_records "
                "WHERE entity = 'treatment' AND action = 'updated'"
            )  # fmt: skip
        )
        present = {
            "study": {r[0] for r in conn.execute("SELECT id FROM studies")},
            "regulatory": {r[0] for r in conn.execute("SELECT id FROM regulatory_statuses")},
            "decision": {r[0] for r in conn.execute("SELECT id FROM decisions")},
        }
        table_ids = [r[0] for r in conn.execute("SELECT id FROM change_events ORDER BY id")]

    feed = read_feed(base)
    feed_ids = [e["id"] for e in feed]
    if any(b <= a for a, b in zip(feed_ids, feed_ids[1:], strict=False)):
        problems.append("feed ids do not strictly increase")
    if feed_ids != table_ids:
        problems.append(f"the feed holds {len(feed_ids)} events, the table {len(table_ids)}")
    if follower.disorder:
        problems.append(f"the follower saw ids out of order: {follower.disorder[:3]}")
    if follower.seen != feed_ids:
        missing = sorted(set(feed_ids) - set(follower.seen))
        problems.append(
            f"the follower's sequence differs from the feed: {len(missing)} missed ({missing[:5]})"
        )

    events = Counter()
    for e in feed:
        data = e["data"]
        if e["type"] == "treatment.created":
            events[(e["type"], e["treatment"])] += 1
        elif e["type"] == "treatment.updated":
            events[(e["type"], e["treatment"], data.get("version"))] += 1
        elif e["type"] == "decision.recorded":
            events[(e["type"], data["decision_id"])] += 1
        elif e["type"] in {"study.created", "regulatory.created"}:
            events[(e["type"], data["id"])] += 1

    missing_rows, audit_counts, event_counts = [], [], []
    for w in stats.writes:
        if w.entity == "treatment":
            entity_id = ids.get(w.slug)
            if entity_id is None:
                missing_rows.append(w)
                continue
        else:
            entity_id = w.entity_id
            if entity_id not in present[w.entity]:
                missing_rows.append(w)
                continue
        if w.marker is not None:  # a PATCH: its own audit record, by the summary it wrote
            audited = patch_audits[w.marker]
            event_key: tuple[Any, ...] = (w.event_type, w.slug, w.version)
        else:
            audited = audits[(w.entity, entity_id, w.action)]
            event_key = (w.event_type, w.slug) if w.entity == "treatment" else (w.event_type, entity_id)
        if audited != 1:
            audit_counts.append((w, audited))
        if events[event_key] != 1:
            event_counts.append((w, events[event_key]))
    if missing_rows:
        problems.append(f"{len(missing_rows)} acknowledged writes are missing, e.g. {missing_rows[0]}")
    if audit_counts:
        problems.append(f"{len(audit_counts)} writes without one audit record, e.g. {audit_counts[0]}")
    if event_counts:
        problems.append(f"{len(event_counts)} writes without one feed event, e.g. {event_counts[0]}")
    span = f"ids {feed_ids[0]}..{feed_ids[-1]}" if feed_ids else "empty"
    print(f"\nverified {len(stats.writes)} acknowledged writes against the database; the feed holds "
          f"{len(feed_ids)} events ({span}), the follower saw {len(follower.seen)}")  # fmt: skip
    return problems


def report(stats: Stats, seconds: float) -> None:
    rows = []
    total = 0
    for op in EXPECTED:
        codes = stats.statuses.get(op, Counter())
        count = sum(codes.values())
        if not count:
            continue
        total += count
        lost = codes.get(412, 0) if op == "patch" else 0
        errors = len(stats.failures.get(op, []))
        lat = stats.latencies.get(op, [])
        statuses = " ".join(f"{code}x{n}" for code, n in sorted(codes.items()))
        rows.append([op, count, errors, lost, f"{s.percentile(lat, 50) * 1000:.1f}",
                     f"{s.percentile(lat, 99) * 1000:.1f}", statuses])  # fmt: skip
    print(f"\n{total} requests in {seconds:.1f} s ({total / seconds:.0f}/s)")
    print(s.table(["operation", "requests", "errors", "412 lost race", "p50 ms", "p99 ms", "statuses"], rows,
                  right=[1, 2, 3, 4, 5]))  # fmt: skip


# --- main --------------------------------------------------------------------------------------


def create_key(database: s.Database, name: str, role: str) -> str:
    out = s.run([str(s.BIN / "flask"), "--app", "api", "keys", "create", "--name", name, "--role", role],
                env=s.app_env(database.url), timeout=120)  # fmt: skip
    return out.strip().splitlines()[-1].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--bookers", type=int, default=2)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (default 3)")
    args = parser.parse_args()

    try:
        s.log(f"soak: {args.duration:.0f} s, {args.readers} readers, {args.bookers} booking checkers, "
              f"{args.writers} writers, 1 feed follower; gunicorn with {args.workers} workers")  # fmt: skip
        database = s.create_database("postgres", "soak")
        s.log(f"created PostgreSQL database {database.name}")
        s.migrate_and_seed(database)
        keys = [create_key(database, f"soak-writer-{n}", "reviewer") for n in range(args.writers)]
        env = s.app_env(database.url, TPA_RATELIMIT_ENABLED="false", TPA_LOG_REQUESTS="false")
        server = s.Server("soak", "api:create_app()", env, workers=args.workers).start()
        s.log(f"soak read cache: {s.cache_state(server)}")
        listing = json.loads(s.request("GET", f"{server.base}/v1/treatments?per_page=100").body)
        slugs = [t["slug"] for t in listing["items"]]
        shared = slugs[:SHARED_TREATMENTS]

        stats, stop, approved = Stats(), threading.Event(), []
        follower = Follower(Client(server.base, stats))
        base = server.base
        jobs: list[tuple[str, Any, tuple[Any, ...]]] = [("follower", follower.run, (stop,))]
        jobs += [(f"reader-{n}", reader, (Client(base, stats), slugs, stop, n)) for n in range(args.readers)]
        jobs += [
            (f"booker-{n}", booker, (Client(base, stats), slugs, approved, stop, n))
            for n in range(args.bookers)
        ]
        jobs += [(f"writer-{n}", writer, (Client(base, stats, keys[n]), n, shared, approved, stop))
                 for n in range(args.writers)]  # fmt: skip
        # daemon threads: never keep the process alive past its clean-up
        threads = [
            threading.Thread(target=target, args=a, name=name, daemon=True) for name, target, a in jobs
        ]
        started = time.monotonic()
        try:
            for thread in threads:
                thread.start()
            deadline = started + args.duration
            while time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                if server.process is None or server.process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited during the soak:\n{server.log_tail()}")
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        elapsed = time.monotonic() - started
        stuck = [t.name for t in threads if t.is_alive()]
        follower.catch_up()  # the writers have stopped: read to the end

        report(stats, elapsed)
        problems = verify(database, server.base, stats, follower)
        if stuck:
            problems.append(f"threads still running after the stop: {stuck}")
        if problems:
            print("\nSOAK FAILED:")
            for problem in problems:
                print(f"  - {problem}")
            print(f"\nlast lines of the server log:\n{server.log_tail(30)}")
            return 1
        print("\nsoak passed: no 5xx, every acknowledged write present with one audit record and one "
              "event, the change feed complete and in order")  # fmt: skip
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        s.CLEANUP.run()  # stop gunicorn, drop the database, delete temp files (also on signals)


if __name__ == "__main__":
    sys.exit(main())
