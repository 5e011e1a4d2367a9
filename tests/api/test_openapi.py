"""The committed OpenAPI document is the code's, valid, served live; the docs work offline"""

import re
from pathlib import Path

import yaml
from openapi_spec_validator import validate

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi.yaml"


def generated_spec(app):
    with app.app_context():
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def test_committed_openapi_matches_the_code(app):
    committed = yaml.safe_load(SPEC_FILE.read_text())
    assert committed == generated_spec(app), "openapi.yaml is stale: run `make spec` and commit it"


def test_openapi_document_is_valid(app):
    validate(generated_spec(app))


def test_openapi_json_is_served_live(client, app):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == generated_spec(app)


# Public (booking checks), or authenticated by the sender's signature instead of a key (Square's
# booking notifications to a guarding connector).
SIGNED_NOT_KEYED = {"/v1/booking-checks", "/v1/connectors/{connector_id}/events"}


def test_a_notification_endpoint_declares_its_signature_instead(app):
    op = generated_spec(app)["paths"]["/v1/connectors/{connector_id}/events"]["post"]
    assert op["security"] == [] and "401" in op["responses"]
    assert [p["name"] for p in op["parameters"] if p["in"] == "header"] == ["x-square-hmacsha256-signature"]


def test_every_write_declares_the_bearer_scheme_and_its_role(app):
    spec = generated_spec(app)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    writes = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"post", "patch", "delete"} and path not in SIGNED_NOT_KEYED
    ]
    assert writes
    for path, method, op in writes:
        assert op.get("security") == [{"bearerAuth": []}], (method, path)
        assert op["x-required-role"] in {"editor", "reviewer", "admin"}, (method, path)
        assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_errors_are_documented_as_problem_json(app):
    spec = generated_spec(app)
    not_found = spec["components"]["responses"]["NOT_FOUND"]
    assert list(not_found["content"]) == ["application/problem+json"]


def test_docs_page_loads_only_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert not re.search(r"(src|href)=\"https?://", html), "the docs page must not load from a CDN"
    for asset in re.findall(r"(?:src|href)=\"(/docs/assets/[^\"]+)\"", html):
        with client.get(asset) as response:
            assert response.status_code == 200, asset
    assert re.findall(r"/docs/assets/", html)
