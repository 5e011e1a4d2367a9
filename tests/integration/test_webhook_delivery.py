"""Webhook delivery to real HTTP receivers on 127.0.0.1, each request verified with the library"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from standardwebhooks import Webhook, WebhookVerificationError

from api.api_keys.models import ApiKey, Role
from api.changes import service as changes_service
from api.changes.service import record_change
from api.db import get_session, utcnow
from api.webhooks.delivery import (
    DeliverySettings,
    PassCounts,
    backoff_ceiling,
    deliver_due,
    gives_up,
    retry_delay,
)
from api.webhooks.models import WebhookDelivery
from tests.conftest import execute
from tests.databases import on_postgresql
from tests.helpers import add_treatment, approval, decide, random_slug, study

PROJECT = Path(__file__).resolve().parents[2]
TIMEOUT = 15  # seconds; no wait in this module is unbounded
LATER = dt.timedelta(hours=7)  # past any single retry delay (the cap is 6 h)


# --- a real receiver -------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload, after the Standard Webhooks library checked its signature."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (200 once the script runs out)."""

    script: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]

    def types(self) -> list[str]:
        return [json.loads(r.body)["type"] for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                receiver.requests.append(Received(dict(self.headers.items()), body))
                status = receiver.script.pop(0) if receiver.script else 200
            if receiver.delay:
                receiver.release.wait(receiver.delay)  # a receiver that hangs
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is expected here


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """`receivers(script=[500, 200])` starts a receiver; all are stopped after the test."""
    running: list[tuple[QuietServer, threading.Thread, Receiver]] = []

    def start(**options: Any) -> Receiver:
        receiver = Receiver(**options)
        server = QuietServer(("127.0.0.1", 0), _handler(receiver))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        receiver.url = f"http://127.0.0.1:{server.server_port}/hooks"
        running.append((server, thread, receiver))
        return receiver

    yield start
    for server, thread, receiver in running:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def closed_port_url() -> str:
    """The URL of a receiver that is down: nothing listens on the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _loopback_http(app: Flask) -> Iterator[None]:
    previous = app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"]
    app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"] = True
    yield
    app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"] = previous


@dataclass
class Subscription:
    id: int
    secret: str
    etag: str


def subscribe(client: Any, admin: dict[str, str], url: str, **fields: Any) -> Subscription:
    response = client.post("/v1/webhooks", json={"url": url} | fields, headers=admin)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Subscription(body["id"], body["secret"], response.headers["ETag"])


def deliver(app: Flask, now: dt.datetime | None = None, **settings: Any) -> PassCounts:
    """One pass of the worker, as `flask webhooks deliver` runs it (`now` may be in the future)."""
    with app.app_context():
        configured = replace(DeliverySettings.from_config(app.config), **settings)
        return deliver_due(get_session(), now or utcnow(), configured)


def deliveries(client: Any, admin: dict[str, str], webhook_id: int) -> list[dict[str, Any]]:
    """A subscription's deliveries, oldest first."""
    response = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin)
    assert response.status_code == 200, response.get_json()
    return list(reversed(response.get_json()))


def delivery_count(app: Flask) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count(WebhookDelivery.id))) or 0


# --- the scenarios ---------------------------------------------------------------------------


def test_a_status_change_arrives_signed_after_one_pass(app, client, admin, reviewer, receivers):
    receiver = receivers()
    hook = subscribe(client, admin, receiver.url)
    slug = random_slug()
    add_treatment(app, slug)
    assert decide(client, reviewer, slug, "not_approved").status_code == 201

    counts = deliver(app)

    assert (counts.delivered, counts.retrying, counts.failed) == (4, 0, 0)
    assert receiver.types() == [
        "treatment.created", "decision.recorded", "decision.recorded", "treatment.status_changed",
    ]  # fmt: skip
    payloads = [request.verified(hook.secret) for request in receiver.requests]
    event_ids = [p["data"]["event_id"] for p in payloads]
    assert event_ids == sorted(event_ids)  # feed order
    assert receiver.ids() == [f"evt_{i}" for i in event_ids]
    change = payloads[-1]
    assert change["type"] == "treatment.status_changed"
    assert change["data"] | {"event_id": 0} == {
        "slug": slug, "treatment": slug, "event_id": 0, "old_status": "under_review",
        "new_status": "not_approved", "old_bookable": False, "new_bookable": False,
        "reason": "The clinic decided: not_approved.", "external_ids": {},
    }  # fmt: skip
    assert dt.datetime.fromisoformat(change["timestamp"]).tzinfo is not None
    feed = execute(app, "SELECT id, event_type FROM change_events ORDER BY id")
    assert [tuple(e) for e in feed] == [(p["data"]["event_id"], p["type"]) for p in payloads]
    last = receiver.requests[-1]
    assert last.headers["Content-Type"] == "application/json"
    assert abs(int(last.headers["webhook-timestamp"]) - time.time()) < 60
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(subscribe(client, admin, receiver.url).secret).verify(last.body, last.headers)

    (*_, seen) = deliveries(client, admin, hook.id)
    assert (seen["state"], seen["attempt_count"], seen["delivered_at"] is not None) == ("delivered", 1, True)
    assert seen["next_attempt_at"] is None  # only pending deliveries have one
    (attempt,) = seen["attempts"]
    assert (attempt["status_code"], attempt["error"]) == (200, None)
    assert attempt["latency_ms"] >= 0
    assert deliver(app) == PassCounts()  # nothing left to send
    assert len(receiver.requests) == 4


def test_a_receiver_answering_500_then_200_gets_the_event_twice_and_no_more(
    app, client, admin, reviewer, receivers
):
    receiver = receivers(script=[500, 200])
    hook = subscribe(client, admin, receiver.url, event_types=["treatment.status_changed"])
    slug = random_slug()
    add_treatment(app, slug)
    assert decide(client, reviewer, slug, "not_approved").status_code == 201
    start = utcnow()

    assert deliver(app, start).retrying == 1
    (delivery,) = deliveries(client, admin, hook.id)
    assert (delivery["state"], delivery["attempt_count"]) == ("pending", 1)
    assert (delivery["attempts"][0]["status_code"], delivery["attempts"][0]["error"]) == (
        500,
        "HTTP 500 Internal Server Error",
    )
    retry_at = dt.datetime.fromisoformat(delivery["next_attempt_at"])
    assert start <= retry_at <= start + dt.timedelta(seconds=30)  # the first retry's ceiling

    assert deliver(app, start - dt.timedelta(seconds=1)) == PassCounts()  # not due yet: no request
    assert deliver(app, start + LATER).delivered == 1
    for later in (2, 5, 30):
        assert deliver(app, start + later * LATER) == PassCounts()

    assert len(receiver.requests) == 2
    first, second = (r.verified(hook.secret) for r in receiver.requests)
    assert first == second
    assert receiver.ids()[0] == receiver.ids()[1]  # the same webhook-id: receivers deduplicate on it
    (delivery,) = deliveries(client, admin, hook.id)
    assert delivery["state"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert client.get(f"/v1/webhooks/{hook.id}", headers=admin).get_json()["consecutive_failures"] == 0


def test_a_later_event_waits_for_the_earlier_one(app, client, admin, reviewer, receivers):
    receiver = receivers(script=[503])
    hook = subscribe(client, admin, receiver.url, event_types=["decision.recorded"])
    slug = random_slug()
    add_treatment(app, slug)
    assert decide(client, reviewer, slug, "not_approved").status_code == 201
    start = utcnow()

    deliver(app, start)
    assert len(receiver.requests) == 1  # the second decision waits behind the first
    first, second = deliveries(client, admin, hook.id)
    assert (first["state"], len(first["attempts"])) == ("pending", 1)
    assert (second["state"], second["attempts"]) == ("pending", [])

    assert deliver(app, start + LATER).delivered == 2
    statuses = [r.verified(hook.secret)["data"]["status"] for r in receiver.requests]
    assert statuses == ["under_review", "under_review", "not_approved"]


def test_a_receiver_that_is_down_holds_up_neither_the_api_nor_other_subscribers(
    app, client, admin, reviewer, receivers
):
    down = subscribe(client, admin, closed_port_url())
    hanging = receivers(delay=TIMEOUT)
    stuck = subscribe(client, admin, hanging.url)
    up = receivers()
    live = subscribe(client, admin, up.url, event_types=["treatment.status_changed"])
    slug = random_slug()
    add_treatment(app, slug)

    started = time.monotonic()
    assert decide(client, reviewer, slug, "withdrawn").status_code == 201  # the API answers at once
    assert client.get(f"/v1/treatments/{slug}").get_json()["status"] == "withdrawn"
    assert time.monotonic() - started < 2

    started = time.monotonic()
    counts = deliver(app, timeout_seconds=0.5)
    assert time.monotonic() - started < 5  # one timeout, not one per subscriber or per event
    assert (counts.delivered, counts.retrying) == (1, 2)
    (change,) = [r.verified(live.secret) for r in up.requests]
    assert change["data"]["new_status"] == "withdrawn"

    head, *waiting = deliveries(client, admin, down.id)
    assert head["state"] == "pending"
    (attempt,) = head["attempts"]
    assert (attempt["status_code"], attempt["error"]) == (None, "connection refused")
    assert all(d["state"] == "pending" and d["attempts"] == [] for d in waiting)
    (timed_out,) = deliveries(client, admin, stuck.id)[0]["attempts"]
    assert (timed_out["status_code"], timed_out["error"]) == (None, "timed out after 0.5 s")
    assert len(hanging.requests) == 1
    assert client.get(f"/v1/webhooks/{down.id}", headers=admin).get_json()["consecutive_failures"] == 1


def test_a_write_refused_by_the_policy_gate_sends_nothing(app, client, admin, reviewer, receivers):
    receiver = receivers()
    subscribe(client, admin, receiver.url)
    slug = random_slug()
    add_treatment(app, slug)
    deliver(app)
    before = (len(receiver.requests), delivery_count(app))

    refused = decide(client, reviewer, slug, "approved")  # no evidence, no regulatory approval
    assert refused.status_code == 409

    assert delivery_count(app) == before[1]
    assert deliver(app) == PassCounts()
    assert len(receiver.requests) == before[0]


def test_a_transaction_that_fails_at_commit_leaves_no_delivery(
    app, client, admin, auth, receivers, monkeypatch
):
    receiver = receivers()
    subscribe(client, admin, receiver.url)
    auth("editor", name="taken")
    queue = changes_service._queue_webhook_deliveries
    staged: list[int] = []

    def queue_then_conflict(session: Any, events: Any) -> None:
        queue(session, events)
        staged.extend(1 for obj in session.new if isinstance(obj, WebhookDelivery))
        # A row that breaks a constraint in the commit's last flush, after the outbox rows
        session.add(ApiKey(name="taken", role=Role.EDITOR, key_hash="0" * 64, display_prefix="tpa_0000"))

    monkeypatch.setattr(changes_service, "_queue_webhook_deliveries", queue_then_conflict)
    with app.app_context():
        session = get_session()
        record_change(session, "treatment.updated", "ghost", {"slug": "ghost", "fields": ["summary"]})
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        assert staged == [1]  # the delivery was written in the transaction, which then rolled back
    monkeypatch.undo()
    with app.app_context():
        session = get_session()
        session.scalar(select(func.count(ApiKey.id)))  # a use case reads first, then stages its events
        record_change(session, "treatment.updated", "ghost", {"slug": "ghost", "fields": ["name"]})
        session.rollback()  # a use case that gave up: its staged events are dropped
        session.commit()
    assert delivery_count(app) == 0
    assert execute(app, "SELECT id FROM change_events") == []
    assert deliver(app) == PassCounts()
    assert receiver.requests == []


def test_repeated_failures_disable_the_subscription(app, client, admin, reviewer, receivers):
    receiver = receivers(script=[500] * 3)
    hook = subscribe(client, admin, receiver.url, event_types=["treatment.status_changed"])
    slug = random_slug()
    add_treatment(app, slug)
    assert decide(client, reviewer, slug, "not_approved").status_code == 201
    start = utcnow()

    assert deliver(app, start, disable_after_failures=3).retrying == 1
    assert deliver(app, start + LATER, disable_after_failures=3).retrying == 1
    counts = deliver(app, start + 2 * LATER, disable_after_failures=3)
    assert (counts.failed, counts.disabled) == (1, [hook.id])

    current = client.get(f"/v1/webhooks/{hook.id}", headers=admin)
    body = current.get_json()
    assert (body["active"], body["consecutive_failures"]) == (False, 3)
    assert body["disabled_reason"].startswith("Disabled after 3 consecutive failed attempts")
    assert deliveries(client, admin, hook.id)[0]["state"] == "failed"
    assert decide(client, reviewer, slug, "under_review").status_code == 201
    assert deliveries(client, admin, hook.id)[-1]["event_type"] == "treatment.status_changed"
    assert len(deliveries(client, admin, hook.id)) == 1  # nothing is queued while it is disabled
    assert deliver(app, start + 3 * LATER) == PassCounts()
    assert len(receiver.requests) == 3

    reactivated = client.patch(f"/v1/webhooks/{hook.id}", json={"active": True},
                               headers=admin | {"If-Match": current.headers["ETag"]})  # fmt: skip
    assert reactivated.get_json()["consecutive_failures"] == 0
    assert decide(client, reviewer, slug, "not_approved").status_code == 201
    assert deliver(app).delivered == 1
    assert receiver.requests[-1].verified(hook.secret)["data"]["new_status"] == "not_approved"


def test_failed_deliveries_leave_the_etag_an_admin_read_before_them(app, client, admin, reviewer, receivers):
    receiver = receivers(script=[500] * 3)
    hook = subscribe(client, admin, receiver.url, event_types=["treatment.status_changed"])
    read = client.get(f"/v1/webhooks/{hook.id}", headers=admin)
    slug = random_slug()
    add_treatment(app, slug)
    assert decide(client, reviewer, slug, "not_approved").status_code == 201
    start = utcnow()
    for attempt in range(3):
        assert deliver(app, start + attempt * LATER).retrying == 1

    after = client.get(f"/v1/webhooks/{hook.id}", headers=admin)
    assert after.get_json()["consecutive_failures"] == 3
    assert after.headers["ETag"] == read.headers["ETag"] == hook.etag
    # The admin switches the failing webhook off with the ETag read before the failures.
    off = client.patch(f"/v1/webhooks/{hook.id}", json={"active": False},
                       headers=admin | {"If-Match": read.headers["ETag"]})  # fmt: skip
    assert off.status_code == 200, off.get_json()
    assert off.get_json()["active"] is False
    assert off.headers["ETag"] != read.headers["ETag"]  # a change of configuration moves it
    stale = client.patch(f"/v1/webhooks/{hook.id}", json={"active": True},
                         headers=admin | {"If-Match": read.headers["ETag"]})  # fmt: skip
    assert stale.status_code == 412


def test_the_worker_disabling_a_subscription_moves_its_etag(app, client, admin, reviewer, receivers):
    receiver = receivers(script=[500] * 2)
    hook = subscribe(client, admin, receiver.url, event_types=["treatment.status_changed"])
    slug = random_slug()
    add_treatment(app, slug)
    assert decide(client, reviewer, slug, "not_approved").status_code == 201
    start = utcnow()
    assert deliver(app, start, disable_after_failures=2).retrying == 1
    assert deliver(app, start + LATER, disable_after_failures=2).disabled == [hook.id]

    current = client.get(f"/v1/webhooks/{hook.id}", headers=admin)
    assert current.get_json()["active"] is False
    assert current.headers["ETag"] != hook.etag  # what it is changed: an edit must see that first
    stale = client.patch(f"/v1/webhooks/{hook.id}", json={"description": "x"},
                         headers=admin | {"If-Match": hook.etag})  # fmt: skip
    assert stale.status_code == 412


def test_redelivery_sends_the_event_again(app, client, admin, reviewer, receivers):
    receiver = receivers()
    hook = subscribe(client, admin, receiver.url, event_types=["treatment.status_changed"])
    slug = random_slug()
    add_treatment(app, slug)
    assert decide(client, reviewer, slug, "not_approved").status_code == 201
    assert deliver(app).delivered == 1
    (delivered,) = deliveries(client, admin, hook.id)

    response = client.post(f"/v1/webhooks/{hook.id}/deliveries/{delivered['id']}/redeliver", headers=admin)
    assert response.status_code == 202, response.get_json()
    assert (response.get_json()["state"], response.get_json()["attempt_count"]) == ("pending", 0)
    assert deliver(app).delivered == 1

    first, second = receiver.requests
    assert first.verified(hook.secret) == second.verified(hook.secret)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    (again,) = deliveries(client, admin, hook.id)
    assert again["state"] == "delivered"
    assert [a["status_code"] for a in again["attempts"]] == [200, 200]


def test_a_deleted_subscription_is_sent_nothing(app, client, admin, receivers):
    receiver = receivers()
    hook = subscribe(client, admin, receiver.url)
    add_treatment(app, random_slug())
    assert client.delete(f"/v1/webhooks/{hook.id}", headers=admin).status_code == 204
    assert delivery_count(app) == 0
    assert deliver(app) == PassCounts()
    assert receiver.requests == []


def test_a_sender_that_breaks_counts_as_a_failed_attempt(app, client, admin, receivers):
    hook = subscribe(client, admin, receivers().url, event_types=["treatment.created"])
    add_treatment(app, random_slug())

    def broken(*_args: Any) -> Any:
        raise ValueError("no route to the moon")

    with app.app_context():
        counts = deliver_due(get_session(), utcnow(), DeliverySettings.from_config(app.config), send=broken)
    assert counts.retrying == 1
    (delivery,) = deliveries(client, admin, hook.id)
    assert delivery["attempts"][0]["error"] == "ValueError: no route to the moon"


@pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL: SQLite has one writer at a time")
def test_concurrent_workers_never_send_a_delivery_twice_nor_out_of_order(app, client, admin, receivers):
    hooks = []
    for _ in range(4):
        receiver = receivers(delay=0.02)
        hooks.append((receiver, subscribe(client, admin, receiver.url)))
    for _ in range(5):
        add_treatment(app, random_slug())  # 2 events each
    settings = replace(DeliverySettings.from_config(app.config), batch_size=1)  # claim one at a time
    make_session = app.extensions["db_sessionmaker"]
    start = threading.Barrier(3, timeout=TIMEOUT)

    def worker() -> PassCounts:
        with make_session() as session:
            start.wait()
            return deliver_due(session, utcnow(), settings)

    results: list[PassCounts] = []
    threads = [threading.Thread(target=lambda: results.append(worker())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert sum(r.delivered for r in results) == 40
    assert sum(1 for r in results if r.delivered) > 1  # they really worked side by side
    for receiver, hook in hooks:
        event_ids = [r.verified(hook.secret)["data"]["event_id"] for r in receiver.requests]
        assert len(event_ids) == 10
        assert event_ids == sorted(set(event_ids))  # each once, in feed order


# --- the schedule ----------------------------------------------------------------------------


def test_the_retry_ceilings_double_from_30_seconds_to_6_hours():
    settings = DeliverySettings()
    ceilings = [backoff_ceiling(n, settings) for n in range(1, 14)]
    assert ceilings[:11] == [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600]
    assert set(ceilings[10:]) == {6 * 3600}


class Extreme(random.Random):
    def __init__(self, pick: Callable[[float, float], float]):
        super().__init__(0)
        self.pick = pick

    def uniform(self, a: float, b: float) -> float:
        return self.pick(a, b)


@pytest.mark.parametrize("pick", [lambda a, b: b, lambda a, b: (a + b) / 2, lambda a, b: a + (b - a) / 100])
def test_a_delivery_is_retried_for_at_least_a_day_however_the_jitter_falls(pick):
    settings, rng = DeliverySettings(), Extreme(pick)
    queued = now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    attempts = 1
    while not gives_up(attempts, queued, now, settings):
        now += max(retry_delay(attempts, settings, rng), dt.timedelta(seconds=5))  # the worker's poll
        attempts += 1
    assert attempts >= settings.max_attempts
    assert now - queued >= dt.timedelta(hours=24)
    assert now - queued < dt.timedelta(hours=24) + dt.timedelta(hours=6)


def test_jitter_spreads_retries_between_zero_and_the_ceiling():
    settings, rng = DeliverySettings(), random.Random(4)
    delays = [retry_delay(3, settings, rng).total_seconds() for _ in range(200)]
    assert 0 <= min(delays) < 20 and 100 < max(delays) <= 120


# --- the command -----------------------------------------------------------------------------


def test_deliver_runs_one_pass_and_prints_the_counts(app, client, admin, runner, receivers):
    receiver = receivers()
    subscribe(client, admin, receiver.url)
    add_treatment(app, random_slug())
    result = runner.invoke(args=["webhooks", "deliver"])
    assert result.exit_code == 0, result.output
    assert "delivered 2, retrying 0, failed 0" in result.output
    assert len(receiver.requests) == 2


def test_the_worker_delivers_until_sigterm_then_stops_cleanly(app, client, admin, receivers):
    receiver = receivers()
    hook = subscribe(client, admin, receiver.url)
    # The receiver is on 127.0.0.1: the worker, too, must allow loopback addresses.
    env = os.environ | {
        "DATABASE_URL": app.config["DATABASE_URL"],
        "TPA_WEBHOOKS_ALLOW_LOOPBACK_HTTP": "true",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "api", "webhooks", "deliver", "--forever",
         "--interval", "0.1"],
        cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        add_treatment(app, random_slug())
        deadline = time.monotonic() + TIMEOUT
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=TIMEOUT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    assert "Webhook worker started" in out
    assert "Webhook worker stopped (SIGTERM)" in out
    assert [r.verified(hook.secret)["type"] for r in receiver.requests] == [
        "treatment.created",
        "decision.recorded",
    ]


def test_a_warning_on_an_approved_treatment_reaches_a_bookability_subscriber(
    app, client, admin, auth, receivers
):
    receiver = receivers()
    hook = subscribe(client, admin, receiver.url, event_types=["treatment.bookability_changed"])
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])
    warning = approval(status="warning_issued", reference="FDA safety communication")
    assert (
        client.post("/v1/treatments/botox/regulatory", json=warning, headers=auth("editor")).status_code
        == 201
    )

    assert deliver(app).delivered == 1
    (payload,) = [request.verified(hook.secret) for request in receiver.requests]
    assert payload["type"] == "treatment.bookability_changed"
    assert (payload["data"]["old_bookable"], payload["data"]["new_bookable"], payload["data"]["reason"]) == (
        True, False, "suspended_pending_review",
    )  # fmt: skip
