"""How long does another server go on booking a withdrawn treatment?

A fresh PostgreSQL database (unique name, dropped at the end whatever happens) is migrated and
holds one approved treatment (a strong RCT and an FDA approval, so that approving it again
passes the policy gate) and a reviewer key. Two gunicorn servers of 2 sync workers each serve
it as two hosts would: each with its own TMPDIR and its own spelling of DATABASE_URL (server A
connects to 127.0.0.1, server B to localhost), so they share nothing but the database. Then,
for each of `--withdrawals` rounds:

1. warm: server B's booking check for the treatment answers `bookable: true` `--warm` times in
   a row (so that its workers remember the treatment and answer from memory);
2. the treatment is withdrawn through server A; t0 is when A's 201 arrived;
3. `--pollers` threads send B's booking check back to back until one answers `bookable: false`;
   the round's delay is (arrival of that first false) - t0. Polling goes on for `--settle` ms
   after it, and every `bookable: true` answered after t0 is counted (stale answers: B's
   workers had not heard yet, or one had and another had not);
4. the treatment is approved again through A, and B is asked until it says bookable `--warm`
   times in a row (which is step 1 of the next round).

Prints the median, p95 and max delay in milliseconds and the number of rounds, against the
target max <= 100 ms; exits 1 if it is missed or a round never saw the withdrawal. A CSV of the
rounds goes to benchmarks/results/.

    .venv/bin/python benchmarks/staleness.py --withdrawals 200
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import _support as s

SLUG = "staleness-probe"
TARGET_MS = 100.0
ROUND_TIMEOUT = 10.0  # seconds a round waits for B to change its answer before it counts as missed
STRONG_RCT = {"title": "A large randomised trial", "design": "rct", "participants": 250,
              "randomised": True, "controlled": True, "blinded": True, "follow_up_months": 12,
              "sponsorship": "industry", "peer_reviewed": True}  # fmt: skip
FDA = {"regulator": "FDA", "status": "approved", "pathway": "PMA", "reference": "P000000",
       "source_url": "https://www.accessdata.fda.gov/example"}  # fmt: skip
CHECK = json.dumps({"treatments": [SLUG]}).encode()
JSON = {"Content-Type": "application/json"}


def prepare(url: str) -> str:
    """Migrate, add the approved treatment, and return a reviewer key (all in this process)."""
    from alembic import command

    from api import create_app
    from api.api_keys.models import Role
    from api.api_keys.service import create_key
    from api.audit.service import SEED_ACTOR
    from api.context import current_rules
    from api.db import alembic_config, get_session
    from api.treatments import service

    command.upgrade(alembic_config(url), "head")
    app = create_app({"DATABASE_URL": url, "PUBLIC_BASE_URL": "http://127.0.0.1", "LOG_REQUESTS": False})
    try:
        with app.app_context():
            data = {"slug": SLUG, "name": "Staleness probe", "category": "skin_procedure",
                    "summary": "Withdrawn and approved again by benchmarks/staleness.py."}  # fmt: skip
            service.create_treatment(
                get_session(), data, SEED_ACTOR, current_rules(), studies=[STRONG_RCT], regulatory=[FDA],
                decision={"status": "approved", "reason": "Strong evidence and FDA approval."},
            )  # fmt: skip
            return create_key(get_session(), "staleness-reviewer", Role("reviewer"))
    finally:
        app.extensions["db_engine"].dispose()


def bookable(server: s.Server) -> tuple[bool | None, s.Reply]:
    reply = s.request("POST", server.base + "/v1/booking-checks", CHECK, JSON, timeout=10)
    if reply.status != 200:
        return None, reply
    return bool(json.loads(reply.body)["bookable"]), reply


def decide(server: s.Server, key: str, status: str) -> float:
    """Record a decision through `server`; returns when its 201 arrived (perf_counter)."""
    body = json.dumps({"status": status, "reason": f"staleness benchmark: {status}"}).encode()
    reply = s.request("POST", f"{server.base}/v1/treatments/{SLUG}/decisions", body,
                      JSON | {"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    arrived = time.perf_counter()
    if reply.status != 201:
        raise RuntimeError(f"{status} through {server.name}: {reply.status} {reply.body[:300]!r}")
    return arrived


def warm(server: s.Server, count: int, timeout: float = ROUND_TIMEOUT) -> tuple[float, float | None]:
    """Ask, one at a time, until `count` answers in a row say bookable: every worker asked then
    remembers the treatment. Returns when the first true arrived and when the last false did
    (None if none): a worker may hear of a write a few ms after another one."""
    deadline = time.monotonic() + timeout
    first_true: float | None = None
    last_false: float | None = None
    in_a_row = 0
    while in_a_row < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not answer bookable {count} times in a row in {timeout} s")
        answer, reply = bookable(server)
        arrived = time.perf_counter()
        if answer is None:
            raise RuntimeError(f"booking check on {server.name}: {reply.status} {reply.body[:300]!r}")
        if answer:
            first_true = arrived if first_true is None else first_true
            in_a_row += 1
        else:
            last_false, in_a_row = arrived, 0
    assert first_true is not None
    return first_true, last_false


@dataclass
class Round:
    delay_ms: float | None = None  # None: no false answer within ROUND_TIMEOUT
    first_sent_ms: float | None = None  # when the request answered with that first false was sent
    stale: int = 0  # true answers arrived before the first false
    late_true: int = 0  # true answers arrived after the first false (within the settle window)
    last_true_ms: float | None = None  # the last true answer's arrival, after t0 (None: no true)
    requests: int = 0
    errors: list[str] = field(default_factory=list)


class Pollers:
    """Threads asking B's booking check back to back while a round is open."""

    def __init__(self, server: s.Server, count: int) -> None:
        self.server = server
        self.cond = threading.Condition()
        self.round_no = 0
        self.open = False
        self.stopping = False
        self.t0 = 0.0
        self.result = Round()
        self.first_false: float | None = None
        self.threads = [threading.Thread(target=self._run, name=f"poller-{n}", daemon=True)
                        for n in range(count)]  # fmt: skip
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        seen = 0
        while True:
            with self.cond:
                self.cond.wait_for(lambda seen=seen: self.stopping or (self.open and self.round_no != seen))
                if self.stopping:
                    return
                seen = self.round_no
            while True:
                sent = time.perf_counter()
                try:
                    answer, reply = bookable(self.server)
                    error = None if answer is not None else f"{reply.status} {reply.body[:200]!r}"
                except OSError as exc:
                    answer, error = None, repr(exc)
                arrived = time.perf_counter()
                with self.cond:
                    if self.round_no != seen or not self.open:
                        break
                    result = self.result
                    result.requests += 1
                    if error is not None:
                        result.errors.append(error)
                    elif answer is False:
                        if self.first_false is None or arrived < self.first_false:
                            self.first_false = arrived
                            result.delay_ms = (arrived - self.t0) * 1000
                            result.first_sent_ms = (sent - self.t0) * 1000
                            self.cond.notify_all()
                    else:
                        if self.first_false is None or arrived < self.first_false:
                            result.stale += 1
                        else:
                            result.late_true += 1
                        result.last_true_ms = max(result.last_true_ms or 0.0, (arrived - self.t0) * 1000)

    def measure(self, t0: float, settle: float) -> Round:
        """Open a round at t0 (when A's 201 arrived); close it `settle` s after the first false."""
        with self.cond:
            self.round_no += 1
            self.t0, self.first_false, self.result = t0, None, Round()
            self.open = True
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.first_false is not None, ROUND_TIMEOUT)
        time.sleep(settle)
        with self.cond:
            self.open = False
            return self.result

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.open = False
            self.cond.notify_all()
        for thread in self.threads:
            thread.join(15)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--withdrawals", type=int, default=200, help="rounds (default 200)")
    parser.add_argument("--pollers", type=int, default=3, help="threads polling server B (default 3)")
    parser.add_argument(
        "--warm",
        type=int,
        default=10,
        help="checks on B that must answer true before each withdrawal (default 10)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=50,
        help="ms of polling after the first false, counting trues (default 50)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    args = parser.parse_args(argv)
    if args.withdrawals < 1 or args.pollers < 1:
        parser.error("--withdrawals and --pollers must be at least 1")

    from sqlalchemy.engine import make_url

    print(s.machine_line())
    print(s.load_line())
    stamp = s.timestamp()
    pollers: Pollers | None = None
    try:
        database = s.create_database("postgres", "staleness")
        s.log(f"created PostgreSQL database {database.name}")
        url_a = make_url(database.url).set(host="127.0.0.1").render_as_string(hide_password=False)
        url_b = make_url(database.url).set(host="localhost").render_as_string(hide_password=False)
        key = prepare(url_a)
        s.log(f"migrated; treatment {SLUG!r} approved; reviewer key made")
        servers = {}
        for name, url in (("A", url_a), ("B", url_b)):
            tmp = tempfile.mkdtemp(prefix=f"tpa-staleness-{name}-")
            s.CLEANUP.add(f"delete {tmp}", lambda tmp=tmp: shutil.rmtree(tmp, ignore_errors=True))
            env = s.app_env(url, TPA_RATELIMIT_ENABLED="false", TPA_LOG_REQUESTS="false", TMPDIR=tmp)
            server = s.Server(f"server-{name}", "api:create_app()", env, workers=args.workers).start()
            s.log(f"{server.name}: DATABASE_URL host {make_url(url).host}, TMPDIR {tmp}; "
                  f"read cache: {s.cache_state(server)}")  # fmt: skip
            servers[name] = server
        a, b = servers["A"], servers["B"]
        pollers = Pollers(b, args.pollers)

        rounds: list[Round] = []
        approvals: list[tuple[float, float | None]] = []  # re-approval: first true, last false (ms)
        warm(b, args.warm)
        started = time.monotonic()
        for n in range(1, args.withdrawals + 1):
            t0 = decide(a, key, "withdrawn")  # B answered bookable `--warm` times in a row just now
            result = pollers.measure(t0, args.settle / 1000)
            rounds.append(result)
            if result.delay_ms is None or result.errors:
                s.log(f"round {n}: delay {fmt(result.delay_ms)} ms, errors {result.errors[:2]}")
            approved = decide(a, key, "approved")
            first_true, last_false = warm(b, args.warm)
            approvals.append(
                (
                    (first_true - approved) * 1000,
                    None if last_false is None else (last_false - approved) * 1000,
                )
            )
            if n % 25 == 0 or n == args.withdrawals:
                done = [r.delay_ms for r in rounds if r.delay_ms is not None]
                s.log(f"{n}/{args.withdrawals} rounds; so far median {s.median(done):.1f} ms, "
                      f"max {max(done, default=float('nan')):.1f} ms")  # fmt: skip
        elapsed = time.monotonic() - started
        pollers.stop()
        pollers = None

        delays = [r.delay_ms for r in rounds if r.delay_ms is not None]
        last_trues = [r.last_true_ms for r in rounds if r.last_true_ms is not None]
        first_trues = [first for first, _ in approvals]
        last_falses = [last for _, last in approvals if last is not None]
        missed = sum(r.delay_ms is None for r in rounds)
        errors = sum(len(r.errors) for r in rounds)
        worst = max(delays) if delays else float("nan")
        print()
        print(f"== staleness: withdrawal through server A -> server B's booking check says not bookable "
              f"({len(rounds)} rounds in {elapsed:.0f} s; {args.pollers} pollers; gunicorn sync "
              f"x{args.workers} per server; {s.core_count()} cores) ==")  # fmt: skip

        def row(label: str, values: list[float]) -> list[str]:
            if not values:
                return [label, "0", "-", "-", "-", "-", "-"]
            stats = [min(values), s.median(values), s.percentile(values, 95), s.percentile(values, 99)]
            return [label, str(len(values)), *(f"{v:.1f}" for v in [*stats, max(values)])]

        rows = [
            row("withdrawal: B's first false (delay)", delays),
            row("withdrawal: B's last true", last_trues),
            row("re-approval: B's first true", first_trues),
            row("re-approval: B's last false", last_falses),
        ]
        print(s.table(["ms after A's 201", "rounds", "min", "median", "p95", "p99", "max"], rows,
                      right=range(1, 7)))  # fmt: skip
        print(
            "delay = arrival of B's first `bookable: false` - arrival of A's 201 for the withdrawal,\n"
            f"with {args.pollers} threads polling B back to back from the 201 on. `last true`: the last\n"
            f"stale answer they got (rounds that had one), polling on {args.settle:.0f} ms past the first\n"
            f"false. Re-approval: B asked one at a time until {args.warm} answers in a row say bookable\n"
            "(a false after a true: B's other worker had not heard yet)."
        )
        stale = sum(r.stale for r in rounds)
        late = sum(r.late_true for r in rounds)
        late_rounds = sum(bool(r.late_true) for r in rounds)
        polls = sum(r.requests for r in rounds)
        print(
            f"stale answers (bookable: true after A's 201): {stale} before B's first false, {late} after "
            f"it (in {late_rounds} rounds); {polls} polls"
        )
        print(f"rounds without a false within {ROUND_TIMEOUT:.0f} s: {missed}; failed polls: {errors}")
        print(s.load_line() + " at the end.")
        ok = not missed and not errors and bool(delays) and worst <= TARGET_MS
        print(f"target: max <= {TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'} (max {worst:.1f} ms, "
              f"median {s.median(delays):.1f} ms, p95 {s.percentile(delays, 95):.1f} ms, "
              f"{len(rounds)} rounds)")  # fmt: skip
        path = s.write_csv(
            s.RESULTS_DIR / f"staleness-{stamp}.csv",
            ["round", "delay_ms", "first_false_sent_ms", "stale_before", "stale_after_first_false",
             "last_true_ms", "polls", "errors", "reapproval_first_true_ms", "reapproval_last_false_ms"],
            [[n, fmt(r.delay_ms), fmt(r.first_sent_ms), r.stale, r.late_true, fmt(r.last_true_ms), r.requests,
              len(r.errors), fmt(first), fmt(last)]
             for n, (r, (first, last)) in enumerate(zip(rounds, approvals, strict=True), start=1)],
        )  # fmt: skip
        print(f"csv: {path.relative_to(s.ROOT)}")
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        if pollers is not None:
            pollers.stop()
        s.CLEANUP.run()  # stop both servers, drop the database, delete the temp folders


if __name__ == "__main__":
    sys.exit(main())
