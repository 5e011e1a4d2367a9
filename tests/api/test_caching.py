"""HTTP caching of public reads and CORS for the website"""

import pytest

from api import create_app
from tests.helpers import add_treatment, approval, create_treatment, study

PUBLIC_READS = ["/v1/treatments", "/v1/treatments/botox", "/v1/treatments/botox/decisions",
                "/v1/treatments/botox/studies", "/v1/treatments/botox/regulatory", "/v1/changes"]  # fmt: skip


@pytest.fixture
def catalogue(app):
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])


@pytest.mark.parametrize("path", PUBLIC_READS)
def test_public_reads_send_etag_last_modified_and_cache_control(client, catalogue, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=30"
    assert "Accept" in response.headers["Vary"]


@pytest.mark.parametrize("path", PUBLIC_READS)
def test_if_none_match_gives_304_without_a_body(client, catalogue, path):
    etag = client.get(path).headers["ETag"]
    response = client.get(path, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag


@pytest.mark.parametrize("path", PUBLIC_READS)
def test_if_modified_since_gives_304_when_nothing_changed(client, catalogue, path):
    last_modified = client.get(path).headers["Last-Modified"]
    assert client.get(path, headers={"If-Modified-Since": last_modified}).status_code == 304
    older = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get(path, headers={"If-Modified-Since": older}).status_code == 200


def test_a_cold_cache_still_answers_304_to_a_matching_etag(app, client, catalogue):
    etag = client.get("/v1/treatments").headers["ETag"]
    app.extensions["readcache"].forget()  # as a freshly started worker would be
    assert client.get("/v1/treatments", headers={"If-None-Match": etag}).status_code == 304


def test_a_write_changes_the_list_etag_and_the_next_read_shows_it(client, auth, catalogue):
    before = client.get("/v1/treatments")
    headers = auth("editor")
    create_treatment(client, headers, slug="new-one", name="Aardvark peel")
    after = client.get("/v1/treatments", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.get_json()["items"][0]["slug"] == "new-one"


def test_a_decision_is_seen_by_the_next_detail_read_and_booking_check(client, auth, catalogue):
    first = client.get("/v1/treatments/botox")
    assert first.get_json()["bookable"] is True
    response = client.post("/v1/treatments/botox/decisions", headers=auth("reviewer"),
                           json={"status": "withdrawn", "reason": "Safety signal under review."})  # fmt: skip
    assert response.status_code == 201
    detail = client.get("/v1/treatments/botox", headers={"If-None-Match": first.headers["ETag"]})
    assert detail.status_code == 200
    assert detail.get_json()["status"] == "withdrawn"
    check = client.post("/v1/booking-checks", json={"treatments": ["botox"]}).get_json()
    assert check["bookable"] is False


def test_errors_are_never_cached(client):
    response = client.get("/v1/treatments/missing")
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"


def test_max_age_is_configurable(app):
    custom = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "CACHE_MAX_AGE": 5})
    response = custom.test_client().get("/v1/treatments")
    assert response.headers["Cache-Control"].startswith("public, max-age=5,")
    custom.extensions["db_engine"].dispose()


@pytest.fixture
def website_app(app):
    website = create_app({"DATABASE_URL": app.config["DATABASE_URL"],
                          "CORS_ORIGINS": ("https://clinic.example",)})  # fmt: skip
    yield website
    website.extensions["db_engine"].dispose()


def test_cors_opens_public_reads_and_booking_checks_to_the_website(website_app):
    client = website_app.test_client()
    origin = {"Origin": "https://clinic.example"}
    assert client.get("/v1/treatments", headers=origin).headers["Access-Control-Allow-Origin"] == (
        "https://clinic.example"
    )
    preflight = client.options(
        "/v1/booking-checks",
        headers=origin
        | {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"},
    )
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_cors_refuses_other_origins(website_app):
    response = website_app.test_client().get("/v1/treatments", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_writes_are_not_open_cross_origin(website_app):
    preflight = website_app.test_client().options(
        "/v1/treatments/botox",
        headers={"Origin": "https://clinic.example", "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "Authorization, Content-Type, If-Match"},
    )  # fmt: skip
    assert "PATCH" not in preflight.headers.get("Access-Control-Allow-Methods", "")
    assert "authorization" not in preflight.headers.get("Access-Control-Allow-Headers", "").lower()


@pytest.mark.parametrize(
    "origin", [{}, {"Origin": "https://clinic.example"}, {"Origin": "https://evil.example"}]
)
@pytest.mark.parametrize("path", PUBLIC_READS)
def test_with_cors_configured_public_answers_vary_on_origin(website_app, catalogue, path, origin):
    """A shared cache must not hand the clinic's site an answer stored without its CORS header."""
    client = website_app.test_client()
    first = client.get(path, headers=origin)
    again = client.get(path, headers=origin)  # answered from the cache (or before Flask)
    revalidated = client.get(path, headers=origin | {"If-None-Match": first.headers["ETag"]})
    for response in (first, again, revalidated):
        assert response.status_code in {200, 304}
        assert {"Accept", "Origin"} <= {v.strip() for v in response.headers["Vary"].split(",")}, path


def test_without_cors_public_answers_vary_on_accept_only(client, catalogue):
    assert client.get("/v1/treatments").headers["Vary"] == "Accept"


# --- cacheability is declared on each route ---------------------------------------------------

# Routes the app does not write itself: Flask's static files, and flask-smorest's spec and docs.
NOT_OURS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}


def undeclared_gets(app):
    from api.readcache.declare import declaration

    gets = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())}
    return sorted(e for e in gets - NOT_OURS if declaration(app.view_functions[e]) is None)


def test_every_get_declares_whether_the_read_cache_serves_it(app):
    """A new GET must say `@cacheable` or `@uncacheable("why")`: forgetting would silently lose
    its ETag, its 304s and its place on the fast path."""
    assert undeclared_gets(app) == []


def test_a_get_that_declares_nothing_is_found(app):
    from flask import Flask

    from api.readcache import cacheable, uncacheable

    other = Flask("declarations")
    other.add_url_rule("/said-yes", "yes", cacheable(lambda: "yes"))
    other.add_url_rule("/said-no", "no", uncacheable("varies per client")(lambda: "no"))
    other.add_url_rule("/said-nothing", "nothing", lambda: "nothing")
    assert undeclared_gets(other) == ["nothing"]


def test_the_cacheable_routes_are_exactly_the_public_reads(app):
    from api.readcache.declare import cacheable_endpoints

    assert cacheable_endpoints(app) == {
        "treatments.Treatments", "treatments.TreatmentBySlug", "treatments.TreatmentDecisions",
        "treatments.TreatmentStudies", "treatments.TreatmentStudyById", "treatments.TreatmentRegulatory",
        "treatments.TreatmentRegulatoryById", "changes.Changes", "reviews.TreatmentReviews",
        "website.index", "website.treatment", "website.feed", "website.sitemap",
    }  # fmt: skip
