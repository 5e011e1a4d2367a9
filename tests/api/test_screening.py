"""Screening: import batches kept, the queue across treatments, exclusion with a coded reason and
the PRISMA-style counts"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_literature_import import NBIB, RIS, assert_problem, fixture, post_file
from tests.conftest import execute
from tests.helpers import create_treatment


@pytest.fixture
def editor(auth):
    return auth("editor", name="screener")


@pytest.fixture
def slug(client, editor):
    return create_treatment(client, editor)["slug"]


def exclude(client: Any, slug: str, study: dict[str, Any], headers: dict[str, str], **body: Any) -> Any:
    etag = client.get(f"/v1/treatments/{slug}/studies/{study['id']}").headers["ETag"]
    return client.post(
        f"/v1/treatments/{slug}/studies/{study['id']}/exclusion",
        json=body,
        headers=headers | {"If-Match": etag},
    )


def test_each_import_is_kept_as_a_batch_its_studies_link_to(app, client, editor, slug):
    upload = client.post(
        f"/v1/treatments/{slug}/studies/import",
        data={"file": (__import__("io").BytesIO(fixture("sample.nbib")), "export.nbib")},
        content_type="multipart/form-data", headers=editor,
    )  # fmt: skip
    assert upload.status_code == 201, upload.get_json()
    batch = upload.get_json()["batch"]
    kept = ("created_by", "filename", "format", "records", "imported", "duplicates")
    assert {k: batch[k] for k in kept} == {
        "created_by": "screener", "filename": "export.nbib", "format": "nbib", "records": 2, "imported": 2,
        "duplicates": 0,
    }  # fmt: skip
    rows = execute(app, "SELECT import_batch_id FROM studies ORDER BY id")
    assert [r[0] for r in rows][-2:] == [batch["id"], batch["id"]]


def test_the_queue_lists_waiting_records_across_treatments_and_filters(client, editor, slug):
    other = create_treatment(client, editor)["slug"]
    post_file(client, slug, fixture("sample.nbib"), NBIB, editor)
    post_file(client, other, fixture("sample.ris"), RIS, editor)

    queue = client.get("/v1/screening?limit=200", headers=editor)
    assert queue.status_code == 200
    treatments = {item["treatment"] for item in queue.get_json()["items"]}
    assert {slug, other} <= treatments
    assert {item["screening"] for item in queue.get_json()["items"]} == {"screening"}

    mine = client.get(f"/v1/screening?treatment={slug}", headers=editor).get_json()
    assert [i["treatment"] for i in mine["items"]] == [slug, slug]
    assert mine["next_after"] is None
    first = client.get(f"/v1/screening?treatment={slug}&limit=1", headers=editor).get_json()
    assert len(first["items"]) == 1 and first["next_after"] == first["items"][0]["study"]["id"]
    second = client.get(
        f"/v1/screening?treatment={slug}&limit=1&after={first['next_after']}", headers=editor
    ).get_json()
    assert second["items"][0]["study"]["id"] > first["next_after"]

    assert client.get("/v1/screening?state=accepted", headers=editor).status_code == 200
    assert_problem(client.get("/v1/screening?treatment=no-such", headers=editor), 404)
    assert_problem(client.get("/v1/screening?state=maybe", headers=editor), 422)
    assert_problem(client.get("/v1/screening"), 401)


def test_excluding_keeps_the_coded_reason_and_other_needs_a_note(client, editor, slug):
    imported = post_file(client, slug, fixture("sample.nbib"), NBIB, editor).get_json()["imported"]

    body = assert_problem(exclude(client, slug, imported[0], editor, reason="other"), 422)
    assert body["errors"][0]["field"] == "note"
    assert_problem(exclude(client, slug, imported[0], editor, reason="bad_vibes"), 422)
    no_etag = client.post(f"/v1/treatments/{slug}/studies/{imported[0]['id']}/exclusion",
                          json={"reason": "not_human"}, headers=editor)  # fmt: skip
    assert_problem(no_etag, 428)

    response = exclude(client, slug, imported[0], editor, reason="not_human")
    assert response.status_code == 200 and response.get_json()["screening"] == "excluded"
    response = exclude(client, slug, imported[1], editor, reason="other", note="A conference abstract")
    assert response.status_code == 200

    excluded = client.get(f"/v1/screening?treatment={slug}&state=excluded", headers=editor).get_json()[
        "items"
    ]
    assert [(i["exclusion_reason"], i["exclusion_note"]) for i in excluded] == [
        ("not_human", None), ("other", "A conference abstract"),
    ]  # fmt: skip
    audit = client.get(f"/v1/treatments/{slug}/audit", headers=editor).get_json()
    assert "exclusion_reason" in str(audit)


def test_moving_a_study_back_from_excluded_clears_its_reason(client, editor, slug):
    study = post_file(client, slug, fixture("sample.nbib"), NBIB, editor).get_json()["imported"][0]
    etag = exclude(client, slug, study, editor, reason="wrong_outcome").headers["ETag"]
    client.patch(f"/v1/treatments/{slug}/studies/{study['id']}", json={"screening": "screening"},
                 headers=editor | {"If-Match": etag})  # fmt: skip
    items = client.get(f"/v1/screening?treatment={slug}&state=all", headers=editor).get_json()["items"]
    row = next(i for i in items if i["study"]["id"] == study["id"])
    assert (row["screening"], row["exclusion_reason"]) == ("screening", None)


def test_prisma_counts_follow_imports_duplicates_exclusions_and_inclusions(client, editor, slug):
    first = post_file(client, slug, fixture("sample.nbib"), NBIB, editor).get_json()["imported"]
    post_file(client, slug, fixture("sample.nbib"), NBIB, editor)  # both duplicates
    client.post(f"/v1/treatments/{slug}/studies", json={"title": "By hand", "design": "rct"}, headers=editor)

    exclude(client, slug, first[1], editor, reason="wrong_design")
    etag = client.get(f"/v1/treatments/{slug}/studies/{first[0]['id']}").headers["ETag"]
    accepted = client.patch(
        f"/v1/treatments/{slug}/studies/{first[0]['id']}",
        json={"design": "rct", "participants": 400, "screening": "accepted"},
        headers=editor | {"If-Match": etag},
    )  # fmt: skip
    assert accepted.status_code == 200

    prisma = client.get(f"/v1/treatments/{slug}/prisma", headers=editor)
    assert prisma.status_code == 200
    body = prisma.get_json()
    assert [(b["records"], b["imported"], b["duplicates"]) for b in body["batches"]] == [(2, 2, 0), (2, 0, 2)]
    assert {k: body[k] for k in ("identified", "duplicates_removed", "screened", "awaiting", "excluded",
                                 "included", "other_included", "included_total")} == {
        "identified": 4, "duplicates_removed": 2, "screened": 2, "awaiting": 0, "excluded": 1,
        "included": 1, "other_included": 1, "included_total": 2,
    }  # fmt: skip
    assert body["excluded_by_reason"]["wrong_design"] == 1
    assert sum(body["excluded_by_reason"].values()) == 1
    assert_problem(client.get("/v1/treatments/no-such/prisma", headers=editor), 404)
    assert_problem(client.get(f"/v1/treatments/{slug}/prisma"), 401)


def test_an_exclusion_without_a_reason_counts_as_unstated(client, editor, slug):
    study = post_file(client, slug, fixture("sample.nbib"), NBIB, editor).get_json()["imported"][0]
    etag = client.get(f"/v1/treatments/{slug}/studies/{study['id']}").headers["ETag"]
    patched = client.patch(f"/v1/treatments/{slug}/studies/{study['id']}", json={"screening": "excluded"},
                           headers=editor | {"If-Match": etag})  # fmt: skip
    assert patched.status_code == 200
    body = client.get(f"/v1/treatments/{slug}/prisma", headers=editor).get_json()
    assert (body["excluded"], body["excluded_by_reason"]["unstated"], body["awaiting"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "body, valid",
    [({"reason": "wrong_design"}, True), ({"reason": "other", "note": "Animal model only."}, True),
     ({"reason": "other"}, False), ({"reason": "other", "note": None}, False),
     ({"reason": "other", "note": "  "}, False)],
)  # fmt: skip
def test_the_document_says_other_needs_a_note_as_the_service_does(client, body, valid):
    import jsonschema

    spec = client.get("/v1/openapi.json").get_json()
    schema = spec["paths"]["/v1/treatments/{slug}/studies/{study_id}/exclusion"]["post"]["requestBody"]
    resolved = {"$ref": schema["content"]["application/json"]["schema"]["$ref"]} | {
        "components": spec["components"]
    }
    assert jsonschema.Draft202012Validator(resolved).is_valid(body) is valid
