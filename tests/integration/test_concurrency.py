"""Concurrent writers on PostgreSQL: optimistic locking and a change feed that never skips"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from api.changes.service import record_change
from tests.conftest import execute
from tests.databases import on_postgresql
from tests.helpers import create_treatment, serving

pytestmark = pytest.mark.skipif(
    not on_postgresql(), reason="needs PostgreSQL: set TEST_DATABASE_URL (SQLite has one writer at a time)"
)

TIMEOUT = 30  # seconds; no wait in this module is unbounded


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The app behind a real threaded HTTP server, so requests truly run at the same time."""
    with serving(app) as base_url:
        yield base_url


def send(method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json"} | headers,
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.headers.get_content_type(), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get_content_type(), error.read().decode()


def test_twenty_concurrent_patches_with_the_same_if_match_let_exactly_one_win(app, client, auth, server):
    editor = auth("editor", name="racing-editor")
    slug = create_treatment(client, editor)["slug"]
    current = client.get(f"/v1/treatments/{slug}")
    etag, version = current.headers["ETag"], current.get_json()["version"]
    start = threading.Barrier(20, timeout=TIMEOUT)

    def patch(n: int) -> tuple[int, str, str]:
        start.wait()  # all twenty leave together
        return send("PATCH", f"{server}/v1/treatments/{slug}", {"summary": f"Summary from writer {n}."},
                    editor | {"If-Match": etag})  # fmt: skip

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(patch, range(20), timeout=TIMEOUT * 2))

    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [412] * 19, results
    for status, media_type, body in results:
        if status == 412:
            assert media_type == "application/problem+json"
            assert json.loads(body)["status"] == 412
    (winner,) = [json.loads(body) for status, _, body in results if status == 200]

    after = client.get(f"/v1/treatments/{slug}").get_json()
    assert after["summary"] == winner["summary"]
    assert after["version"] == version + 1
    updates = execute(app, "SELECT actor_name, changes FROM audit_records WHERE entity = 'treatment' "
                           "AND action = 'updated'")  # fmt: skip
    assert len(updates) == 1
    assert updates[0][0] == "racing-editor"
    changes = updates[0][1] if isinstance(updates[0][1], dict) else json.loads(updates[0][1])
    assert changes["summary"]["to"] == winner["summary"]
    feed = client.get("/v1/changes").get_json()["events"]
    assert [e["type"] for e in feed].count("treatment.updated") == 1


def test_the_change_feed_never_misses_an_event_when_commits_happen_out_of_order(
    app, client, auth, database_url
):
    """Writer A stages an event and is paused inside its commit, after its event row is inserted
    (so its id is allocated) but before COMMIT. Writer B, a real API write, starts after A and
    would commit first were it not for the feed lock. A consumer polls the feed throughout and
    follows its cursor; at the end it must have seen every event, A's included."""
    editor = auth("editor", name="feed-editor")
    slug = create_treatment(client, editor)["slug"]

    a_engine = create_engine(database_url)
    a_inserted, release_a = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    @event.listens_for(a_engine, "commit")
    def _pause_before_commit(_conn: Any) -> None:  # runs after the INSERT, before COMMIT
        a_inserted.set()
        release_a.wait(TIMEOUT)

    def writer_a() -> None:
        try:
            with Session(a_engine) as session:
                record_change(session, "test.slow_writer", slug, {"slug": slug, "writer": "A"})
                session.commit()
            outcome["a"] = "committed"
        except Exception as error:  # reported by the assertions below, not as a thread crash
            outcome["a"] = repr(error)

    def writer_b() -> None:
        try:
            response = app.test_client().post(f"/v1/treatments/{slug}/studies", headers=editor,
                                              json={"title": "Writer B", "design": "cohort"})  # fmt: skip
            outcome["b"] = response.status_code
        except Exception as error:
            outcome["b"] = repr(error)

    reader = app.test_client()
    seen: list[dict[str, Any]] = []
    cursor = 0

    def follow() -> None:
        nonlocal cursor
        while True:
            page = reader.get(f"/v1/changes?after={cursor}&limit=2").get_json()
            if not page["events"]:
                return
            seen.extend(page["events"])
            cursor = page["next_after"]

    a_thread = threading.Thread(target=writer_a, daemon=True)
    b_thread = threading.Thread(target=writer_b, daemon=True)
    try:
        follow()  # the events of the set-up
        a_thread.start()
        assert a_inserted.wait(TIMEOUT), "writer A never reached its commit"
        (pending_a,) = execute(
            app, "SELECT COUNT(*) FROM change_events WHERE event_type = 'test.slow_writer'"
        )
        assert pending_a[0] == 0  # A's event is not visible yet
        follow()

        b_thread.start()
        # Until B either queues for the feed lock or (were ordering broken) commits, and a while
        # after, a consumer keeps reading the feed and following its cursor.
        deadline = time.monotonic() + TIMEOUT
        b_queued = False
        while time.monotonic() < deadline and not b_queued and "b" not in outcome:
            follow()
            b_queued = execute(app, "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND NOT granted")[0][0] == 1  # fmt: skip
            time.sleep(0.05)
        for _ in range(5):
            follow()
            time.sleep(0.05)
        b_committed_before_a = "b" in outcome
    finally:
        release_a.set()
        for thread in (a_thread, b_thread):
            if thread.ident is not None:  # started
                thread.join(TIMEOUT)
        a_engine.dispose()

    assert outcome == {"a": "committed", "b": 201}
    follow()
    everything = reader.get("/v1/changes?after=0&limit=500").get_json()["events"]
    assert {"test.slow_writer", "study.created"} <= {e["type"] for e in everything}
    assert seen == everything  # the consumer saw every event, each once, in feed order
    ids = {e["type"]: e["id"] for e in everything}
    assert ids["test.slow_writer"] < ids["study.created"]  # ids follow commit order
    # How: B waited for A's commit on the feed lock instead of committing first.
    assert b_queued and not b_committed_before_a


def test_sequential_cursor_reads_during_concurrent_writes_see_every_event(app, auth, server):
    """Many writers at once, a reader polling all the while: the reader misses nothing."""
    editor = auth("editor", name="busy-editor")
    slugs = [f"busy-{n}" for n in range(8)]
    stop = threading.Event()
    seen: list[int] = []

    def read_continuously() -> None:
        cursor = 0
        while True:
            done = stop.is_set()
            status, _, body = send("GET", f"{server}/v1/changes?after={cursor}&limit=7", {}, {})
            assert status == 200
            page = json.loads(body)
            seen.extend(e["id"] for e in page["events"])
            cursor = page["next_after"]
            if done and not page["events"]:
                return

    def write(slug: str) -> list[int]:
        statuses = [send("POST", f"{server}/v1/treatments", {"slug": slug, "name": slug, "category": "laser",
                                                             "summary": "Busy."}, editor)[0]]  # fmt: skip
        for n in range(3):
            body = {"title": f"Study {n}", "design": "rct", "participants": 50 + n}
            statuses.append(send("POST", f"{server}/v1/treatments/{slug}/studies", body, editor)[0])
        return statuses

    with ThreadPoolExecutor(max_workers=len(slugs) + 1) as pool:
        reading = pool.submit(read_continuously)
        writes = [pool.submit(write, slug) for slug in slugs]
        statuses = [status for future in writes for status in future.result(timeout=TIMEOUT * 2)]
        stop.set()
        reading.result(timeout=TIMEOUT * 2)

    assert set(statuses) == {201}
    all_ids = [row[0] for row in execute(app, "SELECT id FROM change_events ORDER BY id")]
    assert seen == all_ids
    assert len(all_ids) == len(slugs) * 5  # created, first decision, three studies
