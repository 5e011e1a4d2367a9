"""Security headers, request ids, structured logs that keep secrets out, hostile input"""

import json
import logging

import pytest

from api import create_app
from api.observability import configure_logging
from tests.helpers import add_treatment, create_treatment

PATHS = ["/v1/treatments", "/v1/treatments/missing", "/health/live", "/docs", "/v1/openapi.json"]


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_security_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_the_docs_page_runs_without_inline_scripts(client):
    html = client.get("/docs").get_data(as_text=True)
    scripts = html.split("<script")[1:]
    assert scripts, "the docs page loads Swagger UI"
    assert all(' src="/docs/' in tag.split(">")[0] for tag in scripts), "every script is a local file"
    with client.get("/docs/static/init.js") as init:
        assert init.status_code == 200
        assert b"SwaggerUIBundle" in init.get_data()


def test_a_request_id_is_generated_and_returned(client):
    first = client.get("/health/live").headers["X-Request-ID"]
    second = client.get("/health/live").headers["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_a_valid_client_request_id_is_kept_and_a_hostile_one_replaced(client):
    assert (
        client.get("/health/live", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    )
    hostile = client.get("/health/live", headers={"X-Request-ID": "<script>"})
    assert hostile.headers["X-Request-ID"] != "<script>"


def test_every_problem_names_its_request_id_in_instance(client):
    response = client.get("/v1/treatments/missing", headers={"X-Request-ID": "trace-42"})
    assert response.get_json()["instance"] == "/v1/treatments/missing#request-trace-42"


def test_logs_are_json_with_the_request_id_and_never_a_key_or_body(app, auth, capsys):
    logged = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "RATELIMIT_ENABLED": False})
    configure_logging("INFO")
    headers = auth("editor")
    key = headers["Authorization"].split()[1]
    client = logged.test_client()
    create_treatment(client, headers | {"X-Request-ID": "log-check"}, summary="SECRET-BODY-MARKER")
    client.post("/v1/treatments", json={"slug": "x"}, headers={"Authorization": "Bearer tpa_" + "x" * 43})
    logged.extensions["db_engine"].dispose()
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "log-check" and line.get("status") == 201 for line in lines)
    assert key not in err
    assert "tpa_xxxx" not in err
    assert "SECRET-BODY-MARKER" not in err
    logging.getLogger().handlers.clear()


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE treatments; --",
    "exosomes' --",
    "%' UNION SELECT key_hash FROM api_keys --",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_through_filters_finds_nothing_and_breaks_nothing(client, app, payload):
    add_treatment(app, "exosomes")
    for query in ({"q": payload}, {"category": payload}, {"status": payload}, {"updated_since": payload}):
        response = client.get("/v1/treatments", query_string=query)
        assert response.status_code in {200, 422}
        if response.status_code == 200:
            assert response.get_json()["items"] == []
    assert client.get("/v1/treatments/exosomes").status_code == 200


@pytest.mark.parametrize("payload", INJECTIONS)
def test_sql_injection_through_path_parameters_is_a_plain_404(client, app, payload):
    add_treatment(app, "exosomes")
    for path in (f"/v1/treatments/{payload}", f"/v1/treatments/{payload}/studies",
                 f"/v1/treatments/{payload}/decisions", f"/v1/treatments/{payload}/regulatory"):  # fmt: skip
        assert client.get(path).status_code == 404
    assert client.get("/v1/treatments/exosomes/studies/1%20OR%201=1").status_code == 404
    assert client.get("/v1/treatments/exosomes").status_code == 200


def test_sql_injection_through_booking_checks_is_just_an_unknown_treatment(client, app):
    add_treatment(app, "exosomes")
    refs = INJECTIONS + [{"system": "cliniko", "id": "1' OR '1'='1"}]
    results = client.post("/v1/booking-checks", json={"treatments": refs}).get_json()["results"]
    assert all(r["reason"] == "unknown_treatment" for r in results)


def test_deeply_nested_json_is_refused_cleanly(client):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post("/v1/booking-checks", data=body, content_type="application/json")
    assert response.status_code in {400, 413, 422}
    assert response.mimetype == "application/problem+json"


def test_oversized_json_is_413(client):
    body = '{"treatments": ["' + "a" * (1024 * 1024 + 10) + '"]}'
    response = client.post("/v1/booking-checks", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_wrong_content_types_on_writes_are_refused(client, auth, content_type):
    response = client.post("/v1/treatments", data='{"slug": "x"}', content_type=content_type, headers=auth())
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"


def slug_routes(app):
    """Every route with a slug in its path, each method, the slug given as `x%00`."""
    for rule in app.url_map.iter_rules():
        if "<slug:slug>" in rule.rule:
            path = rule.rule.replace("<slug:slug>", "x%00")
            path = path.replace("<int(max=2147483647):study_id>", "1").replace(
                "<int(max=2147483647):entry_id>", "1"
            )
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield method, path


def test_a_nul_byte_in_a_slug_is_404_on_every_slug_route(app, client, auth):
    """PostgreSQL refuses NUL in text: it answered 500, without a key. No slug holds one."""
    headers = auth("admin") | {"If-Match": '"x"'}
    routes = list(slug_routes(app))
    assert len(routes) >= 15
    for method, path in routes:
        response = client.open(path, method=method, headers=headers, json={} if method != "GET" else None)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.mimetype == "application/problem+json"


def query_routes(client):
    """GET routes whose query string has scalar parameters, with each one named."""
    spec = client.get("/v1/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        get = operations.get("get", {})
        scalars = [
            p["name"]
            for p in get.get("parameters", [])
            if p["in"] == "query" and p["schema"].get("type") != "array"
        ]
        for name in scalars:
            yield (
                path.replace("{slug}", "botox").replace("{webhook_id}", "1").replace("{connector_id}", "1"),
                name,
            )


def test_a_scalar_query_parameter_given_twice_is_422_on_every_route(app, client, auth):
    routes = list(query_routes(client))
    assert len(routes) >= 10
    for path, name in routes:
        response = client.get(f"{path}?{name}=1&{name}=2", headers=auth("admin"))
        assert response.status_code == 422, (path, name, response.status_code)
        assert {
            "location": "query",
            "field": name,
            "message": "Give this parameter once.",
        } in response.get_json()["errors"]
