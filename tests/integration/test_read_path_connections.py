"""The read path's connections: none held beyond its use, and every public write is heard"""

from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy.engine import make_url

from api import create_app
from tests.databases import on_postgresql
from tests.helpers import add_treatment, approval, serving, study

THREADS = 16  # far more than the pools below hold


@pytest.fixture
def catalogue(app):
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])


@pytest.mark.parametrize("coherence", ["auto", "database"])
def test_more_threads_than_pooled_connections_all_read_through_the_cache(app, catalogue, coherence):
    """Every thread reads (and, in `database` mode, probes the feed) on connections it gives back."""
    small = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "LOG_REQUESTS": False,
                        "RATELIMIT_ENABLED": False, "CACHE_COHERENCE": coherence,
                        "DATABASE_POOL_SIZE": 2, "DATABASE_MAX_OVERFLOW": 0,
                        "DATABASE_SIDE_MAX_OVERFLOW": 0, "DATABASE_POOL_TIMEOUT": 10})  # fmt: skip
    paths = ["/v1/treatments", "/v1/treatments/botox", "/v1/changes", "/v1/treatments/botox/studies"]

    def read(n: int) -> list[int]:
        statuses = []
        for i in range(10):
            with urllib.request.urlopen(f"{base}{paths[(n + i) % len(paths)]}", timeout=30) as response:
                statuses.append(response.status)
                small.extensions["readcache"].forget() if i % 3 == 0 else None  # misses too
        return statuses

    try:
        with serving(small) as base, ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(read, range(THREADS)))
        assert all(status == 200 for statuses in results for status in statuses)
        assert small.extensions["db_engine"].pool.checkedout() == 0
        assert small.extensions["db_side_engine"].pool.checkedout() == 0
    finally:
        small.extensions["db_engine"].dispose()


postgresql_only = pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL: set TEST_DATABASE_URL")

# Tables whose rows no public answer shows: a write to them needs no NOTIFY.
PRIVATE_TABLES = {"alembic_version", "api_keys", "audit_records", "idempotency_keys",
                  "webhook_subscriptions", "webhook_deliveries", "webhook_attempts", "connectors",
                  "connector_states", "connector_hidden_services", "connector_calls",
                  "connector_notifications", "staff_users", "staff_sessions",
                  "staff_sign_in_links", "import_batches"}  # fmt: skip


def direct(url: str) -> psycopg.Connection:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(dsn, autocommit=True)


@postgresql_only
def test_every_table_either_notifies_its_writes_or_is_listed_as_private(app):
    """A new public table without the trigger would leave other hosts' caches stale."""
    with direct(app.config["DATABASE_URL"]) as conn:
        tables = {t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        notifying = {t for (t,) in conn.execute(
            "SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
            "WHERE g.tgname = 'tpa_notify_public_change'"
        )}  # fmt: skip
    assert notifying == tables - PRIVATE_TABLES
    assert notifying >= {"treatments", "decisions", "studies", "regulatory_statuses", "change_events"}


@postgresql_only
def test_a_write_made_with_psql_is_heard_by_the_running_workers(app, catalogue, client):
    assert client.post("/v1/booking-checks", json={"treatments": ["botox"]}).get_json()["bookable"] is True
    with direct(app.config["DATABASE_URL"]) as conn:
        conn.execute("UPDATE treatments SET status = 'withdrawn' WHERE slug = 'botox'")
    deadline = time.monotonic() + 2
    while client.post("/v1/booking-checks", json={"treatments": ["botox"]}).get_json()["bookable"]:
        assert time.monotonic() < deadline, "a write made outside the API was not heard"
        time.sleep(0.01)


@postgresql_only
def test_a_read_only_request_sends_no_notification(app, catalogue, client):
    with direct(app.config["DATABASE_URL"]) as conn:
        conn.execute("LISTEN tpa_public_changes")
        for path in ("/v1/treatments", "/v1/treatments/botox", "/v1/changes"):
            assert client.get(path).status_code == 200
        assert client.post("/v1/booking-checks", json={"treatments": ["botox"]}).status_code == 200
        assert list(conn.notifies(timeout=0.3)) == []
        conn.execute("UPDATE studies SET title = title")
        assert [n.channel for n in conn.notifies(timeout=2, stop_after=1)] == ["tpa_public_changes"]
