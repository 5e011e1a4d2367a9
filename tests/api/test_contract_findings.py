"""What the contract fuzzing (schemathesis, `make contract`) found, pinned down as regular tests

Each test fails without its fix. Documented schemas are checked with the validator schemathesis
uses (jsonschema_rs: JSON Schema 2020-12, ECMAScript regular expressions, where `$` never matches
before a trailing newline): what the document accepts, the API accepts, and what the API refuses
for the request alone, the document refuses too.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonschema_rs
import pytest

from api.treatments.schemas import RegulatoryStatusCreateSchema, StudyCreateSchema
from tests.api.test_openapi import generated_spec
from tests.databases import on_postgresql
from tests.helpers import FDA_APPROVAL, STRONG_RCT, create_treatment, random_slug, serving

PROBLEM = "application/problem+json"
TIMEOUT = 30  # seconds


@pytest.fixture(scope="module")
def spec(app) -> dict[str, Any]:
    return generated_spec(app)


@pytest.fixture
def editor(auth):
    return auth("editor", name="contract-editor")


@pytest.fixture
def admin(auth):
    return auth("admin", name="contract-admin")


def documented(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A validator for `schema`, its `$ref`s resolved against the document's components."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": spec["components"]})


def component(spec: dict[str, Any], name: str) -> Any:
    return documented(spec, {"$ref": f"#/components/schemas/{name}"})


def prop(spec: dict[str, Any], schema: str, name: str) -> Any:
    return documented(spec, spec["components"]["schemas"][schema]["properties"][name])


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


# --- undocumented statuses: no catch-all `default`, every status listed ---------------------------


def test_every_operation_lists_its_statuses_and_none_hides_behind_a_default(spec):
    for path, method, operation in operations(spec):
        statuses = set(operation["responses"])
        assert "default" not in statuses, (method, path)
        if path != "/health/live":
            assert "503" in statuses, (method, path)  # the database can be down
        if not path.startswith("/health/"):
            assert "429" in statuses, (method, path)  # rate limits
        if list(operation.get("requestBody", {}).get("content", {})) == ["application/json"]:
            assert {"400", "413", "415", "422"} <= statuses, (method, path)
    for name in ("TOO_MANY_REQUESTS", "SERVICE_UNAVAILABLE"):
        response = spec["components"]["responses"][name]
        assert response["headers"]["Retry-After"]["required"] is True
        assert list(response["content"]) == [PROBLEM]


# --- bodies that are not JSON, or missing ---------------------------------------------------------


def test_a_patch_without_a_body_is_400_not_an_empty_update(client, editor):
    treatment = create_treatment(client, editor)
    url = f"/v1/treatments/{treatment['slug']}"
    etag = client.get(url).headers["ETag"]
    for body in (b"", b"  "):
        response = client.patch(url, data=body, content_type="application/json",
                                headers=editor | {"If-Match": etag})  # fmt: skip
        assert_problem(response, 400)
    assert client.get(url).get_json()["version"] == treatment["version"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415_on_every_json_operation(client, editor, content_type):
    treatment = create_treatment(client, editor)
    url = f"/v1/treatments/{treatment['slug']}"
    etag = client.get(url).headers["ETag"]
    headers = {"Content-Type": content_type} if content_type else {}
    body = '{"summary": "Changed without saying it is JSON."}'
    patched = client.patch(url, data=body, headers=editor | headers | {"If-Match": etag})
    assert_problem(patched, 415)
    assert client.get(url).get_json()["summary"] == treatment["summary"]
    assert_problem(client.post("/v1/booking-checks", data='{"treatments": ["x"]}', headers=headers), 415)


# --- error bodies match the documented problem ----------------------------------------------------


def test_literature_import_errors_match_the_documented_problem(client, editor, spec):
    slug = create_treatment(client, editor)["slug"]
    response = client.post(f"/v1/treatments/{slug}/studies/import?format=ris", data="TY  - JOUR\nTI  - x\n",
                           content_type="text/plain", headers=editor)  # fmt: skip
    body = assert_problem(response, 422)
    assert {"record", "line"} <= set(body["errors"][0])
    schema = spec["paths"]["/v1/treatments/{slug}/studies/import"]["post"]["responses"]["422"]
    problem = spec["components"]["responses"][schema["$ref"].rsplit("/", 1)[1]]["content"][PROBLEM]["schema"]
    assert list(documented(spec, problem).iter_errors(body)) == []


# --- text: the document states the control-character and blank-text rules -------------------------

TEXT_SAMPLES = ["", " ", "a", "  a  ", "a\x00b", "a\nb", "a\tb", "a\rb", "\x7f", "a\x85", "\u00a0", "\u2003x",
                "\ufeff", "é" * 3, "x" * 39, " " + "x" * 39, "\u3000" + "x" * 39, "x" * 38 + "\n" + "x",
                "x" * 40, " " * 5 + "x" * 40 + " " * 5, "\u00a0" + "x" * 40 + "\n"]  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "name", "field"),
    [("StudyCreate", "title", StudyCreateSchema().fields["title"]),
     ("StudyCreate", "outcome_summary", StudyCreateSchema().fields["outcome_summary"]),
     ("RegulatoryStatusCreate", "product", RegulatoryStatusCreateSchema().fields["product"])],
)  # fmt: skip
def test_text_fields_document_exactly_what_they_accept(spec, schema, name, field):
    validator = prop(spec, schema, name)
    for value in TEXT_SAMPLES:
        try:
            field.deserialize(value)
            accepted = True
        except Exception:
            accepted = False
        assert validator.is_valid(value) == accepted, (name, value)


def test_an_override_justification_documents_forty_characters_of_text(client, spec, editor, admin):
    validator = prop(spec, "DecisionCreate", "override_justification")
    slug = create_treatment(client, editor)["slug"]
    for value in TEXT_SAMPLES:
        body = {"status": "approved", "reason": "Despite the gate.", "override_justification": value}
        response = client.post(f"/v1/treatments/{slug}/decisions", json=body, headers=admin)
        refused_for_the_field = response.status_code == 422 and "override_justification" in {
            e["field"] for e in response.get_json()["errors"]
        }
        assert validator.is_valid(value) != refused_for_the_field, (value, response.get_json())
        if response.status_code == 201:
            slug = create_treatment(client, editor)["slug"]


# --- patterns: slugs, URLs ----------------------------------------------------------------------


def test_a_slug_with_a_trailing_newline_is_refused(client, editor, spec):
    slug = random_slug() + "\n"
    assert not prop(spec, "TreatmentCreate", "slug").is_valid(slug)
    body = {"slug": slug, "name": "Newline", "category": "skin_procedure", "summary": "A trailing newline."}
    response = client.post("/v1/treatments", json=body, headers=editor)
    assert "slug" in {e["field"] for e in assert_problem(response, 422)["errors"]}


URL_SAMPLES = ["", "https://www.fda.gov/x?y=1#z", "http://a.bc", "https://clinic.example/", "javascript:x",
               "ftp://example.com/x", "https://localhost/", "https://10.0.0.1/", "https://exa mple.com",
               "https://example.com/a b", "https://example.com/\x85", "https://-bad.com/", "HTTPS://ex.com",
               "https://example.com:8080/x", "https://example.com?", "https://example.com/\n",
               "https://example.com/\u00a0", "https://example.com/é"]  # fmt: skip


def test_source_urls_document_exactly_what_they_accept(spec):
    validator = prop(spec, "RegulatoryStatusCreate", "source_url")
    field = RegulatoryStatusCreateSchema().fields["source_url"]
    for value in URL_SAMPLES:
        try:
            field.deserialize(value)
            accepted = True
        except Exception:
            accepted = False
        assert validator.is_valid(value) == accepted, value


def test_every_documented_webhook_url_is_accepted(client, admin, spec):
    validator = prop(spec, "WebhookCreate", "url")
    for value in URL_SAMPLES:
        if validator.is_valid(value):
            response = client.post("/v1/webhooks", json={"url": value}, headers=admin)
            assert response.status_code == 201, (value, response.get_json())
    assert not validator.is_valid("") and not validator.is_valid("http://a.bc")


# --- collections: dict keys, booking refs, unique event types -----------------------------------


def test_external_ids_document_their_keys_and_how_many(client, editor, spec):
    validator = prop(spec, "TreatmentCreate", "external_ids")
    for ids in ({"Bad Key": "1"}, {f"k{n}": "1" for n in range(21)}, {"ok": ""}):
        assert not validator.is_valid(ids), ids
        body = {"slug": random_slug(), "name": "Ids", "category": "skin_procedure", "summary": "Ids.",
                "external_ids": ids}  # fmt: skip
        assert_problem(client.post("/v1/treatments", json=body, headers=editor), 422)
    assert validator.is_valid({"cliniko": "1234", "square": "X7Y"})
    assert "maxLength" not in spec["components"]["schemas"]["TreatmentCreate"]["properties"]["external_ids"]


@pytest.mark.parametrize(
    "ref",
    [
        {"system": "", "id": "1"},
        {"system": "cliniko", "id": " "},
        {"system": "s" * 41, "id": "1"},
        "",
        "a\x00",
    ],
)
def test_booking_refs_document_what_they_accept(client, spec, ref):
    assert not component(spec, "BookingCheck").is_valid({"treatments": [ref]})
    assert_problem(client.post("/v1/booking-checks", json={"treatments": [ref]}), 422)


def test_webhook_event_types_are_documented_as_unique(spec):
    validator = prop(spec, "WebhookCreate", "event_types")
    assert not validator.is_valid(["study.created", "study.created"])
    assert validator.is_valid(["study.created", "study.updated"])


# --- rules across fields, and conflicts with the stored state -------------------------------------


def test_an_accepted_study_without_a_design_is_documented_and_a_stored_conflict_is_409(client, editor, spec):
    assert not component(spec, "StudyCreate").is_valid({"title": "No design", "design": None})
    assert component(spec, "StudyCreate").is_valid(
        {"title": "Screening", "design": None, "screening": "screening"}
    )
    patch = component(spec, "StudyPatch")
    assert not patch.is_valid({"design": None, "screening": "accepted"})
    assert patch.is_valid({"screening": "accepted"})

    slug = create_treatment(client, editor)["slug"]
    base = f"/v1/treatments/{slug}/studies"
    assert_problem(client.post(base, json={"title": "No design", "design": None}, headers=editor), 422)
    created = client.post(base, json={"title": "To screen", "design": None, "screening": "screening"},
                          headers=editor)  # fmt: skip
    assert created.status_code == 201
    url = f"{base}/{created.get_json()['id']}"
    # Valid on its own; it conflicts with the stored study (no design): 409, nothing written.
    conflict = client.patch(
        url, json={"screening": "accepted"}, headers=editor | {"If-Match": created.headers["ETag"]}
    )
    assert_problem(conflict, 409)
    assert client.get(url).get_json()["screening"] == "screening"


def test_an_override_of_something_other_than_an_approval_is_documented_as_invalid(
    client, editor, admin, spec
):
    body = {"status": "not_approved", "reason": "No.", "override_justification": "x" * 45}
    assert not component(spec, "DecisionCreate").is_valid(body)
    slug = create_treatment(client, editor)["slug"]
    assert_problem(client.post(f"/v1/treatments/{slug}/decisions", json=body, headers=admin), 422)


def test_an_override_the_gate_does_not_need_is_a_409_conflict(client, editor, admin):
    slug = create_treatment(client, editor)["slug"]
    client.post(f"/v1/treatments/{slug}/studies", json=STRONG_RCT, headers=editor)
    client.post(f"/v1/treatments/{slug}/regulatory", json=FDA_APPROVAL, headers=editor)
    body = {"status": "approved", "reason": "Ready.", "override_justification": "x" * 45}
    response = client.post(f"/v1/treatments/{slug}/decisions", json=body, headers=admin)
    assert assert_problem(response, 409)["errors"][0]["field"] == "override_justification"


# --- numbers: JSON Schema's integer ---------------------------------------------------------------


def test_integral_numbers_are_integers_and_fractions_strings_and_booleans_are_not(client, editor):
    slug = create_treatment(client, editor)["slug"]
    url = f"/v1/treatments/{slug}/studies"
    created = client.post(url, json=STRONG_RCT | {"participants": 250.0, "year": 2020.0}, headers=editor)
    assert created.status_code == 201, created.get_json()
    assert (created.get_json()["participants"], created.get_json()["year"]) == (250, 2020)
    assert isinstance(created.get_json()["participants"], int)
    for bad in (2.5, "250", True, 1e300):
        assert_problem(client.post(url, json=STRONG_RCT | {"participants": bad}, headers=editor), 422)


# --- links for stateful use: create → get → patch → decide ---------------------------------------


def resolve(spec: dict[str, Any], operation_ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The path item and the operation an operationRef points at."""
    assert operation_ref.startswith("#/paths/")
    pointer, method = operation_ref.removeprefix("#/paths/").rsplit("/", 1)
    path_item = spec["paths"][pointer.replace("~1", "/").replace("~0", "~")]
    return path_item, path_item[method]


def test_links_name_existing_operations_and_their_parameters(spec):
    links = [(path, method, name, link)
             for path, method, operation in operations(spec)
             for response in operation["responses"].values()
             for name, link in response.get("links", {}).items()]  # fmt: skip
    names = {(path, method, name) for path, method, name, _ in links}
    for wanted in ("GetTreatment", "UpdateTreatment", "RecordDecision", "AddStudy", "AddRegulatoryEntry"):
        assert ("/v1/treatments", "post", wanted) in names
    for path, _method, name, link in links:
        path_item, target = resolve(spec, link["operationRef"])
        known = {(p["in"], p["name"]) for p in target.get("parameters", []) + path_item.get("parameters", [])}
        for parameter in link["parameters"]:
            location, _, param = parameter.rpartition(".")
            assert any(n == param and location in ("", loc) for loc, n in known), (path, name, parameter)


def test_following_the_links_from_a_new_treatment_updates_and_decides_it(client, editor, admin, spec):
    body = {"slug": random_slug(), "name": "Linked", "category": "skin_procedure", "summary": "Follow me."}
    created = client.post("/v1/treatments", json=body, headers=editor)
    links = spec["paths"]["/v1/treatments"]["post"]["responses"]["201"]["links"]
    assert links["UpdateTreatment"]["parameters"] == {"slug": "$response.body#/slug",
                                                      "header.If-Match": "$response.header.ETag"}  # fmt: skip
    slug, etag = created.get_json()["slug"], created.headers["ETag"]
    assert client.get(f"/v1/treatments/{slug}").status_code == 200
    patched = client.patch(
        f"/v1/treatments/{slug}", json={"summary": "Followed."}, headers=editor | {"If-Match": etag}
    )
    assert patched.status_code == 200
    decision = {"status": "not_approved", "reason": "No."}
    decided = client.post(f"/v1/treatments/{slug}/decisions", json=decision, headers=admin)
    assert decided.status_code == 201


# --- concurrent writes without a precondition wait for each other (PostgreSQL) --------------------


def send(method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"} | headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


@pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL: SQLite has one writer at a time")
def test_concurrent_additions_to_one_treatment_all_succeed(app, client, editor):
    slug = create_treatment(client, editor)["slug"]
    start = threading.Barrier(12, timeout=TIMEOUT)

    def add(n: int) -> tuple[int, str]:
        start.wait()
        if n % 3 == 0:
            return send("POST", f"{base}/regulatory", FDA_APPROVAL | {"reference": f"P{n:06d}"}, editor)
        return send("POST", f"{base}/studies", STRONG_RCT | {"title": f"Trial {n}"}, editor)

    with serving(app) as base_url, ThreadPoolExecutor(max_workers=12) as pool:
        base = f"{base_url}/v1/treatments/{slug}"
        results = list(pool.map(add, range(12), timeout=TIMEOUT * 2))
    assert [status for status, _ in results] == [201] * 12, results
    detail = client.get(f"/v1/treatments/{slug}").get_json()
    assert detail["evidence"]["studies"] == 8 and len(detail["regulatory"]) == 4


@pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL: SQLite has one writer at a time")
def test_a_write_while_a_webhook_subscription_is_being_deleted_succeeds(
    app, client, editor, admin, database_url
):
    """A write queues deliveries for the active subscriptions; one deleted meanwhile used to fail the
    delivery's foreign key, and the write with it (409 on a study deletion, found by the fuzzing)."""
    from sqlalchemy import create_engine, text

    slug = create_treatment(client, editor)["slug"]
    webhook = client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/in"}, headers=admin
    ).get_json()
    engine = create_engine(database_url)
    results: list[Any] = []
    try:
        with engine.connect() as deleter:
            deleter.execute(text("DELETE FROM webhook_subscriptions WHERE id = :id"), {"id": webhook["id"]})
            writer = threading.Thread(target=lambda: results.append(
                client.post(f"/v1/treatments/{slug}/studies", json=STRONG_RCT, headers=editor)))  # fmt: skip
            writer.start()
            writer.join(1.0)  # the write reaches the subscription row the deleter holds, and waits
            deleter.commit()
        writer.join(TIMEOUT)
    finally:
        engine.dispose()
    assert results[0].status_code == 201, results[0].get_json()
    assert client.get(f"/v1/webhooks/{webhook['id']}", headers=admin).status_code == 404
