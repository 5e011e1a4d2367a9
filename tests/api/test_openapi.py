"""The committed OpenAPI document is the code's, valid, served live; the docs work offline"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from openapi_spec_validator import validate

from api.changes.service import EVENT_TYPES
from api.errors import PROBLEM_MEDIA_TYPE
from api.smorest import PROBLEM_EXAMPLES
from tests.helpers import create_treatment

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


# --- what client generators read: required fields, one schema per direction, error examples ---


def _refs(node: Any) -> Iterator[str]:
    """Every component schema a part of the document refers to, directly."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _reachable(spec: dict[str, Any], roots: list[Any]) -> set[str]:
    """The component schemas `roots` use, through every nesting."""
    seen: set[str] = set()
    todo = [name for root in roots for name in _refs(root)]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_refs(spec["components"]["schemas"][name]))
    return seen


def _resolved(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    ref = response.get("$ref", "")
    return spec["components"]["responses"][ref.rsplit("/", 1)[1]] if ref else response


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def _response_schemas(spec: dict[str, Any]) -> set[str]:
    responses = [_resolved(spec, r) for _, _, op in _operations(spec) for r in op["responses"].values()]
    return _reachable(spec, responses)


def _request_schemas(spec: dict[str, Any]) -> set[str]:
    return _reachable(spec, [op.get("requestBody", {}) for _, _, op in _operations(spec)] +
                      [op.get("parameters", []) for _, _, op in _operations(spec)])  # fmt: skip


def _inline_objects(schema: Any) -> Iterator[dict[str, Any]]:
    """The schema and the objects nested in it without a component of their own."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield schema
        for key in ("items", "additionalProperties"):
            yield from _inline_objects(schema.get(key))
        for value in schema.get("properties", {}).values():
            yield from _inline_objects(value)


def test_every_response_schema_lists_the_fields_always_present_as_required(app):
    """Generated clients make every field not `required` optional (`BookingAnswer.bookable`
    included): a response schema, today's or a future feature's, must say what is always there
    (`api.smorest.ResponseSchema` does it)."""
    spec = generated_spec(app)
    schemas = _response_schemas(spec)
    assert {"BookingAnswer", "Treatment", "ChangeEvent", "Problem", "ImportResult"} <= schemas
    lacking = [
        name for name in sorted(schemas) for obj in _inline_objects(spec["components"]["schemas"][name])
        if obj["properties"] and not obj.get("required")
    ]  # fmt: skip
    assert not lacking, (
        f"response schemas without `required` (make them api.smorest.ResponseSchema): {lacking}"
    )
    assert "bookable" in spec["components"]["schemas"]["BookingAnswer"]["required"]
    assert set(spec["components"]["schemas"]["Treatment"]["required"]) == set(
        spec["components"]["schemas"]["Treatment"]["properties"]
    )


def test_no_schema_serves_both_requests_and_responses_unless_every_field_is_required_both_ways(app):
    # Shared, a response's read-only or always-present fields would become fields a generated
    # client must send.
    spec = generated_spec(app)
    for name in _response_schemas(spec) & _request_schemas(spec):
        schema = spec["components"]["schemas"][name]
        assert set(schema.get("required", [])) == set(schema["properties"]), name
        assert not any(p.get("readOnly") for p in schema["properties"].values()), name


def test_closed_sets_are_enums(app):
    schemas = generated_spec(app)["components"]["schemas"]
    assert set(schemas["ChangeEvent"]["properties"]["type"]["enum"]) == set(EVENT_TYPES)
    assert set(schemas["Delivery"]["properties"]["event_type"]["enum"]) == set(EVENT_TYPES)
    assert None in schemas["BookingResult"]["properties"]["status"]["enum"]  # null: unknown treatment
    assert {"unknown_treatment", "suspended_pending_review", "approved"} <= set(
        schemas["BookingResult"]["properties"]["reason"]["enum"]
    )


def _error_responses(spec: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                yield f"{method.upper()} {path}", int(status), _resolved(spec, response)


def test_each_error_status_shows_its_own_example(app):
    spec = generated_spec(app)
    problem = jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/Problem", "components": spec["components"]}
    )
    statuses = set()
    for operation, status, response in _error_responses(spec):
        example = response["content"][PROBLEM_MEDIA_TYPE]["example"]
        assert example["status"] == status, (operation, status, example)
        assert problem.is_valid(example), (operation, status)
        statuses.add(status)
    assert {400, 401, 403, 404, 409, 412, 413, 414, 415, 422, 428, 429, 431, 503} <= statuses
    titles = [PROBLEM_EXAMPLES[status]["title"] for status in statuses]
    assert len(set(titles)) == len(titles)  # not the 404 under every status, as before


def test_the_error_examples_are_what_the_api_answers(app, client, auth):
    editor, reviewer = auth("editor"), auth("reviewer")
    slug = create_treatment(client, editor)["slug"]
    etag = client.get(f"/v1/treatments/{slug}").headers["ETag"]
    answers = {
        400: client.post("/v1/booking-checks", data="{", content_type="application/json"),
        401: client.post("/v1/treatments", json={}),
        403: client.post(f"/v1/treatments/{slug}/decisions", json={}, headers=editor),
        404: client.get("/v1/treatments/botox-x"),
        405: client.put("/v1/treatments"),
        409: client.post(f"/v1/treatments/{slug}/decisions", json={"status": "approved", "reason": "Ready"},
                         headers=reviewer),
        412: client.patch(f"/v1/treatments/{slug}", json={"name": "B"}, headers=editor | {"If-Match": '"x"'}),
        413: client.post("/v1/booking-checks", data=b"x" * (2 << 20), content_type="application/json"),
        414: client.get("/v1/treatments?q=" + "a" * 9000),
        415: client.post("/v1/booking-checks", data="x", content_type="text/plain"),
        422: client.post("/v1/booking-checks", json={"treatments": []}),
        428: client.patch(f"/v1/treatments/{slug}", json={"name": "B"}, headers=editor),
    }  # fmt: skip
    assert etag
    for status, response in answers.items():
        with response:
            body = response.get_json()
        example = PROBLEM_EXAMPLES[status]
        assert (response.status_code, body["type"], body["title"]) == (
            status,
            example["type"],
            example["title"],
        )
        assert set(body) == set(example), status  # the same fields, `errors` and `unmet` where they belong
