"""Several servers on one database, as when scaled out: each hears of every write within the bound.

Two gunicorn servers with default settings stand for two hosts: separate `TMPDIR`s (no shared
temp or /dev/shm state is relied on) and `DATABASE_URL`s spelled differently (`127.0.0.1` and
`localhost`). Writes go through server A; server B reaches PostgreSQL through the fault proxy,
so its connections can be cut and refused. README "How caches learn of writes" states the bound:
a committed write is reflected everywhere within `BOUND` seconds, and a booking check a worker
cannot confirm answers 503, never `bookable: true`.
"""

from __future__ import annotations

import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from api import create_app
from api.api_keys.models import Role
from api.api_keys.service import create_key
from api.db import LISTENER_NAME, get_session
from tests.databases import fresh_database, on_postgresql
from tests.faultproxy import FaultProxy
from tests.helpers import WORKERS, add_treatment, approval, call, gunicorn, study

BOUND = 2.0  # seconds after a commit by which every server reflects it
SLUGS = [f"approved-{n}" for n in range(24)]
WITHDRAWAL = {"status": "withdrawn", "reason": "A safety signal is under review."}


@dataclass
class Hosts:
    a: int  # the port of server A (writes)
    b: int  # the port of server B (reads; through the proxy on PostgreSQL)
    reviewer: dict[str, str]
    url: str
    proxy: FaultProxy | None

    def bookable(self, slug: str) -> tuple[int, Any]:
        status, body = call(self.b, "POST", "/v1/booking-checks", {"treatments": [slug]})
        return status, body.get("bookable") if isinstance(body, dict) else None

    def withdraw(self, slug: str) -> float:
        """Withdraw through A; the time its answer arrived (the commit came before it)."""
        status, body = call(self.a, "POST", f"/v1/treatments/{slug}/decisions", WITHDRAWAL, self.reviewer)
        assert status == 201, body
        return time.monotonic()

    def warm(self, slug: str) -> None:
        """Every worker of B has answered `bookable: true` for it (requests spread over them)."""
        for _ in range(WORKERS * 6):
            assert self.bookable(slug) == (200, True)
            assert call(self.b, "GET", f"/v1/treatments/{slug}")[1]["status"] == "approved"


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    with fresh_database() as url, ExitStack() as stack:
        app = create_app({"DATABASE_URL": url, "LOG_REQUESTS": False})
        for slug in SLUGS:
            add_treatment(app, slug, "approved", studies=[study()], regulatory=[approval()])
        with app.app_context():
            key = create_key(get_session(), "reviewer", Role("reviewer"))
        app.extensions["db_engine"].dispose()
        parsed = make_url(url)
        proxy = None
        if on_postgresql():
            proxy = stack.enter_context(FaultProxy((parsed.host or "127.0.0.1", parsed.port or 5432)))
            url_a = parsed.set(host="127.0.0.1").render_as_string(hide_password=False)
            url_b = parsed.set(host="localhost", port=proxy.port).render_as_string(hide_password=False)
        else:  # one file, named two ways
            path = Path(parsed.database or "")
            url_a, url_b = f"sqlite:///{path}", f"sqlite:///{path.parent}/./{path.name}"
        tmp_a = stack.enter_context(tempfile.TemporaryDirectory(prefix="host-a-"))
        tmp_b = stack.enter_context(tempfile.TemporaryDirectory(prefix="host-b-"))
        a = stack.enter_context(gunicorn(url_a, tmp_a))
        b = stack.enter_context(gunicorn(url_b, tmp_b))
        yield Hosts(a, b, {"Authorization": f"Bearer {key}"}, url, proxy)


def answers_until(hosts: Hosts, slug: str, deadline: float) -> list[tuple[float, int, Any]]:
    """B's booking answers for `slug` until `deadline` (monotonic), each with its time."""
    answers = []
    while (now := time.monotonic()) < deadline:
        answers.append((now, *hosts.bookable(slug)))
    return answers


def test_every_withdrawal_reaches_the_other_host_within_the_bound(hosts):
    """No answer from the other host says `bookable: true` or `approved` later than BOUND after
    the commit. Its workers each hear the NOTIFY, a few milliseconds apart, so a round ends once
    every one of them has answered the new state (a run of answers, spread over the workers)."""
    rounds = SLUGS[:20]
    for slug in rounds:
        hosts.warm(slug)
    delays, lags = [], []
    for slug in rounds:
        committed = hosts.withdraw(slug)
        first_no, last_yes, run = None, 0.0, 0
        while run < WORKERS * 4:
            _, booking = hosts.bookable(slug)
            _, detail = call(hosts.b, "GET", f"/v1/treatments/{slug}")
            waited = time.monotonic() - committed
            stale = booking is not False or detail["status"] != "withdrawn"
            assert not stale or waited <= BOUND, (
                f"{slug}: still bookable on the other host {waited:.2f} s later"
            )
            if stale:
                last_yes, run = waited, 0
            else:
                first_no, run = first_no if first_no is not None else waited, run + 1
        delays.append(first_no)
        lags.append(last_yes)
    median = sorted(delays)[len(delays) // 2]
    print(f"\n  the other host's first no: median {median * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms; "
          f"its last yes at most {max(lags) * 1000:.1f} ms after the commit")  # fmt: skip


def listeners(url: str) -> list[int]:
    """The backend pids of the cache listeners on this database."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [LISTENER_NAME],
        ).fetchall()
    return [pid for (pid,) in rows]


def terminate_listeners(url: str) -> int:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = listeners(url)
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])
    return len(pids)


def until_trusted_again(hosts: Hosts) -> list[dict[str, Any]]:
    """B's workers vouch for their caches again, without a restart (within 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        states = [call(hosts.b, "GET", "/health/ready")[1].get("cache", {}) for _ in range(WORKERS * 5)]
        if all(state.get("trusted") for state in states):
            return states
        assert time.monotonic() < deadline, states
        time.sleep(0.1)


postgresql_only = pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL: set TEST_DATABASE_URL")


@postgresql_only
def test_a_terminated_listener_never_lets_a_withdrawn_treatment_be_booked(hosts):
    slug = SLUGS[20]
    hosts.warm(slug)
    assert terminate_listeners(hosts.url) >= WORKERS  # at least every worker of B listens
    committed = hosts.withdraw(slug)
    answers = answers_until(hosts, slug, committed + 1.5)
    assert answers and {status for _, status, _ in answers} == {200}
    assert all(bookable is False for _, _, bookable in answers)
    states = until_trusted_again(hosts)
    assert any(state["reconnections"] >= 1 for state in states)
    assert len(listeners(hosts.url)) >= WORKERS
    hosts.warm(SLUGS[21])  # trusted again: and still right
    hosts.withdraw(SLUGS[21])
    assert answers_until(hosts, SLUGS[21], time.monotonic() + BOUND)[-1][1:] == (200, False)


@postgresql_only
def test_while_the_database_is_unreachable_and_after_no_check_says_bookable_for_a_withdrawal(hosts):
    slug = SLUGS[22]
    hosts.warm(slug)
    assert hosts.proxy is not None
    hosts.proxy.down()  # B loses its listeners and its pool; A still writes
    try:
        committed = hosts.withdraw(slug)
        during = answers_until(hosts, slug, committed + 1.5)
    finally:
        hosts.proxy.up()
    after = answers_until(hosts, slug, time.monotonic() + 1.5)
    assert all(status in {200, 503} and bookable is not True for _, status, bookable in during), during
    assert all(status == 503 for _, status, _ in during[-5:])  # once it knows, it says it cannot tell
    assert all(status in {200, 503} and bookable is not True for _, status, bookable in after), after
    assert after[-1][1:] == (200, False)  # and it recovers without a restart
    until_trusted_again(hosts)
    hosts.warm(SLUGS[23])


def test_an_over_long_uri_is_our_problem_not_gunicorns_html_page(hosts):
    """Found by contract fuzzing with a random seed: gunicorn answered its own HTML 414."""
    for length in (5_000, 9_000, 20_000):
        request = urllib.request.Request(f"http://127.0.0.1:{hosts.b}/v1/treatments?q={'a' * length}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status, content_type = response.status, response.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            with error:
                status, content_type = error.code, error.headers["Content-Type"]
        if length < 8_190:
            assert status == 422 and content_type == "application/problem+json"  # q is bounded
        else:
            assert status == 414 and content_type == "application/problem+json"
