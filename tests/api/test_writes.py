"""Governed writes: treatments, studies, regulatory entries, decisions, audit and change feed"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tests.conftest import execute
from tests.helpers import FDA_APPROVAL, STRONG_RCT, create_treatment, decide, random_slug

PROBLEM = "application/problem+json"
JUSTIFICATION = "The clinic's medical board accepted a published equivalence review for this device."
WARNING = {"regulator": "EMA", "status": "warning_issued", "reference": "EMA/1/2024",
           "source_url": "https://www.ema.europa.eu/example"}  # fmt: skip


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["type"] and body["title"]
    return body


def error_fields(response: Any) -> set[str]:
    return {e["field"] for e in assert_problem(response, 422)["errors"]}


def audit_rows(app: Any) -> list[Any]:
    return execute(app, "SELECT id, entity, action, actor_name, actor_role FROM audit_records ORDER BY id")


def event_count(app: Any) -> int:
    return execute(app, "SELECT COUNT(*) FROM change_events")[0][0]


def feed(client: Any, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    response = client.get(f"/v1/changes?after={after}&limit={limit}")
    assert response.status_code == 200
    return response.get_json()["events"]


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
def treatment(client, editor) -> dict[str, Any]:
    return create_treatment(client, editor)


def add(client: Any, headers: dict[str, str], slug: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/treatments/{slug}/{kind}", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def etag_of(client: Any, slug: str) -> str:
    return client.get(f"/v1/treatments/{slug}").headers["ETag"]


def approvable(client: Any, editor: dict[str, str]) -> str:
    """A treatment that meets every criterion of the policy gate."""
    slug = create_treatment(client, editor)["slug"]
    add(client, editor, slug, "studies", STRONG_RCT)
    add(client, editor, slug, "regulatory", FDA_APPROVAL)
    return slug


# --- POST /v1/treatments ---------------------------------------------------------------------


def test_a_new_treatment_starts_under_review_with_one_decision(client, editor):
    response = client.post("/v1/treatments", headers=editor, json={
        "slug": "hydrafacial", "name": "HydraFacial", "category": "skin_procedure",
        "summary": "Cleansing and hydration.", "aliases": ["Hydra facial"],
    })  # fmt: skip
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["slug"], body["status"], body["bookable"]) == ("hydrafacial", "under_review", False)
    assert response.headers["ETag"] == etag_of(client, "hydrafacial")
    decisions = client.get("/v1/treatments/hydrafacial/decisions").get_json()
    assert len(decisions) == 1
    assert decisions[0]["status"] == "under_review"
    assert body["latest_decision"]["id"] == decisions[0]["id"]
    assert client.get("/v1/treatments/hydrafacial").get_json()["aliases"] == ["Hydra facial"]


def test_a_new_treatment_cannot_set_its_own_status(client, editor):
    body = {"slug": "sneaky", "name": "Sneaky", "category": "laser", "summary": "x", "status": "approved"}
    assert "status" in error_fields(client.post("/v1/treatments", json=body, headers=editor))
    assert client.get("/v1/treatments/sneaky").status_code == 404


def test_a_duplicate_slug_is_a_409_problem(client, editor, app):
    slug = create_treatment(client, editor)["slug"]
    before = (len(audit_rows(app)), event_count(app))
    response = client.post("/v1/treatments", json={"slug": slug, "name": "Again", "category": "laser",
                                                    "summary": "Again."}, headers=editor)  # fmt: skip
    assert_problem(response, 409)
    assert slug in response.get_json()["detail"]
    assert (len(audit_rows(app)), event_count(app)) == before
    assert client.get(f"/v1/treatments/{slug}").get_json()["name"] == "Test treatment"


@pytest.mark.parametrize(
    "slug",
    ["Botox", "bo tox", "b", "a" * 81, "-botox", "botox-", "bo--tox", "bo_tox", "botöx", "", 42, None],
    ids=["uppercase", "space", "one-char", "81-chars", "leading-hyphen", "trailing-hyphen",
         "double-hyphen", "underscore", "non-ascii", "empty", "number", "null"],
)  # fmt: skip
def test_invalid_slugs_are_422_naming_slug(client, editor, slug):
    body = {"slug": slug, "name": "x", "category": "laser", "summary": "x"}
    assert "slug" in error_fields(client.post("/v1/treatments", json=body, headers=editor))


@pytest.mark.parametrize("slug", ["ab", "a" * 80, "botox-2", "123"])
def test_valid_slugs_are_accepted(client, editor, slug):
    assert create_treatment(client, editor, slug=slug)["slug"] == slug


def test_a_missing_slug_is_422(client, editor):
    body = {"name": "x", "category": "laser", "summary": "x"}
    assert "slug" in error_fields(client.post("/v1/treatments", json=body, headers=editor))


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\n"])
@pytest.mark.parametrize("field", ["name", "summary"])
def test_control_characters_in_single_line_text_are_422(client, editor, field, char):
    body = {"slug": random_slug(), "name": "Name", "category": "laser", "summary": "Summary"}
    body[field] = f"bad{char}text"
    assert field in error_fields(client.post("/v1/treatments", json=body, headers=editor))


@pytest.mark.parametrize("char", ["\x00", "\x07"])
def test_control_characters_in_the_explanation_are_422_but_newlines_are_fine(client, editor, char):
    body = {"slug": random_slug(), "name": "Name", "category": "laser", "summary": "Summary"}
    response = client.post("/v1/treatments", json=body | {"explanation": f"a{char}b"}, headers=editor)
    assert "explanation" in error_fields(response)
    ok = client.post("/v1/treatments", json=body | {"explanation": "## Why\n\nBecause.\r\n\tIndeed."},
                     headers=editor)  # fmt: skip
    assert ok.status_code == 201


def test_nul_in_a_nested_text_is_422(client, editor):
    body = {"slug": random_slug(), "name": "Name", "category": "laser", "summary": "Summary",
            "aliases": ["ok", "bad\x00"]}  # fmt: skip
    fields = error_fields(client.post("/v1/treatments", json=body, headers=editor))
    assert any(f.startswith("aliases") for f in fields)


@pytest.mark.parametrize(("field", "limit"), [("name", 200), ("summary", 1000), ("explanation", 20_000)])
def test_over_long_text_is_422_and_the_limit_itself_is_fine(client, editor, field, limit):
    body = {"slug": random_slug(), "name": "Name", "category": "laser", "summary": "Summary"}
    assert field in error_fields(client.post("/v1/treatments", json=body | {field: "x" * (limit + 1)},
                                             headers=editor))  # fmt: skip
    assert client.post("/v1/treatments", json=body | {field: "x" * limit}, headers=editor).status_code == 201


def test_an_unknown_field_is_422_naming_it(client, editor):
    body = {"slug": random_slug(), "name": "Name", "category": "laser", "summary": "Summary", "price": 100}
    assert "price" in error_fields(client.post("/v1/treatments", json=body, headers=editor))


def test_a_body_that_is_not_json_is_a_400_problem(client, editor):
    response = client.post("/v1/treatments", data="{not json", content_type="application/json",
                           headers=editor)  # fmt: skip
    assert_problem(response, 400)


# --- PATCH /v1/treatments/{slug} -------------------------------------------------------------


def test_patch_without_if_match_is_428(client, editor, treatment):
    response = client.patch(f"/v1/treatments/{treatment['slug']}", json={"summary": "New."}, headers=editor)
    assert_problem(response, 428)
    assert client.get(f"/v1/treatments/{treatment['slug']}").get_json()["summary"] == treatment["summary"]


def test_patch_with_a_stale_etag_is_412(client, editor, treatment):
    slug, stale = treatment["slug"], etag_of(client, treatment["slug"])
    first = client.patch(f"/v1/treatments/{slug}", json={"summary": "First."},
                         headers=editor | {"If-Match": stale})  # fmt: skip
    assert first.status_code == 200
    second = client.patch(f"/v1/treatments/{slug}", json={"summary": "Second."},
                          headers=editor | {"If-Match": stale})  # fmt: skip
    assert_problem(second, 412)
    assert client.get(f"/v1/treatments/{slug}").get_json()["summary"] == "First."


def test_patch_with_the_current_etag_updates_and_changes_the_etag(client, editor, treatment):
    slug = treatment["slug"]
    etag = etag_of(client, slug)
    response = client.patch(
        f"/v1/treatments/{slug}", headers=editor | {"If-Match": etag},
        json={"name": "Renamed", "summary": "New summary.", "aliases": ["Alias"],
              "explanation": "**Bold**", "external_ids": {"cliniko": "77"}},
    )  # fmt: skip
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["name"], body["summary"], body["aliases"]) == ("Renamed", "New summary.", ["Alias"])
    assert "<strong>Bold</strong>" in body["explanation_html"]
    assert body["external_ids"] == {"cliniko": "77"}
    assert body["version"] > treatment["version"]
    assert response.headers["ETag"] != etag
    assert response.headers["ETag"] == etag_of(client, slug)
    assert body["status"] == "under_review"  # content edits never touch the status
    # The new ETag is the one to use next.
    again = client.patch(f"/v1/treatments/{slug}", json={"summary": "Again."},
                         headers=editor | {"If-Match": response.headers["ETag"]})  # fmt: skip
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "approved"), ("bookable", True), ("evidence", {"level": "high"}), ("version", 99),
     ("created_at", "2020-01-01T00:00:00Z"), ("updated_at", "2020-01-01T00:00:00Z"),
     ("status_reason", "Because."), ("last_reviewed_on", "2020-01-01"), ("slug", "renamed")],
)  # fmt: skip
def test_patch_of_a_read_only_field_is_422_naming_it(client, editor, treatment, app, field, value):
    slug = treatment["slug"]
    etag = etag_of(client, slug)
    before = (len(audit_rows(app)), event_count(app))
    response = client.patch(f"/v1/treatments/{slug}", json={"summary": "Also this.", field: value},
                            headers=editor | {"If-Match": etag})  # fmt: skip
    assert field in error_fields(response)
    after = client.get(f"/v1/treatments/{slug}")
    assert after.headers["ETag"] == etag
    assert after.get_json()["summary"] == treatment["summary"]
    assert (len(audit_rows(app)), event_count(app)) == before


def test_patch_changes_are_in_the_audit_trail_with_from_and_to(client, editor, treatment):
    slug = treatment["slug"]
    client.patch(f"/v1/treatments/{slug}", json={"summary": "New summary.", "aliases": ["A"]},
                 headers=editor | {"If-Match": etag_of(client, slug)})  # fmt: skip
    record = client.get(f"/v1/treatments/{slug}/audit", headers=editor).get_json()[-1]
    assert (record["entity"], record["action"]) == ("treatment", "updated")
    assert record["changes"] == {
        "summary": {"from": treatment["summary"], "to": "New summary."},
        "aliases": {"from": [], "to": ["A"]},
    }


def test_a_patch_that_changes_nothing_records_nothing(client, editor, treatment, app):
    slug = treatment["slug"]
    etag = etag_of(client, slug)
    before = (len(audit_rows(app)), event_count(app))
    response = client.patch(f"/v1/treatments/{slug}", json={"summary": treatment["summary"]},
                            headers=editor | {"If-Match": etag})  # fmt: skip
    assert response.status_code == 200
    assert response.headers["ETag"] == etag
    assert (len(audit_rows(app)), event_count(app)) == before


def test_patch_of_an_unknown_treatment_is_404(client, editor):
    response = client.patch("/v1/treatments/nope", json={"summary": "x"}, headers=editor | {"If-Match": "*"})
    assert_problem(response, 404)


def test_treatments_are_never_deleted(client, admin, treatment):
    response = client.delete(f"/v1/treatments/{treatment['slug']}", headers=admin)
    assert response.status_code == 405
    assert client.get(f"/v1/treatments/{treatment['slug']}").status_code == 200


# --- studies and regulatory entries ----------------------------------------------------------

ENTRY_KINDS = {
    # kind: (body to add, a PATCH body, what the PATCH changes on the treatment)
    "studies": (STRONG_RCT, {"participants": 40}),
    "regulatory": (FDA_APPROVAL, {"status": "warning_issued"}),
}


def treatment_view(client: Any, slug: str) -> tuple[dict[str, Any], list[Any], str]:
    response = client.get(f"/v1/treatments/{slug}")
    body = response.get_json()
    return body["evidence"], body["regulatory"], response.headers["ETag"]


def test_adding_a_study_raises_the_evidence_and_changes_the_etag(client, editor, treatment):
    slug = treatment["slug"]
    evidence, _, etag = treatment_view(client, slug)
    assert evidence["level"] == "insufficient"
    study = add(client, editor, slug, "studies", STRONG_RCT)
    assert study["participants"] == 250
    evidence, _, new_etag = treatment_view(client, slug)
    assert evidence["level"] == "moderate"  # high, one step down for industry sponsorship
    assert (evidence["studies"], evidence["rcts"]) == (1, 1)
    assert new_etag != etag
    assert [s["id"] for s in client.get(f"/v1/treatments/{slug}/studies").get_json()] == [study["id"]]


def test_adding_a_regulatory_entry_shows_on_the_treatment_and_changes_the_etag(client, editor, treatment):
    slug = treatment["slug"]
    _, regulatory, etag = treatment_view(client, slug)
    assert regulatory == []
    entry = add(client, editor, slug, "regulatory", FDA_APPROVAL)
    _, regulatory, new_etag = treatment_view(client, slug)
    assert [(r["id"], r["regulator"], r["status"]) for r in regulatory] == [(entry["id"], "FDA", "approved")]
    assert new_etag != etag


@pytest.mark.parametrize("kind", list(ENTRY_KINDS))
def test_entry_patch_needs_if_match(client, editor, treatment, kind, app):
    slug = treatment["slug"]
    body, patch = ENTRY_KINDS[kind]
    created = client.post(f"/v1/treatments/{slug}/{kind}", json=body, headers=editor)
    url, stale = f"/v1/treatments/{slug}/{kind}/{created.get_json()['id']}", created.headers["ETag"]
    before = (len(audit_rows(app)), event_count(app))

    assert_problem(client.patch(url, json=patch, headers=editor), 428)
    assert (len(audit_rows(app)), event_count(app)) == before

    first = client.patch(url, json=patch, headers=editor | {"If-Match": stale})
    assert first.status_code == 200, first.get_json()
    assert first.headers["ETag"] != stale
    assert client.get(url).headers["ETag"] == first.headers["ETag"]

    before = (len(audit_rows(app)), event_count(app))
    assert_problem(client.patch(url, json=body, headers=editor | {"If-Match": stale}), 412)
    assert (len(audit_rows(app)), event_count(app)) == before
    assert client.get(url).get_json() == first.get_json()


def test_patching_a_study_changes_the_evidence(client, editor, treatment):
    slug = treatment["slug"]
    created = client.post(f"/v1/treatments/{slug}/studies", json=STRONG_RCT, headers=editor)
    evidence, _, etag = treatment_view(client, slug)
    assert evidence["level"] == "moderate"
    response = client.patch(
        f"/v1/treatments/{slug}/studies/{created.get_json()['id']}",
        json={"participants": 40},
        headers=editor | {"If-Match": created.headers["ETag"]},
    )
    assert response.status_code == 200
    assert response.get_json()["participants"] == 40
    assert response.get_json()["title"] == STRONG_RCT["title"]  # the other fields keep their values
    evidence, _, new_etag = treatment_view(client, slug)
    assert evidence["level"] == "low"
    assert "small_samples" in evidence["concerns"]
    assert evidence["largest_sample"] == 40
    assert new_etag != etag


def test_patching_a_regulatory_entry_changes_the_treatment(client, editor, treatment):
    slug = treatment["slug"]
    created = client.post(f"/v1/treatments/{slug}/regulatory", json=FDA_APPROVAL, headers=editor)
    _, _, etag = treatment_view(client, slug)
    response = client.patch(f"/v1/treatments/{slug}/regulatory/{created.get_json()['id']}",
                            json={"status": "warning_issued"},
                            headers=editor | {"If-Match": created.headers["ETag"]})  # fmt: skip
    assert response.status_code == 200
    _, regulatory, new_etag = treatment_view(client, slug)
    assert [r["status"] for r in regulatory] == ["warning_issued"]
    assert new_etag != etag


@pytest.mark.parametrize("kind", list(ENTRY_KINDS))
def test_entry_patch_validates_fields(client, editor, treatment, kind):
    slug = treatment["slug"]
    created = client.post(f"/v1/treatments/{slug}/{kind}", json=ENTRY_KINDS[kind][0], headers=editor)
    url = f"/v1/treatments/{slug}/{kind}/{created.get_json()['id']}"
    field = "participants" if kind == "studies" else "status"
    response = client.patch(url, json={field: "lots"}, headers=editor | {"If-Match": created.headers["ETag"]})
    assert field in error_fields(response)


def test_deleting_a_study_removes_it_and_the_evidence_falls(client, editor, treatment, app):
    slug = treatment["slug"]
    study = add(client, editor, slug, "studies", STRONG_RCT)
    _, _, etag = treatment_view(client, slug)
    response = client.delete(f"/v1/treatments/{slug}/studies/{study['id']}", headers=editor)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get(f"/v1/treatments/{slug}/studies/{study['id']}").status_code == 404
    assert client.get(f"/v1/treatments/{slug}/studies").get_json() == []
    evidence, _, new_etag = treatment_view(client, slug)
    assert evidence["level"] == "insufficient"
    assert new_etag != etag
    assert client.delete(f"/v1/treatments/{slug}/studies/{study['id']}", headers=editor).status_code == 404


def test_deleting_a_regulatory_entry_removes_it(client, editor, treatment):
    slug = treatment["slug"]
    entry = add(client, editor, slug, "regulatory", FDA_APPROVAL)
    _, _, etag = treatment_view(client, slug)
    assert client.delete(f"/v1/treatments/{slug}/regulatory/{entry['id']}", headers=editor).status_code == 204
    _, regulatory, new_etag = treatment_view(client, slug)
    assert regulatory == []
    assert new_etag != etag
    assert client.get(f"/v1/treatments/{slug}/regulatory").get_json() == []


@pytest.mark.parametrize("kind", list(ENTRY_KINDS))
def test_delete_with_a_stale_if_match_is_412(client, editor, treatment, kind):
    slug = treatment["slug"]
    body, patch = ENTRY_KINDS[kind]
    created = client.post(f"/v1/treatments/{slug}/{kind}", json=body, headers=editor)
    url = f"/v1/treatments/{slug}/{kind}/{created.get_json()['id']}"
    assert (
        client.patch(url, json=patch, headers=editor | {"If-Match": created.headers["ETag"]}).status_code
        == 200
    )
    assert_problem(client.delete(url, headers=editor | {"If-Match": created.headers["ETag"]}), 412)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("kind", list(ENTRY_KINDS))
def test_an_entry_of_another_treatment_is_404(client, editor, kind):
    body, patch = ENTRY_KINDS[kind]
    mine = create_treatment(client, editor)["slug"]
    other = create_treatment(client, editor)["slug"]
    created = client.post(f"/v1/treatments/{other}/{kind}", json=body, headers=editor)
    entry_id, etag = created.get_json()["id"], created.headers["ETag"]
    url = f"/v1/treatments/{mine}/{kind}/{entry_id}"
    assert_problem(client.get(url), 404)
    assert_problem(client.patch(url, json=patch, headers=editor | {"If-Match": etag}), 404)
    assert_problem(client.delete(url, headers=editor), 404)
    # Still there, unchanged, under its own treatment.
    assert client.get(f"/v1/treatments/{other}/{kind}/{entry_id}").get_json() == created.get_json()


@pytest.mark.parametrize("kind", list(ENTRY_KINDS))
def test_entries_of_an_unknown_treatment_are_404(client, editor, kind):
    assert_problem(client.post(f"/v1/treatments/nope/{kind}", json=ENTRY_KINDS[kind][0], headers=editor), 404)


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [("studies", STRONG_RCT | {"design": "anecdote"}, "design"),
     ("studies", STRONG_RCT | {"participants": -1}, "participants"),
     ("studies", STRONG_RCT | {"participants": "250"}, "participants"),
     ("studies", STRONG_RCT | {"randomised": 1}, "randomised"),
     ("studies", STRONG_RCT | {"title": "a\x00b"}, "title"),
     ("studies", STRONG_RCT | {"doi": "not-a-doi"}, "doi"),
     ("studies", STRONG_RCT | {"evidence_level": "high"}, "evidence_level"),
     ("regulatory", FDA_APPROVAL | {"status": "sort_of"}, "status"),
     ("regulatory", FDA_APPROVAL | {"regulator": "fda"}, "regulator"),
     ("regulatory", FDA_APPROVAL | {"source_url": "javascript:alert(1)"}, "source_url"),
     ("regulatory", FDA_APPROVAL | {"reference": "x" * 301}, "reference")],
)  # fmt: skip
def test_invalid_entries_are_422_and_change_nothing(client, editor, treatment, app, kind, body, field):
    before = (len(audit_rows(app)), event_count(app))
    assert field in error_fields(client.post(f"/v1/treatments/{treatment['slug']}/{kind}", json=body,
                                             headers=editor))  # fmt: skip
    assert (len(audit_rows(app)), event_count(app)) == before


# --- decisions and the policy gate -----------------------------------------------------------


def unmet_codes(response: Any) -> list[str]:
    body = assert_problem(response, 409)
    assert all(u["message"] for u in body["unmet"])
    return [u["code"] for u in body["unmet"]]


def assert_still_under_review(client: Any, slug: str, decisions: int = 1) -> None:
    body = client.get(f"/v1/treatments/{slug}").get_json()
    assert (body["status"], body["bookable"]) == ("under_review", False)
    assert len(client.get(f"/v1/treatments/{slug}/decisions").get_json()) == decisions


def test_the_gate_refuses_evidence_below_the_minimum(client, editor, reviewer, treatment):
    slug = treatment["slug"]
    add(client, editor, slug, "studies", STRONG_RCT | {"participants": 40})  # low
    add(client, editor, slug, "regulatory", FDA_APPROVAL)
    assert unmet_codes(decide(client, reviewer, slug, "approved")) == ["evidence_below_minimum"]
    assert_still_under_review(client, slug)


def test_the_gate_refuses_with_no_studies_at_all(client, editor, reviewer, treatment):
    slug = treatment["slug"]
    add(client, editor, slug, "regulatory", FDA_APPROVAL)
    assert unmet_codes(decide(client, reviewer, slug, "approved")) == ["evidence_below_minimum"]


def test_the_gate_refuses_without_regulatory_approval(client, editor, reviewer, treatment):
    slug = treatment["slug"]
    add(client, editor, slug, "studies", STRONG_RCT)
    add(client, editor, slug, "regulatory", FDA_APPROVAL | {"status": "not_approved"})
    add(client, editor, slug, "regulatory", FDA_APPROVAL | {"regulator": "EMA", "status": "under_review"})
    assert unmet_codes(decide(client, reviewer, slug, "approved")) == ["no_regulatory_approval"]
    assert_still_under_review(client, slug)


def test_the_gate_refuses_an_approval_by_an_unrecognised_regulator(client, editor, reviewer, treatment):
    slug = treatment["slug"]
    add(client, editor, slug, "studies", STRONG_RCT)
    add(client, editor, slug, "regulatory", FDA_APPROVAL | {"regulator": "ACME"})
    assert unmet_codes(decide(client, reviewer, slug, "approved")) == ["no_regulatory_approval"]


def test_the_gate_refuses_a_regulatory_warning(client, editor, reviewer, treatment):
    slug = treatment["slug"]
    add(client, editor, slug, "studies", STRONG_RCT)
    add(client, editor, slug, "regulatory", FDA_APPROVAL)
    add(client, editor, slug, "regulatory", WARNING)
    assert unmet_codes(decide(client, reviewer, slug, "approved")) == ["regulatory_warning"]
    assert_still_under_review(client, slug)


def test_the_gate_lists_every_unmet_criterion(client, editor, reviewer, treatment):
    slug = treatment["slug"]
    add(client, editor, slug, "regulatory", WARNING)
    codes = unmet_codes(decide(client, reviewer, slug, "approved"))
    assert sorted(codes) == ["evidence_below_minimum", "no_regulatory_approval", "regulatory_warning"]


@pytest.mark.parametrize("status", ["approved", "cleared", "ce_marked"])
def test_any_approving_regulatory_status_satisfies_the_gate(client, editor, reviewer, treatment, status):
    slug = treatment["slug"]
    add(client, editor, slug, "studies", STRONG_RCT)
    add(client, editor, slug, "regulatory", FDA_APPROVAL | {"status": status})
    assert decide(client, reviewer, slug, "approved").status_code == 201


def test_approval_with_every_criterion_met(client, editor, reviewer):
    slug = approvable(client, editor)
    response = decide(client, reviewer, slug, "approved", reason="Strong evidence and FDA approval.",
                      reason_codes=["evidence_moderate"])  # fmt: skip
    assert response.status_code == 201, response.get_json()
    decision = response.get_json()
    assert (decision["status"], decision["previous_status"]) == ("approved", "under_review")
    assert decision["override_justification"] is None
    assert decision["reason_codes"] == ["evidence_moderate"]
    body = client.get(f"/v1/treatments/{slug}").get_json()
    assert (body["status"], body["bookable"]) == ("approved", True)
    assert body["status_reason"] == "Strong evidence and FDA approval."
    assert body["last_reviewed_on"] == today().isoformat()
    due = dt.date.fromisoformat(body["next_review_due"])
    assert (due.year, due.month) == (today().year + 1, today().month)  # default: 12 months
    assert body["latest_decision"]["id"] == decision["id"]


def test_a_decision_that_is_not_an_approval_needs_no_gate(client, reviewer, treatment):
    slug = treatment["slug"]
    response = decide(client, reviewer, slug, "not_approved", reason="No evidence, no approval.",
                      reason_codes=["no_regulatory_approval", "evidence_very_low"])  # fmt: skip
    assert response.status_code == 201
    body = client.get(f"/v1/treatments/{slug}").get_json()
    assert (body["status"], body["status_reason"]) == ("not_approved", "No evidence, no approval.")


def test_an_override_by_a_reviewer_is_403(client, reviewer, treatment):
    slug = treatment["slug"]
    response = decide(client, reviewer, slug, "approved", override_justification=JUSTIFICATION)
    assert_problem(response, 403)
    assert_still_under_review(client, slug)


@pytest.mark.parametrize("justification", ["Too short.", "x" * 39])
def test_an_override_with_a_short_justification_is_422(client, admin, treatment, justification):
    slug = treatment["slug"]
    response = decide(client, admin, slug, "approved", override_justification=justification)
    assert "override_justification" in error_fields(response)
    assert_still_under_review(client, slug)


def test_an_override_with_a_blank_justification_is_422(client, admin, treatment):
    slug = treatment["slug"]
    response = decide(client, admin, slug, "approved", override_justification=" " * 45)
    assert "override_justification" in error_fields(response)
    assert_still_under_review(client, slug)


def test_a_decision_with_a_blank_reason_is_422(client, reviewer, treatment):
    slug = treatment["slug"]
    response = decide(client, reviewer, slug, "not_approved", reason="   ")
    assert "reason" in error_fields(response)
    assert_still_under_review(client, slug)


def test_an_admin_override_is_recorded_and_public(client, admin, treatment):
    slug = treatment["slug"]
    response = decide(client, admin, slug, "approved", reason="Approved by the board.",
                      override_justification=JUSTIFICATION)  # fmt: skip
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["override_justification"] == JUSTIFICATION
    body = client.get(f"/v1/treatments/{slug}").get_json()
    assert (body["status"], body["bookable"]) == ("approved", True)
    assert body["latest_decision"]["override_justification"] == JUSTIFICATION
    history = client.get(f"/v1/treatments/{slug}/decisions").get_json()
    assert history[-1]["override_justification"] == JUSTIFICATION
    assert history[0]["override_justification"] is None
    # The override is in the audit trail too.
    record = client.get(f"/v1/treatments/{slug}/audit", headers=admin).get_json()[-1]
    assert record["changes"]["override_justification"]["to"] == JUSTIFICATION


def test_an_override_of_nothing_is_refused(client, editor, admin):
    # A valid body that conflicts with the treatment's facts (the gate passes): 409, not 422.
    slug = approvable(client, editor)
    response = decide(client, admin, slug, "approved", override_justification=JUSTIFICATION)
    assert {e["field"] for e in assert_problem(response, 409)["errors"]} == {"override_justification"}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"reason": "x"}, "status"), ({"status": "approved"}, "reason"),
     ({"status": "maybe", "reason": "x"}, "status"), ({"status": "not_approved", "reason": ""}, "reason"),
     ({"status": "not_approved", "reason": "x" * 501}, "reason"),
     ({"status": "not_approved", "reason": "a\x00b"}, "reason"),
     ({"status": "not_approved", "reason": "x", "reason_codes": ["Not A Code"]}, "reason_codes.0")],
)  # fmt: skip
def test_invalid_decisions_are_422(client, reviewer, treatment, body, field):
    response = client.post(f"/v1/treatments/{treatment['slug']}/decisions", json=body, headers=reviewer)
    assert field in error_fields(response)
    assert_still_under_review(client, treatment["slug"])


def test_decisions_are_an_append_only_history_with_snapshots(client, editor, reviewer):
    slug = approvable(client, editor)
    first = client.get(f"/v1/treatments/{slug}/decisions").get_json()
    assert decide(client, reviewer, slug, "approved").status_code == 201
    add(client, editor, slug, "regulatory", WARNING)
    assert decide(client, reviewer, slug, "withdrawn", reason_codes=["safety_signal"]).status_code == 201

    history = client.get(f"/v1/treatments/{slug}/decisions").get_json()
    assert [d["status"] for d in history] == ["under_review", "approved", "withdrawn"]
    assert [d["previous_status"] for d in history[1:]] == ["under_review", "approved"]
    assert history[0] == first[0]  # earlier decisions never change
    assert [d["id"] for d in history] == sorted(d["id"] for d in history)
    for decision in history:
        assert decision["decided_by"] and decision["decided_at"]
        assert set(decision["evidence_snapshot"]) >= {"level", "studies", "concerns"}
        assert decision["evidence_level"] == decision["evidence_snapshot"]["level"]
    assert history[0]["evidence_snapshot"]["level"] == "insufficient"  # before any study
    assert history[1]["evidence_snapshot"]["level"] == "moderate"
    assert history[0]["regulatory_snapshot"] == []
    assert [(r["regulator"], r["status"]) for r in history[1]["regulatory_snapshot"]] == [("FDA", "approved")]
    assert [(r["regulator"], r["status"]) for r in history[2]["regulatory_snapshot"]] == [
        ("FDA", "approved"), ("EMA", "warning_issued")]  # fmt: skip


def test_the_first_decision_has_no_previous_status(client, treatment):
    (first,) = client.get(f"/v1/treatments/{treatment['slug']}/decisions").get_json()
    assert first["status"] == "under_review"
    assert first["previous_status"] is None


def test_decisions_cannot_be_edited_or_deleted(client, admin, treatment):
    slug = treatment["slug"]
    decision = client.get(f"/v1/treatments/{slug}/decisions").get_json()[0]
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.open(f"/v1/treatments/{slug}/decisions", method=method, json={},
                           headers=admin).status_code == 405  # fmt: skip
        assert client.open(f"/v1/treatments/{slug}/decisions/{decision['id']}", method=method, json={},
                           headers=admin).status_code in (404, 405)  # fmt: skip
    assert client.get(f"/v1/treatments/{slug}/decisions").get_json() == [decision]


def test_a_decision_on_an_unknown_treatment_is_404(client, reviewer):
    assert_problem(decide(client, reviewer, "nope", "not_approved"), 404)


# --- booking checks follow decisions ---------------------------------------------------------


def booking(client: Any, slug: str) -> dict[str, Any]:
    response = client.post("/v1/booking-checks", json={"treatments": [slug]})
    assert response.status_code == 200
    return response.get_json()


def test_booking_checks_follow_decisions_at_once(client, editor, reviewer):
    slug = approvable(client, editor)
    answer = booking(client, slug)
    assert answer["bookable"] is False
    assert answer["results"][0]["status"] == "under_review"

    assert decide(client, reviewer, slug, "approved").status_code == 201
    answer = booking(client, slug)
    assert answer["bookable"] is True
    assert (answer["results"][0]["bookable"], answer["results"][0]["status"]) == (True, "approved")

    assert decide(client, reviewer, slug, "withdrawn", reason="Safety signal.").status_code == 201
    answer = booking(client, slug)
    assert answer["bookable"] is False
    assert (answer["results"][0]["bookable"], answer["results"][0]["status"]) == (False, "withdrawn")


def test_a_refused_approval_stays_unbookable(client, reviewer, treatment):
    assert decide(client, reviewer, treatment["slug"], "approved").status_code == 409
    assert booking(client, treatment["slug"])["bookable"] is False


# --- audit trail -----------------------------------------------------------------------------


def write_operations(client: Any, editor: dict[str, str], slug: str) -> dict[str, Any]:
    """Each write once, in an order in which each can succeed; returns op -> callable."""
    ids: dict[str, Any] = {}

    def add_entry(kind: str, body: dict[str, Any]) -> Any:
        def run(headers: dict[str, str]) -> Any:
            response = client.post(f"/v1/treatments/{slug}/{kind}", json=body, headers=headers)
            ids[kind] = (response.get_json()["id"], response.headers["ETag"])
            return response

        return run

    def patch_entry(kind: str, body: dict[str, Any]) -> Any:
        def run(headers: dict[str, str]) -> Any:
            entry_id, etag = ids[kind]
            return client.patch(f"/v1/treatments/{slug}/{kind}/{entry_id}", json=body,
                                headers=headers | {"If-Match": etag})  # fmt: skip

        return run

    def delete_entry(kind: str) -> Any:
        return lambda headers: client.delete(f"/v1/treatments/{slug}/{kind}/{ids[kind][0]}", headers=headers)

    return {
        ("treatment", "updated"): lambda headers: client.patch(
            f"/v1/treatments/{slug}",
            json={"summary": "Edited."},
            headers=headers | {"If-Match": etag_of(client, slug)},
        ),  # fmt: skip
        ("study", "created"): add_entry("studies", STRONG_RCT),
        ("study", "updated"): patch_entry("studies", {"participants": 300}),
        ("regulatory", "created"): add_entry("regulatory", FDA_APPROVAL),
        ("regulatory", "updated"): patch_entry("regulatory", {"reference": "P999999"}),
        ("decision", "created"): lambda headers: decide(client, headers, slug, "approved"),
        ("study", "deleted"): delete_entry("studies"),
        ("regulatory", "deleted"): delete_entry("regulatory"),
    }


def test_every_write_leaves_exactly_one_audit_record_naming_the_key(client, app, auth):
    admin = auth("admin", name="dr-o-brien")
    slug = create_treatment(client, admin)["slug"]
    created = audit_rows(app)
    assert [(r.entity, r.action, r.actor_name, r.actor_role) for r in created] == [
        ("treatment", "created", "dr-o-brien", "admin"),
        ("decision", "created", "dr-o-brien", "admin"),
    ]
    for (entity, action), run in write_operations(client, admin, slug).items():
        before = audit_rows(app)
        response = run(admin)
        assert response.status_code in (200, 201, 204), (entity, action, response.get_json())
        new = audit_rows(app)[len(before) :]
        assert [(r.entity, r.action, r.actor_name, r.actor_role) for r in new] == [
            (entity, action, "dr-o-brien", "admin")], (entity, action)  # fmt: skip


def test_the_audit_trail_records_what_changed_from_what_to_what(client, editor, reviewer, treatment):
    slug = treatment["slug"]
    created = client.post(f"/v1/treatments/{slug}/studies", json=STRONG_RCT, headers=editor)
    study_id = created.get_json()["id"]
    client.patch(f"/v1/treatments/{slug}/studies/{study_id}", json={"participants": 300},
                 headers=editor | {"If-Match": created.headers["ETag"]})  # fmt: skip
    client.delete(f"/v1/treatments/{slug}/studies/{study_id}", headers=editor)
    decide(client, reviewer, slug, "not_approved", reason="Not now.")
    records = client.get(f"/v1/treatments/{slug}/audit", headers=editor).get_json()
    by_action = {(r["entity"], r["action"]): r for r in records}
    assert by_action[("study", "created")]["changes"]["participants"] == {"from": None, "to": 250}
    assert by_action[("study", "updated")]["changes"] == {"participants": {"from": 250, "to": 300}}
    assert by_action[("study", "deleted")]["changes"]["participants"] == {"from": 300, "to": None}
    assert by_action[("study", "updated")]["entity_id"] == study_id
    decision = by_action[("decision", "created")]
    assert decision["changes"]["status"] == {"from": "under_review", "to": "not_approved"}
    assert (decision["actor_name"], decision["actor_role"]) == ("reviewer-key", "reviewer")
    assert all(r["occurred_at"] for r in records)


def test_the_audit_trail_shows_the_latest_change_of_a_long_history(client, app, editor, treatment):
    from api.audit.service import Actor, record_audit
    from api.db import get_session

    slug = treatment["slug"]
    (treatment_id,) = execute(app, "SELECT id FROM treatments WHERE slug = :slug", slug=slug)[0]
    with app.app_context():  # a long history, written the way the service writes it
        session = get_session()
        for n in range(500):
            record_audit(session, treatment_id=treatment_id, entity="treatment", entity_id=treatment_id,
                         action="updated", actor=Actor("archivist", "editor"),
                         changes={"summary": {"from": str(n), "to": str(n + 1)}})  # fmt: skip
        session.commit()
    response = client.patch(f"/v1/treatments/{slug}", json={"summary": "The newest change."},
                            headers=editor | {"If-Match": etag_of(client, slug)})  # fmt: skip
    assert response.status_code == 200
    trail = client.get(f"/v1/treatments/{slug}/audit", headers=editor).get_json()
    assert any(r["changes"].get("summary", {}).get("to") == "The newest change." for r in trail)


def test_the_audit_trail_of_an_unknown_treatment_is_404(client, editor):
    assert_problem(client.get("/v1/treatments/nope/audit", headers=editor), 404)


@pytest.mark.parametrize(
    "failure",
    ["gate refusal", "stale patch", "patch without if-match", "invalid patch", "duplicate slug",
     "invalid study", "stale study patch", "reviewer override", "external id taken"],
)  # fmt: skip
def test_a_failed_write_leaves_no_audit_record_and_no_change_event(client, app, editor, reviewer, failure):
    slug = create_treatment(client, editor, external_ids={"cliniko": "1"})["slug"]
    other = create_treatment(client, editor)["slug"]
    study = client.post(f"/v1/treatments/{slug}/studies", json=STRONG_RCT, headers=editor)
    stale_study = study.headers["ETag"]
    study_url = f"/v1/treatments/{slug}/studies/{study.get_json()['id']}"
    assert client.patch(study_url, json={"participants": 260},
                        headers=editor | {"If-Match": stale_study}).status_code == 200  # fmt: skip
    stale = etag_of(client, slug)
    assert client.patch(f"/v1/treatments/{slug}", json={"summary": "Moved on."},
                        headers=editor | {"If-Match": stale}).status_code == 200  # fmt: skip
    current = etag_of(client, slug)
    audited, events, cursor = audit_rows(app), event_count(app), feed(client)[-1]["id"]

    treatment_url, other_url = f"/v1/treatments/{slug}", f"/v1/treatments/{other}"
    lost = {"summary": "Lost."}
    attempts = {
        "gate refusal": (409, lambda: decide(client, reviewer, slug, "approved")),
        "stale patch": (
            412,
            lambda: client.patch(treatment_url, json=lost, headers=editor | {"If-Match": stale}),
        ),
        "patch without if-match": (428, lambda: client.patch(treatment_url, json=lost, headers=editor)),
        "invalid patch": (
            422,
            lambda: client.patch(treatment_url, json={"name": ""}, headers=editor | {"If-Match": current}),
        ),
        "duplicate slug": (
            409,
            lambda: client.post(
                "/v1/treatments",
                json={"slug": slug, "name": "x", "category": "laser", "summary": "x"},
                headers=editor,
            ),
        ),
        "invalid study": (
            422,
            lambda: client.post(
                f"{treatment_url}/studies", json=STRONG_RCT | {"design": "vibes"}, headers=editor
            ),
        ),
        "stale study patch": (
            412,
            lambda: client.patch(
                study_url, json={"participants": 1}, headers=editor | {"If-Match": stale_study}
            ),
        ),
        "reviewer override": (
            403,
            lambda: decide(client, reviewer, slug, "approved", override_justification=JUSTIFICATION),
        ),
        "external id taken": (
            409,
            lambda: client.patch(
                other_url,
                json=lost | {"external_ids": {"cliniko": "1"}},
                headers=editor | {"If-Match": etag_of(client, other)},
            ),
        ),
    }
    expected, attempt = attempts[failure]
    response = attempt()

    assert_problem(response, expected)
    assert audit_rows(app) == audited
    assert event_count(app) == events
    assert feed(client, after=cursor) == []
    assert etag_of(client, slug) == current
    assert client.get(f"/v1/treatments/{other}").get_json()["summary"] == "A treatment made by a test."


# --- change feed -----------------------------------------------------------------------------


def walk_through(client: Any, editor: dict[str, str], reviewer: dict[str, str]) -> str:
    """A treatment's life: created, edited, evidenced, approved, withdrawn."""
    slug = create_treatment(client, editor)["slug"]
    client.patch(f"/v1/treatments/{slug}", json={"summary": "Edited."},
                 headers=editor | {"If-Match": etag_of(client, slug)})  # fmt: skip
    study = client.post(f"/v1/treatments/{slug}/studies", json=STRONG_RCT, headers=editor)
    client.patch(f"/v1/treatments/{slug}/studies/{study.get_json()['id']}", json={"participants": 400},
                 headers=editor | {"If-Match": study.headers["ETag"]})  # fmt: skip
    entry = client.post(f"/v1/treatments/{slug}/regulatory", json=FDA_APPROVAL, headers=editor)
    assert decide(client, reviewer, slug, "approved").status_code == 201
    client.patch(f"/v1/treatments/{slug}/regulatory/{entry.get_json()['id']}", json={"reference": "P1"},
                 headers=editor | {"If-Match": entry.headers["ETag"]})  # fmt: skip
    assert decide(client, reviewer, slug, "withdrawn", reason="Safety signal.").status_code == 201
    client.delete(f"/v1/treatments/{slug}/regulatory/{entry.get_json()['id']}", headers=editor)
    client.delete(f"/v1/treatments/{slug}/studies/{study.get_json()['id']}", headers=editor)
    return slug


def test_the_change_feed_records_each_write_in_order(client, editor, reviewer):
    slug = walk_through(client, editor, reviewer)
    events = feed(client)
    assert all(e["treatment"] == slug for e in events)
    types = [e["type"] for e in events if e["type"] != "decision.recorded"]
    assert types == [
        "treatment.created", "treatment.updated", "study.created", "study.updated", "regulatory.created",
        "treatment.status_changed", "treatment.bookability_changed", "regulatory.updated",
        "treatment.status_changed", "treatment.bookability_changed", "regulatory.deleted", "study.deleted",
    ]  # fmt: skip
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    changed = [e["data"] for e in events if e["type"] == "treatment.status_changed"]
    assert [(c["old_status"], c["new_status"], c["old_bookable"], c["new_bookable"]) for c in changed] == [
        ("under_review", "approved", False, True), ("approved", "withdrawn", True, False)]  # fmt: skip
    created = events[0]["data"]
    assert (created["slug"], created["status"], created["bookable"]) == (slug, "under_review", False)
    updated = next(e for e in events if e["type"] == "treatment.updated")
    assert updated["data"]["fields"] == ["summary"]
    study_levels = [e["data"]["evidence_level"] for e in events if e["type"].startswith("study.")]
    assert study_levels == ["moderate", "moderate", "insufficient"]
    assert all(e["occurred_at"] for e in events)


def test_following_the_cursor_page_by_page_yields_every_event_once(client, editor, reviewer):
    walk_through(client, editor, reviewer)
    walk_through(client, editor, reviewer)
    everything = feed(client)
    assert len(everything) > 10
    seen, after, pages = [], 0, 0
    while True:
        response = client.get(f"/v1/changes?after={after}&limit=3")
        page = response.get_json()
        assert len(page["events"]) <= 3
        if not page["events"]:
            assert page["next_after"] == after
            break
        seen.extend(page["events"])
        after, pages = page["next_after"], pages + 1
        assert after == page["events"][-1]["id"]
    assert seen == everything
    assert pages == -(-len(everything) // 3)


def test_the_feed_is_public_and_carries_no_key_names_or_audit_data(client, auth, app):
    editor = auth("editor", name="secret-editor-name")
    reviewer = auth("reviewer", name="secret-reviewer-name")
    walk_through(client, editor, reviewer)
    response = client.get("/v1/changes")  # no credentials
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    for secret in ("secret-editor-name", "secret-reviewer-name", "tpa_", "editor", "actor"):
        assert secret not in text
    for key in (editor, reviewer):
        assert key["Authorization"].split()[1] not in text
    for event in json.loads(text)["events"]:
        assert set(event) == {"id", "type", "treatment", "occurred_at", "data"}
        assert not {"changes", "actor_name", "actor_role", "decided_by"} & set(event["data"])


def test_an_empty_feed_page_keeps_the_cursor(client):
    page = client.get("/v1/changes?after=12345").get_json()
    assert page == {"events": [], "next_after": 12345}


@pytest.mark.parametrize("query", ["after=-1", "after=x", "limit=0", "limit=501", "limit=x"])
def test_bad_feed_parameters_are_422(client, query):
    assert error_fields(client.get(f"/v1/changes?{query}")) == {query.split("=")[0]}
