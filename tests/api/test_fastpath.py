"""Cache hits answered before Flask (api/readcache/middleware.py): the same answers as Flask's"""

import json
import threading
import time

import pytest
from flask import request_started

from api import create_app
from api.changes import service as changes
from api.db import get_engine
from api.models import Base
from api.readcache.version import Listener
from tests.helpers import add_treatment, approval, study

VOLATILE = {"X-Request-ID", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
READS = [
    ("/v1/treatments", {}),
    ("/v1/treatments?status=approved&page_size=5", {}),
    ("/v1/treatments/botox", {}),
    ("/v1/treatments/botox", {"Accept": "application/ld+json"}),
    ("/v1/treatments/botox/studies", {}),
    ("/v1/treatments/botox/regulatory", {}),
    ("/v1/treatments/botox/decisions", {}),
    ("/v1/changes?after=0&limit=10", {}),
    ("/", {"Accept": "text/html"}),
    ("/treatments/botox", {"Accept": "text/html"}),
    ("/feed.atom", {}),
    ("/sitemap.xml", {}),
]


@pytest.fixture
def make_app(app):
    """Apps on the session's database, each a worker of its own."""
    made = []

    def make(**config):
        made.append(create_app({"DATABASE_URL": app.config["DATABASE_URL"], "LOG_REQUESTS": False,
                                "RATELIMIT_ENABLED": True, "RATE_LIMIT_PUBLIC": "1000/minute",
                                "RATE_LIMIT_BOOKING": "1000/minute",
                                "CORS_ORIGINS": ("https://www.clinic.example",)} | config))  # fmt: skip
        return made[-1]

    yield make
    for made_app in made:
        made_app.extensions["db_engine"].dispose()


@pytest.fixture
def catalogue(app):
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])
    add_treatment(app, "exosomes", "not_approved")


class FlaskCalls:
    """How many requests reached Flask's request handling."""

    def __init__(self, app):
        self.app, self.count = app, 0

    def __enter__(self):
        request_started.connect(self._seen, self.app)
        return self

    def __exit__(self, *exc):
        request_started.disconnect(self._seen, self.app)

    def _seen(self, _sender, **_extra):
        self.count += 1


def comparable(response):
    return {name: value for name, value in response.headers.items() if name not in VOLATILE}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(("path", "headers"), READS)
def test_a_repeated_read_is_answered_before_flask_exactly_as_flask_answered_it(
    make_app, catalogue, path, headers, method
):
    app = make_app()
    client = app.test_client()
    with FlaskCalls(app) as flask_calls:
        by_flask = client.open(path, method=method, headers=headers)
        fast = client.open(path, method=method, headers=headers)
    assert flask_calls.count == 1
    assert by_flask.status_code == fast.status_code == 200
    assert fast.get_data() == by_flask.get_data()
    assert comparable(fast) == comparable(by_flask)
    assert int(fast.headers["X-RateLimit-Remaining"]) == int(by_flask.headers["X-RateLimit-Remaining"]) - 1


@pytest.mark.parametrize(("path", "headers"), READS)
def test_revalidation_before_flask_answers_304_with_flasks_headers(make_app, catalogue, path, headers):
    app = make_app()
    client = app.test_client()
    first = client.get(path, headers=headers)
    conditional = headers | {"If-None-Match": first.headers["ETag"]}
    flask_only = make_app(CACHE_FAST_PATH=False).test_client().get(path, headers=conditional)
    with FlaskCalls(app) as flask_calls:
        fast = client.get(path, headers=conditional)
        since = client.get(path, headers=headers | {"If-Modified-Since": first.headers["Last-Modified"]})
    assert flask_calls.count == 0
    assert fast.status_code == since.status_code == flask_only.status_code == 304
    assert fast.get_data() == b""
    assert comparable(fast) == comparable(flask_only)


@pytest.mark.parametrize(("path", "headers"), READS)
def test_after_a_write_revalidations_are_recorded_from_a_304_and_then_replayed(
    make_app, catalogue, auth, path, headers
):
    """Clients that only revalidate never fetch a 200: the 304 Flask gives them is recorded too."""
    app = make_app()
    client = app.test_client()
    conditional = headers | {"If-None-Match": client.get(path, headers=headers).headers["ETag"]}
    app.extensions["readcache"].forget()  # as any write does: every recording is void
    with FlaskCalls(app) as flask_calls:
        answers = [client.get(path, headers=conditional) for _ in range(3)]
    assert [a.status_code for a in answers] == [304] * 3
    assert flask_calls.count == 1
    assert comparable(answers[2]) == comparable(answers[0])


def test_the_request_id_is_echoed_or_replaced_as_flask_does(make_app, catalogue):
    app = make_app()
    client = app.test_client()
    client.get("/v1/treatments")
    with FlaskCalls(app) as flask_calls:
        echoed = client.get("/v1/treatments", headers={"X-Request-ID": "site-42"}).headers["X-Request-ID"]
        replaced = client.get("/v1/treatments", headers={"X-Request-ID": "bad id\t"}).headers["X-Request-ID"]
    assert flask_calls.count == 0
    assert echoed == "site-42"
    assert replaced != "bad id\t" and len(replaced) == 32


def test_each_origin_and_accept_is_its_own_recording(make_app, catalogue):
    app = make_app()
    client = app.test_client()
    site = {"Origin": "https://www.clinic.example"}
    for headers in ({}, site, {"Accept": "application/ld+json"}, site | {"Accept": "application/ld+json"}):
        with FlaskCalls(app) as flask_calls:
            by_flask = client.get("/v1/treatments/botox", headers=headers)
            fast = client.get("/v1/treatments/botox", headers=headers)
        assert flask_calls.count == 1  # each shape is recorded once, then replayed
        assert comparable(fast) == comparable(by_flask)
        assert fast.get_data() == by_flask.get_data()
    assert client.get("/v1/treatments/botox", headers=site).headers["Access-Control-Allow-Origin"] == (
        "https://www.clinic.example"
    )


def own_notification_heard(app, before, within=2.0):
    """On PostgreSQL a worker hears its own write twice: at its commit, and when the NOTIFY comes
    back a moment later (each empties the caches). Wait for the second, so what follows is not
    sent to Flask by it."""
    coherence = app.extensions["readcache"].coherence
    if not isinstance(coherence, Listener):
        return
    deadline = time.monotonic() + within
    while coherence.generation < before[1] + 2 and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_committed_write_sends_the_next_read_to_flask_and_it_shows_the_write(make_app, catalogue, auth):
    app = make_app()
    client = app.test_client()
    client.get("/v1/treatments/botox")
    withdrawal = {"status": "withdrawn", "reason": "A safety signal is under review."}
    before = app.extensions["readcache"].coherence.version()
    assert (
        client.post("/v1/treatments/botox/decisions", json=withdrawal, headers=auth("reviewer")).status_code
        == 201
    )
    own_notification_heard(app, before)
    with FlaskCalls(app) as flask_calls:
        after = client.get("/v1/treatments/botox")
        again = client.get("/v1/treatments/botox")
    assert after.get_json()["status"] == again.get_json()["status"] == "withdrawn"
    assert flask_calls.count == 1


def eventually(read, expected, within=2.0):
    """What `read()` gives once it gives `expected`, or the last answer after `within` seconds:
    another worker hears of a write within the bound (README "How caches learn of writes")."""
    deadline = time.monotonic() + within
    while (answer := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return answer


def test_a_write_made_by_another_worker_is_seen_within_the_bound(make_app, catalogue, auth):
    reader, writer = make_app().test_client(), make_app().test_client()
    assert reader.get("/v1/treatments/botox").get_json()["status"] == "approved"
    assert reader.get("/v1/treatments/botox").get_json()["status"] == "approved"  # from the recording
    assert reader.post("/v1/booking-checks", json={"treatments": ["botox"]}).get_json()["bookable"] is True
    withdrawal = {"status": "withdrawn", "reason": "A safety signal is under review."}
    assert (
        writer.post("/v1/treatments/botox/decisions", json=withdrawal, headers=auth("reviewer")).status_code
        == 201
    )
    assert (
        eventually(lambda: reader.get("/v1/treatments/botox").get_json()["status"], "withdrawn")
        == "withdrawn"
    )
    check = reader.post("/v1/booking-checks", json={"treatments": ["botox"]}).get_json()
    assert check["bookable"] is False


def test_a_read_racing_a_commit_is_not_served_once_the_commit_is_done(make_app, catalogue, auth, monkeypatch):
    """A reader fills the cache after the write's statements but before its commit (the old
    state); the commit moves the version on, so that copy is never served after it."""
    app = make_app()
    reader = app.test_client()
    assert reader.get("/v1/treatments/botox").get_json()["status"] == "approved"
    queue, raced = changes._queue_webhook_deliveries, []

    def queue_then_read(session, events):  # runs in the writer's before_commit
        queue(session, events)
        # Another thread: a request of its own (same-thread requests share the writer's session).
        read = threading.Thread(
            target=lambda: raced.append(reader.get("/v1/treatments/botox").get_json()["status"])
        )
        read.start()
        read.join(10)

    monkeypatch.setattr(changes, "_queue_webhook_deliveries", queue_then_read)
    withdrawal = {"status": "withdrawn", "reason": "A safety signal is under review."}
    response = app.test_client().post(
        "/v1/treatments/botox/decisions", json=withdrawal, headers=auth("reviewer")
    )
    assert response.status_code == 201
    assert raced == ["approved"]
    assert [reader.get("/v1/treatments/botox").get_json()["status"] for _ in range(2)] == ["withdrawn"] * 2


def test_a_restore_through_the_cli_is_seen_by_the_running_workers(app, catalogue, runner, tmp_path):
    """`flask import` writes in bulk, outside the services' sessions: workers hear of it too."""
    target = tmp_path / "export.json"
    assert runner.invoke(args=["export", str(target)]).exit_code == 0
    with app.app_context(), get_engine().begin() as conn:  # an empty database, as a restore wants
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    app.extensions["readcache"].forget()
    client = app.test_client()
    assert [client.get("/v1/treatments").get_json()["total"] for _ in range(2)] == [0, 0]
    assert runner.invoke(args=["import", str(target)]).exit_code == 0
    assert eventually(lambda: client.get("/v1/treatments").get_json()["total"], 2) == 2


@pytest.mark.parametrize("host", ["clinic.example", "evil.example"])
def test_json_ld_names_the_configured_public_url_whatever_the_host(make_app, catalogue, host):
    """Public URLs come from PUBLIC_BASE_URL: a forged Host is neither echoed nor cached apart."""
    app = make_app()
    client = app.test_client()
    answers = [
        client.get("/v1/treatments/botox", headers={"Accept": "application/ld+json", "Host": host})
        for _ in range(2)
    ]
    url = app.config["PUBLIC_BASE_URL"] + "/treatments/botox"
    assert [a.get_json()["url"] for a in answers] == [url] * 2
    assert all(host.encode() not in a.get_data() for a in answers)


def test_while_the_worker_cannot_vouch_for_its_version_every_read_goes_to_flask(
    make_app, catalogue, monkeypatch
):
    app = make_app()
    client = app.test_client()
    client.get("/v1/treatments/botox")
    client.post("/v1/booking-checks", json={"treatments": ["botox"]})
    monkeypatch.setattr(app.extensions["readcache"].coherence, "version", lambda: None)  # listener lost
    with FlaskCalls(app) as flask_calls:
        for _ in range(3):
            assert client.get("/v1/treatments/botox").status_code == 200
            assert client.post("/v1/booking-checks", json={"treatments": ["botox"]}).status_code == 200
    assert flask_calls.count == 6


def test_with_database_coherence_every_read_goes_to_flask(make_app, catalogue):
    app = make_app(CACHE_COHERENCE="database")
    client = app.test_client()
    with FlaskCalls(app) as flask_calls:
        for _ in range(3):
            assert client.get("/v1/treatments/botox").status_code == 200
    assert flask_calls.count == 3


def test_authenticated_reads_go_to_flask(make_app, catalogue, auth):
    app = make_app()
    client = app.test_client()
    headers = auth("editor")
    with FlaskCalls(app) as flask_calls:
        for _ in range(2):
            assert client.get("/v1/treatments/botox", headers=headers).status_code == 200
    assert flask_calls.count == 2


def test_a_client_over_its_limit_gets_flasks_429(make_app, catalogue):
    client = make_app(RATE_LIMIT_PUBLIC="3/minute").test_client()
    statuses = [client.get("/v1/treatments/botox").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/v1/treatments/botox")
    assert refused.mimetype == "application/problem+json" and int(refused.headers["Retry-After"]) > 0


def test_the_access_line_is_written_for_answers_given_before_flask(make_app, catalogue, capfd):
    client = make_app(LOG_REQUESTS=True).test_client()
    client.get("/v1/treatments/botox")
    capfd.readouterr()
    client.get("/v1/treatments/botox", headers={"X-Request-ID": "fast-1"})
    line = json.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert line | {"timestamp": None, "duration_ms": None} == {
        "event": "request", "request_id": "fast-1", "level": "info", "logger": "api.access",
        "timestamp": None, "method": "GET", "path": "/v1/treatments/botox", "status": 200,
        "duration_ms": None, "client": "127.0.0.1",
    }  # fmt: skip


# --- booking checks ----------------------------------------------------------------------------

CHECK = {"treatments": ["botox", "exosomes", "unheard-of", {"system": "cliniko", "id": "9"}]}
REORDERED = {"treatments": ["unheard-of", {"id": "9", "system": "cliniko"}, "botox"]}


def post(client, payload, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload)
    return client.post(
        "/v1/booking-checks", data=body, headers={"Content-Type": "application/json"} | headers
    )


def test_a_booking_check_of_remembered_treatments_is_answered_before_flask_as_flask_does(make_app, catalogue):
    app = make_app()
    client = app.test_client()
    with FlaskCalls(app) as flask_calls:
        by_flask = post(client, CHECK)
        fast = post(client, CHECK)
        reordered = post(client, REORDERED)
    assert flask_calls.count == 1
    assert fast.status_code == 200 and fast.get_data() == by_flask.get_data()
    assert comparable(fast) == comparable(by_flask)
    assert int(fast.headers["X-RateLimit-Remaining"]) == int(by_flask.headers["X-RateLimit-Remaining"]) - 1
    assert reordered.get_data() == post(make_app(CACHE_FAST_PATH=False).test_client(), REORDERED).get_data()
    assert [r["bookable"] for r in reordered.get_json()["results"]] == [False, False, True]


def test_a_booking_check_naming_anything_new_goes_to_flask(make_app, catalogue):
    app = make_app()
    client = app.test_client()
    post(client, CHECK)
    with FlaskCalls(app) as flask_calls:
        answer = post(client, {"treatments": ["botox", "never-checked"]})
    assert flask_calls.count == 1
    assert answer.get_json()["results"][1]["reason"] == "unknown_treatment"


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        ({"treatments": ["botox"], "extra": 1}, {}),
        ({"treatments": []}, {}),
        ({"treatments": ["botox"] * 101}, {}),
        ({"treatments": ["botox", 7]}, {}),
        ({"treatments": [{"system": "cliniko"}]}, {}),
        ({"treatments": [{"system": "cliniko", "id": "9", "x": "y"}]}, {}),
        ({"treatments": "botox"}, {}),
        (["botox"], {}),
        (b'{"treatments": ["botox"]', {}),
        (b'{"treatments": [NaN]}', {}),
        ({"treatments": ["botox"]}, {"Content-Type": "text/plain"}),
        ({"treatments": [" botox"]}, {}),
    ],
)
def test_any_doubt_about_a_booking_body_gets_flasks_own_answer(make_app, catalogue, payload, headers):
    app = make_app()
    client = app.test_client()
    post(client, CHECK)  # the headers and treatments are remembered
    flask_only = post(make_app(CACHE_FAST_PATH=False).test_client(), payload, **headers)
    with FlaskCalls(app) as flask_calls:
        answer = post(client, payload, **headers)
    assert flask_calls.count == 1
    assert answer.status_code == flask_only.status_code
    assert answer.get_data() == flask_only.get_data() or problem(answer) == problem(flask_only)


def problem(response):
    """A problem document without its `instance` (it names the request)."""
    return {k: v for k, v in response.get_json().items() if k != "instance"}


def test_booking_checks_with_a_key_or_an_idempotency_key_go_to_flask(make_app, catalogue, auth):
    app = make_app()
    client = app.test_client()
    post(client, CHECK)
    with FlaskCalls(app) as flask_calls:
        assert post(client, CHECK, **auth("editor")).status_code == 200
        assert post(client, CHECK, **{"Idempotency-Key": "check-1"}).status_code == 200
    assert flask_calls.count == 2


def test_a_booking_check_over_its_limit_gets_flasks_429(make_app, catalogue):
    client = make_app(RATE_LIMIT_BOOKING="2/minute").test_client()
    assert [post(client, CHECK).status_code for _ in range(3)] == [200, 200, 429]
