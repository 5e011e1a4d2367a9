"""Database outages on PostgreSQL: bounded 503s, fail-closed booking, recovery, atomic writes.

The app reaches its database through `tests.faultproxy.FaultProxy`, which the tests switch
"down" (connections cut and refused, as a stopped server), into a "blackhole" (connections
accepted and never answered, as a network dropping packets), or use to cut a connection at a
chosen message of a write. The app is configured with tight bounds (connect timeout 1 s, which
psycopg raises to its minimum of 2 s; statement timeout 1 s; pool timeout 1 s), and every answer
is timed. Checks of what was written go straight to the database, never through the proxy.

Run with `-s` (or `-rP`) to see the measured timings.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from api import create_app
from api.api_keys.models import Role
from api.api_keys.service import create_key
from api.changes.service import FEED_LOCK_KEY
from api.db import LISTENER_NAME, get_session
from tests.conftest import TEST_SECRET_KEY
from tests.databases import fresh_database, on_postgresql
from tests.faultproxy import BLACKHOLE, DOWN, FaultProxy
from tests.helpers import add_treatment, approval, serving, study

pytestmark = pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL: set TEST_DATABASE_URL")

BOUND = 5.0  # seconds: the longest any answer may take while the database is unreachable
CONNECT_TIMEOUT = 1  # seconds, as configured (psycopg waits at least 2)
STATEMENT_TIMEOUT_MS = 1000
HTTP_TIMEOUT = 30  # the tests' own client never waits longer than this
RIS = (Path(__file__).resolve().parent.parent / "fixtures" / "literature" / "sample.ris").read_bytes()
APPROVED = "outage-approved"
# Routes that never touch the database: they must keep answering 200 during an outage.
STATIC_ENDPOINTS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                    "docs_assets.swagger_ui_asset", "docs_assets.docs_static", "docs_assets.favicon",
                    "health.Live", "website.static", "website.widget", "website.robots",
                    "console.static"}  # fmt: skip
# The public pages answer people with an HTML page; the same 503, Retry-After and wording.
WEBSITE_PAGES = {"page index", "page treatment", "page feed", "page sitemap"}


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


SQUARE_CONNECTOR = {"system": "square", "name": "Square", "credentials": {"access_token": "outage-token"}}


@pytest.fixture(scope="module")
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", 5432), ignore=LISTENER_NAME.encode()) as fault_proxy:
        yield fault_proxy


@contextmanager
def app_through(proxy: FaultProxy, database_url: str, **config: Any) -> Iterator[Flask]:
    url = make_url(database_url)
    assert (url.host, url.port or 5432) == ("127.0.0.1", 5432), "the proxy forwards to 127.0.0.1:5432"
    through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    app = create_app(
        {
            "DATABASE_URL": through_proxy,
            "DATABASE_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
            "DATABASE_STATEMENT_TIMEOUT_MS": STATEMENT_TIMEOUT_MS,
            "DATABASE_POOL_TIMEOUT": 1,
            "RATELIMIT_ENABLED": False,
            "LOG_REQUESTS": False,
            "LOG_LEVEL": "CRITICAL",  # the outages log an error per request, by design
            "SECRET_KEYS": (TEST_SECRET_KEY,),  # connectors' credentials
        }
        | config
    )
    yield app
    app.extensions["db_engine"].dispose()
    root.setLevel(saved[0])  # create_app configured the root logger: leave it as it was
    root.handlers[:] = saved[1]


@pytest.fixture(scope="module")
def outage_app(database_url: str, proxy: FaultProxy) -> Iterator[Flask]:
    with app_through(proxy, database_url) as app:
        yield app


@pytest.fixture(scope="module")
def direct(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection that bypasses the proxy: the truth about what was committed."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _database_back(proxy: FaultProxy) -> Iterator[None]:
    yield
    proxy.disarm()
    proxy.up()


@dataclass
class World:
    """What the outage requests refer to, made while the database was up."""

    admin: dict[str, str]
    slug: str
    treatment_etag: str
    study_id: int
    study_etag: str
    regulatory_id: int
    regulatory_etag: str
    webhook_id: int
    webhook_etag: str
    delivery_id: int
    connector_id: int
    connector_etag: str
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(outage_app: Flask) -> World:
    with outage_app.app_context():
        key = create_key(get_session(), "outage-admin", Role.ADMIN)
    admin = {"Authorization": f"Bearer {key}"}
    add_treatment(outage_app, APPROVED, "approved", studies=[study()], regulatory=[approval()],
                  external_ids={"cliniko": "4711"})  # fmt: skip
    client = outage_app.test_client()
    hook = client.post("/v1/webhooks", json={"url": "https://booking.example.com/hooks/tpa"}, headers=admin)
    assert hook.status_code == 201, hook.get_json()
    review = client.post(f"/v1/treatments/{APPROVED}/reviews", headers=admin,
                         json={"note": "Checked before the outage tests: nothing changes."})  # fmt: skip
    assert review.status_code == 201, review.get_json()  # queues a delivery for the webhook
    webhook_id = hook.get_json()["id"]
    deliveries = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin).get_json()
    studies = client.get(f"/v1/treatments/{APPROVED}/studies").get_json()
    regulatory = client.get(f"/v1/treatments/{APPROVED}/regulatory").get_json()
    study_id, regulatory_id = studies[0]["id"], regulatory[0]["id"]
    connector = client.post("/v1/connectors", headers=admin, json=SQUARE_CONNECTOR)
    assert connector.status_code == 201, connector.get_json()
    return World(
        extra=console_world(outage_app),
        admin=admin,
        slug=APPROVED,
        treatment_etag=client.get(f"/v1/treatments/{APPROVED}").headers["ETag"],
        study_id=study_id,
        study_etag=client.get(f"/v1/treatments/{APPROVED}/studies/{study_id}").headers["ETag"],
        regulatory_id=regulatory_id,
        regulatory_etag=client.get(f"/v1/treatments/{APPROVED}/regulatory/{regulatory_id}").headers["ETag"],
        webhook_id=webhook_id,
        webhook_etag=client.get(f"/v1/webhooks/{webhook_id}", headers=admin).headers["ETag"],
        delivery_id=deliveries[0]["id"],
        connector_id=connector.get_json()["id"],
        connector_etag=connector.headers["ETag"],
    )


def console_world(app: Flask) -> dict[str, Any]:
    """A staff admin's signed-in console session, a signed-out one and an unused sign-in link."""
    from api.console.forms import staff_settings
    from api.staff import service as staff
    from tests.console.conftest import PASSWORD, Console

    with app.app_context():
        settings = staff_settings()
        _, token = staff.create_user(get_session(), "outage@clinic.example", "Outage", Role.ADMIN, settings)
        staff.use_link(get_session(), token, PASSWORD, PASSWORD, settings)
        _, link = staff.create_user(get_session(), "later@clinic.example", "Later", Role.EDITOR, settings)
    signed_in, signed_out = Console(app.test_client()), Console(app.test_client())
    assert signed_in.sign_in("outage@clinic.example").status_code == 302
    signed_in.get("/console/")
    signed_out.get("/console/sign-in")
    cookie = "tpa_console"
    return {
        "admin_cookie": signed_in.client.get_cookie(cookie, path="/console").value,
        "admin_csrf": signed_in.token,
        "anonymous_cookie": signed_out.client.get_cookie(cookie, path="/console").value,
        "anonymous_csrf": signed_out.token,
        "link": link,
    }


# --- the representative requests ----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None
    console_session: str | None = None  # the console's session cookie

    def send(self, app: Flask) -> tuple[Any, float]:
        client = app.test_client()
        if self.console_session is not None:
            client.set_cookie("tpa_console", self.console_session, path="/console")
        kwargs: dict[str, Any] = {"headers": self.headers}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.data is not None:
            kwargs["data"] = self.data
        started = time.perf_counter()
        response = client.open(self.path, method=self.method, **kwargs)
        return response, time.perf_counter() - started


def calls(w: World) -> list[Call]:
    """One request per route and method, each valid (a write carries a valid key and body)."""
    t, a = f"/v1/treatments/{w.slug}", w.admin
    s, r, h = f"{t}/studies/{w.study_id}", f"{t}/regulatory/{w.regulatory_id}", f"/v1/webhooks/{w.webhook_id}"
    new_slug = f"outage-{uuid.uuid4().hex[:8]}"
    c = f"/v1/connectors/{w.connector_id}"
    return [
        Call("list", "GET", "/v1/treatments?per_page=20"),
        Call("list bookable", "GET", "/v1/treatments?bookable=true"),
        Call("create treatment", "POST", "/v1/treatments", headers=a,
             json={"slug": new_slug, "name": "Outage", "category": "laser", "summary": "Made in an outage."}),
        Call("detail", "GET", t),
        Call("detail 304", "GET", t, headers={"If-None-Match": w.treatment_etag}),
        Call("detail json-ld", "GET", t, headers={"Accept": "application/ld+json"}),
        Call("patch treatment", "PATCH", t, json={"summary": "Changed in an outage."},
             headers=a | {"If-Match": w.treatment_etag}),
        Call("decisions", "GET", f"{t}/decisions"),
        Call("record decision", "POST", f"{t}/decisions", headers=a,
             json={"status": "under_review", "reason": "Recorded in an outage."}),
        Call("studies", "GET", f"{t}/studies"),
        Call("add study", "POST", f"{t}/studies", json={"title": "Outage study", "design": "rct"}, headers=a),
        Call("study", "GET", s),
        Call("patch study", "PATCH", s, json={"participants": 300}, headers=a | {"If-Match": w.study_etag}),
        Call("delete study", "DELETE", s, headers=a | {"If-Match": w.study_etag}),
        Call("import studies", "POST", f"{t}/studies/import?format=ris", data=RIS,
             headers=a | {"Content-Type": "application/x-research-info-systems"}),
        Call("screening queue", "GET", f"/v1/screening?treatment={w.slug}", headers=a),
        Call("exclude study", "POST", f"{s}/exclusion", json={"reason": "not_human"},
             headers=a | {"If-Match": w.study_etag}),
        Call("prisma", "GET", f"{t}/prisma", headers=a),
        Call("regulatory", "GET", f"{t}/regulatory"),
        Call("add regulatory", "POST", f"{t}/regulatory", headers=a,
             json=approval(regulator="EMA", reference="EMA/1")),
        Call("regulatory entry", "GET", r),
        Call("patch regulatory", "PATCH", r, json={"pathway": "510(k)"},
             headers=a | {"If-Match": w.regulatory_etag}),
        Call("delete regulatory", "DELETE", r, headers=a | {"If-Match": w.regulatory_etag}),
        Call("audit", "GET", f"{t}/audit", headers=a),
        Call("gate", "GET", f"{t}/gate", headers=a),
        Call("reviews", "GET", f"{t}/reviews"),
        Call("record review", "POST", f"{t}/reviews", json={"note": "Reviewed in an outage."}, headers=a),
        Call("reviews due", "GET", "/v1/reviews/due?within=30", headers=a),
        Call("booking by slug", "POST", "/v1/booking-checks", json={"treatments": [w.slug]}),
        Call("booking by service id", "POST", "/v1/booking-checks",
             json={"treatments": [{"system": "cliniko", "id": "4711"}, w.slug]}),
        Call("booking unknown", "POST", "/v1/booking-checks", json={"treatments": ["no-such-treatment"]}),
        Call("change feed", "GET", "/v1/changes?after=0&limit=50"),
        Call("webhooks", "GET", "/v1/webhooks", headers=a),
        Call("add webhook", "POST", "/v1/webhooks", json={"url": "https://example.org/outage"}, headers=a),
        Call("webhook", "GET", h, headers=a),
        Call("patch webhook", "PATCH", h, json={"description": "Outage"},
             headers=a | {"If-Match": w.webhook_etag}),
        Call("delete webhook", "DELETE", h, headers=a | {"If-Match": w.webhook_etag}),
        Call("deliveries", "GET", f"{h}/deliveries", headers=a),
        Call("redeliver", "POST", f"{h}/deliveries/{w.delivery_id}/redeliver", headers=a),
        Call("connectors", "GET", "/v1/connectors", headers=a),
        Call("add connector", "POST", "/v1/connectors", json=SQUARE_CONNECTOR, headers=a),
        Call("connector", "GET", c, headers=a),
        Call("patch connector", "PATCH", c, json={"name": "Outage"},
             headers=a | {"If-Match": w.connector_etag}),
        Call("delete connector", "DELETE", c, headers=a | {"If-Match": w.connector_etag}),
        Call("sync connector", "POST", f"{c}/sync", headers=a),
        Call("connector calls", "GET", f"{c}/calls", headers=a),
        Call("connector notifications", "GET", f"{c}/notifications", headers=a),
        Call("booking notification", "POST", f"{c}/events", json={"event_id": "evt-outage"}),
        Call("ready", "GET", "/health/ready"),
        Call("page index", "GET", "/"),
        Call("page treatment", "GET", f"/treatments/{w.slug}"),
        Call("page feed", "GET", "/feed.atom"),
        Call("page sitemap", "GET", "/sitemap.xml"),
        *console_calls(w),
    ]  # fmt: skip


def console_calls(w: World) -> list[Call]:
    """Every console page and form, in a session (the session itself is in the database)."""
    from urllib.parse import urlencode

    x = w.extra
    t = f"/console/treatments/{w.slug}"

    def page(name: str, path: str, *, anonymous: bool = False) -> Call:
        return Call(name, "GET", path, console_session=x["anonymous_cookie" if anonymous else "admin_cookie"])

    def form(name: str, path: str, fields: dict[str, str] | None = None, *, anonymous: bool = False) -> Call:
        token = x["anonymous_csrf" if anonymous else "admin_csrf"]
        return Call(name, "POST", path, data=urlencode({"csrf_token": token} | (fields or {})).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    console_session=x["anonymous_cookie" if anonymous else "admin_cookie"])  # fmt: skip

    link = f"/console/sign-in/link/{x['link']}"
    decision = {"status": "under_review", "reason": "Decided in an outage."}
    return [
        page("console sign-in page", "/console/sign-in", anonymous=True),
        form(
            "console sign in",
            "/console/sign-in",
            {"email": "outage@clinic.example", "password": "x"},
            anonymous=True,
        ),
        page("console link page", link, anonymous=True),
        form(
            "console set password",
            link,
            {"password": "a long outage password", "confirm": "a long outage password"},
            anonymous=True,
        ),
        form("console sign out", "/console/sign-out"),
        form("console sign out everywhere", "/console/sign-out-everywhere"),
        page("console dashboard", "/console/"),
        page("console treatments", "/console/treatments?status=approved"),
        page("console new treatment page", "/console/treatments/new"),
        form(
            "console new treatment",
            "/console/treatments/new",
            {
                "slug": f"console-{uuid.uuid4().hex[:8]}",
                "name": "Outage",
                "category": "laser",
                "summary": "x",
            },
        ),
        page("console treatment", t),
        form(
            "console edit content",
            f"{t}/content",
            {"etag": w.treatment_etag, "name": "Outage", "summary": "x", "category": "laser"},
        ),
        form("console add study", f"{t}/studies", {"title": "Outage study", "design": "rct"}),
        page("console study page", f"{t}/studies/{w.study_id}"),
        form("console edit study", f"{t}/studies/{w.study_id}", {"etag": w.study_etag, "title": "Outage"}),
        form("console delete study", f"{t}/studies/{w.study_id}/delete", {"etag": w.study_etag}),
        form(
            "console add regulatory",
            f"{t}/regulatory",
            {"regulator": "EMA", "status": "approved", "source_url": "https://www.ema.europa.eu/x"},
        ),
        page("console regulatory page", f"{t}/regulatory/{w.regulatory_id}"),
        form(
            "console edit regulatory",
            f"{t}/regulatory/{w.regulatory_id}",
            {
                "etag": w.regulatory_etag,
                "regulator": "FDA",
                "status": "approved",
                "source_url": "https://www.fda.gov/x",
            },
        ),
        form(
            "console delete regulatory",
            f"{t}/regulatory/{w.regulatory_id}/delete",
            {"etag": w.regulatory_etag},
        ),
        form("console check decision", f"{t}/decisions/check", decision),
        form("console record decision", f"{t}/decisions", decision),
        form("console record review", f"{t}/reviews", {"note": "Reviewed in an outage."}),
        page("console screening", "/console/screening"),
        form("console upload references", "/console/screening/import", {"treatment": w.slug}),
        form(
            "console exclude study",
            f"{t}/studies/{w.study_id}/exclude",
            {"etag": w.study_etag, "reason": "other"},
        ),
        page("console people", "/console/people"),
        form(
            "console invite",
            "/console/people",
            {"email": "new@clinic.example", "name": "New", "role": "editor"},
        ),
        form("console reset", "/console/people/1/reset"),
        form("console deactivate", "/console/people/1/active", {"active": "false"}),
        form("console change role", "/console/people/1/role", {"role": "editor"}),
        form("console sign person out", "/console/people/1/sign-out"),
        page("console administration", "/console/admin"),
        page("console api keys", "/console/admin/keys"),
        form("console create api key", "/console/admin/keys", {"name": "outage-key", "role": "editor"}),
        form("console revoke api key", "/console/admin/keys/1/revoke"),
        page("console webhooks", "/console/admin/webhooks"),
        form("console subscribe webhook", "/console/admin/webhooks", {"url": "https://example.org/outage-2"}),
        page("console webhook", f"/console/admin/webhooks/{w.webhook_id}"),
        form(
            "console switch webhook",
            f"/console/admin/webhooks/{w.webhook_id}/active",
            {"active": "false", "etag": w.webhook_etag},
        ),
        form(
            "console redeliver",
            f"/console/admin/webhooks/{w.webhook_id}/deliveries/{w.delivery_id}/redeliver",
        ),
        page("console connectors", "/console/admin/connectors"),
        page("console connector", f"/console/admin/connectors/{w.connector_id}"),
        form("console sync connector", f"/console/admin/connectors/{w.connector_id}/sync"),
    ]


def covered(app: Flask, requests: list[Call]) -> set[tuple[str, str]]:
    adapter = app.url_map.bind("localhost")
    return {(adapter.match(c.path.partition("?")[0], method=c.method)[0], c.method) for c in requests}


def database_routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in STATIC_ENDPOINTS
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def table_counts(direct: psycopg.Connection[Any]) -> dict[str, int]:
    tables = ("treatments", "studies", "regulatory_statuses", "decisions", "audit_records", "change_events",
              "treatment_reviews", "webhook_subscriptions", "webhook_deliveries")  # fmt: skip
    return {t: direct.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def sweep(app: Flask, requests: list[Call]) -> list[tuple[Call, Any, float]]:
    """Send every request at once, five at a time (the pool's size, so none waits for it)."""
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda c: c.send(app), requests, timeout=HTTP_TIMEOUT * 2))
    return [(c, response, seconds) for c, (response, seconds) in zip(requests, answers, strict=True)]


def report(title: str, rows: list[tuple[str, int, float]]) -> None:
    seconds = [s for _, _, s in rows]
    print(f"\n{title}: {len(rows)} requests, max {max(seconds):.3f} s, "
          f"median {sorted(seconds)[len(seconds) // 2]:.3f} s")  # fmt: skip
    for name, status, secs in rows:
        print(f"  {name:<24} {status}  {secs:.3f} s")


# --- every endpoint during an outage, then recovery ------------------------------------------


def until_caches_distrusted(app: Flask) -> None:
    """Wait for the worker to stop vouching for its caches (its listener's connection was cut):
    from then on every answer needs the database. Until then the caches are as fresh as the
    bound promises, and nothing can be written while the database is away."""
    deadline = time.monotonic() + 2 * app.config["CACHE_LISTENER_TRUST_SECONDS"]
    while app.extensions["readcache"].coherence.version() is not None:
        assert time.monotonic() < deadline, "the worker still trusts its caches"
        time.sleep(0.01)


def test_the_requests_cover_every_route_that_reads_the_database(outage_app, world):
    assert covered(outage_app, calls(world)) == database_routes(outage_app)


@pytest.mark.parametrize("mode", [DOWN, BLACKHOLE])
def test_every_endpoint_answers_503_in_bounded_time_and_the_same_app_recovers(
    outage_app, world, proxy, direct, mode
):
    requests = calls(world)
    for call in requests:  # warm the pool and the read cache: a stale answer must not leak out
        if call.method == "GET":
            assert call.send(outage_app)[0].status_code in {200, 304}, call
    before = table_counts(direct)

    proxy.down() if mode == DOWN else proxy.blackhole()
    until_caches_distrusted(outage_app)
    answers = sweep(outage_app, requests)
    live, live_seconds = Call("live", "GET", "/health/live").send(outage_app)
    spec, _ = Call("openapi", "GET", "/v1/openapi.json").send(outage_app)
    docs, _ = Call("docs", "GET", "/docs").send(outage_app)
    widget, _ = Call("widget", "GET", "/widget.js").send(outage_app)  # so the widget shows its fallback
    during = table_counts(direct)
    proxy.up()

    report(f"database {mode}", [(c.name, r.status_code, s) for c, r, s in answers])
    for call, response, seconds in answers:
        assert response.status_code == 503, (call, response.status_code, response.get_data(as_text=True))
        assert int(response.headers["Retry-After"]) > 0, call
        if call.name in WEBSITE_PAGES:  # pages, for people
            assert response.mimetype == "text/html", call
            assert "The database cannot be reached" in response.get_data(as_text=True), call
        elif call.path.startswith("/console/"):
            assert response.mimetype == "text/html" and "try again shortly" in response.get_data(as_text=True)
        else:
            assert response.mimetype == "application/problem+json", call
            problem = response.get_json()
            assert problem["status"] == 503 and problem["type"] == "/problems/service-unavailable", call
        assert seconds < BOUND, (call, seconds)
        assert b'"bookable"' not in response.get_data(), call  # never a yes, nor a no
    assert live.status_code == 200 and live_seconds < 1.0  # the process is alive: do not restart it
    assert spec.status_code == 200 and docs.status_code == 200 and widget.status_code == 200
    assert during == before  # no write got through

    # The same app object, without a restart, serves again as soon as the database is back.
    started = time.perf_counter()
    ready, _ = Call("ready", "GET", "/health/ready").send(outage_app)
    recovered_in = time.perf_counter() - started
    assert ready.status_code == 200, ready.get_data(as_text=True)
    for call in requests:
        if call.method == "GET":
            response, _ = call.send(outage_app)
            assert response.status_code in {200, 304}, (call, response.get_data(as_text=True))
    check = Call("booking", "POST", "/v1/booking-checks", json={"treatments": [world.slug]})
    booking, _ = check.send(outage_app)
    assert booking.status_code == 200 and booking.get_json()["bookable"] is True
    note = {"note": f"Reviewed after the {mode} outage: nothing changes."}
    write, _ = Call("write", "POST", f"/v1/treatments/{world.slug}/reviews", json=note,
                    headers=world.admin).send(outage_app)  # fmt: skip
    assert write.status_code == 201, write.get_data(as_text=True)
    print(f"  first request after recovery (/health/ready): {recovered_in:.3f} s")


@pytest.mark.parametrize("mode", [DOWN, BLACKHOLE])
def test_booking_checks_never_answer_bookable_during_an_outage(outage_app, world, proxy, mode):
    check = Call("booking", "POST", "/v1/booking-checks",
                 json={"treatments": [world.slug, {"system": "cliniko", "id": "4711"}]})  # fmt: skip
    response, _ = check.send(outage_app)
    assert response.get_json()["bookable"] is True  # approved, while the database is up
    with proxy.outage(mode):
        until_caches_distrusted(outage_app)
        answers = [check.send(outage_app) for _ in range(3)]
    for response, seconds in answers:
        assert response.status_code == 503 and seconds < BOUND
        assert "bookable" not in response.get_json()


def test_a_write_waiting_on_a_lock_is_bounded_by_the_statement_timeout(outage_app, world, direct):
    """The database is up but the write cannot finish (the feed lock is held elsewhere)."""
    before = table_counts(direct)
    direct.execute("SELECT pg_advisory_lock(%s)", (FEED_LOCK_KEY,))
    try:
        body = {"title": "Blocked study", "design": "rct"}
        call = Call("blocked write", "POST", f"/v1/treatments/{world.slug}/studies", json=body,
                    headers=world.admin)  # fmt: skip
        response, seconds = call.send(outage_app)
    finally:
        direct.execute("SELECT pg_advisory_unlock(%s)", (FEED_LOCK_KEY,))
    print(f"\nwrite blocked on a lock: {response.status_code} after {seconds:.3f} s")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert STATEMENT_TIMEOUT_MS / 1000 * 0.9 < seconds < BOUND
    assert table_counts(direct) == before
    again, _ = call.send(outage_app)
    assert again.status_code == 201


def test_requests_beyond_the_connection_pool_answer_503_too(outage_app, world, proxy):
    request = Call("list", "GET", "/v1/treatments")
    with proxy.outage(BLACKHOLE), ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(lambda _: request.send(outage_app), range(25), timeout=HTTP_TIMEOUT))
    statuses = sorted(response.status_code for response, _ in answers)
    print(f"\n25 concurrent requests, blackhole: {statuses}")
    assert all(seconds < BOUND for _, seconds in answers)
    assert statuses == [503] * 25


def test_a_database_that_goes_silent_is_bounded_on_the_client_side(outage_app, world, proxy):
    """Bytes stop but TCP stays up (a frozen server, a network that swallows packets): neither the
    server's statement timeout nor the kernel's keepalives fire. The client gives up after the
    statement timeout plus a margin and closes the connection: 503, never a hang."""
    audit = Call("audit", "GET", f"/v1/treatments/{world.slug}/audit", headers=world.admin)
    detail = Call("detail", "GET", f"/v1/treatments/{world.slug}")
    assert audit.send(outage_app)[0].status_code == 200  # pooled connections are open
    assert detail.send(outage_app)[0].status_code == 200
    margin = outage_app.config["DATABASE_WAIT_MARGIN_MS"] / 1000
    # A statement waits at most the statement timeout and the margin; a pooled connection's ping
    # the margin, then a new connection at most the connect timeout (psycopg's least is 2 s).
    limit = max(STATEMENT_TIMEOUT_MS / 1000 + margin, margin + max(CONNECT_TIMEOUT, 2))
    proxy.blackhole(cut_existing=False)  # open connections swallow everything from now on
    try:
        answers = [audit.send(outage_app)]  # needs the database at once
        until_caches_distrusted(outage_app)  # the listener's heartbeat goes unanswered
        answers += [detail.send(outage_app), Call("live", "GET", "/health/live").send(outage_app)]
    finally:
        proxy.up()  # cuts the frozen connections
    print(f"\nsilent database: {[(r.status_code, round(s, 3)) for r, s in answers]} (limit {limit} s)")
    (audit_answer, audit_seconds), (detail_answer, detail_seconds), (live, _) = answers
    assert audit_answer.status_code == 503 and audit_seconds < limit + 0.5
    assert detail_answer.status_code == 503 and detail_seconds < limit + 0.5
    assert live.status_code == 200
    assert audit.send(outage_app)[0].status_code == 200  # and it recovers by itself


# --- a write in flight when the connection drops --------------------------------------------


@pytest.fixture(scope="module")
def server(proxy: FaultProxy, database_url: str) -> Iterator[str]:
    """The app that takes the cut writes, in `database` coherence: it keeps no cache listener,
    whose heartbeats and reconnections would be messages through the proxy too (the proxy also
    leaves the other app's listener out of its triggers)."""
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # no access line per trial
    try:
        with app_through(proxy, database_url, CACHE_COHERENCE="database") as writer, serving(writer) as base:
            yield base.removeprefix("http://")
    finally:
        werkzeug_log.setLevel(level)


def post(server: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, float]:
    conn = http.client.HTTPConnection(server, timeout=HTTP_TIMEOUT)
    started = time.perf_counter()
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"} | headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.headers.get_content_type(), time.perf_counter() - started
    finally:
        conn.close()


@dataclass
class Trial:
    cut: str
    message: str
    status: int
    media_type: str
    seconds: float
    committed: bool


def write_outcome(direct: psycopg.Connection[Any], title: str, before: dict[str, int]) -> bool:
    """Whether the study titled `title` was committed whole; fails if it was half-written."""
    after = table_counts(direct)
    rows = direct.execute("SELECT id FROM studies WHERE title = %s", (title,)).fetchall()
    grew = {t: after[t] - before[t] for t in ("studies", "audit_records", "change_events")}
    if not rows:
        assert grew == {"studies": 0, "audit_records": 0, "change_events": 0}, (title, grew)
        return False
    ((study_id,),) = rows
    audits = direct.execute("SELECT count(*) FROM audit_records WHERE entity = 'study' AND entity_id = %s "
                            "AND action = 'created'", (study_id,)).fetchone()[0]  # type: ignore[index]  # fmt: skip
    events = direct.execute("SELECT count(*) FROM change_events WHERE event_type = 'study.created' "
                            "AND (data->>'id')::bigint = %s", (study_id,)).fetchone()[0]  # type: ignore[index]  # fmt: skip
    assert (audits, events) == (1, 1), (title, audits, events)
    assert grew == {"studies": 1, "audit_records": 1, "change_events": 1}, (title, grew)
    return True


def run_trial(server: str, proxy: FaultProxy, direct: psycopg.Connection[Any], world: World,
              label: str, headers: dict[str, str] | None = None, **cut: Any) -> Trial:  # fmt: skip
    title = f"In-flight study {uuid.uuid4().hex[:10]}"
    before = table_counts(direct)
    trigger = proxy.cut_on(**cut) if cut else None
    status, media_type, seconds = post(server, f"/v1/treatments/{world.slug}/studies",
                                       {"title": title, "design": "cohort", "participants": 40},
                                       world.admin | (headers or {}))  # fmt: skip
    proxy.disarm()
    proxy.up()
    assert proxy.quiesce(), "the server kept a cut connection open"
    fired = trigger is not None and trigger.fired.is_set()
    message = trigger.message[:60].decode("latin-1") if fired and trigger else "(not reached)"
    return Trial(label, message, status, media_type, seconds, write_outcome(direct, title, before))


def print_trials(title: str, trials: list[Trial]) -> None:
    print(f"\n{title}")
    for t in trials:
        print(f"  {t.cut:<34} {t.status} {'committed' if t.committed else 'nothing  '} {t.seconds:.3f} s  "
              f"{t.message!r}")  # fmt: skip


def test_a_write_cut_at_each_message_commits_whole_or_not_at_all(server, proxy, direct, world):
    """Cut the connection at the 1st, 2nd, ... message the write sends, COMMIT included, both
    before and just after forwarding it; the database is back at once (a blip)."""
    dry = proxy.cut_on(nth=10**9)
    baseline = run_trial(server, proxy, direct, world, "no cut")
    assert baseline.status == 201 and baseline.committed
    messages = dry.seen
    trials = []
    for nth in range(1, messages + 3):  # and a little beyond, as the count can vary by one
        for forward in (False, True):
            label = f"message {nth} {'after' if forward else 'before'} forwarding"
            trials.append(run_trial(server, proxy, direct, world, label, nth=nth, forward=forward))
    print_trials(f"write cut at each message (a clean run sent {messages})", trials)
    for trial in trials:
        assert trial.status in {201, 503}, trial
        assert trial.seconds < BOUND, trial
        if trial.status == 201:
            assert trial.committed, trial  # a success is never a lie
        else:
            assert trial.media_type == "application/problem+json", trial
    outcomes = {t.committed for t in trials}
    assert outcomes == {True, False}  # both sides of the commit were exercised


@pytest.mark.parametrize("forward", [False, True], ids=["before COMMIT", "after COMMIT"])
def test_a_write_cut_at_its_commit_is_whole_or_absent(server, proxy, direct, world, forward):
    """The COMMIT lost on the way (nothing written) or its answer lost (all written): either way
    the client gets 503 and may retry; the audit record and the event share the study's fate."""
    trial = run_trial(server, proxy, direct, world, f"COMMIT, forward={forward}", pattern=b"COMMIT",
                      after=b"INSERT INTO change_events", forward=forward)  # fmt: skip
    print_trials("write cut at its COMMIT", [trial])
    assert trial.status == 503 and trial.media_type == "application/problem+json"
    assert trial.committed is forward


def test_a_write_cut_as_the_database_goes_down_commits_whole_or_not_at_all(server, proxy, direct, world):
    """As above, but the cut is the start of an outage: every later connection fails too, so
    nothing in the request (error handling, clean-up) may need the database to answer 503."""
    dry = proxy.cut_on(nth=10**9)
    assert run_trial(server, proxy, direct, world, "no cut").committed
    trials = []
    for nth in range(1, dry.seen + 3):
        for forward in (False, True):
            label = f"message {nth} {'after' if forward else 'before'} forwarding, down"
            trials.append(run_trial(server, proxy, direct, world, label, nth=nth, forward=forward, then=DOWN))
    print_trials("write cut as the database goes down", trials)
    for trial in trials:
        assert trial.seconds < BOUND, trial
        assert trial.status == 201 if trial.message == "(not reached)" else trial.status == 503, trial
        assert trial.committed or trial.status != 201, trial
    assert {t.committed for t in trials if t.status == 503} == {True, False}


@pytest.mark.parametrize("forward", [False, True], ids=["before COMMIT", "after COMMIT"])
def test_an_idempotent_write_cut_as_the_database_goes_down_answers_503(server, proxy, direct, world, forward):
    key = {"Idempotency-Key": f"outage-{uuid.uuid4().hex}"}
    cut = {"pattern": b"COMMIT", "after": b"INSERT INTO change_events", "forward": forward, "then": DOWN}
    trial = run_trial(server, proxy, direct, world, f"COMMIT, forward={forward}, down", key, **cut)
    print_trials("idempotent write cut at its COMMIT as the database goes down", [trial])
    assert trial.committed is forward  # atomic either way: only the status is wrong
    assert trial.status == 503, trial


def test_a_retry_with_the_same_idempotency_key_succeeds_after_an_outage(server, proxy, direct, world):
    key = {"Idempotency-Key": f"outage-{uuid.uuid4().hex}"}
    title = f"Idempotent study {uuid.uuid4().hex[:10]}"
    body = {"title": title, "design": "cohort"}
    path = f"/v1/treatments/{world.slug}/studies"
    # The claim's COMMIT reaches the database, then the database goes away.
    proxy.cut_on(b"COMMIT", forward=True, then=DOWN)
    first = post(server, path, body, world.admin | key)
    proxy.up()
    retries = [post(server, path, body, world.admin | key)[0] for _ in range(3)]
    print(f"\nidempotent write in an outage: {first[0]}, retries after recovery: {retries}")
    assert first[0] == 503
    assert retries[0] == 201 and retries[1:] == [201, 201]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def exchange(
    server: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Answer:
    conn = http.client.HTTPConnection(server, timeout=HTTP_TIMEOUT)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, payload, {"Content-Type": "application/json"} | (headers or {}))
        response = conn.getresponse()
        return Answer(response.status, dict(response.headers.items()), response.read())
    finally:
        conn.close()


def studies_titled(direct: psycopg.Connection[Any], title: str) -> int:
    return direct.execute("SELECT count(*) FROM studies WHERE title = %s", (title,)).fetchone()[0]  # type: ignore[index,no-any-return]


def cut_idempotent_study(
    server: str, proxy: FaultProxy, world: World, forward: bool
) -> tuple[dict[str, Any], dict[str, str], Answer]:
    """POST a study with a new key, the connection cut at the write's COMMIT (forwarded to the
    server first, or not) as the database goes down; the database is back on return."""
    body = {"title": f"Retried study {uuid.uuid4().hex[:10]}", "design": "cohort", "participants": 40}
    headers = world.admin | {"Idempotency-Key": f"outage-{uuid.uuid4().hex}"}
    proxy.cut_on(b"COMMIT", after=b"INSERT INTO change_events", forward=forward, then=DOWN)
    first = exchange(server, "POST", f"/v1/treatments/{world.slug}/studies", body, headers)
    proxy.disarm()
    proxy.up()
    assert proxy.quiesce(), "the server kept a cut connection open"
    return body, headers, first


def test_a_retry_after_a_cut_that_lost_only_the_answer_replays_it(server, proxy, direct, world):
    """The COMMIT reached the database and the answer was lost: the study is stored, the client
    heard 503. Its retry must replay the committed answer, not store the study a second time."""
    before = table_counts(direct)
    body, headers, first = cut_idempotent_study(server, proxy, world, forward=True)
    assert first.status == 503
    retry = exchange(server, "POST", f"/v1/treatments/{world.slug}/studies", body, headers)
    print(f"\nidempotent write, its answer lost: {first.status}, retry: {retry.status}, "
          f"replayed: {retry.headers.get('Idempotent-Replayed')}")  # fmt: skip
    assert studies_titled(direct, body["title"]) == 1
    assert write_outcome(direct, body["title"], before)  # with one audit record and one event
    assert retry.status == 201 and retry.headers.get("Idempotent-Replayed") == "true", retry
    stored = exchange(server, "GET", f"/v1/treatments/{world.slug}/studies/{json.loads(retry.body)['id']}")
    assert json.loads(retry.body) == json.loads(stored.body)  # the answer the first request made
    assert retry.headers["ETag"] == stored.headers["ETag"]


def test_a_retry_after_a_cut_that_lost_the_commit_runs_once(server, proxy, direct, world):
    """The COMMIT never reached the database: nothing is stored, so the retry runs for the first
    time (not 409 for a claim left behind), and a second retry replays it."""
    before = table_counts(direct)
    body, headers, first = cut_idempotent_study(server, proxy, world, forward=False)
    assert first.status == 503
    assert not write_outcome(direct, body["title"], before)
    retry = exchange(server, "POST", f"/v1/treatments/{world.slug}/studies", body, headers)
    again = exchange(server, "POST", f"/v1/treatments/{world.slug}/studies", body, headers)
    print(f"\nidempotent write, its COMMIT lost: {first.status}, retries: {retry.status}, {again.status}")
    assert retry.status == 201 and "Idempotent-Replayed" not in retry.headers, retry
    assert again.status == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.body == retry.body
    assert studies_titled(direct, body["title"]) == 1
    assert write_outcome(direct, body["title"], before)
