"""Study risk of bias and what a review pools: written, refused, derived and snapshotted over HTTP"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import execute
from tests.helpers import FDA_APPROVAL, STRONG_RCT, create_treatment

PROBLEM = "application/problem+json"
INDEPENDENT_RCT = STRONG_RCT | {"sponsorship": "independent", "risk_of_bias": "low"}
META_ANALYSIS = {"title": "A meta-analysis", "design": "meta_analysis", "participants": 2000,
                 "follow_up_months": 24, "sponsorship": "independent", "peer_reviewed": True}  # fmt: skip


@pytest.fixture
def editor(auth):
    return auth("editor", name="rob-editor")


@pytest.fixture
def slug(client, editor):
    return create_treatment(client, editor)["slug"]


def add_study(client: Any, headers: dict[str, str], slug: str, body: dict[str, Any]) -> Any:
    return client.post(f"/v1/treatments/{slug}/studies", json=body, headers=headers)


def added(
    client: Any, headers: dict[str, str], slug: str, body: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    response = add_study(client, headers, slug, body)
    assert response.status_code == 201, response.get_json()
    return response.get_json(), response.headers["ETag"]


def patch(
    client: Any, headers: dict[str, str], slug: str, study: dict[str, Any], etag: str, body: dict[str, Any]
):
    url = f"/v1/treatments/{slug}/studies/{study['id']}"
    return client.patch(url, json=body, headers=headers | {"If-Match": etag})


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json()


def evidence(client: Any, slug: str) -> dict[str, Any]:
    return client.get(f"/v1/treatments/{slug}").get_json()["evidence"]


def test_a_study_defaults_to_not_assessed_and_a_trial_pools_nothing(client, editor, slug):
    study, _ = added(client, editor, slug, STRONG_RCT)
    assert {
        k: study[k] for k in ("risk_of_bias", "risk_of_bias_note", "pooled_designs", "pooled_studies")
    } == {
        "risk_of_bias": "not_assessed",
        "risk_of_bias_note": None,
        "pooled_designs": None,
        "pooled_studies": None,
    }
    assert "risk_of_bias_not_assessed" in evidence(client, slug)["concerns"]


@pytest.mark.parametrize("pooled", [{}, {"pooled_designs": None}])
def test_a_review_that_does_not_say_what_it_pools_is_unknown_and_starts_low(client, editor, slug, pooled):
    study, _ = added(client, editor, slug, META_ANALYSIS | pooled)
    assert (study["pooled_designs"], study["pooled_studies"]) == ("unknown", None)
    summary = evidence(client, slug)
    assert (summary["starting_level"], summary["judged_designs"]) == ("low", ["meta_analysis"])
    assert summary["level"] == "very_low"  # its 2,000 pooled patients are not one trial's sample
    assert "small_samples" in summary["concerns"]


def test_a_review_of_rcts_only_keeps_what_it_says_and_starts_high(client, editor, slug):
    body = META_ANALYSIS | {"pooled_designs": "rct_only", "pooled_studies": 12, "risk_of_bias": "low",
                            "risk_of_bias_note": "Low risk in every RoB 2 domain."}  # fmt: skip
    study, _ = added(client, editor, slug, body)
    assert {k: study[k] for k in body} == body
    assert client.get(f"/v1/treatments/{slug}/studies/{study['id']}").get_json() == study
    summary = evidence(client, slug)
    assert (summary["level"], summary["starting_level"], summary["concerns"]) == ("high", "high", [])


def test_every_study_at_high_risk_of_bias_steps_the_level_down(client, editor, slug):
    study, etag = added(client, editor, slug, INDEPENDENT_RCT)
    assert evidence(client, slug)["level"] == "high"
    response = patch(
        client, editor, slug, study, etag, {"risk_of_bias": "high", "risk_of_bias_note": "Unblinded."}
    )
    assert response.status_code == 200, response.get_json()
    summary = evidence(client, slug)
    assert (summary["level"], summary["concerns"]) == ("moderate", ["high_risk_of_bias"])


def test_a_small_trial_is_judged_on_its_own_beside_a_large_case_series(client, editor, slug):
    added(client, editor, slug, INDEPENDENT_RCT | {"participants": 20})
    added(client, editor, slug, {"title": "A case series", "design": "case_series", "participants": 500,
                                 "follow_up_months": 24, "sponsorship": "independent", "peer_reviewed": True,
                                 "risk_of_bias": "low"})  # fmt: skip
    summary = evidence(client, slug)
    assert (summary["level"], summary["largest_sample"], summary["judged_designs"]) == (
        "moderate",
        500,
        ["rct"],
    )
    assert summary["concerns"] == ["small_samples"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param(
            STRONG_RCT | {"pooled_designs": "rct_only"}, {"pooled_designs"}, id="designs-on-a-trial"
        ),
        pytest.param(STRONG_RCT | {"pooled_studies": 3}, {"pooled_studies"}, id="count-on-a-trial"),
        pytest.param(
            STRONG_RCT | {"design": "cohort", "pooled_designs": "unknown", "pooled_studies": 3},
            {"pooled_designs", "pooled_studies"},
            id="both-on-a-cohort",
        ),
        pytest.param(
            {"title": "A reference", "design": None, "screening": "screening", "pooled_designs": "unknown"},
            {"pooled_designs"},
            id="designs-without-a-design",
        ),
        pytest.param(
            META_ANALYSIS | {"pooled_designs": "all_of_them"}, {"pooled_designs"}, id="unknown-value"
        ),
        pytest.param(META_ANALYSIS | {"pooled_studies": 0}, {"pooled_studies"}, id="no-studies-pooled"),
        pytest.param(META_ANALYSIS | {"pooled_studies": "12"}, {"pooled_studies"}, id="count-as-text"),
        pytest.param(STRONG_RCT | {"risk_of_bias": "unclear"}, {"risk_of_bias"}, id="unknown-judgement"),
        pytest.param(STRONG_RCT | {"risk_of_bias": None}, {"risk_of_bias"}, id="null-judgement"),
        pytest.param(
            STRONG_RCT | {"risk_of_bias_note": "x" * 501}, {"risk_of_bias_note"}, id="note-too-long"
        ),
        pytest.param(
            STRONG_RCT | {"risk_of_bias_note": "two\nlines"}, {"risk_of_bias_note"}, id="note-newline"
        ),
        pytest.param(
            STRONG_RCT | {"risk_of_bias_note": "nul\x00"}, {"risk_of_bias_note"}, id="note-control-char"
        ),
    ],
)
def test_a_study_body_that_breaks_the_rules_is_refused_whole(client, editor, slug, body, fields):
    response = add_study(client, editor, slug, body)
    assert {e["field"] for e in problem(response, 422)["errors"]} == fields
    assert client.get(f"/v1/treatments/{slug}/studies").get_json() == []


def test_null_pooled_fields_on_a_trial_are_accepted(client, editor, slug):
    study, _ = added(client, editor, slug, STRONG_RCT | {"pooled_designs": None, "pooled_studies": None})
    assert (study["pooled_designs"], study["pooled_studies"]) == (None, None)


def test_patching_pooled_fields_onto_a_stored_trial_conflicts(client, editor, slug):
    study, etag = added(client, editor, slug, STRONG_RCT)
    body = problem(patch(client, editor, slug, study, etag, {"pooled_designs": "rct_only"}), 409)
    assert [e["field"] for e in body["errors"]] == ["pooled_designs"]
    # A body contradicting itself is the client's own mistake: 422.
    response = patch(client, editor, slug, study, etag, {"design": "rct", "pooled_studies": 4})
    assert {e["field"] for e in problem(response, 422)["errors"]} == {"pooled_studies"}


def test_a_study_that_becomes_a_review_is_unknown_and_one_that_stops_drops_its_pooled_fields(
    client, editor, slug, app
):
    study, etag = added(client, editor, slug, STRONG_RCT)
    response = patch(client, editor, slug, study, etag, {"design": "systematic_review"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["pooled_designs"] == "unknown"

    response = patch(client, editor, slug, study, response.headers["ETag"],
                     {"pooled_designs": "includes_non_randomised", "pooled_studies": 9})  # fmt: skip
    assert (response.get_json()["pooled_designs"], response.get_json()["pooled_studies"]) == (
        "includes_non_randomised",
        9,
    )
    response = patch(client, editor, slug, study, response.headers["ETag"], {"pooled_designs": None})
    assert response.get_json()["pooled_designs"] == "unknown"  # null on a review: it does not say

    response = patch(client, editor, slug, study, response.headers["ETag"], {"design": "cohort"})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["pooled_designs"], response.get_json()["pooled_studies"]) == (None, None)
    # The audit trail shows each change, the clearing included.
    changes = execute(app, "SELECT changes FROM audit_records WHERE entity = 'study' ORDER BY id")[-1][0]
    changes = changes if isinstance(changes, dict) else json.loads(changes)
    assert changes["pooled_designs"] == {"from": "unknown", "to": None}
    assert changes["pooled_studies"] == {"from": 9, "to": None}


def test_a_review_imported_from_medline_says_unknown(client, editor, slug):
    record = (
        "PMID- 99999990\nTI  - A meta-analysis of a test treatment.\nPT  - Journal Article\n"
        "PT  - Meta-Analysis\n"
    )
    response = client.post(f"/v1/treatments/{slug}/studies/import", data=record,
                           content_type="application/x-nbib", headers=editor)  # fmt: skip
    assert response.status_code == 201, response.get_json()
    [imported] = response.get_json()["imported"]
    assert (imported["design"], imported["pooled_designs"], imported["risk_of_bias"]) == (
        "meta_analysis",
        "unknown",
        "not_assessed",
    )


def test_decision_snapshots_keep_their_shape_and_add_where_the_rating_started(
    client, editor, auth, slug, app
):
    reviewer = auth("reviewer", name="rob-reviewer")
    added(client, editor, slug, INDEPENDENT_RCT)
    client.post(f"/v1/treatments/{slug}/regulatory", json=FDA_APPROVAL, headers=editor)
    response = client.post(f"/v1/treatments/{slug}/decisions", headers=reviewer,
                           json={"status": "approved", "reason": "Meets the gate."})  # fmt: skip
    assert response.status_code == 201, response.get_json()
    snapshot = response.get_json()["evidence_snapshot"]
    assert snapshot == {
        "level": "high",
        "studies": 1,
        "human_studies": 1,
        "rcts": 1,
        "largest_sample": 250,
        "longest_follow_up_months": 12.0,
        "independent_peer_reviewed": 1,
        "concerns": [],
        "starting_level": "high",
        "judged_designs": ["rct"],
    }
    # A decision recorded before these fields existed is served as it was stored.
    old = {k: v for k, v in snapshot.items() if k not in {"starting_level", "judged_designs"}}
    execute(app, "UPDATE decisions SET evidence_snapshot = :snapshot WHERE id = :id",
            snapshot=json.dumps(old), id=response.get_json()["id"])  # fmt: skip
    history = client.get(f"/v1/treatments/{slug}/decisions").get_json()
    assert history[-1]["evidence_snapshot"] == old
